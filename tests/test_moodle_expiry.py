"""Activity purposes as Moodle's expiry task applies them: shorter ones expire sooner.

Moodle's ``expired_contexts_manager`` judges each activity context by its own purpose
(the context's, else its type's default such as ``context_module_forum_purpose``, else
the activity level's), counted from the course's end date, and flags a course context
only once every activity in it has expired. The schedule and the report follow it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from learnprivacy.moodle import MoodleDatabase, moodle_report
from learnprivacy.moodle._registry import ActivitySet
from learnprivacy.moodle._time import to_unix
from learnprivacy.records import Progress, ProgressStatus
from learnprivacy.retention import Action
from learnprivacy.testing.moodle import create_schema, insert_rows
from tests import NOW
from tests.conftest import open_engine

COURSE_END = NOW - dt.timedelta(days=730)
OLD_END = NOW - dt.timedelta(days=6 * 365)

#: What Moodle's expiry task flags now, worked out by hand from its rules (see build_site).
MOODLE_FLAGS = {
    40: True,  # forum, type default P1Y, course ended two years ago
    41: False,  # quiz, type default P10Y
    42: True,  # assignment, its own context's purpose P6M
    43: False,  # page: the activity level's default (course level, P5Y), not the course's own
    44: True,  # page set to inherit: its course's own purpose, P6M
    50: True,  # forum of the course that ended six years ago
    51: True,  # page of that course: P5Y
}


def _purpose(pid: int, name: str, period: str) -> dict[str, Any]:
    return {"id": pid, "name": name, "lawfulbases": "gdpr_art_6_1_b", "retentionperiod": period,
            "usermodified": 2, "timecreated": 1, "timemodified": 1}  # fmt: skip


def build_site(url: str) -> str:
    """Two ended courses, activities under five different purposes."""
    engine = open_engine(url)
    create_schema(engine)
    insert_rows(engine, "config", [{"name": "siteadmins", "value": "2"}])
    insert_rows(engine, "tool_dataprivacy_purpose", [
        _purpose(1, "five years", "P5Y"), _purpose(2, "forums", "P1Y"),
        _purpose(3, "quiz archive", "P10Y"), _purpose(4, "six months", "P6M"),
    ])  # fmt: skip
    # The system and user levels under five years (the user level is not read here).
    levels = [{"contextlevel": level, "purposeid": 1} for level in (10, 30)]
    insert_rows(engine, "tool_dataprivacy_ctxlevel", levels)
    insert_rows(engine, "config_plugins", [
        {"plugin": "tool_dataprivacy", "name": "context_course_purpose", "value": "1"},
        {"plugin": "tool_dataprivacy", "name": "context_module_forum_purpose", "value": "2"},
        {"plugin": "tool_dataprivacy", "name": "context_module_quiz_purpose", "value": "3"},
    ])  # fmt: skip
    insert_rows(engine, "course", [
        {"id": 1, "category": 0, "format": "site", "shortname": "site"},
        {"id": 4, "category": 1, "shortname": "ENDED", "startdate": to_unix(OLD_END),
         "enddate": to_unix(COURSE_END)},
        {"id": 5, "category": 1, "shortname": "OLD", "startdate": to_unix(OLD_END) - 9_000_000,
         "enddate": to_unix(OLD_END)},
    ])  # fmt: skip
    insert_rows(engine, "modules", [
        {"id": 1, "name": "forum"}, {"id": 2, "name": "quiz"}, {"id": 3, "name": "assign"},
        {"id": 4, "name": "page"},
    ])  # fmt: skip
    insert_rows(engine, "course_modules", [
        {"id": 40, "course": 4, "module": 1, "instance": 1},
        {"id": 41, "course": 4, "module": 2, "instance": 1},
        {"id": 42, "course": 4, "module": 3, "instance": 1},
        {"id": 43, "course": 4, "module": 4, "instance": 1},
        {"id": 44, "course": 4, "module": 4, "instance": 2},
        {"id": 50, "course": 5, "module": 1, "instance": 2},
        {"id": 51, "course": 5, "module": 4, "instance": 3},
    ])  # fmt: skip
    insert_rows(engine, "context", [
        {"id": 1, "contextlevel": 10, "instanceid": 0, "path": "/1", "depth": 1},
        {"id": 400, "contextlevel": 50, "instanceid": 4, "path": "/1/400", "depth": 2},
        {"id": 420, "contextlevel": 70, "instanceid": 42, "path": "/1/400/420", "depth": 3},
        {"id": 440, "contextlevel": 70, "instanceid": 44, "path": "/1/400/440", "depth": 3},
    ])  # fmt: skip
    insert_rows(engine, "tool_dataprivacy_ctxinstance", [
        {"contextid": 400, "purposeid": 4, "categoryid": 0},  # course 4: six months
        {"contextid": 420, "purposeid": 4, "categoryid": 0},  # assignment 42: six months
        {"contextid": 440, "purposeid": -1, "categoryid": 0},  # page 44: inherit
    ])  # fmt: skip
    engine.dispose()
    return url


def _progress(activity: str | None, course: str, at: dt.datetime) -> Progress:
    return Progress(
        id=f"p{activity}-{course}",
        learner_id="15",
        course_id=course,
        activity_id=activity,
        status=ProgressStatus.COMPLETED,
        recorded_at=at,
    )


def test_schedule_expires_each_activity_when_moodle_flags_it(
    new_database: Callable[[], str],
) -> None:
    """Progress recorded on the course's end date is erased exactly where Moodle's task
    flags the activity context: a forum type default of one year erases forum progress
    although the course level keeps progress five years.

    Attack: before, activity purposes were added to the course level's, so they could
    only lengthen retention: the forum (P1Y), the assignment with its own six months and
    the page inheriting its course's six months were all kept five years.
    """
    url = build_site(new_database())
    with MoodleDatabase(url) as db:
        schedule = db.schedule()
        activities = {cmid: course for cmid, course, _ in db.activities()}
    for cmid, flagged in MOODLE_FLAGS.items():
        end = COURSE_END if activities[cmid] == 4 else OLD_END
        record = _progress(str(cmid), str(activities[cmid]), end)
        action = schedule.evaluate(record, now=NOW, subject="15").action
        assert (action is Action.ERASE) is flagged, cmid
    # Progress of the course itself, and of an activity the site no longer lists, keeps
    # the course level's rule (and the course's own, which only lengthens).
    kept = [_progress(None, "4", COURSE_END), _progress("99", "4", COURSE_END)]
    assert all(schedule.evaluate(r, now=NOW, subject="15").action is Action.KEEP for r in kept)
    # A rule per purpose (not per activity), each naming how many activities it holds.
    labels = sorted(rule.label for rule in schedule.rules_for(Progress))
    assert "forums: P1Y after created where activity_id=2 activities under 'forums' from 40" in (
        labels
    )
    assert len(labels) == 5, labels  # course level, course 4's own, forums, quiz, six months


def test_report_shows_moodles_activity_flags_and_holds_the_course(
    new_database: Callable[[], str],
) -> None:
    """The report counts activity contexts as Moodle's task would flag them, and a course
    whose own retention has passed stays unflagged while one of its activities has not
    expired (Moodle merges every child's expiry into its course's).

    Attack: before, the report read only the type's default (the assignment's and the
    inheriting page's own purposes were ignored) and called course 4 expired.
    """
    url = build_site(new_database())
    report = moodle_report(url, now=NOW)
    expected: dict[str, dict[str, int]] = {}
    types = {40: "forum", 41: "quiz", 42: "assign", 43: "page", 44: "page", 50: "forum",
             51: "page"}  # fmt: skip
    for cmid, flagged in MOODLE_FLAGS.items():
        status = "expired" if flagged else "retention_running"
        counts = expected.setdefault(types[cmid], {})
        counts[status] = counts.get(status, 0) + 1
    assert report.activities == {name: dict(sorted(c.items())) for name, c in expected.items()}
    statuses = {c.id: c.status for c in report.course_findings}
    assert statuses == {4: "held_by_activity", 5: "expired"}
    text = report.to_text()
    assert "Moodle's view" in text
    assert "NOT Moodle's" in text
    assert "held back by an activity" in text


def test_activity_set_compares_as_membership() -> None:
    """An ActivitySet equals the ids it holds (or, negated, every other value)."""
    chosen = ActivitySet(["40", "42"], "forums")
    others = ActivitySet(["40", "42"], "forums", negated=True)
    assert [chosen == v for v in ("40", "42", "41", None)] == [True, True, False, False]
    assert [others == v for v in ("40", "42", "41", None)] == [False, False, True, True]
    assert "40" == chosen  # noqa: SIM300 (the comparison a rule makes: field == value)
    assert chosen != others
    assert hash(chosen) == hash(ActivitySet({"42", "40"}, "x"))
    assert chosen != 40  # ids are text, as on Progress
    assert repr(chosen) == "2 forums from 40"
