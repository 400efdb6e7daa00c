"""Anonymisation that anonymises: fresh random ids, generalised dates, people counted, and
the re-identification check of learnprivacy.testing run on the store's own output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError
from learnprivacy.export.reports import k_anonymous_aggregate
from learnprivacy.records import Granularity, Learner, Progress, Score
from learnprivacy.retention import Action, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from learnprivacy.testing import assert_not_reidentifiable, reidentification_risks
from tests import NOW, sample

ANONYMISE_PROGRESS = Schedule(
    {Progress: RetentionRule("P1Y", Trigger.CREATED, action=Action.ANONYMISE)}
)


def _learner(n: int) -> Learner:
    return sample(
        Learner,
        id=f"L{n:05d}",
        username=f"user{n}",
        email=f"user{n}@example.org",
        family_name=f"Family{n}",
        created_at=dt.datetime(2023, 9, 1, 8, n % 60, 7, tzinfo=dt.UTC),
    )


def _progress(n: int, index: int, course: str, raw: int) -> Progress:
    return sample(
        Progress,
        id=f"L{n:05d}-P{index}",
        learner_id=f"L{n:05d}",
        course_id=course,
        # Distinct, exact instants: each one alone would point at its learner.
        recorded_at=dt.datetime(2024, 3, 1 + n % 20, 9, 15 + index, 31, tzinfo=dt.UTC),
        score=Score(raw=raw, min=0, max=20),
    )


def _cohort() -> list[Any]:
    """Twelve learners in one course (two rows each, two score levels), and one learner
    alone in a rare course with five rows."""
    records: list[Any] = []
    for n in range(12):
        records.append(_learner(n))
        records += [_progress(n, i, "COMMON", 10 if n % 2 else 15) for i in range(2)]
    records.append(_learner(99))
    records += [_progress(99, i, "RARE", 5) for i in range(5)]
    return records


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


def test_anonymised_rows_get_fresh_ids_and_month_dates(store: Store) -> None:
    """No anonymised row keeps its id (which named its learner) or its exact instant."""
    records = _cohort()
    store.add_all(records)
    assert store.sweep(ANONYMISE_PROGRESS, now=NOW).anonymised == 29
    rows = list(store.anonymised(Progress))
    old_ids = {r.id for r in records} | {r.learner_id for r in records if hasattr(r, "learner_id")}
    assert len({row["id"] for row in rows}) == 29
    assert not {row["id"] for row in rows} & old_ids
    assert not {row["learner_id"] for row in rows} & old_ids
    assert all("L0" not in row["id"] for row in rows)
    assert {row["recorded_at"] for row in rows} == {dt.datetime(2024, 3, 1, tzinfo=dt.UTC)}
    # One random person id per learner: twelve people in COMMON, one in RARE.
    people = {(row["course_id"], row["learner_id"]) for row in rows}
    assert sum(1 for course, _ in people if course == "COMMON") == 12
    assert sum(1 for course, _ in people if course == "RARE") == 1


def test_granularity_is_configurable(tmp_path: Path) -> None:
    """Dates of anonymised rows go to the year when the store says so."""
    with Store(
        f"sqlite:///{tmp_path / 'year.db'}",
        keyring=Keyring.generate(),
        clock=lambda: NOW,
        anonymise_dates_to=Granularity.YEAR,
    ) as store:
        store.add_all(_cohort())
        store.sweep(ANONYMISE_PROGRESS, now=NOW)
        dates = {row["recorded_at"] for row in store.anonymised(Progress)}
    assert dates == {dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    assert Granularity.DAY.generalise(dt.datetime(2024, 3, 5, 9, 1, tzinfo=dt.UTC)) == (
        dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    )


def test_statistics_count_people_and_suppress_a_rare_course(store: Store) -> None:
    """Five rows of one learner in a rare course were published as five learners; now
    the cell is suppressed and the common course counts its twelve people."""
    store.add_all(_cohort())
    store.sweep(ANONYMISE_PROGRESS, now=NOW)
    stats = k_anonymous_aggregate(
        store.anonymised(Progress), by=["course_id"], k=5, measures=["score.scaled"]
    )
    assert [row["course_id"] for row in stats.rows] == ["COMMON"]
    assert stats.rows[0]["learners"] == 12
    assert stats.rows[0]["records"] == 24
    assert stats.suppressed_groups == 1


def test_store_anonymised_progress_passes_the_reidentification_check(store: Store) -> None:
    """The check, run on the store's anonymised progress with every original record as the
    attacker's knowledge: no id, no exact timestamp, no rare combination (COMMON rows)."""
    records = _cohort()
    store.add_all(records)
    store.sweep(ANONYMISE_PROGRESS, now=NOW)
    common = [row for row in store.anonymised(Progress) if row["course_id"] == "COMMON"]
    assert_not_reidentifiable(common, records, record_type=Progress, k=5)
    # The lone learner of the rare course is a rare combination, and the check says so.
    everything = list(store.anonymised(Progress))
    risks = reidentification_risks(everything, records, record_type=Progress, k=5)
    assert [(r.attack, r.rows) for r in risks] == [("combination", 5)]


def test_the_check_catches_what_the_old_anonymisation_kept() -> None:
    """Rows as the old code anonymised them (record id kept, exact instants) are linked by
    id and by timestamp; the message names fields and counts, never values."""
    records = _cohort()
    old_style = [
        {
            "id": r.id,
            "learner_id": f"anon-{i}",
            "course_id": r.course_id,
            "status": r.status,
            "recorded_at": r.recorded_at,
            "score": r.score,
        }
        for i, r in enumerate(r for r in records if isinstance(r, Progress))
    ]
    risks = {r.attack: r for r in reidentification_risks(old_style, records, record_type=Progress)}
    assert risks["id"].fields == ("id",)
    assert risks["id"].rows == 29
    assert risks["timestamp"].rows == 29
    assert risks["combination"].rows == 29  # every row is its own random "person"
    with pytest.raises(AssertionError) as caught:
        assert_not_reidentifiable(old_style, records, record_type=Progress)
    assert "L00001" not in str(caught.value)
    assert "29 row(s)" in str(caught.value)
    with pytest.raises(ConfigurationError):
        reidentification_risks(old_style, records)
