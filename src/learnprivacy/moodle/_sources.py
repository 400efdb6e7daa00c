"""Where each kind of record comes from: one declaration per source, read by one loop.

A :class:`RecordSource` names the table whose rows become records, every table its query
reads (so a missing one is named before any SQL runs, and the documentation's list of
tables is this module's), the statement and the row mapper. ``MoodleDatabase`` has one
reading method per source, each a line long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle import _read_compliance as compliance
from learnprivacy.moodle import _read_learning as learning
from learnprivacy.moodle._deletion_social import PLAN_TABLES
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._read_content import CONTENT_SOURCES
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.records import AccessEvent, Certificate, Consent, Progress

__all__ = [
    "ACCESS_EVENTS",
    "ACCOUNT_TABLES",
    "ACTIVITY_PROGRESS",
    "CERTIFICATES",
    "CONSENTS",
    "COURSE_PROGRESS",
    "GRADE_PROGRESS",
    "GRADE_TABLES",
    "RECORD_SOURCES",
    "REGISTRY_TABLES_READ",
    "SITE_TABLES",
    "RecordSource",
    "tables_read",
]

T = TypeVar("T")
Statement = Callable[[MoodleSchema, list[int] | None, bool], sa.Select[Any]]
#: The condition keeping a source's rows in one context (level, instance), or None when
#: the source has no rows at that level.
InContext = Callable[[MoodleSchema, ContextLevel, int], sa.ColumnElement[bool] | None]


@attrs.frozen(kw_only=True)
class RecordSource(Generic[T]):
    """One kind of record read from Moodle.

    ``reads`` is every table the statement touches, first ``table``, the one holding the
    rows that become records (their ids name it). ``optional`` sources belong to plugins a
    site may not have: when one of their tables is missing they yield nothing, where a
    missing core table is an error naming it.

    ``in_context`` says, in SQL, which rows are in one Moodle context (the context
    :func:`~learnprivacy.moodle._provider.context_of` gives their records), so that the
    users of a course or activity are read from that context's rows only. A source
    without it is read whole and its records filtered.
    """

    reads: tuple[str, ...]
    statement: Statement
    mapper: Callable[[Any, ScanIssues], T | None]
    description: str
    optional: bool = False
    in_context: InContext | None = None

    @property
    def table(self) -> str:
        """The table holding the rows that become records."""
        return self.reads[0]


def _column_is(level: ContextLevel, table: str = "", column: str = "") -> InContext:
    """Rows in a ``level`` context are those whose ``table.column`` is its instance (every
    row, without a column); no row is in a context of another level."""

    def in_context(
        schema: MoodleSchema, at: ContextLevel, instance: int
    ) -> sa.ColumnElement[bool] | None:
        if at is not level:
            return None
        return schema[table].c[column] == instance if table else sa.true()

    return in_context


COURSE_PROGRESS: RecordSource[Progress] = RecordSource(
    reads=("course_completions", "grade_items", "grade_grades", "user_enrolments", "enrol", "user"),
    statement=learning.course_progress_statement,
    mapper=learning.map_course_progress,
    description="Progress (course level), with the course total grade",
    in_context=_column_is(ContextLevel.COURSE, "course_completions", "course"),
)
GRADE_PROGRESS: RecordSource[Progress] = RecordSource(
    reads=("grade_grades", "grade_items", "modules", "course_modules", "user"),
    statement=learning.grade_statement,
    mapper=learning.map_grade,
    description="Progress with Score (activity level): final grades of activities",
    in_context=learning.grade_in_context,
)
ACTIVITY_PROGRESS: RecordSource[Progress] = RecordSource(
    reads=("course_modules_completion", "course_modules", "user"),
    statement=learning.activity_statement,
    mapper=learning.map_activity,
    description="Progress (activity level): activity completion states",
    in_context=_column_is(ContextLevel.MODULE, "course_modules_completion", "coursemoduleid"),
)
ACCESS_EVENTS: RecordSource[AccessEvent] = RecordSource(
    reads=("logstore_standard_log", "user"),
    statement=compliance.access_statement,
    mapper=compliance.map_access,
    description="AccessEvent: log-ins, log-outs and failed log-ins",
    # logstore_standard is a plugin: a site may have uninstalled it.
    optional=True,
    # Log-ins are in the system context, whatever the row's own context says.
    in_context=_column_is(ContextLevel.SYSTEM),
)
CONSENTS: RecordSource[Consent] = RecordSource(
    reads=("tool_policy_acceptances", "tool_policy_versions", "user"),
    statement=compliance.consent_statement,
    mapper=compliance.map_consent,
    description="Consent: site policy acceptances (tool_policy)",
    optional=True,
    in_context=_column_is(ContextLevel.USER, "tool_policy_acceptances", "userid"),
)
CERTIFICATES: RecordSource[Certificate] = RecordSource(
    reads=("customcert_issues", "customcert", "user"),
    statement=compliance.certificate_statement,
    mapper=compliance.map_certificate,
    description="Certificate: certificates issued by mod_customcert",
    optional=True,
    in_context=_column_is(ContextLevel.COURSE, "customcert", "course"),
)

#: Every record source, in the order ``records_of`` reads them.
RECORD_SOURCES: tuple[RecordSource[Any], ...] = (
    COURSE_PROGRESS,
    GRADE_PROGRESS,
    ACTIVITY_PROGRESS,
    CERTIFICATES,
    CONSENTS,
    ACCESS_EVENTS,
)
#: Grades as Moodle shows them (``grades``), scale items included.
GRADE_TABLES = ("grade_grades", "grade_items", "scale", "modules", "course_modules", "user")
#: Accounts and courses (``learners``, ``users``, ``courses``, ``enrolments``).
ACCOUNT_TABLES = (
    "user",
    "user_lastaccess",
    "user_preferences",
    "course",
    "enrol",
    "user_enrolments",
)
#: Site settings (guest and administrator accounts, registry defaults).
SITE_TABLES = ("config", "config_plugins")
#: The data registry (``registry()``); absent tables leave it empty.
REGISTRY_TABLES_READ = (
    "tool_dataprivacy_purpose",
    "tool_dataprivacy_category",
    "tool_dataprivacy_ctxlevel",
    "tool_dataprivacy_ctxinstance",
    "tool_dataprivacy_request",
    "context",
)


def tables_read() -> tuple[str, ...]:
    """Every Moodle table the adapter reads (unprefixed), sorted: the grants a DBA gives."""
    names = {*ACCOUNT_TABLES, *SITE_TABLES, *REGISTRY_TABLES_READ, *GRADE_TABLES, *PLAN_TABLES}
    for source in RECORD_SOURCES:
        names.update(source.reads)
    for content in CONTENT_SOURCES:
        names.update(content.reads)
    return tuple(sorted(names))
