"""``MoodleProvider``: a Moodle database as a privacy provider, for exports through a manager.

Registered in a :class:`~learnprivacy.providers.PrivacyManager`, it answers access and
portability requests with the records :class:`MoodleDatabase` reads, written exactly as
the store's provider writes its own: one ``DataDescription`` and one
``writer.write_records`` call per record type, so ``export_subject`` produces the same
``data/<component>/<RecordType>.json`` files for a Moodle learner as for a stored one.

It never deletes: the adapter is read-only. Deletion requests raise
:class:`~learnprivacy.errors.PolicyError`, which the manager reports as this component's
failure, because claiming success would be false; erase in Moodle itself (its data
privacy tool), then run the request again.
"""

from __future__ import annotations

from typing import Any

from learnprivacy.basis import DataCategory
from learnprivacy.errors import PolicyError
from learnprivacy.moodle._database import MoodleDatabase
from learnprivacy.moodle._registry import DataRegistry, Purpose
from learnprivacy.providers import (
    ApprovedContextList,
    ApprovedUserList,
    ContentWriter,
    Context,
    ContextLevel,
    ContextList,
    DataDescription,
    MetadataCollection,
    UserList,
)
from learnprivacy.providers._store import DEFAULT_PURPOSES
from learnprivacy.records import fields_of
from learnprivacy.records._base import default_basis
from learnprivacy.retention import Trigger

__all__ = ["MOODLE_COMPONENT", "MoodleProvider"]

#: The default component name of :class:`MoodleProvider`.
MOODLE_COMPONENT = "moodle"

# Moodle table -> (record type, context level of its purpose, trigger, personal fields).
_TABLES: dict[str, tuple[str, ContextLevel, Trigger, dict[str, str]]] = {
    "user": (
        "Learner",
        ContextLevel.USER,
        Trigger.LAST_ACTIVITY,
        {
            "username": "Login name",
            "email": "E-mail address",
            "firstname": "Given name",
            "lastname": "Family name",
            "lastaccess": "Last access to the site",
            "lastip": "IP address of the last log-in",
        },
    ),
    "course_completions": (
        "Progress",
        ContextLevel.COURSE,
        Trigger.CREATED,
        {"userid": "Learner", "course": "Course", "timecompleted": "When the course was completed"},
    ),
    "grade_grades": (
        "Progress",
        ContextLevel.COURSE,
        Trigger.CREATED,
        {"userid": "Learner", "finalgrade": "Grade obtained", "feedback": "Teacher's feedback"},
    ),
    "course_modules_completion": (
        "Progress",
        ContextLevel.COURSE,
        Trigger.CREATED,
        {"userid": "Learner", "completionstate": "Whether the activity was completed"},
    ),
    "customcert_issues": (
        "Certificate",
        ContextLevel.COURSE,
        Trigger.ISSUED,
        {"userid": "Learner", "code": "Verification code of the certificate"},
    ),
    "tool_policy_acceptances": (
        "Consent",
        ContextLevel.USER,
        Trigger.LAST_ACTIVITY,
        {"userid": "Learner", "status": "Accepted or declined", "note": "Note on the decision"},
    ),
    "logstore_standard_log": (
        "AccessEvent",
        ContextLevel.SYSTEM,
        Trigger.CREATED,
        {"userid": "Learner", "ip": "IP address", "timecreated": "When it happened"},
    ),
}
_LEVEL_OF_TYPE = {record_type: level for record_type, level, _, _ in _TABLES.values()}


class MoodleProvider:
    """The privacy provider of a Moodle site read through :class:`MoodleDatabase`.

    ``component`` names the export folder (``data/<component>/``); ``registry`` (read
    from the site when not given) supplies the purposes, bases and retention periods of
    the metadata and export descriptions.
    """

    def __init__(
        self,
        database: MoodleDatabase,
        *,
        component: str = MOODLE_COMPONENT,
        registry: DataRegistry | None = None,
    ) -> None:
        self.database = database
        self.component = component
        self._registry = registry

    def __repr__(self) -> str:
        return f"MoodleProvider({self.database!r}, component={self.component!r})"

    @property
    def registry(self) -> DataRegistry:
        """The site's data registry (read once, on first use)."""
        if self._registry is None:
            self._registry = self.database.registry()
        return self._registry

    def _purpose(self, record_type: str) -> Purpose | None:
        level = _LEVEL_OF_TYPE.get(record_type)
        return None if level is None else self.registry.level_purpose(level)

    # -- metadata ---------------------------------------------------------------------

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """One item per Moodle table read, with the registry's purpose and retention."""
        for table, (record_type, level, trigger, fields) in _TABLES.items():
            purpose = self.registry.level_purpose(level)
            collection.add_database_table(
                table,
                fields,
                f"Moodle's {table} table, read as {record_type} records",
                purpose=purpose.name if purpose else DEFAULT_PURPOSES.get(record_type),
                basis=(purpose.basis if purpose else None) or _default_basis(record_type),
                categories=_categories(record_type),
                retention=purpose.retention if purpose else None,
                retention_from=trigger if purpose and purpose.retention else None,
            )
        return collection

    # -- requests ---------------------------------------------------------------------

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The user's context, when Moodle holds a live account with that id."""
        contexts = ContextList(component=self.component)
        if self.database.records_of(user_id):
            contexts.add_user_context(user_id)
        return contexts

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write every record of the learner, grouped by record type."""
        if Context.user(approved.user_id) not in approved:
            return
        by_type: dict[type[Any], list[Any]] = {}
        for record in self.database.records_of(approved.user_id):
            by_type.setdefault(type(record), []).append(record)
        for cls, records in by_type.items():
            name = cls.__name__
            purpose = self._purpose(name)
            writer.describe(
                DataDescription(
                    component=self.component,
                    record_type=name,
                    description=(cls.__doc__ or name).strip().splitlines()[0],
                    purpose=purpose.name if purpose else DEFAULT_PURPOSES.get(name, name),
                    basis=default_basis(cls),
                    retention=str(purpose.retention) if purpose and purpose.retention else None,
                    fields={f.name: f.description for f in fields_of(cls) if f.exported},
                )
            )
            writer.write_records(self.component, records)

    def get_users_in_context(self, userlist: UserList) -> None:
        """The live account of a user context, or the learners enrolled in a course."""
        context = userlist.context
        if context.level is ContextLevel.USER:
            if self.database.records_of(context.instance_id):
                userlist.add_user(context.instance_id)
        elif context.level is ContextLevel.COURSE and context.instance_id.isdigit():
            course = int(context.instance_id)
            users = {str(u) for u, c in self.database.enrolments() if c == course}
            userlist.add_users(sorted(users, key=int))

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()

    def delete_data_for_users(self, approved: ApprovedUserList) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()


def _read_only() -> PolicyError:
    return PolicyError(
        "the Moodle adapter is read-only: erase the data in Moodle (tool_dataprivacy)"
    )


def _default_basis(record_type: str) -> Any:
    from learnprivacy.records._base import record_type as lookup

    return default_basis(lookup(record_type))


def _categories(record_type: str) -> list[DataCategory]:
    from learnprivacy.records._base import record_type as lookup

    infos = [f for f in fields_of(lookup(record_type)) if f.personal and f.exported]
    return list(dict.fromkeys(f.category for f in infos))
