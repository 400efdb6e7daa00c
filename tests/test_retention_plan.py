"""Schedule.plan: lazy sweeps grouped by action, agreeing with Schedule.evaluate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.records import Invoice, Learner, Progress, ProgressStatus
from learnprivacy.retention import Action, Hold, RetentionRule, Schedule, Trigger
from learnprivacy.testing._retention_strategies import holds, instants
from learnprivacy.testing.retention import (
    assert_schedule_invariants,
    learners_with_records,
    schedules,
)
from tests import at, sample

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, tzinfo=UTC)


def learner(number: int, last: dt.datetime | None) -> Learner:
    return sample(
        Learner,
        id=f"L{number}",
        username=f"user{number}",
        email=f"user{number}@example.org",
        created_at=at(2020, 1, 1),
        last_activity_at=last,
    )


def progress(number: int, learner_id: str) -> Progress:
    return Progress(
        id=f"P{number}",
        learner_id=learner_id,
        course_id="RGPD-101",
        status=ProgressStatus.IN_PROGRESS,
        recorded_at=at(2021, 1, 1),
    )


SCHEDULE = Schedule(
    {
        Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
        Progress: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
        Invoice: RetentionRule("P10Y", Trigger.ISSUED, minimum=True),
    }
)
OLD, RECENT = learner(0, at(2023, 1, 1)), learner(1, at(2026, 1, 1))
IDLE = learner(2, None)
PEOPLE = [OLD, RECENT, IDLE]
RECORDS: list[Any] = [*PEOPLE, *(progress(i, p.id) for i, p in enumerate(PEOPLE))]


@st.composite
def populations(draw: st.DrawFn) -> tuple[Schedule, list[Any], dict[str, Learner], list[Hold]]:
    """Several learners with records, shuffled, some holds, and a random schedule."""
    learners: dict[str, Learner] = {}
    records: list[Any] = []
    for number in range(draw(st.integers(1, 4))):
        learner, theirs = draw(learners_with_records(max_each=2, learner_id=f"L{number}"))
        learners[learner.id] = learner
        records += [learner, *(attrs.evolve(r, id=f"{r.id}-{number}") for r in theirs)]
    draw(st.randoms(use_true_random=False)).shuffle(records)
    chosen = draw(st.lists(holds(sorted(learners), [r.id for r in records]), max_size=3))
    return draw(schedules()), records, learners, chosen


def test_plan_groups_records_by_action() -> None:
    """Expired learners and their progress are ERASE, active ones KEEP, no date REVIEW."""
    groups = SCHEDULE.plan(RECORDS, now=NOW, learners=PEOPLE).grouped()
    ids = {action: sorted(r.id for r in records) for action, records in groups.items()}
    assert ids[Action.ERASE] == ["L0", "P0"]
    assert ids[Action.KEEP] == ["L1", "P1"]
    assert ids[Action.REVIEW] == ["L2", "P2"]
    assert ids[Action.ANONYMISE] == ids[Action.RESTRICT] == []


def test_counts_and_decisions_match_the_groups() -> None:
    """counts() sizes the groups; decisions() gives full Decisions with the same actions."""
    plan = SCHEDULE.plan(RECORDS, now=NOW, learners={p.id: p for p in PEOPLE})
    assert plan.counts() == {action: len(g) for action, g in plan.grouped().items()}
    erased = list(plan.decisions(Action.ERASE))
    assert sorted(r.id for r, _ in erased) == ["L0", "P0"]
    assert all(d.action is Action.ERASE and "P18M" in d.reason for _, d in erased)
    assert len(list(plan.decisions())) == len(RECORDS)
    assert plan.decide(OLD).due_at == at(2024, 7, 1)


def test_holds_turn_erasure_into_keep_in_a_sweep() -> None:
    """A hold on a learner keeps them and their records out of the ERASE group."""
    plan = SCHEDULE.plan(RECORDS, now=NOW, learners=PEOPLE, holds=[Hold("audit", subject="L0")])
    assert list(plan.of(Action.ERASE)) == []
    assert {"L0", "P0"} <= {r.id for r in plan.of(Action.KEEP)}
    by_id = SCHEDULE.plan(RECORDS, now=NOW, learners=PEOPLE, holds=[Hold("x", record_id="P0")])
    assert [r.id for r in by_id.of(Action.ERASE)] == ["L0"]


def test_erasure_requested_sweep() -> None:
    """With erasure_requested, learners go now and invoices inside their minimum are restricted."""
    invoice = sample(
        Invoice,
        billing_address="1 rue de la Paix, Paris",
        amount=Decimal("450.00"),
        issued_at=at(2025, 1, 1),
    )
    plan = SCHEDULE.plan([RECENT, invoice], now=NOW, learners=PEOPLE, erasure_requested=True)
    groups = plan.grouped()
    assert groups[Action.ERASE] == [RECENT]
    assert groups[Action.RESTRICT] == [invoice]


def test_plan_is_lazy() -> None:
    """Taking the first record of a group reads one batch, not the whole source."""
    pulled = 0

    def source() -> Iterator[Any]:
        nonlocal pulled
        for number in range(100_000):
            pulled += 1
            yield learner(number % 3, at(2023, 1, 1))

    first = next(SCHEDULE.plan(source(), now=NOW, batch_size=64).of(Action.ERASE))
    assert first.id == "L0"
    assert pulled == 64


def test_one_shot_sources_sweep_once_sequences_many_times() -> None:
    """A generator can be swept once; a list as often as wanted."""
    once = SCHEDULE.plan((r for r in RECORDS), now=NOW, learners=PEOPLE)
    assert sum(once.counts().values()) == len(RECORDS)
    with pytest.raises(ConfigurationError):
        once.counts()
    many = SCHEDULE.plan(RECORDS, now=NOW, learners=PEOPLE)
    assert many.counts() == many.counts()


def test_plan_validates_its_inputs() -> None:
    """Naive now, bad batch size, non-Hold holds and mismatched subjects are refused."""
    with pytest.raises(ValidationError):
        SCHEDULE.plan(RECORDS, now=dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        SCHEDULE.plan(RECORDS, now=NOW, batch_size=0)
    with pytest.raises(ValidationError):
        SCHEDULE.plan(RECORDS, now=NOW, holds=["L0"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        SCHEDULE.plan(RECORDS, now=NOW, learners={"L0": RECENT})
    with pytest.raises(ValidationError):
        list(SCHEDULE.plan(RECORDS, now=NOW).of("erase"))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class ForumPost:
    """A record type that is not an attrs class: swept through the evaluate path."""

    processing_purpose: ClassVar[str] = "forum"
    key_scope: ClassVar[str] = "contract"
    date_field: ClassVar[str] = "posted_at"
    id: str
    learner_id: str
    posted_at: dt.datetime


@attrs.frozen(kw_only=True)
class LegacyLog:
    """An attrs record type whose dates may be naive (imported from an old system)."""

    processing_purpose: ClassVar[str] = "legacy"
    key_scope: ClassVar[str] = "security"
    date_field: ClassVar[str] = "at"
    id: str = attrs.field()
    learner_id: str = attrs.field()
    at: dt.datetime = attrs.field()


def test_other_record_classes_are_swept_by_name() -> None:
    """A schedule keyed by class name covers a non-attrs class; naive dates are named."""
    schedule = Schedule(
        {
            "ForumPost": RetentionRule("P2Y", Trigger.CREATED),
            "LegacyLog": [RetentionRule("P1Y", Trigger.CREATED)],
        }
    )
    posts = [ForumPost("F1", "L0", at(2020, 1, 1)), ForumPost("F2", "L0", at(2026, 1, 1))]
    groups = schedule.plan(posts, now=NOW).grouped()
    assert [p.id for p in groups[Action.ERASE]] == ["F1"]
    assert [p.id for p in groups[Action.KEEP]] == ["F2"]
    aware = LegacyLog(id="G1", learner_id="L0", at=at(2020, 1, 1))
    assert schedule.plan([aware], now=NOW).grouped()[Action.ERASE] == [aware]
    naive = LegacyLog(id="G2", learner_id="L0", at=dt.datetime(2020, 1, 1))
    with pytest.raises(ValidationError) as info:
        schedule.plan([aware, naive], now=NOW).counts()
    assert info.value.field == "LegacyLog.at"


@settings(max_examples=120, deadline=None)
@given(populations(), instants(), st.sampled_from([1, 3, 4096]))
def test_plan_agrees_with_evaluate(case: Any, now: dt.datetime, batch_size: int) -> None:
    """Every record lands in the group of the action evaluate() gives it, batch size aside."""
    schedule, records, learners, chosen = case
    for request in (False, True):
        # The same question to both: this instant, these holds, with or without a request.
        asked: dict[str, Any] = {"now": now, "holds": chosen, "erasure_requested": request}
        groups = schedule.plan(records, learners=learners, batch_size=batch_size, **asked).grouped()
        assert sum(len(g) for g in groups.values()) == len(records)
        for action, group in groups.items():
            for record in group:
                subject = record if isinstance(record, Learner) else learners[record.learner_id]
                assert schedule.evaluate(record, subject=subject, **asked).action is action


@settings(max_examples=60, deadline=None)
@given(populations(), instants())
def test_schedule_invariants_hold_for_random_schedules(case: Any, now: dt.datetime) -> None:
    """The shipped invariant checker passes on any valid schedule and population."""
    schedule, records, learners, chosen = case
    assert_schedule_invariants(schedule, records, now=now, learners=learners, holds=chosen)


def test_a_large_shuffled_sweep_matches_evaluate() -> None:
    """Ten thousand mixed records: the fast path and evaluate() agree record by record."""
    rng = random.Random(5)
    people = [
        learner(i, None if i % 7 == 0 else at(2020 + i % 7, 1 + i % 12, 1)) for i in range(500)
    ]
    records: list[Any] = [*people]
    records += [progress(i, people[i % 500].id) for i in range(9_500)]
    rng.shuffle(records)
    subjects = {p.id: p for p in people}
    held = [Hold("audit", subject="L1"), Hold("audit", record_id="P7")]
    groups = SCHEDULE.plan(records, now=NOW, learners=subjects, holds=held).grouped()
    for action, group in groups.items():
        for record in group[::37]:
            subject = subjects.get(getattr(record, "learner_id", ""))
            expected = SCHEDULE.evaluate(record, now=NOW, subject=subject, holds=held).action
            assert expected is action
