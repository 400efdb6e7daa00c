"""The public surface of learnprivacy.crypto: names, docstrings, the documented contract."""

from __future__ import annotations

import doctest
import importlib

import pytest

import learnprivacy.crypto as crypto
from learnprivacy.errors import DecryptionError, KeyShreddedError
from tests import modules_after, packages_in


def test_public_classes_and_functions_have_docstrings() -> None:
    """Every public class, function and public method says what it does."""
    for name in crypto.__all__:
        thing = getattr(crypto, name)
        if isinstance(thing, str):
            continue
        assert thing.__doc__, name
        if isinstance(thing, type):
            for attribute, member in vars(thing).items():
                if attribute.startswith("_") or not callable(member):
                    continue
                assert getattr(member, "__doc__", None), f"{name}.{attribute}"


def test_the_design_contract_holds() -> None:
    """The snippet of DESIGN.md's public API contract runs as written."""
    keyring = crypto.Keyring.generate()
    cipher = crypto.FieldCipher(keyring)
    token = cipher.encrypt("ana@example.org", subject="L1", context="Learner/L1/email")
    assert cipher.decrypt(token, subject="L1", context="Learner/L1/email") == "ana@example.org"
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, subject="L1", context="Learner/L1/name")
    keyring.rotate()
    assert cipher.decrypt(token, subject="L1", context="Learner/L1/email") == "ana@example.org"
    keyring.shred("L1")
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="Learner/L1/email")
    pseudonym = crypto.Pseudonymiser(bytes(32), domain="employer-report").pseudonym("L1")
    assert pseudonym == crypto.Pseudonymiser(bytes(32), domain="employer-report").pseudonym("L1")


@pytest.mark.parametrize(
    "module",
    [
        "learnprivacy.crypto",
        "learnprivacy.crypto._keyring",
        "learnprivacy.crypto._cipher",
        "learnprivacy.crypto._pseudonym",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    """The examples in the docstrings are true."""
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0


def test_importing_crypto_stays_light() -> None:
    """learnprivacy.crypto does not pull in SQLAlchemy or SQLModel."""
    modules = modules_after("import learnprivacy.crypto")
    assert packages_in(modules, ("sqlalchemy", "sqlmodel")) == set()
