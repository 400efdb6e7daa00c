"""Scale-out of a PostgreSQL retention sweep: two sweeping processes against one.

``Store.sweep`` has no worker option: on PostgreSQL, sweeps started in several processes
share the work by themselves (each page is read ``FOR UPDATE SKIP LOCKED``, so a sweep
skips the rows another one is deciding). This benchmark starts the same store contents
(a clone of one template database, its key database cloned with it) and sweeps it with
one worker process, then with two, interleaved round after round.

What is timed, and why wall time is legitimate here: the figure is how much sooner two
workers finish the same work, which only the wall clock shows. Each worker opens its
store, says it is ready and waits; the clock starts when every worker is told to go and
stops when the last one has reported. Beside it the benchmark prints what a reader needs
to judge the noise: the CPU seconds the workers spent in ``Store.sweep`` (summed over
the workers: the extra CPU that two workers cost), the server's CPU seconds in the round
(the postmaster's own and its reaped children's, from ``/proc``: Linux only), the spread
of the rounds, and the load average when each round started (the reference machine has 2
cores, and the PostgreSQL server's backends run on the same cores as the workers). Every
round checks afterwards that the workers together erased exactly the expired learners
and that no expired learner is left in the database. While the workers run, the server's
backends for the store are sampled every 10 ms (``pg_stat_activity``): the share of
samples waiting on a ``Lock`` (a row, tuple or transaction lock another worker holds)
shows whether anything still serialises the workers. One untimed pair of rounds warms
the server first.

Usage: ``python -m benchmarks.bench_sweep_scale [--full] [--rounds N]``: the default size
(20,000 learners, pages of 1,000) takes seconds; ``--full`` is the issue's 200,000
learners with pages of 5,000. Needs the PostgreSQL server binaries (started as the
unprivileged ``postgres`` user by :mod:`learnprivacy.testing.postgres`) and psycopg.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._measure import MIN_ROUNDS
from benchmarks.bench_store import learners
from learnprivacy.crypto import Keyring
from learnprivacy.records import Learner
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
MASTER = bytes(range(32))
SCHEDULE = Schedule({Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
ROOT = Path(__file__).resolve().parent.parent
#: Issue #21: two workers at least 1.8x one worker (wall time of the same sweep).
TARGET = 1.8
QUICK = {"learners": 20_000, "batch": 1_000}
FULL = {"learners": 200_000, "batch": 5_000}


def expired(count: int) -> int:
    """How many of ``learners(count)`` the schedule erases at NOW (the retention engine's
    own decision, computed without any store)."""
    return sum(
        1
        for learner in learners(count)
        if SCHEDULE.evaluate(learner, now=NOW).action is Action.ERASE
    )


# -- the worker process ---------------------------------------------------------------------


def worker(url: str, keys: str, vault: str, batch: int) -> None:
    """Open the store, say ready, wait for "go", sweep, print CPU and wall seconds."""
    from learnprivacy.store import Store

    store = Store(url, keyring=Keyring.from_master_key(MASTER), keys=keys, vault=vault)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")
    cpu, wall = time.process_time(), time.perf_counter()
    report = store.sweep(SCHEDULE, now=NOW, batch_size=batch, compact=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    store.close()
    print(json.dumps({"cpu": cpu, "wall": wall, "erased": report.erased}), flush=True)


# -- the parent -----------------------------------------------------------------------------


class Bench:
    """A server, a template store, and clones of it swept by 1 or 2 workers."""

    def __init__(self, server: Any, work: Path, count: int, batch: int) -> None:
        self.server, self.work, self.count, self.batch = server, work, count, batch
        self.template = "lp_sweep_tmpl"
        self.keys_template = "lp_sweep_keys_tmpl"
        self.vault = work / "template.vault"

    def build(self) -> None:
        """The template store: ``count`` learners, keys in a PostgreSQL database of their own."""
        from learnprivacy.store import Store

        url = self.server.create_database(self.template)
        keys = self.server.create_database(self.keys_template)
        store = Store(url, keyring=Keyring.from_master_key(MASTER), keys=keys, vault=self.vault)
        records = learners(self.count)
        for start in range(0, len(records), 10_000):
            store.add_all(records[start : start + 10_000], now=NOW)
        store.close()

    def _clone(self, template: str) -> str:
        import psycopg
        from psycopg import sql

        name = f"lp_sweep_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server.dsn_for("postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return name

    def _remaining_expired(self, name: str) -> int:
        import psycopg

        cutoff = SCHEDULE.rules_for(Learner)[0].cutoff(NOW)
        with psycopg.connect(self.server.dsn_for(name)) as connection:
            row = connection.execute(
                "SELECT count(*) FROM lp_learner WHERE last_activity_at <= %s", (cutoff,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _sample_waits(self, name: str, stop: threading.Event, seen: Counter[str]) -> None:
        """Count what the workers' server backends are doing, every 10 ms, until ``stop``
        (autovacuum, which the deletions start, is not counted):
        ``Lock:transactionid`` or ``Lock:tuple`` means one worker waits for another."""
        import psycopg

        with psycopg.connect(self.server.dsn_for("postgres"), autocommit=True) as connection:
            while not stop.wait(0.01):
                for event_type, event in connection.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' "
                    "AND backend_type = 'client backend'",
                    (name,),
                ):
                    seen[f"{event_type}:{event}" if event_type else "running"] += 1

    def server_cpu(self) -> float:
        """CPU seconds of the server so far: the postmaster and every child it reaped
        (the backends of workers that disconnected, autovacuum workers)."""
        pid = (self.server.data_dir / "postmaster.pid").read_text().split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after the name.
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def _wait_disconnected(self, name: str) -> None:
        """Until the workers' backends have exited (so their CPU time is reaped)."""
        import psycopg

        with psycopg.connect(self.server.dsn_for("postgres"), autocommit=True) as connection:
            for _ in range(500):
                row = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend'",
                    (name,),
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                time.sleep(0.01)
        time.sleep(0.05)

    def round(self, workers: int, erasable: int) -> dict[str, Any]:
        """One sweep of a fresh clone by ``workers`` processes."""
        records, keys = self._clone(self.template), self._clone(self.keys_template)
        vault = self.work / f"{records}.vault"
        if self.vault.exists():  # written by the first key compaction only
            shutil.copyfile(self.vault, vault)
        try:
            args = [self.server.url_for(records), self.server.url_for(keys), str(vault)]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_sweep_scale",
                        "--worker",
                        *args,
                        str(self.batch),
                    ],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(workers)
            ]
            for proc in procs:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a sweep worker failed to start (exit {proc.wait()})")
            load = os.getloadavg()[0]
            server_before = self.server_cpu()
            stop, waits = threading.Event(), Counter[str]()
            sampler = threading.Thread(target=self._sample_waits, args=(records, stop, waits))
            sampler.start()
            began = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            results = []
            for proc in procs:
                assert proc.stdout is not None
                results.append(json.loads(proc.stdout.readline()))
            wall = time.perf_counter() - began
            stop.set()
            sampler.join()
            for proc in procs:
                if proc.wait() != 0:
                    raise RuntimeError("a sweep worker failed")
            self._wait_disconnected(records)
            server = self.server_cpu() - server_before
            erased = sum(int(r["erased"]) for r in results)
            # Verified after the fact: every expired learner erased, once, and none left.
            if erased != erasable or self._remaining_expired(records) != 0:
                raise AssertionError(
                    f"{workers} workers erased {erased} of {erasable} expired learners"
                )
            return {
                "wall": wall,
                "cpu": sum(float(r["cpu"]) for r in results),
                "load": load,
                "server": server,
                "busiest": max(int(r["erased"]) for r in results) / erased,
                "waits": waits,
            }
        finally:
            self.server.drop_database(records)
            self.server.drop_database(keys)
            vault.unlink(missing_ok=True)


def measure(count: int, batch: int, rounds: int) -> dict[int, list[dict[str, Any]]]:
    """``rounds`` interleaved rounds of 1 then 2 workers on the same store contents."""
    from learnprivacy.testing.postgres import TemporaryPostgres

    if rounds < MIN_ROUNDS:
        raise ValueError(f"at least {MIN_ROUNDS} rounds give a meaningful median")
    erasable = expired(count)
    work = Path(tempfile.mkdtemp(prefix="lp-sweep-scale-"))
    try:
        with TemporaryPostgres(settings={"shared_buffers": "128MB"}) as server:
            bench = Bench(server, work, count, batch)
            bench.build()
            # One untimed pair first: the first clones meet a cold server cache.
            for workers in (1, 2):
                bench.round(workers, erasable)
            found: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(rounds):
                for workers in (1, 2):
                    found[workers].append(bench.round(workers, erasable))
            return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rows(count: int, batch: int, found: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The speed-up row and the CPU row, with spreads and load averages."""
    one, two = found[1], found[2]
    speedups = [a["wall"] / b["wall"] for a, b in zip(one, two, strict=True)]
    wall1 = statistics.median(r["wall"] for r in one)
    wall2 = statistics.median(r["wall"] for r in two)
    cpu1 = statistics.median(r["cpu"] for r in one)
    cpu2 = statistics.median(r["cpu"] for r in two)
    loads = [r["load"] for r in one + two]
    server1 = statistics.median(r["server"] for r in one)
    server2 = statistics.median(r["server"] for r in two)
    busy1 = statistics.median((r["cpu"] + r["server"]) / r["wall"] for r in one)
    busy2 = statistics.median((r["cpu"] + r["server"]) / r["wall"] for r in two)
    waits: Counter[str] = sum((r["waits"] for r in two), Counter())
    lock_share = sum(v for k, v in waits.items() if k.startswith("Lock:")) / max(
        1, sum(waits.values())
    )
    busiest = statistics.median(r["busiest"] for r in two)
    label = f"{count:,} learners, {expired(count):,} erased, pages of {batch:,} (PostgreSQL)"
    speedup = wall1 / wall2
    return [
        {
            "name": f"sweep, 2 workers vs 1 (wall), {label}; 1 worker {wall1:.3g} s, "
            f"2 workers {wall2:.3g} s; load average {min(loads):.1f}–{max(loads):.1f}; "
            f"busiest worker erased {busiest:.0%}",
            "value": speedup,
            "floor": 1.0,
            "ratio": round(speedup, 3),
            "spread": f"{min(speedups):.2f}–{max(speedups):.2f}x (per round)",
            "target": f">= {TARGET:g}x",
            "ok": speedup >= TARGET,
            "unit": "x",
        },
        {
            "name": f"sweep, CPU of 2 workers (summed) vs 1 worker, {label}",
            "value": cpu2,
            "floor": cpu1,
            "ratio": round(cpu2 / cpu1, 3),
            "spread": f"{min(r['cpu'] for r in two):.3g}–{max(r['cpu'] for r in two):.3g}",
            "target": "reference",
            "ok": True,
            "unit": "s",
        },
        {
            "name": f"sweep, server CPU (postmaster and reaped backends) with 2 workers vs 1, "
            f"{label}; CPU per wall second, workers and server together: 1 worker "
            f"{busy1:.2f}, 2 workers {busy2:.2f} (of 2 cores, shared with the load)",
            "value": server2,
            "floor": server1,
            "ratio": round(server2 / server1, 3),
            "spread": f"{min(r['server'] for r in two):.3g}–{max(r['server'] for r in two):.3g}",
            "target": "reference",
            "ok": True,
            "unit": "s",
        },
        {
            "name": "sweep, 2 workers: share of the server backends' samples spent waiting "
            "on a lock another worker holds (row, tuple or transaction lock; 10 ms samples)",
            "value": lock_share,
            "floor": 0.0,
            "ratio": round(lock_share, 3),
            "spread": "",
            "target": "reference",
            "ok": True,
            "unit": "",
        },
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The rows for ``python -m benchmarks`` (quick: the default size; else ``--full``)."""
    size = QUICK if quick else FULL
    return rows(size["learners"], size["batch"], measure(size["learners"], size["batch"], 5))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sweep_scale")
    parser.add_argument("--full", action="store_true", help="200,000 learners")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--learners", type=int, help="another size")
    parser.add_argument("--batch", type=int, help="another page size")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "KEYS", "VAULT", "BATCH"))
    args = parser.parse_args(argv)
    if args.worker:
        url, keys, vault, batch = args.worker
        worker(url, keys, vault, int(batch))
        return 0
    size = dict(FULL if args.full else QUICK)
    size["learners"] = args.learners or size["learners"]
    size["batch"] = args.batch or size["batch"]
    found = measure(size["learners"], size["batch"], args.rounds)
    from benchmarks.__main__ import render

    table = rows(size["learners"], size["batch"], found)
    print(render(table))
    for workers, results in found.items():
        print(
            f"{workers} worker(s), per round: "
            + ", ".join(
                f"{r['wall']:.2f}s wall/{r['cpu']:.2f}s CPU/{r['server']:.2f}s server CPU/"
                f"load {r['load']:.1f}"
                for r in results
            )
        )
        waits: Counter[str] = sum((r["waits"] for r in results), Counter())
        total = sum(waits.values()) or 1
        print(
            f"{workers} worker(s), server backends sampled every 10 ms: "
            + ", ".join(f"{k} {v / total:.0%}" for k, v in waits.most_common(6))
        )
    return 0 if all(row["ok"] for row in table) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
