"""The public surface of learnprivacy.export and its submodules, and what importing costs."""

from __future__ import annotations

import subprocess
import sys

import learnprivacy.export
import learnprivacy.export.reports
import learnprivacy.export.xapi


def test_public_names_exist() -> None:
    """Every name in __all__ exists; the names DESIGN.md and the issue promise are there."""
    modules = (learnprivacy.export, learnprivacy.export.xapi, learnprivacy.export.reports)
    for module in modules:
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert {"export_subject", "read_package", "to_records", "to_dataframe"} <= set(
        learnprivacy.export.__all__
    )
    assert {"send_statements", "statements_for", "check_statement"} <= set(
        learnprivacy.export.xapi.__all__
    )
    assert {"ReportProfile", "build_report", "k_anonymous_aggregate"} <= set(
        learnprivacy.export.reports.__all__
    )


def test_importing_export_stays_light() -> None:
    """No SQLAlchemy, pandas, httpx or ralph is imported by the export package itself."""
    code = (
        "import sys, learnprivacy.export, learnprivacy.export.xapi, "
        "learnprivacy.export.reports;"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pandas', 'httpx', 'ralph');"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
