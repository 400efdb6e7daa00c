"""Blind indexes: equality lookup on encrypted fields, under a key of their own."""

from __future__ import annotations

import re

import pytest

from learnprivacy.crypto import BlindIndex, FieldCipher, Keyring
from learnprivacy.crypto._blind_index import normalise_text
from learnprivacy.errors import ValidationError

KEY = bytes(range(32, 64))
INDEX = re.compile(r"b1_[A-Za-z0-9_-]+")


def test_equivalent_spellings_share_an_index() -> None:
    """Surrounding blanks, case and Unicode composition do not change the index."""
    index = BlindIndex(KEY)
    base = index.compute("ana.martin@example.org", field="Learner.email")
    for spelling in (" Ana.Martin@Example.ORG\n", "ANA.MARTIN@EXAMPLE.ORG"):
        assert index.compute(spelling, field="Learner.email") == base
    assert INDEX.fullmatch(base)
    assert len(base) == 3 + 22
    assert normalise_text("Cafe\u0301 ") == normalise_text("café")
    assert index.compute("Cafe\u0301", field="f") == index.compute("café", field="f")


def test_fields_and_keys_separate_indexes() -> None:
    """The same value indexes differently in another field or under another key."""
    index = BlindIndex(KEY)
    email = index.compute("ana", field="Learner.email")
    assert index.compute("ana", field="Learner.username") != email
    assert BlindIndex(bytes(32)).compute("ana", field="Learner.email") != email
    assert index.compute("bob", field="Learner.email") != email


def test_exact_normalisation_can_be_chosen() -> None:
    """normalise=str indexes the value as given."""
    index = BlindIndex(KEY)
    assert index.compute("Ana", field="f", normalise=str) != index.compute("ana", field="f")


def test_sizes_and_keys_are_checked() -> None:
    """Sizes from 8 to 32 bytes are accepted; short keys and bad sizes are refused."""
    assert len(BlindIndex(KEY, size=8).compute("a", field="f")) == 3 + 11
    assert len(BlindIndex(KEY, size=32).compute("a", field="f")) == 3 + 43
    for size in (7, 33, 16.0):
        with pytest.raises(ValidationError):
            BlindIndex(KEY, size=size)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BlindIndex(bytes(31))


def test_bad_values_and_fields_are_refused() -> None:
    """Non-str values and empty or non-str field names are a ValidationError."""
    index = BlindIndex(KEY)
    for value in (None, b"a", 1):
        with pytest.raises(ValidationError):
            index.compute(value, field="f")  # type: ignore[arg-type]
    for field in ("", None, ["f"]):
        with pytest.raises(ValidationError):
            index.compute("a", field=field)  # type: ignore[arg-type]


def test_keyring_index_key_is_stable_and_not_a_data_key() -> None:
    """The keyring's index survives rotation and shredding and differs between keyrings."""
    keyring = Keyring.generate()
    cipher = FieldCipher(keyring)
    cipher.encrypt("ana@example.org", subject="L1", context="Learner/L1/email")
    before = keyring.blind_index().compute("ana@example.org", field="Learner.email")
    keyring.shred("L1")
    keyring.rotate()
    reopened = Keyring(keyring.export_master_key(), store=keyring.store)
    after = reopened.blind_index().compute("ana@example.org", field="Learner.email")
    assert after == before
    other = Keyring.generate().blind_index().compute("ana@example.org", field="Learner.email")
    assert other != before
