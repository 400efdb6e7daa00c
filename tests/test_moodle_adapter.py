"""MoodleDatabase: Moodle rows become learnprivacy records, on SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, NotFoundError, PolicyError
from learnprivacy.moodle import MoodleDatabase, MoodleProvider, ScanIssues
from learnprivacy.moodle._readonly import check_read_only
from learnprivacy.moodle._sources import tables_read
from learnprivacy.moodle._time import to_unix
from learnprivacy.providers import ApprovedContextList, Context, MemoryWriter, UserList
from learnprivacy.testing._moodle_people import acceptance
from learnprivacy.testing.moodle import create_schema, insert_rows
from tests.conftest import open_engine

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


def ts(days: float = 0) -> int:
    """A Moodle timestamp ``days`` after T0."""
    return to_unix(T0 + dt.timedelta(days=days))


def at(days: float = 0) -> dt.datetime:
    """The aware datetime of ``ts(days)``."""
    return T0 + dt.timedelta(days=days)


def _new_site(new_database: Callable[[], str]) -> sa.Engine:
    """A fresh database on the module's engine holding Moodle's schema and its settings
    (no guest user): a site with nobody yet."""
    engine = open_engine(new_database())
    create_schema(engine)
    insert_rows(engine, "config", [{"name": "siteguest", "value": "1"}])
    return engine


@pytest.fixture(scope="module")
def engine(new_database: Callable[[], str]) -> Iterator[sa.Engine]:
    """The hand-made site on each engine, built once per module (the tests only read it)."""
    engine = _new_site(new_database)
    _site(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def blank(new_database: Callable[[], str]) -> Iterator[sa.Engine]:
    """A site with nobody yet, for one test to fill."""
    engine = _new_site(new_database)
    yield engine
    engine.dispose()


def _site(engine: sa.Engine) -> None:
    """A tiny hand-made site whose every record is known in advance."""
    insert_rows(
        engine,
        "user",
        [
            {"id": 1, "username": "guest", "email": "root@localhost", "firstname": "Guest"},
            # Live learner: user_lastaccess is later than user.lastaccess.
            {
                "id": 10,
                "username": "ana.silva",
                "email": "Ana.Silva@Example.org",
                "firstname": "Ana",
                "lastname": "Silva",
                "timecreated": ts(0),
                "firstaccess": ts(1),
                "lastaccess": ts(20),
            },
            # Never logged in: every access date is 0.
            {
                "id": 11,
                "username": "jo",
                "email": "jo@example.org",
                "firstname": "Jo",
                "lastname": "Martin",
                "timecreated": ts(2),
            },
            # An address Moodle never validated.
            {
                "id": 12,
                "username": "bad",
                "email": "bad@",
                "firstname": "Bad",
                "lastname": "Address",
                "timecreated": ts(3),
                "lastaccess": ts(4),
            },
            # A deleted account: Moodle's tombstone.
            {
                "id": 13,
                "username": "old@example.org.1700000000",
                "email": "0cc175b9c0f1b6a831c399e269772661",
                "firstname": "Old",
                "lastname": "Account",
                "deleted": 1,
                "timecreated": ts(-400),
                "lastaccess": ts(-300),
            },
            # Suspended, created at 0 (early installers): creation falls back to firstaccess.
            {
                "id": 14,
                "username": "sus",
                "email": "sus@example.org",
                "firstname": "Sus",
                "lastname": "Pended",
                "suspended": 1,
                "timecreated": 0,
                "firstaccess": ts(5),
                "lastaccess": ts(6),
            },
        ],
    )
    insert_rows(
        engine,
        "user_lastaccess",
        [
            {"userid": 10, "courseid": 2, "timeaccess": ts(25)},
            {"userid": 10, "courseid": 3, "timeaccess": ts(15)},
        ],
    )
    insert_rows(
        engine,
        "course",
        [
            {"id": 1, "category": 0, "format": "site", "fullname": "Site", "shortname": "site"},
            {"id": 2, "category": 1, "fullname": "Excel", "shortname": "XL", "startdate": ts(0)},
            {
                "id": 3,
                "category": 1,
                "fullname": "RGPD",
                "shortname": "RGPD",
                "startdate": ts(0),
                "enddate": ts(60),
            },
        ],
    )
    insert_rows(
        engine,
        "course_completions",
        [
            {"id": 1, "userid": 10, "course": 2, "timeenrolled": ts(1), "timestarted": ts(2),
             "timecompleted": ts(9)},
            {"id": 2, "userid": 10, "course": 3, "timeenrolled": ts(1), "timestarted": ts(3)},
            {"id": 3, "userid": 11, "course": 3, "timeenrolled": ts(2)},
            {"id": 4, "userid": 12, "course": 3},  # no date at all
            {"id": 5, "userid": 13, "course": 2, "timeenrolled": ts(-350)},  # deleted account
        ],
    )  # fmt: skip
    insert_rows(
        engine,
        "grade_items",
        [
            {"id": 1, "courseid": 2, "itemtype": "course", "grademax": Decimal(20),
             "gradepass": Decimal(10)},
            {"id": 2, "courseid": 3, "itemtype": "course", "grademax": Decimal(100)},
            {"id": 3, "courseid": 2, "itemtype": "mod", "itemmodule": "quiz", "iteminstance": 7,
             "grademax": Decimal(10), "gradepass": Decimal(5)},
        ],
    )  # fmt: skip
    insert_rows(
        engine,
        "grade_grades",
        [
            {"id": 1, "itemid": 1, "userid": 10, "finalgrade": Decimal("14.5"),
             "timemodified": ts(9)},
            {"id": 2, "itemid": 2, "userid": 10, "finalgrade": Decimal(130),
             "timemodified": ts(8)},  # above the item's maximum
            {"id": 3, "itemid": 3, "userid": 10, "finalgrade": Decimal(4),
             "timecreated": ts(7), "timemodified": 0},
            {"id": 4, "itemid": 3, "userid": 11, "finalgrade": None, "timemodified": ts(7)},
        ],
    )  # fmt: skip
    insert_rows(engine, "modules", [{"id": 5, "name": "quiz"}, {"id": 6, "name": "customcert"}])
    insert_rows(
        engine,
        "course_modules",
        [
            {"id": 40, "course": 2, "module": 5, "instance": 7},
            {"id": 41, "course": 2, "module": 6, "instance": 1},
        ],
    )
    insert_rows(
        engine,
        "course_modules_completion",
        [
            {"id": 1, "coursemoduleid": 40, "userid": 10, "completionstate": 3,
             "timemodified": ts(7)},
            {"id": 2, "coursemoduleid": 40, "userid": 14, "completionstate": 1,
             "timemodified": ts(6)},
            {"id": 3, "coursemoduleid": 40, "userid": 11, "completionstate": 9,
             "timemodified": ts(6)},
        ],
    )  # fmt: skip
    insert_rows(
        engine,
        "logstore_standard_log",
        [
            _log(1, "\\core\\event\\user_loggedin", 10, ts(20), "203.0.113.7"),
            _log(2, "\\core\\event\\user_loggedout", 10, ts(20.1), "2001:db8::1"),
            _log(3, "\\core\\event\\user_login_failed", 10, ts(21), "unknown"),
            _log(4, "\\core\\event\\user_login_failed", 0, ts(21), "198.51.100.1"),
            _log(5, "\\core\\event\\course_viewed", 10, ts(22), "203.0.113.7"),
            _log(6, "\\core\\event\\user_loggedin", 13, ts(-300), "192.0.2.1"),
            _log(7, "\\core\\event\\user_loggedin", 1, ts(5), "192.0.2.2"),
            _log(8, "\\core\\event\\user_loggedin", 12, ts(4), "192.0.2.3"),
        ],
    )
    insert_rows(
        engine,
        "tool_policy_versions",
        [_policy_version(1, 1, "Site policy", "v1"), _policy_version(2, 2, "Newsletter", "1")],
    )
    insert_rows(
        engine,
        "tool_policy_acceptances",
        [
            {"id": 1, **acceptance(1, 10, 1, ts(1), ts(1))},
            {"id": 2, **acceptance(2, 10, 0, ts(1), ts(12))},  # accepted, then withdrawn
            {"id": 3, **acceptance(2, 14, 0, ts(5), ts(5))},  # declined outright: no consent
            {"id": 4, **acceptance(2, 11, None, ts(5), ts(5))},  # pending
        ],
    )
    insert_rows(
        engine,
        "customcert",
        [{"id": 1, "course": 2, "name": "Attestation", "protection": ""}],
    )
    insert_rows(
        engine,
        "customcert_issues",
        [
            {"id": 1, "userid": 10, "customcertid": 1, "code": "Ab3dE5gH9k", "timecreated": ts(9)},
            {"id": 2, "userid": 14, "customcertid": 1, "code": None, "timecreated": ts(9)},
        ],
    )


def _policy_version(vid: int, policy: int, name: str, revision: str) -> dict[str, object]:
    """A ``tool_policy_versions`` row; the Newsletter (policy 2) is the optional one."""
    return {
        "id": vid,
        "policyid": policy,
        "name": name,
        "optional": int(policy == 2),
        "revision": revision,
        "summary": "s",
        "content": "c",
        "summaryformat": 1,
        "contentformat": 1,
        "usermodified": 2,
        "timecreated": ts(-500),
        "timemodified": ts(-500),
    }


def _log(rid: int, event: str, uid: int, when: int, ip: str) -> dict[str, object]:
    return {
        "id": rid,
        "eventname": event,
        "component": "core",
        "action": "x",
        "target": "user",
        "crud": "r",
        "edulevel": 0,
        "contextid": 1,
        "contextlevel": 10,
        "contextinstanceid": 0,
        "userid": uid,
        "timecreated": when,
        "ip": ip,
    }


@pytest.fixture
def moodle(engine: sa.Engine) -> Iterator[MoodleDatabase]:
    """The hand-made site, read through the adapter with tiny chunks (streaming paths)."""
    with MoodleDatabase(engine, chunk_size=2) as db:
        yield db


def test_learners_map_moodle_users(moodle: MoodleDatabase) -> None:
    """Live accounts become Learners with Moodle's values, dates in UTC, guest excluded."""
    learners = {learner.id: learner for learner in moodle.learners()}
    assert sorted(learners) == ["10", "11", "14"]
    ana = learners["10"]
    assert ana == rec.Learner(
        id="10",
        username="ana.silva",
        email="Ana.Silva@Example.org",  # as Moodle stores it, case kept
        given_name="Ana",
        family_name="Silva",
        created_at=at(0),
        last_activity_at=at(25),  # the later of user.lastaccess and user_lastaccess
    )
    assert learners["11"].last_activity_at is None  # lastaccess 0 means never
    assert learners["14"].created_at == at(5)  # timecreated 0: first access instead
    assert all(learner.created_at.tzinfo is UTC for learner in learners.values())


def test_invalid_email_is_reported_not_raised(moodle: MoodleDatabase) -> None:
    """An unvalidated address skips that learner and records the field and rule only."""
    issues = ScanIssues()
    ids = [learner.id for learner in moodle.learners(issues=issues)]
    assert "12" not in ids
    (issue,) = [i for i in issues if i.table == "user"]
    assert (issue.row_id, issue.field, issue.skipped) == (12, "Learner.email", True)
    assert "bad@" not in repr(issue)
    assert "bad@" not in str(issues.counts())
    assert issues.skipped_rows("user") == 1


def test_users_include_deleted_and_flags(moodle: MoodleDatabase) -> None:
    """users() lists every account with Moodle's flags and both access dates."""
    users = {u.id: u for u in moodle.users()}
    assert sorted(users) == [1, 10, 11, 12, 13, 14]
    assert users[1].guest
    assert users[13].deleted
    assert users[14].suspended
    assert users[10].last_access_at == at(20)
    assert users[10].last_course_access_at == at(25)
    assert users[10].last_activity_at == at(25)
    assert users[11].never_logged_in
    assert not users[10].never_logged_in


def test_courses_skip_front_page_and_read_missing_end_date(moodle: MoodleDatabase) -> None:
    """The site course is not a course; enddate 0 reads as "no end date"."""
    courses = {c.id: c for c in moodle.courses()}
    assert sorted(courses) == [2, 3]
    assert courses[2].end_at is None
    assert courses[3].end_at == at(60)


def test_course_progress_statuses_and_scores(moodle: MoodleDatabase) -> None:
    """Completions: completed/started/enrolled map to statuses; the course total is the score."""
    issues = ScanIssues()
    progress = {p.id: p for p in moodle.course_progress(issues=issues)}
    assert progress["course_completions/1"] == rec.Progress(
        id="course_completions/1",
        learner_id="10",
        course_id="2",
        status=rec.ProgressStatus.PASSED,  # 14.5 >= pass mark 10
        recorded_at=at(9),
        score=rec.Score(raw=Decimal("14.5"), min=0, max=20),
    )
    started = progress["course_completions/2"]
    assert (started.status, started.recorded_at) == (rec.ProgressStatus.IN_PROGRESS, at(3))
    assert started.score is None  # 130 is outside 0..100: kept without score, reported
    enrolled = progress["course_completions/3"]
    assert (enrolled.status, enrolled.recorded_at) == (rec.ProgressStatus.NOT_STARTED, at(2))
    assert "course_completions/4" not in progress  # no date at all
    assert "course_completions/5" not in progress  # deleted account
    assert issues.counts() == {
        "course_completions: Progress.recorded_at: no date at all": 1,
        "course_completions: Progress.score: final grade outside its item's range": 1,
    }
    with_deleted = {p.id for p in moodle.course_progress(include_deleted=True)}
    assert "course_completions/5" in with_deleted


def test_activity_grades_and_completions(moodle: MoodleDatabase) -> None:
    """Module grades and completion states become activity-level Progress."""
    grades = list(moodle.grade_progress())
    assert grades == [
        rec.Progress(
            id="grade_grades/3",
            learner_id="10",
            course_id="2",
            activity_id="40",  # the quiz's course module, found through modules
            status=rec.ProgressStatus.FAILED,  # 4 < pass mark 5
            recorded_at=at(7),  # timemodified 0: timecreated instead
            score=rec.Score(raw=4, min=0, max=10),
        )
    ]
    states = {p.id: p.status for p in moodle.activity_progress()}
    assert states == {
        "course_modules_completion/1": rec.ProgressStatus.FAILED,
        "course_modules_completion/2": rec.ProgressStatus.COMPLETED,
    }  # state 9 is unknown: reported, skipped
    assert len(list(moodle.progress())) == 3 + 1 + 2


def test_access_events(moodle: MoodleDatabase) -> None:
    """Log-in events of live accounts become AccessEvents; bad IPs are dropped, not events."""
    events = {e.id: e for e in moodle.access_events()}
    assert sorted(events) == [
        "logstore_standard_log/1",
        "logstore_standard_log/2",
        "logstore_standard_log/3",
        "logstore_standard_log/7",
        "logstore_standard_log/8",
    ]  # course views, userid 0 and the deleted account's log-in are not
    assert events["logstore_standard_log/1"] == rec.AccessEvent(
        id="logstore_standard_log/1",
        learner_id="10",
        kind=rec.AccessKind.LOGIN,
        at=at(20),
        ip="203.0.113.7",
    )
    assert events["logstore_standard_log/2"].kind is rec.AccessKind.LOGOUT
    assert events["logstore_standard_log/2"].ip == "2001:db8::1"
    failed = events["logstore_standard_log/3"]
    assert (failed.kind, failed.ip) == (rec.AccessKind.LOGIN_FAILED, None)
    deleted = {e.id for e in moodle.access_events(include_deleted=True)}
    assert "logstore_standard_log/6" in deleted


def test_policy_acceptances_become_consents(moodle: MoodleDatabase) -> None:
    """Acceptances are consents (optional policy) or contract (compulsory); withdrawal kept."""
    consents = {c.id: c for c in moodle.consents()}
    assert sorted(consents) == ["tool_policy_acceptances/1", "tool_policy_acceptances/2"]
    site = consents["tool_policy_acceptances/1"]
    assert (site.purpose, site.basis, site.withdrawn_at) == (
        "tool_policy/1",
        LawfulBasis.CONTRACT,
        None,
    )
    assert consents["tool_policy_acceptances/2"] == rec.Consent(
        id="tool_policy_acceptances/2",
        learner_id="10",
        purpose="tool_policy/2",
        given_at=at(1),
        withdrawn_at=at(12),
        proof="tool_policy_versions/2",
        basis=LawfulBasis.CONSENT,
    )


def test_certificates_from_customcert(moodle: MoodleDatabase) -> None:
    """Issued certificates carry the verification code; an issue without code is reported."""
    issues = ScanIssues()
    assert list(moodle.certificates(issues=issues)) == [
        rec.Certificate(
            id="customcert_issues/1",
            learner_id="10",
            course_id="2",
            issued_at=at(9),
            verification_code="Ab3dE5gH9k",
        )
    ]
    assert [i.field for i in issues] == ["Certificate.verification_code"]


def test_undated_access_consent_and_certificate_rows_are_reported(blank: sa.Engine) -> None:
    """A log-in, a policy acceptance or a certificate without a date is left out, and
    each is reported against the field it lacks; the dated rows beside them are read."""
    login = "\\core\\event\\user_loggedin"
    tables: dict[str, list[dict[str, Any]]] = {
        "user": [{"id": 10, "username": "ana", "email": "ana@example.org", "timecreated": ts(0)}],
        "logstore_standard_log": [
            _log(1, login, 10, 0, "192.0.2.1"),
            _log(2, login, 10, ts(1), ""),
        ],
        "tool_policy_versions": [
            _policy_version(1, 1, "Site policy", "v1"),
            _policy_version(2, 1, "Site policy", "v2"),
        ],
        "tool_policy_acceptances": [
            {"id": 1, **acceptance(1, 10, 1, 0, 0)},
            {"id": 2, **acceptance(2, 10, 1, ts(1), ts(1))},
        ],
        "customcert": [{"id": 1, "course": 2, "name": "A", "protection": ""}],
        "customcert_issues": [
            {"id": 1, "userid": 10, "customcertid": 1, "code": "Ab3dE5gH9k", "timecreated": 0},
            {"id": 2, "userid": 10, "customcertid": 1, "code": "Zz3dE5gH9k", "timecreated": ts(2)},
        ],
    }
    for table, rows in tables.items():
        insert_rows(blank, table, rows)
    issues = ScanIssues()
    with MoodleDatabase(blank) as db:
        assert [e.id for e in db.access_events(issues=issues)] == ["logstore_standard_log/2"]
        assert [c.id for c in db.consents(issues=issues)] == ["tool_policy_acceptances/2"]
        assert [c.id for c in db.certificates(issues=issues)] == ["customcert_issues/2"]
    assert issues.counts() == {
        "logstore_standard_log: AccessEvent.at: no date": 1,
        "tool_policy_acceptances: Consent.given_at: no date": 1,
        "customcert_issues: Certificate.issued_at: no date": 1,
    }
    assert all(issue.skipped for issue in issues)


def test_missing_plugin_tables_read_as_empty(tmp_path: Path) -> None:
    """A site without mod_customcert (or the log store) gives no such records, no error."""
    engine = open_engine(f"sqlite:///{tmp_path / 'core.db'}")
    schema = create_schema(engine)
    with engine.begin() as connection:
        for name in ("customcert_issues", "customcert", "logstore_standard_log"):
            schema[name].drop(connection)
    with MoodleDatabase(engine) as db:
        assert list(db.certificates()) == []
        assert list(db.access_events()) == []
        assert not db.has_table("customcert")


def test_records_of_one_learner(moodle: MoodleDatabase) -> None:
    """records_of gathers one learner's records; deleted, guest and unknown ids give none."""
    records = moodle.records_of("10")
    assert isinstance(records[0], rec.Learner)
    assert {type(r).__name__ for r in records} == {
        "Learner",
        "Progress",
        "Certificate",
        "Consent",
        "AccessEvent",
    }
    assert all(getattr(r, "learner_id", r.id) == "10" for r in records)
    assert moodle.records_of(10) == records
    assert moodle.records_of("13") == []
    assert moodle.records_of("1") == []
    assert moodle.records_of("999") == []
    assert moodle.records_of("not-a-moodle-id") == []
    kept = moodle.records_of("12")  # the account row is unreadable, its data is not
    assert kept
    assert not any(isinstance(r, rec.Learner) for r in kept)


def test_adapter_refuses_to_write(moodle: MoodleDatabase, engine: sa.Engine) -> None:
    """Through the adapter every write raises PolicyError and changes nothing."""
    user = moodle.schema["user"]
    statements = [
        user.insert().values(username="x", email="x@example.org"),
        user.update().values(deleted=1),
        user.delete(),
        sa.text("DROP TABLE mdl_user"),
    ]
    for statement in statements:
        with moodle.connect() as connection, pytest.raises(PolicyError):
            connection.execute(statement)
    with moodle.connect() as connection, pytest.raises(PolicyError):
        connection.execute(user.insert(), [{"username": "a"}, {"username": "b"}])
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(user)).scalar()
        deleted = connection.execute(
            sa.select(sa.func.count()).select_from(user).where(user.c.deleted == 1)
        ).scalar()
    assert (count, deleted) == (6, 1)
    # The caller's own engine is not affected: the guard lives on the adapter's copy.
    with engine.begin() as connection:
        connection.execute(user.update().where(user.c.id == 14).values(lang="fr"))


#: A function whose body writes, per engine: the guard only sees "SELECT bump()".
WRITING_FUNCTIONS = {
    "postgres": "CREATE FUNCTION bump() RETURNS bigint LANGUAGE sql "
    "AS $$ SELECT nextval('mdl_user_id_seq') $$",
    "mariadb": "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA "
    "BEGIN UPDATE mdl_config SET value = '2'; RETURN 1; END",
}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_the_database_itself_refuses_writes_the_guard_cannot_see(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL and MariaDB every transaction is READ ONLY: a write the guard let
    through (a SELECT with a side effect) fails there and changes nothing."""
    url = request.getfixturevalue(f"{kind}_server").create_database()
    engine = _new_site(lambda: url)
    with engine.begin() as connection:
        connection.exec_driver_sql(WRITING_FUNCTIONS[kind])
    try:
        with (
            MoodleDatabase(url) as db,
            db.connect() as connection,
            pytest.raises(PolicyError, match="database refused"),
        ):
            connection.execute(sa.text("SELECT bump()"))
        with engine.connect() as connection:
            value = connection.execute(sa.text("SELECT value FROM mdl_config")).scalar()
        assert value == "1"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT GET_LOCK('learnprivacy', 0)",
        "SELECT RELEASE_ALL_LOCKS()",
        "select pg_advisory_lock(1)",
        "SELECT pg_try_advisory_xact_lock(1)",
        "SELECT setval('mdl_user_id_seq', 1)",
        "SELECT id FROM mdl_user LOCK IN SHARE MODE",
        "SELECT id FROM mdl_user FOR UPDATE",
    ],
)
def test_reads_that_lock_or_change_state_are_refused(statement: str) -> None:
    """A SELECT that takes a lock or changes server state is refused like a write."""
    with pytest.raises(PolicyError):
        check_read_only(statement)


def test_lock_names_inside_literals_do_not_decide() -> None:
    """A lock function's name inside a string literal is data, not a call."""
    check_read_only("SELECT id FROM mdl_user WHERE username = 'get_lock(x)'")


def test_sqlite_url_is_opened_query_only(tmp_path: Path) -> None:
    """A SQLite file opened from a URL is query-only at the driver level as well."""
    url = f"sqlite:///{tmp_path / 'moodle.db'}"
    create_schema(open_engine(url))
    with MoodleDatabase(url) as db, db.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with pytest.raises(Exception, match="readonly"):
            raw.execute("INSERT INTO mdl_modules (name) VALUES ('x')")


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5])
def test_chunk_size_must_be_positive(chunk_size: object, tmp_path: Path) -> None:
    """A chunk size that is not a positive integer is a configuration error."""
    with pytest.raises(ConfigurationError):
        MoodleDatabase(f"sqlite:///{tmp_path / 'x.db'}", chunk_size=chunk_size)  # type: ignore[arg-type]


def test_bad_url_message_does_not_echo_the_url() -> None:
    """A malformed URL is refused without repeating it (it may hold a password)."""
    with pytest.raises(ConfigurationError) as caught:
        MoodleDatabase("postgresql+nodriver://moodle:s3cret@db/moodle")
    assert "s3cret" not in str(caught.value)


def test_other_prefix(tmp_path: Path) -> None:
    """A site installed with another $CFG->prefix is read through that prefix."""
    engine = open_engine(f"sqlite:///{tmp_path / 'p.db'}")
    create_schema(engine, prefix="m45_")
    insert_rows(
        engine,
        "user",
        [{"id": 5, "username": "u", "email": "u@example.org", "firstname": "U", "lastname": "V",
          "timecreated": ts(0)}],
        prefix="m45_",
    )  # fmt: skip
    with MoodleDatabase(engine, prefix="m45_") as db:
        assert [learner.id for learner in db.learners()] == ["5"]
        assert db.guest_id is None  # no siteguest setting: the username rule alone


def test_site_administrators_are_not_learners(new_database: Callable[[], str]) -> None:
    """Accounts in $CFG->siteadmins are not learners; their own records stay readable."""
    engine = open_engine(new_database())
    create_schema(engine)
    insert_rows(engine, "config", [
        {"name": "siteguest", "value": "1"}, {"name": "siteadmins", "value": "2, 7"},
    ])  # fmt: skip
    insert_rows(engine, "user", [
        {"id": uid, "username": f"u{uid}", "email": f"u{uid}@example.org", "firstname": "F",
         "lastname": "L", "timecreated": ts(0)}
        for uid in (1, 2, 5, 7)
    ])  # fmt: skip
    try:
        with MoodleDatabase(engine) as db:
            assert db.admin_ids == {2, 7}
            assert [learner.id for learner in db.learners()] == ["5"]
            assert [r.id for r in db.learners(include_admins=True)] == ["2", "5", "7"]
            assert [type(r).__name__ for r in db.records_of(7)] == ["Learner"]
    finally:
        engine.dispose()


def _read_everything(db: MoodleDatabase) -> None:
    """Learners (which reads the settings) and every record source."""
    list(db.learners())
    list(db.progress())
    list(db.access_events())


@pytest.mark.parametrize("missing", ["course_modules", "modules", "config", "course_completions"])
def test_a_missing_core_table_is_a_typed_error_naming_it(
    missing: str, new_database: Callable[[], str]
) -> None:
    """A missing core table raises NotFoundError naming it, never a driver error."""
    engine = open_engine(new_database())
    schema = create_schema(engine)
    with engine.begin() as connection:
        schema[missing].drop(connection)
    try:
        with MoodleDatabase(engine) as db, pytest.raises(NotFoundError) as caught:
            _read_everything(db)
        assert caught.value.table == missing
        assert f"mdl_{missing}" in str(caught.value)
    finally:
        engine.dispose()


def test_a_missing_plugin_table_yields_nothing(tmp_path: Path) -> None:
    """Without mod_customcert or tool_policy tables, those sources are simply empty."""
    engine = open_engine(f"sqlite:///{tmp_path / 'p.db'}")
    schema = create_schema(engine)
    with engine.begin() as connection:
        schema["customcert"].drop(connection)
        schema["tool_policy_versions"].drop(connection)
    with MoodleDatabase(engine) as db:
        assert list(db.certificates()) == []
        assert list(db.consents()) == []


def test_docs_list_every_table_read() -> None:
    """The how-to's list of tables a DBA must grant is the adapter's own list."""
    text = (Path(__file__).parents[1] / "docs" / "howto-moodle.md").read_text()
    start = text.index("<!-- tables-read -->")
    end = text.index("<!-- /tables-read -->")
    listed = re.findall(r"`([a-z_]+)`", text[start:end])
    assert listed == list(tables_read())


def test_grades_keep_scale_items_feedback_and_course_totals(
    blank: sa.Engine,
) -> None:
    """A forum rated on a 3-item scale is "Fair", never 2/3; feedback and totals are kept.

    Before, a scale grade became a numeric Score (changing "best score"), and course totals
    of courses without completion tracking and teachers' feedback were never read.
    """
    insert_rows(blank, "user", [
        {"id": 10, "username": "ana", "email": "ana@example.org", "firstname": "Ana",
         "lastname": "Silva", "timecreated": ts(0)},
    ])  # fmt: skip
    insert_rows(blank, "course", [{"id": 2, "category": 1, "fullname": "C", "shortname": "C"}])
    insert_rows(blank, "modules", [{"id": 9, "name": "forum"}])
    insert_rows(blank, "course_modules", [{"id": 50, "course": 2, "module": 9, "instance": 4}])
    insert_rows(blank, "scale", [
        {"id": 1, "name": "Participation", "scale": "Poor, Fair,Good", "description": ""},
    ])  # fmt: skip
    insert_rows(blank, "grade_items", [
        {"id": 1, "courseid": 2, "itemtype": "course", "grademax": Decimal(20)},
        {"id": 2, "courseid": 2, "itemtype": "mod", "itemmodule": "forum", "iteminstance": 4,
         "itemname": "Debate", "gradetype": 2, "scaleid": 1, "grademin": Decimal(1),
         "grademax": Decimal(3)},
    ])  # fmt: skip
    insert_rows(blank, "grade_grades", [
        {"id": 1, "itemid": 1, "userid": 10, "finalgrade": Decimal("12.5"),
         "feedback": "Keep going", "timemodified": ts(9)},
        {"id": 2, "itemid": 2, "userid": 10, "finalgrade": Decimal(2), "timemodified": ts(8)},
    ])  # fmt: skip
    with MoodleDatabase(blank) as db:
        (progress,) = db.grade_progress()
        assert progress.activity_id == "50"
        assert progress.score is None  # a scale position is not a measure
        grades = [row for _, row in db.grades(user_ids=["10"])]
        provider = MoodleProvider(db)
        contexts = set(provider.get_contexts_for_userid("10"))
        writer = MemoryWriter()
        provider.export_user_data(
            ApprovedContextList("10", [Context.course(2), Context.module(50)]), writer
        )
    by_item = {row["item"]: row for row in grades}
    assert by_item["Course total"]["grade"] == "12.5"
    assert by_item["Course total"]["feedback"] == "Keep going"
    assert by_item["Course total"]["scale"] is None
    assert by_item["Debate"]["grade"] == "Fair"
    assert by_item["Debate"]["scale"] == "Participation"
    assert by_item["Debate"]["activity_id"] == "50"
    assert {Context.course(2), Context.module(50)} <= contexts
    exported = {row["item"]: row["grade"] for row in writer.rows[("moodle", "Grade")]}
    assert exported == {"Course total": "12.5", "Debate": "Fair"}


def test_declined_and_withdrawn_policies_are_exported(moodle: MoodleDatabase) -> None:
    """A declined policy is exported as declined, not dropped as consents() drops it."""
    rows = {uid: [] for uid in (10, 11, 14)}  # type: dict[int, list[dict[str, Any]]]
    for uid, row in moodle.policy_acceptances():
        rows.setdefault(uid, []).append(row)
    assert [(r["policy"], r["status"]) for r in rows[10]] == [
        ("Site policy", "agreed"),
        ("Newsletter", "withdrawn"),
    ]
    assert [(r["policy"], r["status"]) for r in rows[14]] == [("Newsletter", "declined")]
    assert [r["status"] for r in rows[11]] == ["unanswered"]
    assert not [c for c in moodle.consents() if c.learner_id == "14"]  # no consent, still there
    writer = MemoryWriter()
    MoodleProvider(moodle).export_user_data(ApprovedContextList("14", [Context.user(14)]), writer)
    exported = writer.rows[("moodle", "PolicyAcceptance")]
    assert [(r["policy"], r["status"], r["optional"]) for r in exported] == [
        ("Newsletter", "declined", True)
    ]


def test_never_started_enrolment_keeps_its_completion_row(
    blank: sa.Engine,
) -> None:
    """A completion row with no date at all takes its enrolment's date instead of vanishing."""
    insert_rows(blank, "user", [
        {"id": uid, "username": f"u{uid}", "email": f"u{uid}@example.org", "firstname": "F",
         "lastname": "L", "timecreated": ts(0)}
        for uid in (10, 11)
    ])  # fmt: skip
    insert_rows(blank, "course", [{"id": 2, "category": 1, "fullname": "C", "shortname": "C"}])
    insert_rows(blank, "enrol", [{"id": 1, "enrol": "manual", "courseid": 2}])
    insert_rows(blank, "user_enrolments", [
        {"id": 1, "enrolid": 1, "userid": 10, "timecreated": ts(3), "timemodified": ts(3)},
    ])  # fmt: skip
    insert_rows(blank, "course_completions", [
        {"id": 1, "userid": 10, "course": 2},  # enrolled, never started, no date
        {"id": 2, "userid": 11, "course": 2},  # no date and no enrolment: reported
    ])  # fmt: skip
    issues = ScanIssues()
    with MoodleDatabase(blank) as db:
        progress = list(db.course_progress(issues=issues))
    assert [(p.learner_id, p.status, p.recorded_at) for p in progress] == [
        ("10", rec.ProgressStatus.NOT_STARTED, at(3))
    ]
    assert issues.counts() == {"course_completions: Progress.recorded_at: no date at all": 1}


def test_profile_preferences_and_the_full_log(blank: sa.Engine) -> None:
    """The whole profile, every preference and every log row, "logged in as" ones included.

    Before, only log-ins, log-outs and failed log-ins were read (a few percent of a user's
    log), realuserid was ignored, and the profile beyond names and address was not read.
    """
    insert_rows(blank, "user", [
        {"id": 2, "username": "admin", "email": "admin@example.org", "firstname": "A",
         "lastname": "D", "timecreated": ts(0)},
        {"id": 10, "username": "ana", "email": "ana@example.org", "firstname": "Ana",
         "lastname": "Silva", "timecreated": ts(0), "city": "Lyon", "country": "FR",
         "institution": "ACME", "phone1": "+33 1 23 45 67 89", "lastip": "203.0.113.9",
         "lastaccess": ts(5)},
    ])  # fmt: skip
    insert_rows(blank, "user_preferences", [
        {"userid": 10, "name": "assign_quickgrading", "value": "0"},
        {"userid": 10, "name": "maildigest", "value": "1"},
        {"userid": 2, "name": "maildigest", "value": "0"},
    ])  # fmt: skip
    base = _log(0, "", 0, 0, "")
    insert_rows(blank, "logstore_standard_log", [
        {**base, "id": 1, "eventname": "\\core\\event\\course_viewed", "userid": 10,
         "contextlevel": 50, "contextinstanceid": 2, "courseid": 2, "timecreated": ts(1),
         "ip": "203.0.113.9"},
        # The admin, logged in as Ana, viewed her profile: Ana is author, admin the real user.
        {**base, "id": 2, "eventname": "\\core\\event\\user_profile_viewed", "userid": 10,
         "realuserid": 2, "relateduserid": 10, "contextlevel": 30, "contextinstanceid": 10,
         "timecreated": ts(2), "ip": "198.51.100.4"},
        # The admin edited Ana's account: about her, not by her (the IP is the admin's).
        {**base, "id": 3, "eventname": "\\core\\event\\user_updated", "userid": 2,
         "relateduserid": 10, "contextlevel": 30, "contextinstanceid": 10,
         "timecreated": ts(3), "ip": "198.51.100.4"},
        {**base, "id": 4, "eventname": "\\core\\event\\course_viewed", "userid": 2,
         "contextlevel": 50, "contextinstanceid": 2, "timecreated": ts(4)},
    ])  # fmt: skip
    with MoodleDatabase(blank) as db:
        account = db.profile(10)
        preferences = db.preferences(10)
        logs = db.log_entries(10)
        provider = MoodleProvider(db)
        contexts = set(provider.get_contexts_for_userid("10"))
        writer = MemoryWriter()
        provider.export_user_data(ApprovedContextList("10", [Context.course(2)]), writer)
        in_user_context = UserList(Context.user(10), "moodle")
        provider.get_users_in_context(in_user_context)
    assert account is not None
    assert (account["city"], account["country"], account["institution"]) == (
        "Lyon", "FR", "ACME",
    )  # fmt: skip
    assert account["lastip"] == "203.0.113.9"
    assert account["lastaccess"] == at(5).isoformat()
    assert [(p["component"], p["name"]) for p in preferences] == [
        ("mod_assign", "assign_quickgrading"),
        ("mod_forum", "maildigest"),
    ]
    assert [row["log_id"] for row in logs] == [1, 2, 3]
    viewed, as_admin, updated = logs
    assert as_admin["logged_in_as"]
    assert as_admin["author_was_you"]
    assert not as_admin["real_user_was_you"]
    assert updated["related_user_was_you"]
    assert not updated["author_was_you"]
    assert updated["ip"] is None  # the admin's address is not Ana's data
    assert viewed["ip"] == "203.0.113.9"
    assert {Context.course(2), Context.user(10)} <= contexts
    assert [r["log_id"] for r in writer.rows[("moodle", "LogEntry")]] == [1]
    assert ("moodle", "Profile") not in writer.rows  # the user context was not approved
    assert set(in_user_context.user_ids) == {"2", "10"}  # the admin acted there too


def test_data_requests_are_exported_in_the_user_context(
    blank: sa.Engine,
) -> None:
    """Export and deletion requests about the learner are theirs to see, DPO notes are not."""
    insert_rows(blank, "user", [
        {"id": 10, "username": "ana", "email": "ana@example.org", "firstname": "Ana",
         "lastname": "Silva", "timecreated": ts(0)},
    ])  # fmt: skip
    insert_rows(blank, "tool_dataprivacy_request", [
        {"id": 1, "type": 1, "status": 4, "userid": 10, "requestedby": 10,
         "comments": "My data please", "dpocomment": "internal note", "timecreated": ts(1),
         "timemodified": ts(2)},
        {"id": 2, "type": 2, "status": 0, "userid": 10, "requestedby": 2,
         "timecreated": ts(3), "timemodified": ts(3)},
        {"id": 3, "type": 1, "status": 0, "userid": 11, "requestedby": 11,
         "timecreated": ts(3), "timemodified": ts(3)},
    ])  # fmt: skip
    with MoodleDatabase(blank) as db:
        writer = MemoryWriter()
        MoodleProvider(db).export_user_data(ApprovedContextList("10", [Context.user(10)]), writer)
    rows = writer.rows[("moodle", "DataRequest")]
    assert [(r["type"], r["status"], r["requested_by_you"]) for r in rows] == [
        ("export", "complete", True),
        ("delete", "pending", False),
    ]
    assert "internal note" not in json.dumps(rows)
