"""The public surface of learnprivacy.providers: documented names exist, imports stay light."""

from __future__ import annotations

from tests import modules_after, packages_in


def test_import_does_not_load_sqlalchemy_or_hypothesis() -> None:
    """Importing the providers (even building a manager) loads neither SQLAlchemy nor hypothesis."""
    modules = modules_after(
        "from learnprivacy.providers import PrivacyManager; PrivacyManager(discover=True)"
    )
    assert packages_in(modules, ("sqlalchemy", "sqlmodel", "hypothesis")) == set()
