"""Passphrases: one key per passphrase however it was typed; blank ones refused."""

from __future__ import annotations

import unicodedata

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ValidationError

SALT = bytes(range(16))


def test_nfc_and_nfd_spellings_give_one_master_key() -> None:
    """'café' with a precomposed é and with e + combining accent derive the same key."""
    composed = "mon café au lait du matin"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    one = Keyring.derive_master_key(composed, salt=SALT)
    two = Keyring.derive_master_key(decomposed, salt=SALT)
    assert one == two
    assert Keyring.derive_master_key("mon cafe au lait du matin", salt=SALT) != one


@pytest.mark.parametrize(
    "passphrase",
    [" " * 12, "\x00" * 12, "\t\n\r " * 4, "\u00a0" * 12, "\u200b" * 12, " \x00" * 8],
)
def test_blank_or_control_only_passphrases_are_refused(passphrase: str) -> None:
    """Spaces, NULs, tabs, no-break or zero-width spaces only: ValidationError."""
    with pytest.raises(ValidationError) as caught:
        Keyring.derive_master_key(passphrase, salt=SALT)
    assert caught.value.field == "passphrase"


def test_a_lone_surrogate_is_a_validation_error() -> None:
    """A passphrase that is not encodable gets a typed error naming no value."""
    with pytest.raises(ValidationError) as caught:
        Keyring.derive_master_key("correct horse \ud800 battery", salt=SALT)
    assert "horse" not in str(caught.value)
