"""Run every benchmark module and print one table of ratios against their floors.

Usage: ``python -m benchmarks [--quick] [--only NAME ...] [--out benchmarks/results.md]``.

Each ``benchmarks/bench_*.py`` exposes ``run(quick: bool = False) -> list[dict]`` whose rows
hold ``name``, ``value``, ``floor``, ``ratio``, ``target`` and ``ok`` (plus optional
``unit``). The floor is measured in the same process and run (a bare primitive,
hand-written SQL), so the ratios hold on any machine even when absolute figures do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1_000 else f"{value:,.0f}"
    return str(value)


def render(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of every row."""
    lines = [
        "| benchmark | result | spread | floor | ratio | target | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        unit = f" {row['unit']}" if row.get("unit") else ""
        lines.append(
            f"| {row['name']} | {_fmt(row['value'])}{unit} | {row.get('spread', '')} "
            f"| {_fmt(row['floor'])}{unit} "
            f"| {_fmt(row['ratio'])} | {row['target']} | {'yes' if row['ok'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("--only", nargs="*", default=[], help="run modules matching these")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    rows: list[dict[str, Any]] = []
    for name in _modules(args.only):
        print(f"running {name}...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        rows.extend(module.run(quick=args.quick))
    table = render(rows)
    print(table)
    header = (
        f"# Benchmark results\n\nGenerated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"on {platform.machine()} / Python {platform.python_version()}"
        f"{' (quick mode)' if args.quick else ''}.\n"
        "Every floor is measured in the same run, interleaved with the library; times are\n"
        "CPU seconds (process and waited-for children), medians of at least five rounds,\n"
        "with the spread (fastest and slowest round) beside them.\n\n"
    )
    Path(args.out).write_text(header + table + "\n", encoding="utf-8")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
