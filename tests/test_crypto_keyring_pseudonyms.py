"""Keyring.pseudonymiser: stable per key store and domain, unlinkable across them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest

from learnprivacy.crypto import InMemoryKeyStore, Keyring, Pseudonymiser
from learnprivacy.crypto._pseudonym import domain_key
from learnprivacy.errors import ValidationError


def _hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869, written out with the standard library's hmac."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def _pseudonym(key: bytes, domain: str, identifier: str) -> str:
    """The documented pseudonym construction, computed independently."""
    label = b"learnprivacy/pseudonym/v1"
    message = b"".join(len(part).to_bytes(4, "big") + part for part in (label, domain.encode()))
    digest = hmac.new(key, message + identifier.encode(), hashlib.sha256).digest()[:16]
    return "p1_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_the_domain_key_is_hkdf_sha256_of_the_root() -> None:
    """domain_key is HKDF-SHA256 with the pseudonym-key salt and the domain as info."""
    root = bytes(range(32))
    for domain in ("subject-export", "xapi-actor", "report:employer", "é"):
        expected = _hkdf_sha256(
            root, salt=b"learnprivacy/v1/pseudonym-key", info=domain.encode("utf-8")
        )
        assert domain_key(root, domain) == expected


def test_keyring_pseudonyms_follow_the_documented_construction() -> None:
    """keyring.pseudonymiser(domain) is a Pseudonymiser on the domain key derived from
    the keyring's blind-index key."""
    keyring = Keyring.generate()
    root = keyring._index_secret()
    key = _hkdf_sha256(root, salt=b"learnprivacy/v1/pseudonym-key", info=b"employer-report")
    pseudonymiser = keyring.pseudonymiser("employer-report")
    assert isinstance(pseudonymiser, Pseudonymiser)
    assert pseudonymiser.domain == "employer-report"
    assert pseudonymiser.pseudonym("L1") == _pseudonym(key, "employer-report", "L1")


def test_the_same_key_store_gives_the_same_pseudonyms() -> None:
    """Two keyrings on the same master key and key store (two processes, a restart)
    give each learner the same pseudonym in a domain."""
    store = InMemoryKeyStore()
    master = os.urandom(32)
    first = Keyring(master, store=store).pseudonymiser("subject-export")
    second = Keyring(master, store=store).pseudonymiser("subject-export")
    assert first.pseudonym("L1") == second.pseudonym("L1")
    assert first.pseudonym("L1") != first.pseudonym("L2")


def test_two_key_stores_give_unrelated_pseudonyms() -> None:
    """Keyrings on different key stores, even with the same master key, disagree."""
    master = os.urandom(32)
    one = Keyring(master, store=InMemoryKeyStore()).pseudonymiser("subject-export")
    two = Keyring(master, store=InMemoryKeyStore()).pseudonymiser("subject-export")
    assert one.pseudonym("L1") != two.pseudonym("L1")


def test_domains_are_unlinkable() -> None:
    """Two domains of one keyring give different pseudonyms and different keys."""
    keyring = Keyring.generate()
    domains = ("subject-export", "xapi-actor", "report:employer", "report:funder")
    pseudonyms = {keyring.pseudonymiser(d).pseudonym("L1") for d in domains}
    assert len(pseudonyms) == len(domains)
    root = keyring._index_secret()
    assert len({domain_key(root, d) for d in domains}) == len(domains)


def test_pseudonyms_survive_rotation_and_shredding() -> None:
    """Rotating the master key and shredding the learner's data keys change nothing;
    a keyring reopened on the new master key agrees."""
    keyring = Keyring.generate()
    before = keyring.pseudonymiser("subject-export").pseudonym("L1")
    new_master = os.urandom(32)
    keyring.rotate(new_master)
    assert keyring.pseudonymiser("subject-export").pseudonym("L1") == before
    keyring.shred("L1")
    assert keyring.pseudonymiser("subject-export").pseudonym("L1") == before
    reopened = Keyring(new_master, store=keyring.store)
    assert reopened.pseudonymiser("subject-export").pseudonym("L1") == before


def test_pseudonymiser_checks_its_arguments() -> None:
    """An empty, non-str or unencodable domain and a bad size are ValidationErrors."""
    keyring = Keyring.generate()
    for domain in ("", None, 3, "\udc80"):
        with pytest.raises(ValidationError) as info:
            keyring.pseudonymiser(domain)  # type: ignore[arg-type]
        assert info.value.field == "domain"
    with pytest.raises(ValidationError):
        keyring.pseudonymiser("subject-export", size=8)
    assert len(keyring.pseudonymiser("d", size=32).pseudonym("L1")) == 3 + 43
