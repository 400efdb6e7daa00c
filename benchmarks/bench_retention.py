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
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from functools import partial
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


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure records/s of ``Schedule.plan`` and of the floor on both data sets."""
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
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['name']}: {row['value']:.3f} s CPU ({row['spread']}), "
            f"floor {row['floor']:.3f} s, "
            f"ratio {row['ratio']:.2f} (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}"
        )
