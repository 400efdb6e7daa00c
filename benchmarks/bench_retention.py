"""Retention sweep throughput: ``Schedule.plan`` over in-memory records against a bare loop.

Two data sets of 1,000,000 records (100,000 with ``--quick``):

- *learners*: learner accounts under one rule, 18 months after last activity;
- *mixed*: learners, progress and access events (18 months after the learner's last
  activity, read on the learner), invoices (legal minimum of 120 months after issue) and
  funder files (72 months after closing, with a fallback to opening), in shuffled order,
  with a few legal holds.

The floor is a hand-written loop that knows the schedule by heart: per record, it reads
the one date that matters and compares it with a cutoff computed beforehand, appending the
record to an "expired" or a "kept" list. ``Schedule.plan(...).grouped()`` does the same
job for any schedule (holds, several rules, fallbacks, REVIEW on missing dates), and its
decisions are checked to agree with the floor's. Target: within 3x of the floor.

A third measure is the re-check that follows an anonymisation (a consent withdrawal under
a rule that anonymises: ``Store.verify_anonymised(since=...)``): one learner's ten progress
rows anonymised now, in a store of 200,000 progress rows (20,000 with ``--quick``) of which
half were anonymised a year earlier. The floor is a bare ``sqlite3`` read of the same rows
(``lp_anonymised_at >= ?``, through the index), without any check; target within 3x. The
same re-check on a copy of the store without the ``lp_anonymised_at`` index (the schema
before revision 0005, which scanned every row of the table) is measured in the same
rounds, and must cost at least 2x the indexed one.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._measure import compare, ratio_row
from learnprivacy.records import (
    AccessEvent,
    AccessKind,
    Funder,
    Funding,
    Invoice,
    Learner,
    Progress,
    ProgressStatus,
)
from learnprivacy.retention import Action, Hold, Period, RetentionRule, Schedule, Trigger

RECHECK_TARGET = 3.0
#: The index must make the re-check at least this much cheaper than the table scan.
INDEX_GAIN_TARGET = 2.0

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TARGET = 3.0
P18M = Period.parse("P18M")
P120M = Period.parse("P120M")
P72M = Period.parse("P72M")


def _dates(rng: random.Random, count: int) -> list[dt.datetime]:
    # A pool of distinct instants over ten years; records share them to keep memory low.
    start = dt.datetime(2016, 1, 1, tzinfo=UTC)
    span = int((NOW - start).total_seconds())
    return [start + dt.timedelta(seconds=rng.randrange(span)) for _ in range(count)]


def _learners(rng: random.Random, count: int, pool: list[dt.datetime]) -> list[Learner]:
    out = []
    for i in range(count):
        created = rng.choice(pool)
        last = None if i % 50 == 0 else max(created, rng.choice(pool))
        out.append(
            Learner(
                id=f"L{i}",
                username=f"user{i}",
                email=f"user{i}@example.org",
                given_name="Ana",
                family_name="Silva",
                created_at=created,
                last_activity_at=last,
            )
        )
    return out


def learners_data(size: int) -> tuple[Schedule, list[Any], dict[str, Any]]:
    """One record type, one rule."""
    rng = random.Random(7)
    records = _learners(rng, size, _dates(rng, 20_000))
    schedule = Schedule({Learner: RetentionRule(P18M, Trigger.LAST_ACTIVITY)})
    return schedule, records, {}


def mixed_data(size: int) -> tuple[Schedule, list[Any], dict[str, Any]]:
    """Five record types, subject-level triggers, a fallback and a few holds."""
    rng = random.Random(11)
    pool = _dates(rng, 20_000)
    learners = _learners(rng, size // 10, pool)
    records: list[Any] = list(learners)
    for i in range(size // 2):
        records.append(
            Progress(
                id=f"P{i}",
                learner_id=rng.choice(learners).id,
                course_id="RGPD-101",
                status=ProgressStatus.IN_PROGRESS,
                recorded_at=rng.choice(pool),
            )
        )
    for i in range(size // 4):
        records.append(
            AccessEvent(
                id=f"E{i}",
                learner_id=rng.choice(learners).id,
                kind=AccessKind.LOGIN,
                at=rng.choice(pool),
            )
        )
    for i in range(size // 10):
        records.append(
            Invoice(
                id=f"INV{i}",
                learner_id=rng.choice(learners).id,
                billing_name="Ana Silva",
                billing_address="1 rue de la Paix, 75002 Paris",
                amount=Decimal("450.00"),
                issued_at=rng.choice(pool),
            )
        )
    for i in range(size - len(records)):
        opened = rng.choice(pool)
        records.append(
            Funding(
                id=f"F{i}",
                learner_id=rng.choice(learners).id,
                funder=Funder.OPCO,
                dossier_reference=f"OPCO-{i}",
                opened_at=opened,
                closed_at=None if i % 3 == 0 else max(opened, rng.choice(pool)),
            )
        )
    rng.shuffle(records)
    after_activity = RetentionRule(P18M, Trigger.LAST_ACTIVITY)
    schedule = Schedule(
        {
            Learner: after_activity,
            Progress: after_activity,
            AccessEvent: after_activity,
            Invoice: RetentionRule(P120M, Trigger.ISSUED, minimum=True),
            Funding: RetentionRule(P72M, Trigger.CLOSED, fallback=Trigger.CREATED, minimum=True),
        }
    )
    return schedule, records, {learner.id: learner for learner in learners}


def _holds(subjects: dict[str, Any]) -> tuple[Hold, ...]:
    held = sorted(subjects)[:: max(1, len(subjects) // 20)]
    return tuple(Hold("litigation file 2026-04", subject=s) for s in held)


def floor_learners(records: list[Any], subjects: dict[str, Any], holds: tuple[Hold, ...]) -> int:
    """The bare loop: one attribute, one comparison with a precomputed cutoff."""
    cutoff = P18M.cutoff(NOW)
    assert cutoff is not None
    expired: list[Any] = []
    kept: list[Any] = []
    review: list[Any] = []
    for record in records:
        anchor = record.last_activity_at
        if anchor is None:
            review.append(record)
        elif anchor <= cutoff:
            expired.append(record)
        else:
            kept.append(record)
    return len(expired)


def floor_mixed(records: list[Any], subjects: dict[str, Any], holds: tuple[Hold, ...]) -> int:
    """The bare loop for the mixed schedule, written for these five types only."""
    activity_cut, issued_cut, closed_cut = (
        P18M.cutoff(NOW),
        P120M.cutoff(NOW),
        P72M.cutoff(NOW),
    )
    last_activity = {key: learner.last_activity_at for key, learner in subjects.items()}
    held = {h.subject for h in holds}
    expired: list[Any] = []
    kept: list[Any] = []
    review: list[Any] = []
    for record in records:
        kind = type(record)
        if kind is Learner:
            anchor, cutoff = record.last_activity_at, activity_cut
        elif kind is Invoice:
            anchor, cutoff = record.issued_at, issued_cut
        elif kind is Funding:
            anchor, cutoff = record.closed_at or record.opened_at, closed_cut
        else:
            anchor, cutoff = last_activity.get(record.learner_id), activity_cut
        if anchor is None:
            review.append(record)
        elif anchor <= cutoff:
            subject = record.id if kind is Learner else record.learner_id
            (kept if subject in held else expired).append(record)
        else:
            kept.append(record)
    return len(expired)


def _library(schedule: Schedule) -> Callable[[list[Any], dict[str, Any], tuple[Hold, ...]], int]:
    def sweep(records: list[Any], subjects: dict[str, Any], holds: tuple[Hold, ...]) -> int:
        groups = schedule.plan(records, now=NOW, learners=subjects, holds=holds).grouped()
        return len(groups[Action.ERASE])

    return sweep


def _progress_rows(learners: int, per_learner: int) -> list[Any]:
    rows: list[Any] = []
    for n in range(learners):
        learner_id = f"B{n:06d}"
        rows.append(
            Learner(
                id=learner_id,
                username=f"user{n}",
                email=f"user{n}@example.org",
                given_name="Given",
                family_name=f"Family{n}",
                created_at=NOW - dt.timedelta(days=900),
            )
        )
        rows.extend(
            Progress(
                id=f"{learner_id}-P{k}",
                learner_id=learner_id,
                course_id=f"C{k}",
                status=ProgressStatus.PASSED,
                recorded_at=NOW - dt.timedelta(days=400 + k),
            )
            for k in range(per_learner)
        )
    return rows


def recheck(quick: bool = False) -> list[dict[str, Any]]:
    """CPU time of the re-check after a withdrawal's anonymisation, with and without the
    ``lp_anonymised_at`` index, against a bare read of the rows it checks."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    learners, per_learner = (2_000, 10) if quick else (20_000, 10)
    with tempfile.TemporaryDirectory(prefix="bench-recheck-") as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / 'lms.db'}"
        keyring = Keyring.generate()
        store = Store(url, keyring=keyring, keys=f"sqlite:///{tmp / 'keys.db'}")
        rows = _progress_rows(learners, per_learner)
        store.add_all(rows, now=NOW - dt.timedelta(days=366))
        progress = [r for r in rows if isinstance(r, Progress)]
        # Half the table: statistics anonymised a year ago.
        store.anonymise_records(progress[: len(progress) // 2], now=NOW - dt.timedelta(days=365))
        withdrawn = progress[-per_learner:]
        store.anonymise_records(withdrawn, now=NOW)
        store.close()
        # The same store as revision 0004 left it: no index on when rows were anonymised.
        for suffix in ("", "-wal", "-shm"):
            if (tmp / f"lms.db{suffix}").exists():
                shutil.copy(tmp / f"lms.db{suffix}", tmp / f"old.db{suffix}")
        with sqlite3.connect(tmp / "old.db") as connection:
            connection.execute("DROP INDEX ix_lp_progress_lp_anonymised_at")
        indexed = Store(url, keyring=keyring, keys=f"sqlite:///{tmp / 'keys.db'}")
        scanned = Store(
            f"sqlite:///{tmp / 'old.db'}", keyring=keyring, keys=f"sqlite:///{tmp / 'keys.db'}"
        )
        floor_db = sqlite3.connect(tmp / "lms.db")
        since = NOW.replace(tzinfo=None).isoformat(sep=" ")

        def floor() -> int:
            query = "SELECT * FROM lp_progress WHERE lp_anonymised_at >= ?"
            return len(floor_db.execute(query, (since,)).fetchall())

        def check(store: Store) -> int:
            return store.verify_anonymised(
                withdrawn,
                since=NOW,
                learner_ids=[withdrawn[0].learner_id],
                record_ids=[("Progress", r.id) for r in withdrawn],
            )

        found = {check(indexed), check(scanned), floor()}
        if found != {per_learner}:
            raise AssertionError(f"the re-checks and the floor read different rows: {found}")
        samples = compare(
            {
                "indexed": partial(check, indexed),
                "scanned": partial(check, scanned),
                "floor": floor,
            },
            rounds=5,
        )
        floor_db.close()
        indexed.close()
        scanned.close()
    total = f"{len(progress):,} progress rows"
    return [
        ratio_row(
            f"anonymisation re-check, {per_learner} rows anonymised now among {total}",
            samples["indexed"],
            samples["floor"],
            target=RECHECK_TARGET,
        ),
        ratio_row(
            f"anonymisation re-check without the lp_anonymised_at index ({total}), "
            "against the indexed re-check as floor",
            samples["scanned"],
            samples["indexed"],
            target=INDEX_GAIN_TARGET,
            higher_is_better=True,
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure records/s of ``Schedule.plan`` and of the floor on both data sets, and
    the anonymisation re-check (:func:`recheck`)."""
    size = 100_000 if quick else 1_000_000
    repeat = 5
    rows = []
    cases = (
        ("learners", learners_data, floor_learners, False),
        ("mixed", mixed_data, floor_mixed, True),
    )
    for label, build, floor, with_holds in cases:
        schedule, records, subjects = build(size)
        holds = _holds(subjects) if with_holds else ()
        library = _library(schedule)
        if library(records, subjects, holds) != floor(records, subjects, holds):
            raise AssertionError(f"{label}: plan and floor disagree on what expired")
        samples = compare(
            {
                "library": partial(library, records, subjects, holds),
                "floor": partial(floor, records, subjects, holds),
            },
            rounds=repeat,
        )
        rows.append(
            ratio_row(
                f"retention sweep, {label} ({size:,} records)",
                samples["library"],
                samples["floor"],
                target=TARGET,
            )
        )
        del records, subjects
    rows.extend(recheck(quick))
    return rows


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    for row in recheck(quick) if "--recheck" in sys.argv else run(quick):
        print(
            f"{row['name']}: {row['value']:.3f} s CPU ({row['spread']}), "
            f"floor {row['floor']:.3f} s, "
            f"ratio {row['ratio']:.2f} (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}"
        )
