"""CPU-time measurement shared by every benchmark: interleaved rounds, medians, spread.

Wall-clock best-of-N lies on a shared machine: whichever run happens to meet an idle
moment wins, so load flips verdicts. Every benchmark therefore measures through
:func:`compare`, which

* interleaves the runs (library, floor, library, floor, ...) so that both meet the same
  load, round after round;
* times CPU time, not wall time: this process's user+system time plus that of the child
  processes it waited for (a multi-process run counts the work of every worker);
* keeps every round and reports the median with its spread (lowest and highest round), so
  a reader sees how noisy a figure was.

A database server's own CPU time is not counted (it is another process tree): benchmarks
against a server compare client work done for the same rows, which is the library's share.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_ROUNDS",
    "Sample",
    "collector_time",
    "compare",
    "cpu_seconds",
    "ratio_row",
    "timed_calls",
    "timing_cost",
]

#: Fewer rounds than this give a median that one unlucky round can still move.
MIN_ROUNDS = 5


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its waited-for children.

    ``time.process_time`` has nanosecond resolution for this process; ``os.times`` (clock
    ticks, usually 10 ms) is only used for children, whose runs are long.
    """
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


def timed_calls(owner: Any, name: str, label: str, spent: dict[str, float]) -> Callable[[], None]:
    """Count the CPU time of every call of ``owner.name`` in ``spent[label]`` (and the
    number of timed calls in ``spent["calls"]``); return the function that puts the
    original back. For breakdowns: what timing a call costs is :func:`timing_cost`."""
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        spent["calls"] = spent.get("calls", 0.0) + 1
        began = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - began

    setattr(owner, name, counted)
    return lambda: setattr(owner, name, original)


def collector_time(spent: dict[str, float]) -> Callable[[], None]:
    """Count the cyclic garbage collector's own CPU time in ``spent["gc"]``, wherever it
    runs (it lands in whichever timed part allocates when a collection starts); return
    the function that stops counting."""
    began: list[float] = []

    def collector(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            began.append(time.process_time())
        elif began:
            spent["gc"] = spent.get("gc", 0.0) + time.process_time() - began.pop()

    gc.callbacks.append(collector)
    return lambda: gc.callbacks.remove(collector)


def timing_cost() -> float:
    """CPU seconds one call timed by :func:`timed_calls` adds outside the part it times
    (a timed call of a function doing nothing, less what it records)."""
    import types

    spent: dict[str, float] = {}
    idle = types.SimpleNamespace(call=lambda: None)
    timed_calls(idle, "call", "idle", spent)
    began = time.process_time()
    for _ in range(100_000):
        idle.call()
    return (time.process_time() - began - spent["idle"]) / 100_000


@dataclass(frozen=True)
class Sample:
    """The CPU seconds of every round of one run."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median round."""
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        """(fastest, slowest) round."""
        return min(self.seconds), max(self.seconds)


def compare(
    runs: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = MIN_ROUNDS,
    setup: Callable[[], Any] | None = None,
) -> dict[str, Sample]:
    """CPU time of each run, interleaved ``rounds`` times.

    ``setup`` (not timed) runs before every timed call, for runs that need a fresh state
    (an empty database, a new output path). The garbage collector runs before each timed
    call and stays enabled during it, as in real use.
    """
    if rounds < MIN_ROUNDS:
        raise ValueError(f"at least {MIN_ROUNDS} rounds give a meaningful median")
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            if setup is not None:
                setup()
            gc.collect()
            began = cpu_seconds()
            run()
            timings[name].append(cpu_seconds() - began)
    return {name: Sample(tuple(values)) for name, values in timings.items()}


def ratio_row(
    name: str,
    value: Sample,
    floor: Sample,
    *,
    target: float,
    higher_is_better: bool = False,
    work: float | None = None,
    unit: str = "s",
) -> dict[str, Any]:
    """One result row: library against floor, medians with their spread.

    With ``work`` (items processed per run) the row shows rates (items per CPU second) and
    ``higher_is_better`` is implied: the ratio is library rate over floor rate. Otherwise
    it shows CPU seconds and the ratio is library time over floor time.
    """
    if work is not None:
        rate = work / value.median
        floor_rate = work / floor.median
        ratio = rate / floor_rate
        low, high = (work / s for s in reversed(value.spread))
        return {
            "name": name,
            "value": rate,
            "floor": floor_rate,
            "ratio": round(ratio, 3),
            "spread": f"{low:,.0f}–{high:,.0f}",
            "target": f">= {target:g}",
            "ok": ratio >= target,
            "unit": unit,
        }
    ratio = value.median / floor.median
    ok = ratio >= target if higher_is_better else ratio <= target
    low, high = value.spread
    return {
        "name": name,
        "value": value.median,
        "floor": floor.median,
        "ratio": round(ratio, 3),
        "spread": f"{low:.3g}–{high:.3g}",
        "target": f"{'>=' if higher_is_better else '<='} {target:g}x",
        "ok": ok,
        "unit": unit,
    }


def bench_main(
    run: Callable[..., list[dict[str, Any]]], prog: str, argv: list[str] | None = None
) -> int:
    """The command line of a benchmark module whose ``run(quick=)`` gives its rows:
    ``--quick`` for a short run; prints each row and returns 1 when a target is missed."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    for row in rows:
        print(row)
    return 0 if all(row["ok"] for row in rows) else 1
