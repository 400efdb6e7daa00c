"""A sweep that anonymises rows checks them after the fact, as ``anonymise_records`` does.

Attack: a progress row whose ``activity_id`` (a field that is not personal, so the
anonymisation keeps it) spells the learner's id, as an LMS's activity URLs often do
(``.../users/learner-0042/quiz``). ``anonymise_records`` re-reads the rows it wrote and
raises ``IntegrityError``; the sweep reported ``anonymised=1`` while the row still named
the learner. Now the sweep re-reads the rows it anonymised once it has finished, against
the ids and learner ids it anonymised, and raises the same error (naming table, field
and defect, never the value).
"""

from __future__ import annotations

import attrs
import pytest

from learnprivacy.errors import IntegrityError
from learnprivacy.records import Learner, Progress
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests.store_fixtures import NOW, learner, records_for

LEARNER = "learner-0042"
SCHEDULE = Schedule(
    {Progress: RetentionRule(Period.parse("P1D"), Trigger.CREATED, action=Action.ANONYMISE)}
)


def _progress(activity_id: str) -> Progress:
    (progress,) = [r for r in records_for(LEARNER) if isinstance(r, Progress)]
    return attrs.evolve(progress, activity_id=activity_id)


def test_a_sweep_that_left_the_learner_id_in_an_anonymised_row_says_so(store: Store) -> None:
    store.add_all([learner(LEARNER), _progress(f"https://lms.example/u/{LEARNER}/quiz")])
    with pytest.raises(IntegrityError, match=r"Progress\.activity_id") as caught:
        store.sweep(SCHEDULE, now=NOW)
    assert LEARNER not in str(caught.value)


def test_a_sweep_whose_anonymised_rows_name_no_one_reports_them(store: Store) -> None:
    store.add_all([learner(LEARNER), _progress("https://lms.example/quiz/7")])
    report = store.sweep(SCHEDULE, now=NOW)
    assert report.anonymised == 1
    assert store.get(Learner, LEARNER) is not None
    assert store.get(Progress, _progress("x").id) is None


def test_a_numeric_learner_id_inside_a_longer_number_names_nobody(store: Store) -> None:
    """Learner ids are often numbers (Moodle's user ids). Learner ``123``'s progress in
    course ``1234``, activity ``mod-5123-quiz``: neither names them (a number inside a
    longer number is another number), so the sweep and ``anonymise_records`` report the
    rows anonymised; before, both raised ``IntegrityError`` after anonymising, and a
    consent withdrawal request failed. The id standing on its own is still found."""
    (progress,) = [r for r in records_for("123") if isinstance(r, Progress)]
    progress = attrs.evolve(progress, course_id="1234", activity_id="mod-5123-quiz")
    store.add_all([learner("123"), progress])
    assert store.sweep(SCHEDULE, now=NOW).anonymised == 1
    other = attrs.evolve(progress, id="P-2", course_id="C7", activity_id="users/123/quiz")
    store.add(other)
    with pytest.raises(IntegrityError, match=r"Progress\.activity_id"):
        store.anonymise_records([other], now=NOW)
