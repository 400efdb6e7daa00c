"""``moodle_report``: what a Moodle site's data registry means for its data today.

Two views side by side, both read-only:

- **Moodle's own expiry** (``tool_dataprivacy``'s expired-contexts task): a course expires
  when its end date plus its purpose's retention has passed, so a course *without* end
  date never does; a user expires when ``user.lastaccess`` plus the user purpose's
  retention has passed *and* every course they are enrolled in has expired (with
  ``requireallenddatesforuserdeletion``, on by default, a single course without end date
  holds the account forever). Accounts that never logged in have no date and never expire;
  site administrators and the guest never do.
- **learnprivacy's sweep**, dry run: the registry as a :class:`~learnprivacy.retention.Schedule`
  applied to the records the adapter reads, counted per record type and action. Nothing
  is written anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa

from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._database import MoodleDatabase
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._models import MoodleCourse, MoodleUser
from learnprivacy.moodle._registry import DataRegistry, Purpose
from learnprivacy.moodle._report_render import render_text
from learnprivacy.retention import Hold, Schedule

__all__ = ["CourseFinding", "MoodleReport", "moodle_report"]

#: Moodle-side status of a course, in report order.
COURSE_STATUSES = (
    "expired",
    "held_by_activity",
    "retention_running",
    "not_ended",
    "no_end_date",
    "no_purpose",
)
#: Moodle-side status of a live account, in report order.
USER_STATUSES = (
    "expired",
    "retention_running",
    "held_by_course_without_end_date",
    "held_by_course_not_expired",
    "never_logged_in",
    "not_expirable",
    "no_purpose",
)
_LEFTOVER_TABLES = (
    ("logstore_standard_log", "userid"),
    ("tool_policy_acceptances", "userid"),
    ("course_completions", "userid"),
    ("grade_grades", "userid"),
    ("course_modules_completion", "userid"),
    ("user_enrolments", "userid"),
    ("customcert_issues", "userid"),
)


@attrs.frozen(kw_only=True)
class CourseFinding:
    """One course under Moodle's expiry rules: its purpose, status and expiry date."""

    id: int
    shortname: str
    end_at: dt.datetime | None
    purpose: str | None
    retention: str | None
    status: str
    expires_at: dt.datetime | None
    enrolled: int
    holding_users: int = 0


@attrs.frozen(kw_only=True)
class MoodleReport:
    """The retention picture of one Moodle site at ``now`` (counts and ids, no personal data)."""

    now: dt.datetime
    engine: str
    prefix: str
    user_purpose: str | None
    user_retention: str | None
    require_all_end_dates: bool
    accounts: dict[str, int]
    users: dict[str, int]
    active_elsewhere: int
    courses: dict[str, int]
    course_findings: tuple[CourseFinding, ...]
    sweep: dict[str, dict[str, int]]
    deleted_leftovers: dict[str, int]
    issues: dict[str, int]
    #: Moodle's expiry view of activity contexts, per activity type and status (the
    #: course's end date plus the activity type's purpose, its own default when the
    #: registry sets one: ``context_module_forum_purpose``).
    activities: dict[str, dict[str, int]] = attrs.field(factory=dict)
    #: Deleted accounts whose user context still exists: Moodle's task has yet to delete
    #: what remains in it.
    deleted_awaiting_deletion: int = 0

    def blocking_courses(self, limit: int = 10) -> list[CourseFinding]:
        """Courses without end date that hold expired accounts, most accounts first."""
        found = [c for c in self.course_findings if c.holding_users]
        return sorted(found, key=lambda c: (-c.holding_users, c.id))[:limit]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates in ISO 8601)."""

        def plain(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.isoformat()
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if attrs.has(type(value)):
                return {k: plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
            return value

        return {k: plain(v) for k, v in attrs.asdict(self, recurse=False).items()}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON."""
        import json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """The report as plain text for a terminal."""
        return render_text(self)


def _course_finding(
    course: MoodleCourse, purpose: Purpose | None, now: dt.datetime, enrolled: int
) -> CourseFinding:
    expires_at = None
    if purpose is None or purpose.retention is None:
        status = "no_purpose"
    elif course.end_at is None:
        status = "no_end_date"
    elif course.end_at > now:
        status = "not_ended"
    else:
        expires_at = purpose.retention.add_to(course.end_at)
        status = "expired" if now >= expires_at else "retention_running"
    return CourseFinding(
        id=course.id,
        shortname=course.shortname,
        end_at=course.end_at,
        purpose=None if purpose is None else purpose.name,
        retention=None if purpose is None or purpose.retention is None else str(purpose.retention),
        status=status,
        expires_at=expires_at,
        enrolled=enrolled,
    )


def _user_status(
    user: MoodleUser,
    purpose: Purpose | None,
    courses: Iterable[CourseFinding],
    admins: frozenset[int],
    require_all: bool,
    now: dt.datetime,
) -> tuple[str, list[int]]:
    """Moodle's verdict for one live account, and the courses without end date holding it."""
    if user.guest or user.id in admins:
        return "not_expirable", []
    if purpose is None or purpose.retention is None:
        return "no_purpose", []
    # Moodle compares user.lastaccess only; user_lastaccess is not consulted.
    if user.last_access_at is None:
        return "never_logged_in", []
    if now < purpose.retention.add_to(user.last_access_at):
        return "retention_running", []
    holding = [c.id for c in courses if c.status == "no_end_date"]
    if require_all and holding:
        return "held_by_course_without_end_date", holding
    if any(c.status not in ("expired", "no_end_date") for c in courses):
        return "held_by_course_not_expired", []
    return "expired", []


def _leftovers(db: MoodleDatabase) -> dict[str, int]:
    out: dict[str, int] = {}
    u = db.schema["user"]
    with db.connect() as connection:
        for name, column in _LEFTOVER_TABLES:
            if not db.has_table(name):
                continue
            t = db.schema[name]
            statement = (
                sa.select(sa.func.count())
                .select_from(t.join(u, u.c.id == t.c[column]))
                .where(u.c.deleted == 1)
            )
            out[name] = int(connection.execute(statement).scalar() or 0)
    return out


def _sweep(
    db: MoodleDatabase, schedule: Schedule, now: dt.datetime, issues: ScanIssues
) -> dict[str, dict[str, int]]:
    learners = {r.id: r for r in db.learners(issues=issues, include_admins=True)}
    sources: dict[str, Iterable[Any]] = {
        "Learner": list(learners.values()),
        "Progress": db.progress(issues=issues),
        "Certificate": db.certificates(issues=issues),
        "Consent": db.consents(issues=issues),
        "AccessEvent": db.access_events(issues=issues),
    }
    # Moodle never expires site administrators; neither does the dry run.
    holds = [Hold("Moodle site administrator account", subject=str(a)) for a in db.admin_ids]
    out: dict[str, dict[str, int]] = {}
    for name, records in sources.items():
        counts = schedule.plan(records, now=now, learners=learners, holds=holds).counts()
        out[name] = {action.value: n for action, n in counts.items() if n}
    return out


def moodle_report(
    source: str | sa.URL | sa.Engine | MoodleDatabase,
    *,
    now: dt.datetime,
    prefix: str = "mdl_",
    sweep: bool = True,
    progress: ProgressReporter | None = None,
) -> MoodleReport:
    """Read a Moodle site (URL, engine or open :class:`MoodleDatabase`) and report on it.

    ``sweep=False`` skips the learnprivacy dry run (which reads every record). Nothing is
    ever written: the adapter refuses writes. ``progress`` is told ``advance(1)`` per user
    account read.
    """
    require_aware(now, "now")
    owned = not isinstance(source, MoodleDatabase)
    db = MoodleDatabase(source, prefix=prefix) if not isinstance(source, MoodleDatabase) else source
    try:
        return _report(db, now, sweep, progress)
    finally:
        if owned:
            db.close()


def _report(
    db: MoodleDatabase, now: dt.datetime, sweep: bool, progress: ProgressReporter | None = None
) -> MoodleReport:
    issues = ScanIssues()
    registry: DataRegistry = db.registry(issues=issues)
    setting = db.plugin_setting("tool_dataprivacy", "requireallenddatesforuserdeletion")
    require_all = setting is None or setting.strip() not in ("", "0")
    enrolled: dict[int, list[int]] = defaultdict(list)
    per_course: Counter[int] = Counter()
    for user_id, course_id in db.enrolments():
        enrolled[user_id].append(course_id)
        per_course[course_id] += 1
    findings = {
        c.id: _course_finding(
            c, registry.instance_purpose(ContextLevel.COURSE, c.id), now, per_course[c.id]
        )
        for c in db.courses()
    }
    activities, held_courses = _activities(db, registry, findings, now)
    for course_id in held_courses:
        if findings.get(course_id) and findings[course_id].status == "expired":
            # Moodle flags a course context only once every activity in it has expired.
            findings[course_id] = attrs.evolve(findings[course_id], status="held_by_activity")
    user_purpose = registry.level_purpose(ContextLevel.USER)
    accounts: Counter[str] = Counter()
    users: Counter[str] = Counter()
    holding: Counter[int] = Counter()
    active_elsewhere = 0
    for user in db.users():
        if progress is not None:
            progress.advance(1)
        accounts["total"] += 1
        if user.deleted:
            accounts["deleted"] += 1
            continue
        accounts["live"] += 1
        accounts["suspended"] += int(user.suspended)
        courses = [findings[c] for c in enrolled.get(user.id, ()) if c in findings]
        status, held_by = _user_status(user, user_purpose, courses, db.admin_ids, require_all, now)
        users[status] += 1
        holding.update(held_by)
        if status == "expired" and user.last_activity_at != user.last_access_at:
            # Expired by user.lastaccess, yet user_lastaccess shows later course activity.
            active_elsewhere += 1
    course_findings = tuple(
        attrs.evolve(f, holding_users=holding[f.id])
        for f in sorted(findings.values(), key=lambda f: f.id)
    )
    return MoodleReport(
        now=now,
        engine=db.engine.dialect.name,
        prefix=db.prefix,
        user_purpose=None if user_purpose is None else user_purpose.name,
        user_retention=None
        if user_purpose is None or user_purpose.retention is None
        else str(user_purpose.retention),
        require_all_end_dates=require_all,
        accounts={k: accounts[k] for k in ("total", "live", "deleted", "suspended")},
        users={k: users[k] for k in USER_STATUSES},
        active_elsewhere=active_elsewhere,
        courses={k: sum(1 for f in course_findings if f.status == k) for k in COURSE_STATUSES},
        course_findings=course_findings,
        sweep=_sweep(db, db.schedule(registry=registry), now, issues) if sweep else {},
        deleted_leftovers=_leftovers(db),
        issues=issues.counts(),
        activities=activities,
        deleted_awaiting_deletion=_awaiting_deletion(db),
    )


def _activity_status(purpose: Purpose | None, end: dt.datetime | None, now: dt.datetime) -> str:
    """Moodle's verdict for one activity context: its course's end date + its purpose."""
    if purpose is None or purpose.retention is None:
        return "no_purpose"
    if end is None:
        return "no_end_date"
    if end > now:
        return "not_ended"
    return "expired" if now >= purpose.retention.add_to(end) else "retention_running"


def _activities(
    db: MoodleDatabase,
    registry: DataRegistry,
    findings: dict[int, CourseFinding],
    now: dt.datetime,
) -> tuple[dict[str, dict[str, int]], set[int]]:
    """Activity contexts under Moodle's expiry rules, per activity type and status.

    Each activity context is judged by its own purpose (:meth:`DataRegistry.activity_purpose`)
    from its course's end date, as ``expired_contexts_manager`` does. Also returns the
    courses holding an activity that has not expired: Moodle flags such a course's
    context only once every activity in it has.
    """
    db.require_tables("course_modules", "modules", "course")
    ends = {f.id: f.end_at for f in findings.values()}
    out: dict[str, Counter[str]] = defaultdict(Counter)
    holding: set[int] = set()
    for cmid, course, module in db.activities():
        if course not in ends:
            continue  # the front page and missing courses: no course to end
        purpose = registry.activity_purpose(cmid, module, course)
        status = _activity_status(purpose, ends[course], now)
        if status != "expired":
            holding.add(course)
        out[module][status] += 1
    counts = {name: dict(sorted(c.items())) for name, c in sorted(out.items())}
    return counts, holding


def _awaiting_deletion(db: MoodleDatabase) -> int:
    if not db.has_table("context"):
        return 0
    u, ctx = db.schema["user"], db.schema["context"]
    statement = (
        sa.select(sa.func.count())
        .select_from(ctx.join(u, u.c.id == ctx.c.instanceid))
        .where(ctx.c.contextlevel == int(ContextLevel.USER), u.c.deleted == 1)
    )
    with db.connect() as connection:
        return int(connection.execute(statement).scalar() or 0)
