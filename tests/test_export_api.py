"""The public surface of learnprivacy.export and its submodules, and what importing costs."""

from __future__ import annotations

from tests import modules_after, packages_in


def test_importing_export_stays_light() -> None:
    """No SQLAlchemy, pandas, httpx or ralph is imported by the export package itself."""
    modules = modules_after(
        "import learnprivacy.export, learnprivacy.export.xapi, learnprivacy.export.reports"
    )
    assert packages_in(modules, ("sqlalchemy", "sqlmodel", "pandas", "httpx", "ralph")) == set()
