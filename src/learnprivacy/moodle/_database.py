"""``MoodleDatabase``: a read-only adapter from a Moodle database to learnprivacy records."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict, TypeVar, Unpack

import sqlalchemy as sa

from learnprivacy._closing import Closing
from learnprivacy._collector import collector_paused
from learnprivacy._vocabulary import ContextLevel
from learnprivacy.errors import ConfigurationError
from learnprivacy.moodle import _read_accounts as accounts
from learnprivacy.moodle import _read_compliance as compliance
from learnprivacy.moodle import _read_learning as learning
from learnprivacy.moodle import _read_profile as profile
from learnprivacy.moodle._content import iso
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._models import MoodleCourse, MoodleUser
from learnprivacy.moodle._read_content import CONTENT_SOURCES, ContentSource
from learnprivacy.moodle._readonly import PG_WHOLE_RESULT, read_only_engine
from learnprivacy.moodle._registry import DataRegistry
from learnprivacy.moodle._registry_read import read_registry
from learnprivacy.moodle._rows import NUMERIC_AS_TEXT, numeric_as_text, row_converter
from learnprivacy.moodle._schema import MissingTableError, MoodleSchema
from learnprivacy.moodle._sources import (
    ACCESS_EVENTS,
    ACTIVITY_PROGRESS,
    CERTIFICATES,
    CONSENTS,
    COURSE_PROGRESS,
    GRADE_PROGRESS,
    GRADE_TABLES,
    RECORD_SOURCES,
    RecordSource,
    tables_read,
)
from learnprivacy.records import AccessEvent, Certificate, Consent, Learner, Progress
from learnprivacy.retention import Schedule

__all__ = ["MoodleDatabase"]

T = TypeVar("T")


class ReadOptions(TypedDict, total=False):
    """Keyword options of every reading method.

    ``user_ids``: only these accounts (ints or learner ids such as ``"42"``);
    ``include_deleted``: also rows of deleted accounts; ``issues``: where to report rows
    that cannot become records (default :attr:`MoodleDatabase.issues`); ``context``: a
    Moodle context ``(level, instance)``, for the rows of that context only, in SQL, where
    the source says where its rows are (``RecordSource.in_context``; a source that does
    not is read whole, so a caller still checks each record's context).
    """

    user_ids: Iterable[int | str] | None
    include_deleted: bool
    issues: ScanIssues | None
    context: tuple[int, int] | None


_REGISTRY_SOURCES = (
    "tool_dataprivacy_purpose",
    "tool_dataprivacy_category",
    "tool_dataprivacy_ctxlevel",
    "tool_dataprivacy_ctxinstance",
    "config_plugins",
)


class MoodleDatabase(Closing):
    """Read a Moodle site's database as learnprivacy records, never writing to it.

    ``url_or_engine`` is a SQLAlchemy URL (``postgresql+psycopg://...``,
    ``mysql+pymysql://...``, ``sqlite:///moodle.db``) or an existing ``Engine``; ``prefix``
    is Moodle's ``$CFG->prefix``. Every statement goes through a guard that refuses writes
    (:class:`~learnprivacy.errors.PolicyError`); on PostgreSQL transactions are also
    opened read-only. Reads stream in chunks of ``chunk_size`` rows (server-side cursors
    where the driver has them), so a site of any size is read in constant memory.

    Ids: a Learner's id is the Moodle user id (``"42"``), courses and activities are
    Moodle course and course module ids, and every other record's id names its source row
    (``"course_completions/17"``). Deleted accounts are not learners: Moodle has already
    replaced their name and address by a tombstone, and their remaining rows (logs, for
    instance) are only read with ``include_deleted=True``. The guest account is skipped.
    Rows that cannot become valid records (an e-mail address Moodle never validated, a row
    without any date) are skipped and reported in :attr:`issues` (or the ``issues``
    passed in), never raised.
    """

    def __init__(
        self,
        url_or_engine: str | sa.URL | sa.Engine,
        *,
        prefix: str = "mdl_",
        chunk_size: int = 10_000,
        guest_username: str = "guest",
    ) -> None:
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigurationError("chunk_size must be a positive integer")
        self.schema = MoodleSchema(prefix)
        self.chunk_size = chunk_size
        self.guest_username = guest_username
        self.issues = ScanIssues()
        self._engine, self._owned = read_only_engine(url_or_engine)
        self._numeric_text = numeric_as_text(self._engine)
        self._tables: dict[str, bool] = {}
        self._settings: dict[str, frozenset[int]] = {}

    def __repr__(self) -> str:
        return f"<MoodleDatabase {self._engine.dialect.name} prefix={self.schema.prefix!r}>"

    def close(self) -> None:
        """Release the connections (an engine passed in is left to its owner)."""
        if self._owned:
            self._engine.dispose()

    @staticmethod
    def tables_read() -> tuple[str, ...]:
        """Every Moodle table the adapter reads (unprefixed), sorted: the grants a DBA gives."""
        return tables_read()

    @property
    def engine(self) -> sa.Engine:
        """The guarded, read-only engine (for custom ``SELECT`` queries)."""
        return self._engine

    @property
    def prefix(self) -> str:
        """Moodle's table prefix."""
        return self.schema.prefix

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A read-only connection: any statement that would write raises ``PolicyError``."""
        with self._engine.connect() as connection:
            yield connection

    def has_table(self, name: str) -> bool:
        """Whether the site has Moodle table ``name`` (plugins may not be installed)."""
        if name not in self._tables:
            with self.connect() as connection:
                found = sa.inspect(connection).has_table(self.schema[name].name)
            self._tables[name] = found
        return self._tables[name]

    def batches(self, statement: sa.Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of ``statement`` as plain tuples, ``chunk_size`` rows per list.

        The statement goes through SQLAlchemy (compiled once and cached, checked by the
        read-only guard), but rows come straight from the driver's cursor: no result row
        object per row. Columns whose type converts the driver's value (a ``NUMERIC`` read
        from SQLite as a float becomes the same ``Decimal`` as through SQLAlchemy) are
        converted as SQLAlchemy would convert them.
        """
        return self._chunks(statement, list, raw_numeric=False)

    def _mapped(
        self,
        statement: sa.Select[Any],
        mapper: Callable[[Any, ScanIssues], T | None],
        sink: ScanIssues,
    ) -> Iterator[T]:
        """The records ``mapper`` makes of the rows of ``statement`` (None: left out).

        A mapper in :data:`~learnprivacy.moodle._read_learning.RAW_NUMERIC` is given
        PostgreSQL's NUMERIC cells as their text and makes them Decimals itself.
        """
        sinks = itertools.repeat(sink)

        def build(rows: list[tuple[Any, ...]]) -> list[T]:
            # A mapper returns a record (always true: no record type has a length) or None.
            return list(filter(None, map(mapper, rows, sinks)))

        for records in self._chunks(statement, build, raw_numeric=mapper in learning.RAW_NUMERIC):
            yield from records

    def _chunks(
        self,
        statement: sa.Select[Any],
        build: Callable[[list[tuple[Any, ...]]], list[Any]],
        *,
        raw_numeric: bool,
    ) -> Iterator[list[Any]]:
        """``build`` of each chunk of rows, fetched, converted and built in one go.

        Each chunk is fetched and built with the cyclic garbage collector paused (and put
        back as found, also after an error): thousands of rows and records would
        otherwise set off collections of the whole heap, as often as every few chunks.
        Nothing is yielded while the collector is paused.
        """
        with self.connect() as connection:
            dialect = connection.dialect
            if dialect.name == "postgresql":
                connection.exec_driver_sql(PG_WHOLE_RESULT)
            # A server-side cursor keeps memory constant on PostgreSQL and MySQL; SQLite's
            # cursor already steps through the result lazily.
            options = {"stream_results": dialect.name != "sqlite"}
            if self._numeric_text:
                options[NUMERIC_AS_TEXT] = True
            result = connection.execution_options(**options).execute(statement)
            try:
                cursor = result.cursor
                convert = row_converter(
                    statement,
                    dialect,
                    cursor.description,
                    numeric_text=self._numeric_text,
                    keep_numeric_text=raw_numeric,
                )
                # The result's own fetch strategy hands out the driver's rows as they are
                # (including any it fetched ahead), and wraps driver errors as SQLAlchemy
                # does; no row object is built.
                fetch, size = result.cursor_strategy.fetchmany, self.chunk_size
                while True:
                    with collector_paused():
                        rows = fetch(result, cursor, size)
                        count = len(rows)
                        built = build(rows if convert is None else list(map(convert, rows)))
                        del rows
                    if count:
                        yield built
                    # Fewer rows than asked for is the end (DB-API), and SQLAlchemy may
                    # have closed the cursor already: asking again would fail.
                    if count < size:
                        break
            finally:
                result.close()

    def stream(self, statement: sa.Select[Any]) -> Iterator[Any]:
        """Rows of ``statement``, fetched ``chunk_size`` at a time."""
        with self.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(PG_WHOLE_RESULT)
            result = connection.execution_options(yield_per=self.chunk_size).execute(statement)
            for partition in result.partitions():
                yield from partition

    # -- accounts and courses ---------------------------------------------------------

    def users(self, *, user_ids: Iterable[int | str] | None = None) -> Iterator[MoodleUser]:
        """Every account (deleted and suspended ones too), with its retention dates."""
        statement = accounts.user_statement(self.schema, _ids(user_ids))
        for row in self.stream(statement):
            yield accounts.map_user(row, self.guest_username, self.guest_id)

    def courses(self) -> Iterator[MoodleCourse]:
        """Every course but the front page, with its start and end dates."""
        for row in self.stream(accounts.course_statement(self.schema)):
            yield accounts.map_course(row)

    def learners(
        self,
        *,
        user_ids: Iterable[int | str] | None = None,
        issues: ScanIssues | None = None,
        include_admins: bool = False,
    ) -> Iterator[Learner]:
        """Live accounts as Learners, in id order.

        Not the deleted accounts, not the guest, and not the site administrators
        (``$CFG->siteadmins``) unless ``include_admins``: they run the site, they do not
        learn on it, and Moodle never expires their accounts.
        """
        sink = self.issues if issues is None else issues
        excluded = set() if include_admins else set(self.admin_ids)
        if self.guest_id is not None:
            excluded.add(self.guest_id)
        statement = accounts.learner_statement(
            self.schema, _ids(user_ids), self.guest_username, sorted(excluded)
        )
        yield from self._mapped(statement, accounts.map_learner, sink)

    # -- records, one method per source (see _sources.py) -------------------------------

    def read(self, source: RecordSource[T], **options: Unpack[ReadOptions]) -> Iterator[T]:
        """The records of ``source``, for every account or those of ``user_ids``.

        Rows of deleted accounts are left out unless ``include_deleted``; rows that cannot
        become records are reported to ``issues`` (default :attr:`issues`). A missing core
        table raises :class:`~learnprivacy.errors.NotFoundError` naming it; a plugin's
        missing table yields nothing.
        """
        if not self._has_tables(source):
            return
        given = options.get("issues")
        sink = self.issues if given is None else given
        statement = source.statement(
            self.schema, _ids(options.get("user_ids")), options.get("include_deleted", False)
        )
        context = options.get("context")
        if context is not None and source.in_context is not None:
            condition = source.in_context(self.schema, ContextLevel(context[0]), context[1])
            if condition is None:
                return
            statement = statement.where(condition)
        yield from self._mapped(statement, source.mapper, sink)

    def _has_tables(self, source: RecordSource[Any] | ContentSource) -> bool:
        """Whether every table ``source`` reads is here; a missing core table (of a source
        not ``optional``) raises :class:`~learnprivacy.errors.NotFoundError` naming it."""
        missing = [name for name in source.reads if not self.has_table(name)]
        if missing and not source.optional:
            self.require_tables(*missing)
        return not missing

    def require_tables(self, *names: str) -> None:
        """Raise :class:`~learnprivacy.errors.NotFoundError` naming the first table missing."""
        for name in names:
            if not self.has_table(name):
                raise MissingTableError(name, self.schema[name].name)

    def course_progress(self, **options: Unpack[ReadOptions]) -> Iterator[Progress]:
        """Course completions (with the course total grade) as course-level Progress."""
        return self.read(COURSE_PROGRESS, **options)

    def grade_progress(self, **options: Unpack[ReadOptions]) -> Iterator[Progress]:
        """Final grades of activities as activity-level Progress with a Score."""
        return self.read(GRADE_PROGRESS, **options)

    def activity_progress(self, **options: Unpack[ReadOptions]) -> Iterator[Progress]:
        """Activity completion states as activity-level Progress."""
        return self.read(ACTIVITY_PROGRESS, **options)

    def progress(self, **options: Unpack[ReadOptions]) -> Iterator[Progress]:
        """Course progress, then grades, then activity completions."""
        if options.get("user_ids") is not None:
            options["user_ids"] = list(options["user_ids"] or ())
        return itertools.chain.from_iterable(
            self.read(source, **options)
            for source in (COURSE_PROGRESS, GRADE_PROGRESS, ACTIVITY_PROGRESS)
        )

    def access_events(self, **options: Unpack[ReadOptions]) -> Iterator[AccessEvent]:
        """Log-ins, log-outs and failed log-ins from the standard log store."""
        return self.read(ACCESS_EVENTS, **options)

    def consents(self, **options: Unpack[ReadOptions]) -> Iterator[Consent]:
        """Site policy acceptances (tool_policy) as Consents (nothing without tool_policy)."""
        return self.read(CONSENTS, **options)

    def certificates(self, **options: Unpack[ReadOptions]) -> Iterator[Certificate]:
        """Certificates issued by mod_customcert (nothing when the plugin is absent)."""
        return self.read(CERTIFICATES, **options)

    # -- data registry -----------------------------------------------------------------

    def registry(self, *, issues: ScanIssues | None = None) -> DataRegistry:
        """The site's data registry (empty when tool_dataprivacy has no tables here)."""
        present = {name for name in _REGISTRY_SOURCES if self.has_table(name)}
        with self.connect() as connection:
            return read_registry(
                connection, self.schema, self.issues if issues is None else issues, present
            )

    def site_setting(self, name: str) -> str | None:
        """A core setting (``$CFG->name``) from Moodle's ``config`` table, or None."""
        self.require_tables("config")
        t = self.schema["config"]
        with self.connect() as connection:
            value = connection.execute(sa.select(t.c.value).where(t.c.name == name)).scalar()
        return None if value is None else str(value)

    @property
    def guest_id(self) -> int | None:
        """The guest account's id (``$CFG->siteguest``), None when the site does not say."""
        if "guest" not in self._settings:
            value = (self.site_setting("siteguest") or "").strip()
            self._settings["guest"] = frozenset({int(value)} if value.isdigit() else ())
        return next(iter(self._settings["guest"]), None)

    @property
    def admin_ids(self) -> frozenset[int]:
        """Site administrators (``$CFG->siteadmins``): Moodle never expires their accounts."""
        if "admins" not in self._settings:
            value = self.site_setting("siteadmins") or ""
            ids = {int(v) for v in value.split(",") if v.strip().isdigit()}
            self._settings["admins"] = frozenset(ids)
        return self._settings["admins"]

    def activity_types(self) -> dict[int, str]:
        """Every activity's type, by course module id (``{40: "forum"}``)."""
        return {cmid: module for cmid, _, module in self.activities()}

    def activities(self) -> Iterator[tuple[int, int, str]]:
        """Every activity as ``(course module id, course id, type)``, in id order."""
        self.require_tables("course_modules", "modules")
        cm, m = self.schema["course_modules"], self.schema["modules"]
        statement = (
            sa.select(cm.c.id, cm.c.course, m.c.name)
            .select_from(cm.join(m, m.c.id == cm.c.module))
            .order_by(cm.c.id)
        )
        for cmid, course, name in self.stream(statement):
            yield int(cmid), int(course), str(name)

    def schedule(self, *, registry: DataRegistry | None = None, **options: Any) -> Schedule:
        """The site's registry as a learnprivacy Schedule, activity purposes applied.

        :meth:`DataRegistry.schedule` with this site's activities (types and courses):
        an activity whose purpose is not the course level's is governed by its own, shorter
        or longer. ``options`` are passed on (``never_logged_in``, ``course_overrides``).
        """
        found = self.registry() if registry is None else registry
        types: dict[int, str] = {}
        courses: dict[int, int] = {}
        if found.has_activity_purposes():
            for cmid, course, module in self.activities():
                types[cmid], courses[cmid] = module, course
        return found.schedule(activity_types=types, activity_courses=courses, **options)

    def enrolments(self, *, course_id: int | None = None) -> Iterator[tuple[int, int]]:
        """Every enrolment as ``(user id, course id)``, whatever its status or dates
        (those of one course with ``course_id``)."""
        if not (self.has_table("user_enrolments") and self.has_table("enrol")):
            return
        ue, e = self.schema["user_enrolments"], self.schema["enrol"]
        statement = (
            sa.select(ue.c.userid, e.c.courseid)
            .select_from(ue.join(e, e.c.id == ue.c.enrolid))
            .order_by(ue.c.userid, e.c.courseid)
        )
        if course_id is not None:
            statement = statement.where(e.c.courseid == course_id)
        for row in self.stream(statement):
            yield int(row[0]), int(row[1])

    def grades(
        self,
        *,
        user_ids: Iterable[int | str] | None = None,
        context: tuple[int, int] | None = None,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every grade of live accounts as ``(user id, row)``, as Moodle's export shows them.

        All grade items (activities, course totals, categories, manual items), with the
        teacher's feedback; a scale grade is the scale's item (``"Good"``) with the scale's
        name, never a number. Rows: ``course_id``, ``activity_id``, ``item``,
        ``item_type``, ``grade``, ``scale``, ``feedback``, ``created_at``, ``modified_at``.
        ``context`` (``(level, instance)``) keeps the grades of one course (its course-level
        items) or activity.
        """
        self.require_tables(*GRADE_TABLES)
        statement = learning.grade_rows_statement(self.schema, _ids(user_ids))
        if context is not None:
            condition = learning.grade_in_context(self.schema, ContextLevel(context[0]), context[1])
            if condition is None:
                return
            statement = statement.where(condition)
        for row in self.stream(statement):
            yield learning.grade_row(row)

    def policy_acceptances(
        self, *, user_ids: Iterable[int | str] | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every site policy acceptance of live accounts as ``(user id, row)`` (tool_policy).

        Declined and unanswered policies are there too (``status``), where :meth:`consents`
        only has what was consented to. Nothing when tool_policy is not installed.
        """
        if not all(self.has_table(t) for t in ("tool_policy_acceptances", "tool_policy_versions")):
            return
        statement = compliance.acceptance_rows_statement(self.schema, _ids(user_ids))
        for row in self.stream(statement):
            yield compliance.acceptance_row(row)

    def profile(self, user_id: int | str) -> dict[str, Any] | None:
        """The whole profile of a live account (``user``), None for an unknown or deleted one.

        Address, phones, institution, department, city, country, language, timezone,
        description, last IP and the access dates, with Moodle's column names.
        """
        ids = _ids([user_id])
        if not ids:
            return None
        u = self.schema["user"]
        columns = [u.c[name] for name in profile.PROFILE_FIELDS]
        statement = sa.select(*columns).where(u.c.id == ids[0], u.c.deleted == 0)
        with self.connect() as connection:
            row = connection.execute(statement).first()
        return None if row is None else profile.profile_row(row)

    def preferences(self, user_id: int | str) -> list[dict[str, Any]]:
        """Every preference of one account (``user_preferences``), by name."""
        ids = _ids([user_id])
        if not ids or not self.has_table("user_preferences"):
            return []
        t = self.schema["user_preferences"]
        statement = sa.select(t.c.name, t.c.value).where(t.c.userid == ids[0]).order_by(t.c.name)
        return [profile.preference_row(name, value) for name, value in self.stream(statement)]

    def log_entries(self, user_id: int | str) -> list[dict[str, Any]]:
        """The full standard log of one account: what it did, underwent, or did as another.

        Rows where the account is the author (``userid``), the subject (``relateduserid``)
        or the real user behind a "logged in as" session (``realuserid``), each with the
        Moodle context it happened in (``context_level``, ``context_instance``).
        """
        ids = _ids([user_id])
        if not ids or not self.has_table("logstore_standard_log"):
            return []
        statement = profile.log_statement(self.schema, ids[0])
        return [profile.log_row(row, ids[0]) for row in self.stream(statement)]

    def data_requests(self, user_id: int | str) -> list[dict[str, Any]]:
        """The data requests (export, deletion) about one account (``tool_dataprivacy``)."""
        ids = _ids([user_id])
        if not ids or not self.has_table("tool_dataprivacy_request"):
            return []
        statement = profile.request_statement(self.schema, ids[0])
        return [profile.request_row(row, ids[0]) for row in self.stream(statement)]

    def content(self, source: ContentSource, user_id: int | str) -> list[dict[str, Any]]:
        """One account's rows of a content source (forum posts, messages, files...).

        An activity module's missing tables give no rows; a missing core table raises
        :class:`~learnprivacy.errors.NotFoundError` naming it.
        """
        ids = _ids([user_id])
        if not ids or not self._has_tables(source):
            return []
        mapper = source.mapper
        return [mapper(row, ids[0]) for row in self.stream(source.statement(self.schema, ids[0]))]

    def forum_post_tree(
        self, discussion_ids: Iterable[int | str]
    ) -> dict[str, tuple[str, int, str]]:
        """Every post of some discussions: ``{post id: (parent id, created, subject)}``.

        The parent id is ``"0"`` for a discussion's first post and ``created`` is Moodle's
        Unix time; the export names a post's folder from them and nests a reply in its
        parent's folder, as Moodle's forum provider does.
        """
        ids = sorted({int(d) for d in discussion_ids})
        if not ids or not self.has_table("forum_posts"):
            return {}
        p = self.schema["forum_posts"]
        statement = (
            sa.select(p.c.id, p.c.parent, p.c.created, p.c.subject)
            .where(p.c.discussion.in_(ids))
            .order_by(p.c.id)
        )
        return {
            str(pid): (str(parent or 0), int(created or 0), subject or "")
            for pid, parent, created, subject in self.stream(statement)
        }

    def content_users_in(self, level: int, instance: int) -> set[int]:
        """Accounts with content rows (posts, submissions, files...) in one context."""
        found: set[int] = set()
        for source in CONTENT_SOURCES:
            if not self._has_tables(source):
                continue
            statement = source.users_in(self.schema, ContextLevel(level), instance)
            if statement is not None:
                found.update(int(row[0]) for row in self.stream(statement) if row[0])
        return found

    def log_users_in(self, level: int, instance: int) -> set[int]:
        """Accounts with log rows (as author, subject or real user) in one context."""
        if not self.has_table("logstore_standard_log"):
            return set()
        log = self.schema["logstore_standard_log"]
        found: set[int] = set()
        statement = sa.select(log.c.userid, log.c.relateduserid, log.c.realuserid).where(
            log.c.contextlevel == level, log.c.contextinstanceid == instance
        )
        for row in self.stream(statement):
            found.update(int(v) for v in row if v)
        return found

    def user_enrolments(self, user_id: int | str) -> list[dict[str, Any]]:
        """One account's enrolments, as Moodle's privacy export shows them, in course order.

        Every enrolment is there, active or suspended, started or not: ``course_id``,
        ``method`` (the enrolment plugin: ``manual``, ``self``...), ``status`` (``active`` or
        ``suspended``), ``created_at``, ``modified_at``, ``starts_at`` and ``ends_at`` (ISO
        8601 UTC, None for Moodle's "never").
        """
        ids = _ids([user_id])
        if not ids or not (self.has_table("user_enrolments") and self.has_table("enrol")):
            return []
        ue, e = self.schema["user_enrolments"], self.schema["enrol"]
        statement = (
            sa.select(
                e.c.courseid,
                e.c.enrol,
                ue.c.status,
                ue.c.timecreated,
                ue.c.timemodified,
                ue.c.timestart,
                ue.c.timeend,
            )
            .select_from(ue.join(e, e.c.id == ue.c.enrolid))
            .where(ue.c.userid == ids[0])
            .order_by(e.c.courseid, ue.c.id)
        )
        rows = []
        for course, method, status, created, modified, start, end in self.stream(statement):
            rows.append(
                {
                    "course_id": str(course),
                    "method": method,
                    "status": "active" if not status else "suspended",
                    "created_at": iso(created),
                    "modified_at": iso(modified),
                    "starts_at": iso(start),
                    # 2147483647 is the column's default: no end.
                    "ends_at": None if end == _NO_END else iso(end),
                }
            )
        return rows

    def plugin_setting(self, plugin: str, name: str) -> str | None:
        """A plugin setting from ``config_plugins`` (``get_config(plugin, name)``), or None."""
        if not self.has_table("config_plugins"):
            return None
        t = self.schema["config_plugins"]
        statement = sa.select(t.c.value).where(t.c.plugin == plugin, t.c.name == name)
        with self.connect() as connection:
            value = connection.execute(statement).scalar()
        return None if value is None else str(value)

    def records_of(self, user_id: int | str, *, issues: ScanIssues | None = None) -> list[Any]:
        """Every record of one learner: the Learner, progress, certificates, consents, logs.

        Empty for an unknown or deleted account and for the guest. When the account row
        cannot become a Learner (an invalid address, say) its other records are still
        returned, and the account is reported in the issues.
        """
        ids = _ids([user_id])
        accounts_found = list(self.users(user_ids=ids)) if ids else []
        if not accounts_found or accounts_found[0].deleted or accounts_found[0].guest:
            return []
        records: list[Any] = list(self.learners(user_ids=ids, issues=issues, include_admins=True))
        for source in RECORD_SOURCES:
            records.extend(self.read(source, user_ids=ids, issues=issues))
        return records


_NO_END = 2_147_483_647


def _ids(user_ids: Iterable[int | str] | None) -> list[int] | None:
    """Moodle user ids from ints or learner ids (``"42"``); anything else matches nobody."""
    if user_ids is None:
        return None
    ids: list[int] = []
    for value in user_ids:
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            ids.append(value)
        elif isinstance(value, str) and value.isascii() and value.isdigit():
            ids.append(int(value))
    return ids
