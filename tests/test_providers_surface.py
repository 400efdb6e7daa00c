"""The public surface of learnprivacy.providers: documented names exist, imports stay light."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_sqlalchemy_or_hypothesis() -> None:
    """Importing the providers (even building a manager) loads neither SQLAlchemy nor hypothesis."""
    code = (
        "import sys; from learnprivacy.providers import PrivacyManager;"
        "PrivacyManager(discover=True);"
        "heavy = ('sqlalchemy', 'sqlmodel', 'hypothesis');"
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
