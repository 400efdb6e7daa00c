"""The public surface: what DESIGN.md promises is importable, and imports stay light."""

from __future__ import annotations

import learnprivacy as lp
from learnprivacy import errors
from tests import modules_after, packages_in


def test_import_does_not_load_sqlalchemy() -> None:
    """`import learnprivacy` (and its records) must not import SQLAlchemy/SQLModel."""
    modules = modules_after("import learnprivacy, learnprivacy.records, learnprivacy.basis")
    assert packages_in(modules, ("sqlalchemy", "sqlmodel")) == set()


def test_error_hierarchy() -> None:
    """The error tree is the one DESIGN.md documents."""
    assert issubclass(errors.ValidationError, errors.LearnPrivacyError)
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.PolicyError, errors.LearnPrivacyError)
    assert issubclass(errors.CryptoError, errors.LearnPrivacyError)
    assert issubclass(errors.DecryptionError, errors.CryptoError)
    assert issubclass(errors.KeyShreddedError, errors.CryptoError)
    assert issubclass(errors.RetentionViolation, errors.LearnPrivacyError)
    assert issubclass(errors.AuditTampered, errors.LearnPrivacyError)
    assert lp.errors is errors
