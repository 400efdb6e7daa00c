"""Progress: course completions, grades and activity completions.

Three Moodle sources become :class:`~learnprivacy.records.Progress` records, told apart by
their id prefix (the source table) and by ``activity_id``:

- ``course_completions`` (course level), with the course total grade as the score;
- ``grade_grades`` of activity grade items (activity level), with the final grade;
- ``course_modules_completion`` (activity level), the activity completion state.

A scale grade (a forum rating "Good" on a 3-item scale) is the position of an item, not a
measure: it gives no Score; :func:`grade_row` keeps it as the scale's item, with the
teacher's feedback, for every grade item (course totals and manual items included).

A final grade is on its grade item's range (``grade_items.grademin``..``grademax``; the
``grade_grades.rawgrademin``..``rawgrademax`` bounds apply to ``rawgrade`` before Moodle
rescales it), so the score uses the item's bounds. Where the item has a pass mark
(``gradepass > 0``) a graded status is PASSED or FAILED.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._content import iso
from learnprivacy.moodle._issues import ScanIssues, reporting
from learnprivacy.moodle._query import by_user, in_id_order, restrict_to_users
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import OUT_OF_RANGE, UTC, from_unix, utc
from learnprivacy.moodle._trusted import builder
from learnprivacy.records import Progress, ProgressStatus, Score

__all__ = [
    "RAW_NUMERIC",
    "activity_statement",
    "course_progress_statement",
    "grade_in_context",
    "grade_row",
    "grade_rows_statement",
    "grade_statement",
    "map_activity",
    "map_course_progress",
    "map_grade",
]

# Moodle's COMPLETION_* constants (lib/completionlib.php).
_ACTIVITY_STATUS = {
    0: ProgressStatus.IN_PROGRESS,  # COMPLETION_INCOMPLETE
    1: ProgressStatus.COMPLETED,  # COMPLETION_COMPLETE
    2: ProgressStatus.PASSED,  # COMPLETION_COMPLETE_PASS
    3: ProgressStatus.FAILED,  # COMPLETION_COMPLETE_FAIL
    4: ProgressStatus.FAILED,  # COMPLETION_COMPLETE_FAIL_HIDDEN
}
# grade_items.gradetype: 1 = value, 2 = scale; 0 (none) and 3 (text) carry no number. A
# scale grade is the position of an item ("Good") on the scale, not a measure: it never
# becomes a Score (the Grade rows keep it as the scale's item).
_NUMERIC_GRADES = (1,)
_SCALE = 2
_ITEM_NAMES = {"course": "Course total", "category": "Category total"}
_progress = builder(Progress)
_COMPLETED = ProgressStatus.COMPLETED
_IN_PROGRESS = ProgressStatus.IN_PROGRESS
_NOT_STARTED = ProgressStatus.NOT_STARTED


def _number(value: Any) -> int | Decimal:
    # NUMERIC(10,5) reads back as Decimal("85.00000"); whole numbers become ints so that
    # exports say 85, not "85.00000".
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    integral = number.to_integral_value()
    return int(integral) if number == integral else number.normalize()


def _decimal(value: Any) -> Decimal | None:
    """A NUMERIC cell as a Decimal: the driver's Decimal, or ``Decimal`` of its text."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _score_of(final: Decimal, low: Decimal, high: Decimal) -> Score | str:
    """The Score of a final grade on its item's range, or the rule it breaks."""
    if not all(v.is_finite() for v in (final, low, high)):
        return "grade is not a finite number"
    raw, low_, high_ = _number(final), _number(low), _number(high)
    if not low_ < high_:
        return "empty grade range"
    if not low_ <= raw <= high_:
        return "final grade outside its item's range"
    return Score(raw=raw, min=low_, max=high_)


def _graded(
    done: ProgressStatus, final: Decimal | None, gradepass: Decimal | None
) -> ProgressStatus:
    # A grade or pass mark that is not a number (PostgreSQL's NUMERIC holds NaN) passes
    # nothing and fails nothing: the score's own check reports it.
    if final is None or gradepass is None or not (final.is_finite() and gradepass.is_finite()):
        return done
    if not gradepass > 0:
        return done
    return ProgressStatus.PASSED if final >= gradepass else ProgressStatus.FAILED


Outcome = tuple[ProgressStatus, Score | str | None]
# Outcomes by the text of the values they come from. A site has few distinct (grade,
# item) combinations, and Scores are immutable: each is built once. The key is text, not
# the Decimals themselves: hashing a Decimal costs more than building the whole record,
# where its exact text (Decimal("85.00000") -> "85.00000") is cheap and says as much. On
# PostgreSQL the cells are that text already (``RAW_NUMERIC``): the key is the row's own.
_OUTCOMES: dict[tuple[Any, ...], Outcome] = {}
_OUTCOMES_KEPT = 8_192


def _outcome(final: Any, gradetype: Any, low: Any, high: Any, gradepass: Any) -> Outcome:
    """(status of a completed item, its Score or the rule broken, None if no score) of a
    final grade (not None) on its grade item; the numbers are Decimals or their text."""
    if type(final) is str:
        key: tuple[Any, ...] = (gradetype, final, low, high, gradepass)
    else:
        key = (gradetype, str(final), str(low), str(high), str(gradepass))
    found = _OUTCOMES.get(key)
    if found is None:
        final, low, high, gradepass = (_decimal(v) for v in (final, low, high, gradepass))
        if len(_OUTCOMES) >= _OUTCOMES_KEPT:
            _OUTCOMES.clear()
        score: Score | str | None = None
        if gradetype in _NUMERIC_GRADES and low is not None and high is not None:
            score = _score_of(final, low, high)
        found = _OUTCOMES[key] = (_graded(_COMPLETED, final, gradepass), score)
    return found


def _scored(row_id: int, outcome: Outcome, issues: ScanIssues, table: str) -> Score | None:
    """The outcome's Score; a broken rule is reported (the row is kept, without score)."""
    score = outcome[1]
    if isinstance(score, str):
        issues.report(table, row_id, "Progress.score", score, skipped=False)
        return None
    return score


def _grade_columns(items: sa.Table, grades: sa.Table) -> tuple[sa.ColumnElement[Any], ...]:
    """The columns :func:`_outcome` reads, as a row gives them: ``gtype, low, high, gpass,
    final`` (grade type, bounds, pass mark, final grade)."""
    c = items.c
    return (c.gradetype, c.grademin, c.grademax, c.gradepass, grades.c.finalgrade)


def _module_of_item(cm: sa.Table, m: sa.Table, gi: sa.Table) -> sa.ColumnElement[bool]:
    """The course module a grade item grades: its module's instance, in its course."""
    return sa.and_(
        cm.c.module == m.c.id, cm.c.instance == gi.c.iteminstance, cm.c.course == gi.c.courseid
    )


def course_progress_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Course completions with the course total grade, when there is one.

    A row with no date at all (enrolled, never started: Moodle often leaves
    ``timeenrolled`` at 0) takes the date its enrolment was created, so that the learner's
    export still shows it; the lookup only runs for such rows.
    """
    cc, gi, gg = schema["course_completions"], schema["grade_items"], schema["grade_grades"]
    ue, e = schema["user_enrolments"], schema["enrol"]
    enrolment_created = (
        sa.select(sa.func.min(ue.c.timecreated))
        .select_from(ue.join(e, e.c.id == ue.c.enrolid))
        .where(ue.c.userid == cc.c.userid, e.c.courseid == cc.c.course, ue.c.timecreated > 0)
        .scalar_subquery()
    )
    undated = sa.and_(
        cc.c.timeenrolled == 0,
        cc.c.timestarted == 0,
        sa.func.coalesce(cc.c.timecompleted, 0) == 0,
    )
    dates = (cc.c.course, cc.c.timeenrolled, cc.c.timestarted, cc.c.timecompleted)
    statement = (
        by_user(
            cc, *dates, *_grade_columns(gi, gg), sa.case((undated, enrolment_created), else_=None)
        )
        .outerjoin(gi, sa.and_(gi.c.courseid == cc.c.course, gi.c.itemtype == "course"))
        .outerjoin(gg, sa.and_(gg.c.itemid == gi.c.id, gg.c.userid == cc.c.userid))
    )
    return in_id_order(statement, cc, schema, user_ids, include_deleted)


@reporting("course_completions", "Progress")
def map_course_progress(row: Any, issues: ScanIssues) -> Progress | None:
    """A course completion row as a course-level Progress (None, with an issue, if undated)."""
    rid, uid, course, enrolled, started, completed, gtype, low, high, gpass, final, joined = row
    outcome = None if final is None else _outcome(final, gtype, low, high, gpass)
    if completed:
        status, stamp = _COMPLETED if outcome is None else outcome[0], completed
    elif started:
        status, stamp = _IN_PROGRESS, started
    else:
        status, stamp = _NOT_STARTED, enrolled or joined
        if not stamp:
            issues.report("course_completions", rid, "Progress.recorded_at", "no date at all")
            return None
    try:
        at = utc(stamp, UTC)  # from_unix, inlined: this runs once per completion
    except OUT_OF_RANGE:
        from_unix(stamp)  # raises the ValidationError reported for the row
        raise
    # Every value is valid by construction (integer ids, an enum member, an aware UTC
    # date, a checked Score): built without checking them twice.
    return _progress(
        id=f"course_completions/{rid}",
        learner_id=str(uid),
        course_id=str(course),
        status=status,
        recorded_at=at,
        score=None if outcome is None else _scored(rid, outcome, issues, "course_completions"),
    )


def grade_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Final grades of activity grade items, with the course module they belong to."""
    gg, gi = schema["grade_grades"], schema["grade_items"]
    m, cm = schema["modules"], schema["course_modules"]
    statement = (
        by_user(
            gg, gi.c.courseid, cm.c.id, gg.c.timemodified, gg.c.timecreated, *_grade_columns(gi, gg)
        )
        .join(gi, sa.and_(gi.c.id == gg.c.itemid, gi.c.itemtype == "mod"))
        .outerjoin(m, m.c.name == gi.c.itemmodule)
        .outerjoin(cm, _module_of_item(cm, m, gi))
        .where(gg.c.finalgrade.is_not(None))
    )
    return in_id_order(statement, gg, schema, user_ids, include_deleted)


def grade_in_context(
    schema: MoodleSchema, level: ContextLevel, instance: int
) -> sa.ColumnElement[bool] | None:
    """Rows of ``grade_statement`` (and ``grade_rows_statement``) in one context.

    A grade belongs to its course module, or to its course when the module is not found.
    """
    cm, gi = schema["course_modules"], schema["grade_items"]
    if level is ContextLevel.MODULE:
        return cm.c.id == instance
    if level is ContextLevel.COURSE:
        return sa.and_(cm.c.id.is_(None), gi.c.courseid == instance)
    return None


@reporting("grade_grades", "Progress")
def map_grade(row: Any, issues: ScanIssues) -> Progress | None:
    """A final grade as an activity-level Progress with its score."""
    rid, uid, course, cmid, modified, created, gtype, low, high, gpass, final = row
    at = from_unix(modified) or from_unix(created)
    if at is None or course is None:
        rule = "no date" if at is None else "no course"
        issues.report("grade_grades", rid, "Progress.recorded_at", rule)
        return None
    outcome = _outcome(final, gtype, low, high, gpass)  # the statement reads no NULL grade
    return Progress(
        id=f"grade_grades/{rid}",
        learner_id=str(uid),
        course_id=str(course),
        activity_id=None if cmid is None else str(cmid),
        status=outcome[0],
        recorded_at=at,
        score=_scored(rid, outcome, issues, "grade_grades"),
    )


def activity_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Activity completion states with the course of each activity."""
    cmc, cm = schema["course_modules_completion"], schema["course_modules"]
    state = (cmc.c.coursemoduleid, cmc.c.completionstate, cmc.c.timemodified)
    statement = by_user(cmc, cm.c.course, *state).join(cm, cm.c.id == cmc.c.coursemoduleid)
    return in_id_order(statement, cmc, schema, user_ids, include_deleted)


@reporting("course_modules_completion", "Progress")
def map_activity(row: Any, issues: ScanIssues) -> Progress | None:
    """An activity completion state as an activity-level Progress."""
    rid, uid, course, cmid, state, modified = row
    status = _ACTIVITY_STATUS.get(state)
    at = from_unix(modified)
    if status is None or at is None:
        field = "Progress.status" if status is None else "Progress.recorded_at"
        rule = "unknown completion state" if status is None else "no date"
        issues.report("course_modules_completion", rid, field, rule)
        return None
    return Progress(
        id=f"course_modules_completion/{rid}",
        learner_id=str(uid),
        course_id=str(course),
        activity_id=str(cmid),
        status=status,
        recorded_at=at,
    )


def grade_rows_statement(schema: MoodleSchema, user_ids: list[int] | None) -> sa.Select[Any]:
    """Every grade of live accounts, any item type, with its scale and activity when any."""
    gg, gi, sc = schema["grade_grades"], schema["grade_items"], schema["scale"]
    m, cm = schema["modules"], schema["course_modules"]
    statement = (
        sa.select(
            gg.c.userid,
            gi.c.courseid,
            cm.c.id,
            gi.c.itemtype,
            gi.c.itemname,
            gi.c.gradetype,
            gg.c.finalgrade,
            sc.c.name,
            sc.c.scale,
            gg.c.feedback,
            gg.c.timecreated,
            gg.c.timemodified,
        )
        .select_from(gg)
        .join(gi, gi.c.id == gg.c.itemid)
        .outerjoin(sc, sa.and_(gi.c.gradetype == _SCALE, sc.c.id == gi.c.scaleid))
        .outerjoin(m, sa.and_(gi.c.itemtype == "mod", m.c.name == gi.c.itemmodule))
        .outerjoin(cm, _module_of_item(cm, m, gi))
        .where(sa.or_(gg.c.finalgrade.is_not(None), sa.func.length(gg.c.feedback) > 0))
        .order_by(gg.c.userid, gi.c.courseid, gi.c.sortorder, gg.c.id)
    )
    return restrict_to_users(statement, gg.c.userid, schema, user_ids, False)


def grade_row(row: Any) -> tuple[int, dict[str, Any]]:
    """``(user id, row)``: a grade as Moodle's export shows it, a scale grade as its item.

    ``grade`` is the number as text (``"14.5"``) or, on a scale, the scale's item
    (``"Good"``, with ``scale`` naming the scale); ``feedback`` is the teacher's.
    """
    uid, course, cmid, itemtype, name, gtype, final, scale_name, items, feedback, c, m = row
    grade: str | None = None
    if final is not None:
        if gtype == _SCALE:
            choices = [item.strip() for item in (items or "").split(",")]
            position = int(final)
            grade = choices[position - 1] if 1 <= position <= len(choices) else None
        else:
            grade = str(_number(final))
    return int(uid), {
        "course_id": None if course is None else str(course),
        "activity_id": None if cmid is None else str(cmid),
        "item": name or _ITEM_NAMES.get(itemtype, itemtype),
        "item_type": itemtype,
        "grade": grade,
        "scale": scale_name if gtype == _SCALE else None,
        "feedback": feedback or None,
        "created_at": iso(c),
        "modified_at": iso(m),
    }


#: Mappers given PostgreSQL's NUMERIC cells as text (``row_converter(keep_numeric_text=)``).
RAW_NUMERIC = frozenset({map_course_progress, map_grade})

#: Row mappers by record source, for callers that iterate them generically.
MAPPERS: dict[str, Callable[[Any, ScanIssues], Progress | None]] = {
    "course_completions": map_course_progress,
    "grade_grades": map_grade,
    "course_modules_completion": map_activity,
}
