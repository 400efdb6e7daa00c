"""The public surface of learnprivacy.export and its submodules, and what importing costs."""

from __future__ import annotations

import subprocess
import sys


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
