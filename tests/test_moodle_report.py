"""moodle_report: Moodle's expiry view of a site and learnprivacy's dry-run sweep."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from learnprivacy.errors import ValidationError
from learnprivacy.moodle import (
    MoodleDatabase,
    MoodleProvider,
    MoodleReport,
    moodle_report,
    registry_rows,
)
from learnprivacy.moodle._time import to_unix
from learnprivacy.records import Progress, ProgressStatus
from learnprivacy.retention import Action
from learnprivacy.testing.moodle import create_schema, insert_rows
from tests import NOW
from tests.conftest import open_engine, synthetic_site

if TYPE_CHECKING:
    import sqlalchemy as sa


def ago(days: float) -> int:
    """The Moodle timestamp ``days`` before NOW (negative: in the future)."""
    return to_unix(NOW - dt.timedelta(days=days))


def _user(uid: int, last: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "username": f"u{uid}",
        "email": f"u{uid}@example.org",
        "firstname": "F",
        "lastname": "L",
        "timecreated": ago(3 * 365),
        "firstaccess": last,
        "lastaccess": last,
        **extra,
    }


def build_site(url: str, *, require_all: str | None = None) -> str:
    """A site whose every account has a known fate, at ``url``; returns its URL."""
    engine = open_engine(url)
    create_schema(engine)
    insert_rows(engine, "config", [
        {"name": "siteguest", "value": "1"}, {"name": "siteadmins", "value": "2"},
    ])  # fmt: skip
    insert_rows(engine, "tool_dataprivacy_purpose", [
        {"id": 1, "name": "one year", "lawfulbases": "gdpr_art_6_1_b", "retentionperiod": "P1Y",
         "usermodified": 2, "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    insert_rows(engine, "tool_dataprivacy_ctxlevel", [
        {"contextlevel": level, "purposeid": 1, "categoryid": 0, "usermodified": 2,
         "timecreated": 1, "timemodified": 1}
        for level in (10, 30)
    ])  # fmt: skip
    settings = [{"plugin": "tool_dataprivacy", "name": "context_course_purpose", "value": "1"}]
    if require_all is not None:
        name = "requireallenddatesforuserdeletion"
        settings.append({"plugin": "tool_dataprivacy", "name": name, "value": require_all})
    insert_rows(engine, "config_plugins", settings)
    insert_rows(engine, "course", [
        {"id": 1, "category": 0, "format": "site", "shortname": "site"},
        {"id": 2, "category": 1, "shortname": "NO-END", "startdate": ago(900)},
        {"id": 3, "category": 1, "shortname": "EXPIRED", "startdate": ago(1200),
         "enddate": ago(3 * 365)},
        {"id": 4, "category": 1, "shortname": "RUNNING", "startdate": ago(400),
         "enddate": ago(180)},
        {"id": 5, "category": 1, "shortname": "FUTURE", "startdate": ago(30),
         "enddate": ago(-60)},
    ])  # fmt: skip
    two_years = ago(2 * 365)
    insert_rows(engine, "user", [
        _user(1, 0, username="guest"),
        _user(2, ago(5 * 365), username="admin"),
        _user(10, two_years),  # expired, only in an expired course
        _user(11, two_years),  # held by the course without end date
        _user(12, two_years),  # held by a course whose retention still runs
        _user(13, ago(30)),  # retention running
        _user(14, 0),  # never logged in
        _user(15, two_years, deleted=1),  # deleted: leftovers only
        _user(16, two_years),  # expired for Moodle, yet active in a course 10 days ago
    ])  # fmt: skip
    insert_rows(engine, "user_lastaccess", [{"userid": 16, "courseid": 3, "timeaccess": ago(10)}])
    insert_rows(engine, "enrol", [{"id": c, "enrol": "manual", "courseid": c} for c in (2, 3, 4)])
    insert_rows(engine, "user_enrolments", [
        {"enrolid": e, "userid": u}
        for u, e in ((10, 3), (11, 2), (11, 3), (12, 4), (16, 3), (14, 2))
    ])  # fmt: skip
    insert_rows(engine, "logstore_standard_log", [
        {"eventname": "\\core\\event\\user_loggedin", "component": "core", "action": "loggedin",
         "target": "user", "crud": "r", "edulevel": 0, "contextid": 1, "contextlevel": 10,
         "contextinstanceid": 0, "userid": 15, "timecreated": two_years, "ip": "192.0.2.1"},
    ])  # fmt: skip
    engine.dispose()
    return url


def test_moodle_view_of_accounts_and_courses(new_database: Callable[[], str]) -> None:
    """Each account and course lands in the status Moodle's expiry task would give it."""
    report = moodle_report(build_site(new_database()), now=NOW)
    assert report.accounts == {"total": 9, "live": 8, "deleted": 1, "suspended": 0}
    assert report.users == {
        "expired": 2,  # 10 and 16
        "retention_running": 1,  # 13
        "held_by_course_without_end_date": 1,  # 11
        "held_by_course_not_expired": 1,  # 12
        "never_logged_in": 1,  # 14
        "not_expirable": 2,  # guest and admin
        "no_purpose": 0,
    }
    assert report.active_elsewhere == 1  # 16
    assert report.require_all_end_dates  # Moodle's default when the setting is absent
    assert report.courses == {
        "expired": 1,
        "held_by_activity": 0,
        "retention_running": 1,
        "not_ended": 1,
        "no_end_date": 1,
        "no_purpose": 0,
    }
    (blocking,) = report.blocking_courses()
    assert (blocking.shortname, blocking.holding_users, blocking.enrolled) == ("NO-END", 1, 2)
    running = next(c for c in report.course_findings if c.shortname == "RUNNING")
    assert running.expires_at is not None
    assert running.expires_at > NOW
    assert report.deleted_leftovers["logstore_standard_log"] == 1


def test_end_dates_not_required(new_database: Callable[[], str]) -> None:
    """With requireallenddatesforuserdeletion off, a course without end date holds no one."""
    report = moodle_report(build_site(new_database(), require_all="0"), now=NOW)
    assert not report.require_all_end_dates
    assert report.users["held_by_course_without_end_date"] == 0
    assert report.users["expired"] == 3


def test_learnprivacy_dry_run(new_database: Callable[[], str]) -> None:
    """The sweep applies the registry's Schedule: no course-end pain, admins held, nothing done."""
    report = moodle_report(build_site(new_database()), now=NOW)
    # Learners: 10, 11, 12 (two years idle) and 14 (never logged in, created three years
    # ago: counted from creation) are due; 13 and 16 are active; the admin is held.
    assert report.sweep["Learner"] == {"erase": 4, "keep": 3}


def test_report_never_writes(tmp_path: Path) -> None:
    """Reporting leaves the database file byte for byte as it was."""
    path = tmp_path / "site.db"
    url = build_site(f"sqlite:///{path}")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    moodle_report(url, now=NOW)
    with MoodleDatabase(url) as db:
        moodle_report(db, now=NOW, sweep=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_renderings(new_database: Callable[[], str]) -> None:
    """to_json is valid JSON with ISO dates; to_text names the findings, no personal data."""
    report = moodle_report(build_site(new_database()), now=NOW)
    data = json.loads(report.to_json())
    assert data["now"] == NOW.isoformat()
    assert data["users"]["held_by_course_without_end_date"] == 1
    assert data["course_findings"][0]["shortname"] == "NO-END"
    text = report.to_text()
    assert "held back by a course without end date" in text
    assert "NO-END (id 2): 1 accounts" in text
    assert "nothing was written" in text
    assert "example.org" not in text
    assert "example.org" not in report.to_json()


def test_report_on_a_fixture_site(new_database: Callable[[], str]) -> None:
    """On a synthetic site every live account falls in exactly one status."""
    engine, summary = synthetic_site(new_database(), users=300, courses=8)
    report: MoodleReport = moodle_report(engine, now=NOW)
    assert sum(report.users.values()) == report.accounts["live"]
    assert report.accounts["deleted"] == len(summary.deleted_user_ids)
    assert report.users["held_by_course_without_end_date"] > 0
    assert report.users["never_logged_in"] == len(summary.never_logged_in_user_ids)
    assert set(report.sweep) == {"Learner", "Progress", "Certificate", "Consent", "AccessEvent"}
    engine.dispose()


def test_naive_now_is_refused(new_database: Callable[[], str]) -> None:
    """The clock is a parameter and must be timezone-aware."""
    with pytest.raises(ValidationError):
        moodle_report(build_site(new_database()), now=dt.datetime(2026, 6, 15))


def test_cli_report_counts_accounts_on_its_progress_bar_and_honours_no_sweep(
    tmp_path: Path,
) -> None:
    """`moodle report` feeds the progress bar one tick per account; --no-sweep skips the
    dry run (the option used to be ignored)."""
    from click.testing import CliRunner

    from learnprivacy.cli import main

    path = tmp_path / "site.db"
    url = build_site(f"sqlite:///{path}")
    ticks: list[int] = []

    class Counter:
        def expect(self, units: int) -> None:
            del units

        def advance(self, units: int) -> None:
            ticks.append(units)

    report = moodle_report(url, now=NOW, progress=Counter())
    assert sum(ticks) == report.accounts["total"] > 0
    args = ["--config", str(tmp_path / "none.toml"), "--json", "moodle", "report", "--db", url]
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    full = json.loads(CliRunner().invoke(main, [*args, "--now", NOW.isoformat()]).stdout)
    quick = CliRunner().invoke(main, [*args, "--now", NOW.isoformat(), "--no-sweep"])
    assert full["sweep"]
    assert json.loads(quick.stdout)["sweep"] == {}


def _forum_purpose(engine: sa.Engine, name: str, basis: str, retention: str) -> None:
    """Purpose 2 (``name``, ``basis``, ``retention``) made the forums' purpose, on a site
    with two activity types: forum (1) and quiz (2)."""
    insert_rows(engine, "tool_dataprivacy_purpose", [
        {"id": 2, "name": name, "lawfulbases": basis, "retentionperiod": retention,
         "usermodified": 2, "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    insert_rows(engine, "config_plugins", [
        {"plugin": "tool_dataprivacy", "name": "context_module_forum_purpose", "value": "2"},
    ])  # fmt: skip
    insert_rows(engine, "modules", [{"id": 1, "name": "forum"}, {"id": 2, "name": "quiz"}])


def test_activity_type_defaults_and_deleted_contexts(new_database: Callable[[], str]) -> None:
    """A forum default of 3 months flags forums Moodle would expire now; quizzes wait.

    Before, per-activity-type defaults (context_module_forum_purpose) were not read, so
    the report said nothing expires while Moodle's own task flags those forums.
    """
    url = build_site(new_database())
    engine = open_engine(url)
    _forum_purpose(engine, "forums", "gdpr_art_6_1_b", "P3M")
    insert_rows(engine, "course_modules", [
        {"id": 40, "course": 4, "module": 1, "instance": 1},  # ended 180 days ago
        {"id": 41, "course": 4, "module": 2, "instance": 1},
        {"id": 42, "course": 2, "module": 1, "instance": 2},  # no end date
    ])  # fmt: skip
    insert_rows(engine, "context", [
        {"id": 1, "contextlevel": 10, "instanceid": 0, "path": "/1", "depth": 1},
        {"id": 2, "contextlevel": 30, "instanceid": 15, "path": "/1/2", "depth": 2},
    ])  # fmt: skip
    engine.dispose()
    with MoodleDatabase(url) as db:
        registry = db.registry()
        assert registry.module_purpose("forum").name == "forums"  # type: ignore[union-attr]
        assert registry.module_purpose("quiz").name == "one year"  # type: ignore[union-attr]
        written = {
            r["name"]: r["value"] for r in registry_rows(registry, now=NOW)["config_plugins"]
        }
        assert written["context_module_forum_purpose"] == "2"  # written back as Moodle reads it
        report = moodle_report(db, now=NOW, sweep=False)
    assert report.activities == {
        "forum": {"expired": 1, "no_end_date": 1},
        "quiz": {"retention_running": 1},
    }
    assert report.deleted_awaiting_deletion == 1
    text = report.to_text()
    assert "forum: expired 1" in text
    assert "NOT Moodle's" not in text  # no sweep asked for
    assert "NOT Moodle's" in moodle_report(url, now=NOW).to_text()


def test_activity_type_purposes_in_the_schedule(new_database: Callable[[], str]) -> None:
    """A forum default of ten years keeps forum progress the course level would erase.

    Before, the schedule applied the course level's purpose to every activity, whatever
    the registry set for its type.
    """
    url = build_site(new_database())
    engine = open_engine(url)
    _forum_purpose(engine, "forum archive", "gdpr_art_6_1_f", "P10Y")
    insert_rows(engine, "course_modules", [
        {"id": 40, "course": 4, "module": 1, "instance": 1},
        {"id": 41, "course": 4, "module": 2, "instance": 1},
    ])  # fmt: skip
    engine.dispose()
    recorded = NOW - dt.timedelta(days=800)

    def progress(activity: str) -> Progress:
        return Progress(id=f"p{activity}", learner_id="15", course_id="4", activity_id=activity,
                        status=ProgressStatus.COMPLETED, recorded_at=recorded)  # fmt: skip

    with MoodleDatabase(url) as db:
        assert db.activity_types() == {40: "forum", 41: "quiz"}
        schedule = db.schedule()
        plain = db.registry().schedule()
        # Forum posts are described under the forum type's purpose, quiz attempts not.
        provider = MoodleProvider(db)
        assert provider.describe("ForumPost").purpose == "forum archive"
        assert provider.describe("ForumPost").retention == "P10Y"
        assert provider.describe("QuizAttempt").purpose != "forum archive"
    forum, quiz = progress("40"), progress("41")
    assert schedule.evaluate(forum, now=NOW, subject="15").action is Action.KEEP
    assert schedule.evaluate(quiz, now=NOW, subject="15").action is Action.ERASE
    # Without the activity types, the forum's progress goes with the course level's.
    assert plain.evaluate(forum, now=NOW, subject="15").action is Action.ERASE
