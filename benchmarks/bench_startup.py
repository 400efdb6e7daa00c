"""Start-up: CPU time of ``import learnprivacy.store`` and ``learnprivacy --help``.

Each is a fresh interpreter (a subprocess; its CPU time is counted as a child's), run
interleaved with the floor, a bare interpreter (``python -c pass``), medians of at least
five rounds. Targets are absolute, from the issue: ``import learnprivacy.store`` under
0.3 s (SQLAlchemy Core alone costs most of it), ``learnprivacy --help`` under 0.15 s.
``tests/test_startup.py`` checks the cause (which modules load) rather than the time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks._measure import compare

STORE_TARGET = 0.3
HELP_TARGET = 0.15
_HELP = (
    "import sys\nsys.argv = ['learnprivacy', '--help']\n"
    "from learnprivacy.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
)


def _bytecode_env(cache: str) -> dict[str, str]:
    """The environment of the measured interpreters: bytecode read from (and written to)
    ``cache``, whatever ``PYTHONDONTWRITEBYTECODE`` says here.

    An installed package ships or writes its bytecode once; an interpreter that may not
    write it (``PYTHONDONTWRITEBYTECODE=1`` in a development shell, with the package
    installed in editable mode) compiles every module of the package from source at each
    start, which measures the compiler rather than the imports.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _python(code: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, env=env)


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
    cache = tempfile.mkdtemp(prefix="lp-bytecode-")
    env = _bytecode_env(cache)
    # One untimed start of each writes the bytecode every measured start then reads.
    for code in ("import learnprivacy.store", _HELP):
        _python(code, env)
    try:
        samples = compare(
            {
                "bare": lambda: _python("pass", env),
                "store": lambda: _python("import learnprivacy.store", env),
                "help": lambda: _python(_HELP, env),
                "sqlalchemy": lambda: _python("import sqlalchemy", env),
            },
            rounds=rounds,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
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
