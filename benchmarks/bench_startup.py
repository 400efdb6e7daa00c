"""Start-up: CPU time of ``import learnprivacy.store`` and ``learnprivacy --help``.

Each is a fresh interpreter (a subprocess; its CPU time is counted as a child's), run
interleaved with the floor, a bare interpreter (``python -c pass``), medians of at least
five rounds. Targets are absolute, from the issue: ``import learnprivacy.store`` under
0.3 s (SQLAlchemy Core alone costs most of it), ``learnprivacy --help`` under 0.15 s.
``tests/test_startup.py`` checks the cause (which modules load) rather than the time.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks._measure import compare

STORE_TARGET = 0.3
HELP_TARGET = 0.15
_HELP = (
    "import sys\nsys.argv = ['learnprivacy', '--help']\n"
    "from learnprivacy.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
)


def _python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


def _row(name: str, value: Any, floor: Any, target: float) -> dict[str, Any]:
    low, high = value.spread
    return {
        "name": name,
        "value": value.median,
        "floor": floor.median,
        "ratio": round(value.median / max(floor.median, 1e-3), 3),
        "spread": f"{low:.3g}–{high:.3g}",
        "target": f"< {target:g} s",
        "ok": value.median < target,
        "unit": "s",
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure both start-ups against a bare interpreter."""
    rounds = 5 if quick else 9
    samples = compare(
        {
            "bare": lambda: _python("pass"),
            "store": lambda: _python("import learnprivacy.store"),
            "help": lambda: _python(_HELP),
            "sqlalchemy": lambda: _python("import sqlalchemy"),
        },
        rounds=rounds,
    )
    bare = samples["bare"]
    return [
        _row(
            "`import learnprivacy.store` (CPU, fresh interpreter)",
            samples["store"],
            bare,
            STORE_TARGET,
        ),
        _row("`learnprivacy --help` (CPU, fresh interpreter)", samples["help"], bare, HELP_TARGET),
        {
            **_row(
                "`import sqlalchemy` alone (for reference)",
                samples["sqlalchemy"],
                bare,
                STORE_TARGET,
            ),
            "target": "reference",
            "ok": True,
        },
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run(quick=True)))
