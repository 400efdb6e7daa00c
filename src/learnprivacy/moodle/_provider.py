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

from pathlib import Path
from typing import Any, cast

import attrs

from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import PolicyError, ProviderError, ValidationError
from learnprivacy.moodle import _read_profile as profile
from learnprivacy.moodle._database import MoodleDatabase
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._read_content import CONTENT_SOURCES
from learnprivacy.moodle._registry import DataRegistry, Purpose
from learnprivacy.moodle._sources import RECORD_SOURCES
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
from learnprivacy.records import Certificate, Consent, Learner, Progress, fields_of
from learnprivacy.records._base import default_basis
from learnprivacy.retention import Trigger

__all__ = [
    "ACCEPTANCE_TYPE",
    "CONTENT_TYPES",
    "ENROLMENT_TYPE",
    "GRADE_TYPE",
    "LOG_TYPE",
    "MOODLE_COMPONENT",
    "PREFERENCE_TYPE",
    "PROFILE_TYPE",
    "REQUEST_TYPE",
    "MoodleProvider",
    "context_of",
    "row_context",
]

#: The default component name of :class:`MoodleProvider`.
MOODLE_COMPONENT = "moodle"

# Moodle table -> (record type, context level of its purpose, trigger). The fields each
# table is declared with are the fields exported (see _exported_fields), never a second list.
_TABLES: dict[str, tuple[str, ContextLevel, Trigger]] = {
    "user": ("Learner", ContextLevel.USER, Trigger.LAST_ACTIVITY),
    "course_completions": ("Progress", ContextLevel.COURSE, Trigger.CREATED),
    "grade_grades": ("Progress", ContextLevel.COURSE, Trigger.CREATED),
    "course_modules_completion": ("Progress", ContextLevel.COURSE, Trigger.CREATED),
    "customcert_issues": ("Certificate", ContextLevel.COURSE, Trigger.ISSUED),
    "tool_policy_acceptances": ("Consent", ContextLevel.USER, Trigger.LAST_ACTIVITY),
    "logstore_standard_log": ("AccessEvent", ContextLevel.SYSTEM, Trigger.CREATED),
}
_LEVEL_OF_TYPE = {record_type: level for record_type, level, _ in _TABLES.values()}

#: Enrolments are exported as rows (no learnprivacy record type holds them).
ENROLMENT_TYPE = "Enrolment"
_ENROLMENT_FIELDS = {
    "course_id": "Course the account is enrolled in",
    "method": "Enrolment method (manual, self, cohort...)",
    "status": "Whether the enrolment is active or suspended",
    "created_at": "When the enrolment was created",
    "modified_at": "When the enrolment was last changed",
    "starts_at": "When the enrolment starts",
    "ends_at": "When the enrolment ends",
}

#: Grades as Moodle shows them (scale items, feedback, every item type), exported as rows.
GRADE_TYPE = "Grade"
_GRADE_FIELDS = {
    "course_id": "Course of the grade item",
    "activity_id": "Activity of the grade item, for an activity's grade",
    "item": "Grade item (activity, course total, category total, manual item)",
    "item_type": "Kind of grade item",
    "grade": "Grade obtained: a number, or the scale's item for a scale",
    "scale": "Name of the scale the grade is on, if any",
    "feedback": "The teacher's feedback",
    "created_at": "When the grade was first recorded",
    "modified_at": "When the grade was last changed",
}
#: Site policy acceptances as tool_policy exports them, declined ones included.
ACCEPTANCE_TYPE = "PolicyAcceptance"
_ACCEPTANCE_FIELDS = {
    "policy": "Site policy",
    "version": "Version of the policy",
    "optional": "Whether accepting the policy is optional",
    "status": "Agreed, declined, withdrawn or unanswered",
    "on_behalf": "Whether someone else answered on the user's behalf",
    "note": "Note recorded with the answer",
    "created_at": "When the policy was first answered",
    "modified_at": "When the answer last changed",
}
#: The rest of the account: the whole profile, preferences and the full standard log.
PROFILE_TYPE = "Profile"
PREFERENCE_TYPE = "Preference"
LOG_TYPE = "LogEntry"
_PROFILE_FIELDS = {
    name: f"Profile field {name} (Moodle's user.{name})" for name in profile.PROFILE_FIELDS
}
_PREFERENCE_FIELDS = {
    "component": "Component the preference belongs to",
    "name": "Preference name",
    "value": "Preference value",
}
_LOG_FIELDS = {
    "event": "Moodle event",
    "component": "Component that logged it",
    "action": "Action",
    "target": "What the action was on",
    "crud": "Create, read, update or delete",
    "context_level": "Level of the Moodle context it happened in",
    "context_instance": "Instance of that context",
    "course_id": "Course it happened in, if any",
    "time": "When it happened",
    "origin": "Where it came from (web, cli, ws...)",
    "ip": "IP address, for the user's own actions",
    "other": "Event details Moodle stored",
    "author_was_you": "Whether the user did it",
    "related_user_was_you": "Whether it was about the user",
    "logged_in_as": "Whether it was done by someone logged in as another user",
    "real_user_was_you": "Whether the user was the one logged in as another",
    "log_id": "Id of the log row",
}
REQUEST_TYPE = "DataRequest"
_REQUEST_FIELDS = {
    "type": "Kind of request (export, delete, other)",
    "status": "Where the request stands",
    "requested_by_you": "Whether the user made the request (or someone on their behalf)",
    "comments": "The request's comments",
    "created_at": "When the request was made",
    "modified_at": "When it last changed",
}
_ROW_TYPES = {
    REQUEST_TYPE: (
        "tool_dataprivacy_request",
        _REQUEST_FIELDS,
        "Data requests (export, deletion) made by or for the user",
        "Moodle's tool_dataprivacy_request table, exported as DataRequest rows",
        DataCategory.ACCOUNT,
    ),
    PROFILE_TYPE: (
        "user (whole profile)",
        _PROFILE_FIELDS,
        "The whole profile Moodle holds",
        "Moodle's user table (whole profile), exported as Profile rows",
        DataCategory.IDENTITY,
    ),
    PREFERENCE_TYPE: (
        "user_preferences",
        _PREFERENCE_FIELDS,
        "User preferences",
        "Moodle's user_preferences table, exported as Preference rows",
        DataCategory.PREFERENCE,
    ),
    LOG_TYPE: (
        "logstore_standard_log (every event)",
        _LOG_FIELDS,
        "The full standard log: what the user did, underwent, or did logged in as another",
        "Moodle's logstore_standard_log (every event), exported as LogEntry rows",
        DataCategory.TECHNICAL_LOG,
    ),
    ENROLMENT_TYPE: (
        "user_enrolments",
        _ENROLMENT_FIELDS,
        "Enrolments in courses, whatever their state",
        "Moodle's user_enrolments and enrol tables, exported as Enrolment rows",
        DataCategory.LEARNING,
    ),
    ACCEPTANCE_TYPE: (
        "tool_policy_versions",
        _ACCEPTANCE_FIELDS,
        "Site policies agreed to, declined or withdrawn",
        "Moodle's tool_policy_acceptances (and _versions), exported as PolicyAcceptance rows",
        DataCategory.CONSENT,
    ),
    GRADE_TYPE: (
        "grade_items",
        _GRADE_FIELDS,
        "Grades, scale items and teacher feedback, for every grade item",
        "Moodle's grade_grades, grade_items and scale tables, exported as Grade rows",
        DataCategory.ASSESSMENT,
    ),
}

# The category each content source's rows are declared under.
_CONTENT_CATEGORIES = {
    "ForumDiscussion": DataCategory.COMMUNICATION,
    "ForumPost": DataCategory.COMMUNICATION,
    "AssignSubmission": DataCategory.LEARNING,
    "AssignGrade": DataCategory.ASSESSMENT,
    "QuizAttempt": DataCategory.ASSESSMENT,
    "QuizGrade": DataCategory.ASSESSMENT,
    "QuizQuestion": DataCategory.ASSESSMENT,
    **dict.fromkeys(
        (
            "GlossaryEntry",
            "GlossaryAlias",
            "GlossaryEntryCategory",
            "GlossaryRating",
            "GlossaryRatingGiven",
            "GlossaryTag",
        ),
        DataCategory.LEARNING,
    ),
    "Message": DataCategory.COMMUNICATION,
    "File": DataCategory.LEARNING,
    "Badge": DataCategory.CERTIFICATION,
    "Note": DataCategory.LEARNING,
    "ProfileField": DataCategory.IDENTITY,
    **dict.fromkeys(
        (
            "ForumSubscription",
            "ForumDigest",
            "ForumTrackingPreference",
            "ForumDiscussionSubscription",
            "ForumRead",
            "Rating",
            "PostTag",
        ),
        DataCategory.COMMUNICATION,
    ),
}
#: Row types read by the content sources (forum posts, submissions, messages...).
CONTENT_TYPES = tuple(source.name for source in CONTENT_SOURCES)
_CONTENT_BY_NAME = {source.name: source for source in CONTENT_SOURCES}
for _source in CONTENT_SOURCES:
    _ROW_TYPES[_source.name] = (
        _source.table,
        _source.fields,
        _source.description,
        _source.summary,
        _CONTENT_CATEGORIES[_source.name],
    )

# The level whose registry purpose applies to each kind of row.
_ROW_LEVELS = {
    **{source.name: source.level for source in CONTENT_SOURCES},
    PROFILE_TYPE: ContextLevel.USER,
    PREFERENCE_TYPE: ContextLevel.USER,
    REQUEST_TYPE: ContextLevel.USER,
    ACCEPTANCE_TYPE: ContextLevel.USER,
    LOG_TYPE: ContextLevel.SYSTEM,
    ENROLMENT_TYPE: ContextLevel.COURSE,
    GRADE_TYPE: ContextLevel.COURSE,
}


def row_context(row: dict[str, Any], user_id: str | None = None) -> Context:
    """The context of an exported row.

    A log row or a file: the context it happened in, or is in. A profile, preference,
    policy answer, message, badge or custom profile field: the user's. Otherwise (grades,
    enrolments, forum posts, submissions, quiz attempts, notes) the activity's, else the
    course's.
    """
    if "context_level" in row and "context_instance" in row:
        return _log_context(row["context_level"], row["context_instance"])
    personal = (
        "policy", "username", "value", "requested_by_you", "conversation_id", "badge",
        "field",
    )  # fmt: skip
    if any(key in row for key in personal) and user_id is not None:
        return Context.user(user_id)
    if row.get("activity_id"):
        return Context.module(row["activity_id"])
    return Context.course(row["course_id"])


def _log_context(level: int, instance: str) -> Context:
    try:
        return Context(ContextLevel(level), "0" if level == ContextLevel.SYSTEM else instance)
    except (ValueError, ValidationError):
        # A level Moodle no longer has, or a broken row: the site-wide context holds it.
        return Context.system()


def context_of(record: Any) -> Context:
    """The Moodle context a record read from Moodle belongs to.

    Accounts and policy acceptances live in the user's context, log-ins in the system
    context (where Moodle logs them), course completions and certificates in the course's,
    activity grades and completions in the activity module's.
    """
    if isinstance(record, Learner):
        return Context.user(record.id)
    if isinstance(record, Consent):
        return Context.user(record.learner_id)
    if isinstance(record, Progress) and record.activity_id is not None:
        return Context.module(record.activity_id)
    if isinstance(record, Progress | Certificate):
        return Context.course(record.course_id)
    return Context.system()


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
        """The registry's purpose for ``record_type``: its activity type's, else its level's."""
        source = _CONTENT_BY_NAME.get(record_type)
        if source is not None:
            if source.module is not None:
                return self.registry.module_purpose(source.module)
            return self.registry.level_purpose(source.level)
        level = (
            ContextLevel.COURSE if record_type in _ROW_TYPES else _LEVEL_OF_TYPE.get(record_type)
        )
        return None if level is None else self.registry.level_purpose(level)

    # -- metadata ---------------------------------------------------------------------

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """One item per Moodle table read, declared with exactly what its export holds.

        Fields are the exported fields of the record type the table is read as, and the
        purpose, lawful basis and retention are those the export's descriptions give
        (:meth:`describe`): the registry's purpose for the level, when the site sets one.
        """
        for table, (record_type, level, trigger) in _TABLES.items():
            purpose = self.registry.level_purpose(level)
            collection.add_database_table(
                table,
                _exported_fields(record_type),
                f"Moodle's {table} table, read as {record_type} records",
                purpose=self._purpose_name(record_type),
                basis=self._basis(record_type),
                categories=_categories(record_type),
                retention=purpose.retention if purpose else None,
                retention_from=trigger if purpose and purpose.retention else None,
            )
        for row_type, (table, fields, _, summary, category) in _ROW_TYPES.items():
            purpose = self._purpose(row_type)
            collection.add_database_table(
                table,
                dict(fields),
                summary,
                purpose=self._purpose_name(row_type),
                basis=self._basis(row_type),
                categories=[category],
                retention=purpose.retention if purpose else None,
                retention_from=Trigger.CREATED if purpose and purpose.retention else None,
            )
        return collection

    def _basis(self, record_type: str) -> LawfulBasis:
        """The basis declared and exported: the registry's, else the record type's default.

        Policy acceptances keep their own (consent for an optional policy): the user-level
        purpose is the account's, not the policies'.
        """
        purpose = self._purpose(record_type)
        if record_type != "Consent" and purpose is not None and purpose.basis is not None:
            return purpose.basis
        if record_type in _ROW_TYPES:
            return LawfulBasis.CONTRACT
        return cast(LawfulBasis, _default_basis(record_type))

    def _purpose_name(self, record_type: str) -> str:
        purpose = self._purpose(record_type)
        if purpose is not None:
            return purpose.name
        return DEFAULT_PURPOSES.get(record_type, DEFAULT_PURPOSES.get("Progress", record_type))

    def describe(self, record_type: str) -> DataDescription:
        """What the export says about ``record_type``: the same as :meth:`get_metadata`."""
        purpose = self._purpose(record_type)
        if record_type in _ROW_TYPES:
            _, row_fields, text, _, _ = _ROW_TYPES[record_type]
            fields = dict(row_fields)
        else:
            from learnprivacy.records._base import record_type as lookup

            cls = lookup(record_type)
            fields = _exported_fields(record_type)
            text = (cls.__doc__ or record_type).strip().splitlines()[0]
        return DataDescription(
            component=self.component,
            record_type=record_type,
            description=text,
            purpose=self._purpose_name(record_type),
            basis=self._basis(record_type),
            retention=str(purpose.retention) if purpose and purpose.retention else None,
            fields=fields,
        )

    # -- requests ---------------------------------------------------------------------

    def _live_records(self, user_id: str) -> list[Any]:
        return self.database.records_of(user_id)

    def _is_live(self, user_id: str) -> bool:
        """A live account (not deleted, not the guest) even without any record."""
        if not (user_id.isascii() and user_id.isdigit()):
            return False
        found = list(self.database.users(user_ids=[user_id]))
        return bool(found) and not (found[0].deleted or found[0].guest)

    def _rows_of(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """The learner's Enrolment and Grade rows (read only for a live account)."""
        account = self.database.profile(user_id)
        return {
            PROFILE_TYPE: [] if account is None else [account],
            PREFERENCE_TYPE: self.database.preferences(user_id),
            REQUEST_TYPE: self.database.data_requests(user_id),
            LOG_TYPE: self.database.log_entries(user_id),
            ACCEPTANCE_TYPE: [r for _, r in self.database.policy_acceptances(user_ids=[user_id])],
            ENROLMENT_TYPE: self.database.user_enrolments(user_id),
            GRADE_TYPE: [r for _, r in self.database.grades(user_ids=[user_id])],
            **{source.name: self.database.content(source, user_id) for source in CONTENT_SOURCES},
        }

    @staticmethod
    def context_of(record: Any) -> Context:
        """The Moodle context a record read from Moodle belongs to (see :func:`context_of`)."""
        return context_of(record)

    def export_layout(self, user_id: str, directory: str | Path) -> Path:
        """Write one learner's data into ``directory`` as Moodle 4.5's privacy export does.

        A folder per context named and nested after Moodle's context ids and paths
        (``System _.1/Category Category 1 _.3/Course Excel _.24/``), a ``data.json`` per
        folder, subcontexts as sub-folders (``Enrolments/manual.json``, ``Grades/``,
        ``Logs/Standard log/``, ``User preferences/<component>.json``...) and a navigable
        ``index.html``. Returns ``directory``.
        """
        from learnprivacy.moodle._layout import export_moodle_layout

        return export_moodle_layout(self, user_id, directory)

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """Every context where Moodle holds data about a live account.

        The user context (account, policy acceptances), the system context (log-ins), each
        course (completions, certificates, enrolments) and each activity (grades,
        completions), in that order.
        """
        contexts = ContextList(component=self.component)
        records = self._live_records(user_id)
        if not records and not self._is_live(user_id):
            return contexts
        contexts.add_user_context(user_id)
        contexts.add_all(context_of(r) for r in records if not _in_user_context(r))
        for rows in self._rows_of(user_id).values():
            contexts.add_all(row_context(row, user_id) for row in rows)
        return contexts

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write the learner's data in the approved contexts, grouped by record type.

        Only records whose context (:func:`context_of`) is approved are written, so an
        approved course context alone exports that course's completions, grades of its
        activities approved too, certificates and enrolment.

        Raises ``ProviderError`` (the export fails) when course or activity contexts are
        approved and a completion or certificate row of the learner could not become a
        record (an unknown completion state, no date, no code): no other file carries
        those rows, so an export without them would claim to be complete. The error names
        the tables, row ids and rules, never a value.
        """
        issues = ScanIssues()
        records = self.database.records_of(approved.user_id, issues=issues)
        if not records and not self._is_live(approved.user_id):
            return
        wanted = set(approved)
        if any(c.level in (ContextLevel.COURSE, ContextLevel.MODULE) for c in wanted):
            # Those rows belong to courses and activities: an export of the user's own
            # context alone would not have held them.
            _refuse_unexported(issues, self.component)
        by_type: dict[str, list[Any]] = {}
        for record in records:
            if context_of(record) in wanted:
                by_type.setdefault(type(record).__name__, []).append(record)
        for name, chosen in by_type.items():
            writer.describe(self.describe(name))
            basis = self._basis(name)
            if name != "Consent":
                # The basis each record carries is the one declared for its kind.
                chosen = [attrs.evolve(r, basis=basis) for r in chosen]
            writer.write_records(self.component, chosen)
        for row_type, rows in self._rows_of(approved.user_id).items():
            chosen_rows = [row for row in rows if row_context(row, approved.user_id) in wanted]
            if chosen_rows:
                writer.describe(self.describe(row_type))
                writer.write_rows(self.component, row_type, chosen_rows)

    def get_users_in_context(self, userlist: UserList) -> None:
        """The live accounts with data in a context, as :meth:`export_user_data` sees them.

        A user context: its account. A course: the accounts enrolled in it or with
        records in it. An activity: the accounts with a grade or completion of it. The
        system context: the accounts with log-in events.
        """
        context = userlist.context
        found: set[str] = set()
        if context.instance_id.isdigit():
            level = int(context.level)
            instance = int(context.instance_id)
            found.update(str(u) for u in self.database.log_users_in(level, instance))
            found.update(str(u) for u in self.database.content_users_in(level, instance))
        if context.level is ContextLevel.USER:
            if self._live_records(context.instance_id):
                found.add(context.instance_id)
            accounts = self.database.users(user_ids=sorted(found, key=int))
            userlist.add_users([str(u.id) for u in accounts if not (u.deleted or u.guest)])
            return
        # Only the rows of this context are read (in SQL, where a source says where its
        # rows are); each record's own context is still checked, as the export checks it.
        # An instance that is no Moodle id has no row: -1 matches none.
        digits = context.instance_id.isascii() and context.instance_id.isdigit()
        instance = int(context.instance_id) if digits else -1
        where = (int(context.level), instance)
        if context.level is ContextLevel.COURSE:
            found.update(str(u) for u, _ in self.database.enrolments(course_id=where[1]))
        for source in RECORD_SOURCES:
            for record in self.database.read(source, context=where):
                if context_of(record) == context:
                    found.add(record.learner_id)
        if context.level in (ContextLevel.COURSE, ContextLevel.MODULE):
            for uid, row in self.database.grades(context=where):
                if row_context(row) == context:
                    found.add(str(uid))
        accounts = self.database.users(user_ids=sorted(found, key=int))
        userlist.add_users([str(u.id) for u in accounts if not (u.deleted or u.guest)])

    def deletion_plan(self, approved: ApprovedContextList) -> dict[str, dict[str, Any]]:
        """What Moodle's own providers would do with the learner's content in ``approved``.

        Read-only: nothing is changed (erase in Moodle, with its data privacy tool). Per
        content kind with rows in the approved contexts: the ``table``, Moodle's
        ``action`` and the number of ``rows``. mod_forum keeps a deleted post's row (the
        thread stays readable) and replaces its subject and text (``"replace text"``);
        mod_assign, mod_quiz, core_badges and the custom profile fields delete the rows
        (``"delete"``). ``Message``: in the conversations
        core_message (own user context) and core_group (course contexts, group
        conversations) act on, the messages the user sent are deleted and the other
        members' stay (``kept``); ``ConversationMember``: the user's memberships of them,
        deleted. ``Note``: core_notes deletes, per approved course, the notes the user
        wrote; the notes others wrote about the user stay (``kept``). ``File``: core_user
        deletes every ``files`` row of component ``user`` in the user's own context
        (private files, drafts, pictures, directory entries), whoever uploaded it; files
        in other activities' areas are left to their components and not counted.
        ``ForumFile``: mod_forum deletes the ``post`` and ``attachment`` files of the
        user's posts in an approved forum (files on others' posts stay). ``ForumDiscussion``
        rows are kept as they are (``"keep"``): mod_forum blanks the posts, not the
        discussions' names.
        """
        if not self._is_live(approved.user_id):
            return {}
        wanted = set(approved)
        rows = self._rows_of(approved.user_id)
        plan: dict[str, dict[str, Any]] = {}
        for source in CONTENT_SOURCES:
            action = _MOODLE_DELETION.get(source.name)
            if action is None:
                continue
            chosen = [r for r in rows[source.name] if row_context(r, approved.user_id) in wanted]
            if chosen:
                plan[source.name] = {"table": source.table, "action": action, "rows": len(chosen)}
        plan.update(self._message_and_note_plan(int(approved.user_id), wanted))
        return plan

    def _message_and_note_plan(
        self, user_id: int, wanted: set[Context]
    ) -> dict[str, dict[str, Any]]:
        from learnprivacy.moodle import _deletion, _deletion_social

        db = self.database
        counts: dict[str, int] = {}
        db.require_tables(*_deletion.MESSAGE_TABLES, *_deletion.NOTE_TABLES, *_deletion.FILE_TABLES)
        statements = {
            **(_deletion.message_plan(db.schema, user_id, wanted) or {}),
            **(_deletion.note_plan(db.schema, user_id, wanted) or {}),
            **(_deletion.file_plan(db.schema, user_id, wanted) or {}),
        }
        if all(db.has_table(name) for name in _deletion.FORUM_FILE_TABLES):
            statements.update(_deletion.forum_file_plan(db.schema, user_id, wanted) or {})
        statements.update(_deletion_social.social_plan(db.schema, user_id, wanted, db.has_table))
        with db.connect() as connection:
            for name, statement in statements.items():
                counts[name] = int(connection.execute(statement).scalar_one())
        plan: dict[str, dict[str, Any]] = {}
        if counts.get("sent") or counts.get("others") or counts.get("members"):
            plan["Message"] = _deleted("messages", counts["sent"], kept=counts["others"])
        if counts.get("members"):
            plan["ConversationMember"] = _deleted("message_conversation_members", counts["members"])
        if counts.get("user_files"):
            plan["File"] = _deleted("files", counts["user_files"], component="user")
        if counts.get("forum_files"):
            plan["ForumFile"] = _deleted("files", counts["forum_files"], component="mod_forum")
        if counts.get("written") or counts.get("about"):
            plan["Note"] = _deleted("post", counts["written"], kept=counts["about"])
        plan.update(_deletion_social.plan_entries(counts))
        return plan

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()

    def delete_data_for_users(self, approved: ApprovedUserList) -> None:
        """Refused: the Moodle adapter is read-only."""
        raise _read_only()


def _deleted(table: str, rows: int, **more: Any) -> dict[str, Any]:
    """A deletion plan entry: ``rows`` of ``table`` Moodle deletes (``kept``: those it
    leaves; ``component``: whose files)."""
    return {"table": table, "action": "delete", "rows": rows, **more}


# What Moodle 4.5's providers do on deletion, per content kind (see deletion_plan).
_MOODLE_DELETION = {
    # mod_forum leaves forum_discussions untouched (it blanks the posts only).
    "ForumDiscussion": "keep",
    "ForumPost": "replace text",
    "AssignSubmission": "delete",
    "AssignGrade": "delete",
    "QuizAttempt": "delete",
    "QuizGrade": "delete",
    # mod_quiz deletes an attempt's question usage with it (core_question's rows).
    "QuizQuestion": "delete",
    # mod_glossary deletes the user's entries with their aliases, category links, tags and
    # every rating of them; the ratings the user gave on others' entries stay.
    "GlossaryEntry": "delete",
    "GlossaryAlias": "delete",
    "GlossaryEntryCategory": "delete",
    "GlossaryRating": "delete",
    "GlossaryTag": "delete",
    "GlossaryRatingGiven": "keep",
    "Badge": "delete",
    "ProfileField": "delete",
}


#: Tables whose rows reach an export only as records: a row skipped there would be missing
#: from it. (Grades, log entries and policy answers are also exported as Moodle's rows.)
_RECORD_ONLY_TABLES = ("course_completions", "course_modules_completion", "customcert_issues")


def _refuse_unexported(issues: ScanIssues, component: str) -> None:
    """Raise ``ProviderError`` when rows of the learner were skipped that no exported file
    carries otherwise: an export without them would be reported complete while it is not.
    The message names tables, row ids and rules, never a value."""
    missing = [i for i in issues if i.skipped and i.table in _RECORD_ONLY_TABLES]
    if not missing:
        return
    listed = "; ".join(f"{i.table} {i.row_id} ({i.rule})" for i in missing)
    raise ProviderError(
        f"{len(missing)} row(s) of the learner cannot be exported as records and no other "
        f"file carries them: {listed}",
        component=component,
    )


def _read_only() -> PolicyError:
    return PolicyError(
        "the Moodle adapter is read-only: erase the data in Moodle (tool_dataprivacy)"
    )


def _in_user_context(record: Any) -> bool:
    return isinstance(record, Learner | Consent)


def _exported_fields(record_type: str) -> dict[str, str]:
    from learnprivacy.records._base import record_type as lookup

    return {f.name: f.description for f in fields_of(lookup(record_type)) if f.exported}


def _default_basis(record_type: str) -> Any:
    from learnprivacy.records._base import record_type as lookup

    return default_basis(lookup(record_type))


def _categories(record_type: str) -> list[DataCategory]:
    from learnprivacy.records._base import record_type as lookup

    infos = [f for f in fields_of(lookup(record_type)) if f.personal and f.exported]
    return list(dict.fromkeys(f.category for f in infos))
