"""A learner's Moodle data laid out as Moodle's own privacy export lays it out.

Moodle's ``moodle_content_writer`` writes one folder per context, named
``<Level> <name> _.<context id>`` and nested along the context path (system > category >
course > activity; system > user), a ``data.json`` per folder with data and plain
sub-folders for subcontexts (``Grades/``, ``Enrolments/``, ``Logs/Standard log/``,
``Privacy and policies/User agreements/...``), and a navigable ``index.html`` at the root.
:func:`export_moodle_layout` writes what :class:`~learnprivacy.moodle.MoodleProvider`
exports for one learner that way, so a Moodle administrator finds their way in it.

Context ids and paths come from Moodle's ``context`` table; names from ``course``
(full name), ``course_categories`` when the site has it, ``modules`` (activity type) and
the account itself. A context missing from the ``context`` table (a half-deleted course)
is placed directly under the system context with its level and instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._provider import (
    ACCEPTANCE_TYPE,
    ENROLMENT_TYPE,
    GRADE_TYPE,
    LOG_TYPE,
    PREFERENCE_TYPE,
    PROFILE_TYPE,
    MoodleProvider,
    row_context,
)
from learnprivacy.moodle._time import to_unix
from learnprivacy.moodle._writer import MoodleContentWriter, safe_name
from learnprivacy.providers import ApprovedContextList, Context, MemoryWriter

__all__ = ["MoodleContextTree", "export_moodle_layout"]

_LABELS = {
    ContextLevel.SYSTEM: "System",
    ContextLevel.USER: "User",
    ContextLevel.COURSECAT: "Category",
    ContextLevel.COURSE: "Course",
    ContextLevel.BLOCK: "Block",
}
# Moodle's names of activity types (each plugin's "modulename" string), for folder names.
_MODULE_LABELS = {
    "assign": "Assignment",
    "book": "Book",
    "choice": "Choice",
    "customcert": "Custom certificate",
    "data": "Database",
    "feedback": "Feedback",
    "folder": "Folder",
    "forum": "Forum",
    "glossary": "Glossary",
    "h5pactivity": "H5P",
    "lesson": "Lesson",
    "lti": "External tool",
    "page": "Page",
    "quiz": "Quiz",
    "resource": "File",
    "scorm": "SCORM package",
    "url": "URL",
    "wiki": "Wiki",
    "workshop": "Workshop",
}
# Activity types whose instance table (and so whose activities' names) the adapter reads.
_INSTANCE_TABLES = ("assign", "forum", "quiz", "customcert")
# Moodle's names of the custom profile field types (each plugin's "pluginname").
_PROFILE_FIELD_LABELS = {
    "checkbox": "Checkbox",
    "datetime": "Date/Time",
    "menu": "Drop-down menu",
    "social": "Social",
    "text": "Text input",
    "textarea": "Text area",
}


class MoodleContextTree:
    """Moodle's context ids, paths and display names, read once from a site.

    ``folder(context)`` is the relative folder Moodle's export gives a context:
    ``System _.1/Category Category 1 _.3/Course Test course S _.24``.
    """

    def __init__(self, provider: MoodleProvider) -> None:
        db = provider.database
        self._ids: dict[tuple[int, int], tuple[int, list[int]]] = {}
        self._levels: dict[int, tuple[int, int]] = {}
        self._names: dict[tuple[int, int], str] = {}
        schema = db.schema
        with db.connect() as connection:
            if db.has_table("context"):
                ctx = schema["context"]
                rows = connection.execute(
                    sa.select(ctx.c.id, ctx.c.contextlevel, ctx.c.instanceid, ctx.c.path)
                )
                for cid, level, instance, path in rows:
                    chain = [int(p) for p in (path or "").split("/") if p.isdigit()]
                    self._ids[(int(level), int(instance))] = (int(cid), chain or [int(cid)])
                    self._levels[int(cid)] = (int(level), int(instance))
            course = schema["course"]
            for cid, fullname in connection.execute(sa.select(course.c.id, course.c.fullname)):
                self._names[(int(ContextLevel.COURSE), int(cid))] = fullname or str(cid)
            self._modules: dict[int, tuple[str, str | None]] = {}
            if db.has_table("course_modules") and db.has_table("modules"):
                cm, m = schema["course_modules"], schema["modules"]
                statement = sa.select(cm.c.id, m.c.name).select_from(
                    cm.join(m, m.c.id == cm.c.module)
                )
                for cmid, name in connection.execute(statement):
                    self._modules[int(cmid)] = (str(name), None)
                for modname in _INSTANCE_TABLES:
                    if not db.has_table(modname):
                        continue
                    instance = schema[modname]
                    statement = sa.select(cm.c.id, instance.c.name).select_from(
                        cm.join(m, sa.and_(m.c.id == cm.c.module, m.c.name == modname)).join(
                            instance, instance.c.id == cm.c.instance
                        )
                    )
                    for cmid, name in connection.execute(statement):
                        self._modules[int(cmid)] = (modname, name or None)
        self._db = db

    def _name(self, level: int, instance: int) -> str:
        known = self._names.get((level, instance))
        if level == ContextLevel.SYSTEM:
            return "System"
        if level == ContextLevel.MODULE:
            module, name = self._modules.get(instance, ("activity", None))
            label = _MODULE_LABELS.get(module, module.capitalize())
            # Moodle names the folder after the activity's own name (forum.name...); an
            # activity whose module table the adapter does not read is named by its type.
            return f"{label} {name or label}"
        if level == ContextLevel.USER:
            return self._user_name(instance)
        label = _LABELS.get(ContextLevel(level), "Context")
        return f"{label} {known or f'{label} {instance}'}"

    def _user_name(self, instance: int) -> str:
        u = self._db.schema["user"]
        with self._db.connect() as connection:
            row = connection.execute(
                sa.select(u.c.firstname, u.c.lastname).where(u.c.id == instance)
            ).first()
        given, family = (row or ("", ""))[:2]
        return f"User {given} {family}".strip()

    def activity_type(self, cmid: int) -> str | None:
        """The activity's type (``"forum"``), None for an unknown course module."""
        found = self._modules.get(cmid)
        return None if found is None else found[0]

    def course_of(self, cmid: int) -> int | None:
        """The course an activity's context sits in (from its context path), or None."""
        found = self._ids.get((int(ContextLevel.MODULE), cmid))
        for cid in [] if found is None else found[1]:
            level, instance = self._levels.get(cid, (0, 0))
            if level == ContextLevel.COURSE:
                return instance
        return None

    def activity_name(self, cmid: int) -> str | None:
        """The activity's own name (``forum.name``...), None when its table is not read."""
        return self._modules.get(cmid, ("", None))[1]

    def context_id(self, context: Context) -> int | None:
        """Moodle's ``context.id`` for ``context``, None when the site has no such row."""
        found = self._ids.get((int(context.level), int(context.instance_id)))
        return None if found is None else found[0]

    def folder(self, context: Context) -> Path:
        """The folder of ``context`` in Moodle's export, nested along its context path."""
        key = (int(context.level), int(context.instance_id))
        found = self._ids.get(key)
        if found is None:
            system = self._ids.get((int(ContextLevel.SYSTEM), 0), (1, [1]))[0]
            return Path(f"System _.{system}") / safe_name(
                self._name(*key), f" _.{context.level.name.lower()}{context.instance_id}"
            )
        parts = []
        for cid in found[1]:
            level, instance = self._levels.get(cid, key)
            parts.append(safe_name(self._name(level, instance), f" _.{cid}"))
        return Path(*parts)


def _numbered(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(n): row for n, row in enumerate(rows)}


def export_moodle_layout(provider: MoodleProvider, user_id: str, directory: str | Path) -> Path:
    """Write one learner's data into ``directory`` as Moodle's privacy export lays it out.

    Every context :meth:`MoodleProvider.get_contexts_for_userid` returns is approved and
    exported; each record or row goes to its context's folder (:func:`context_of`), in the
    subcontext Moodle uses for it, through Moodle's writer operations
    (:class:`~learnprivacy.moodle._writer.MoodleContentWriter`). Returns ``directory``;
    its ``index.html`` is a tree of the contexts linking each file.
    """
    contexts = provider.get_contexts_for_userid(user_id)
    memory = MemoryWriter()
    provider.export_user_data(ApprovedContextList.approve(user_id, contexts), memory)
    tree = MoodleContextTree(provider)
    writer = MoodleContentWriter(tree)
    component = provider.component
    rows = {name: list(found) for (comp, name), found in memory.rows.items() if comp == component}
    me = writer.with_context(Context.user(user_id))
    system = writer.with_context(Context.system())
    for account in rows.get(PROFILE_TYPE, []):
        # Moodle's user data.json is the profile itself; the Learner record sits beside it.
        me.export_data([], account)
    for learner in rows.get("Learner", []):
        me.export_data(["Learner"] if rows.get(PROFILE_TYPE) else [], learner)
    for event in rows.get("AccessEvent", []):
        system.add_to_data(["Logs", "Access events"], "events", [event])
    for entry in rows.get(LOG_TYPE, []):
        place = writer.with_context(row_context(entry, user_id))
        place.add_to_data(["Logs", "Standard log"], "logs", [entry])
    for preference in rows.get(PREFERENCE_TYPE, []):
        writer.export_user_preference(
            preference["component"],
            preference["name"],
            preference["value"],
            f"The user's preference {preference['name']!r} ({preference['component']})",
        )
    for answer in rows.get(ACCEPTANCE_TYPE, []):
        name = f"Policy {answer['policy']} (version {answer['version']})"
        me.export_data(["Privacy and policies", "User agreements", name], answer)
    for consent in rows.get("Consent", []):
        me.add_to_data(["Privacy and policies", "Consents"], "consents", [consent])
    for progress in rows.get("Progress", []):
        if progress.get("activity_id"):
            module = writer.with_context(Context.module(progress["activity_id"]))
            if progress["id"].startswith("course_modules_completion/"):
                module.set_in_data([], "completion", progress)
            else:
                module.add_to_data(["Grades"], "scores", [progress])
        else:
            course = writer.with_context(Context.course(progress["course_id"]))
            course.add_to_data(["Completion"], "completions", [progress])
    for certificate in rows.get("Certificate", []):
        course = writer.with_context(Context.course(certificate["course_id"]))
        course.add_to_data(["Certificates"], "certificates", [certificate])
    for grade in rows.get(GRADE_TYPE, []):
        place_of = Context.module(grade["activity_id"]) if grade.get("activity_id") else None
        place = writer.with_context(place_of or Context.course(grade["course_id"]))
        place.add_to_data(["Grades"], "grades", [grade])
    discussions = {
        row["discussion_id"] for name in ("ForumPost", *_POST_KINDS) for row in rows.get(name, [])
    }
    post_tree = provider.database.forum_post_tree(discussions)
    _place_content(rows, writer, user_id, post_tree)
    _place_forum_following(rows, writer, post_tree)
    _place_glossary(rows, writer)
    by_method: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for enrolment in rows.get(ENROLMENT_TYPE, []):
        by_method.setdefault((enrolment["course_id"], enrolment["method"]), []).append(enrolment)
    for (course_id, method), found in by_method.items():
        course = writer.with_context(Context.course(course_id))
        course.export_related_data(["Enrolments"], method, _numbered(found))
    for context in contexts:
        place = writer.with_context(context)
        # Every context folder holds a data.json, as Moodle's does (its own description).
        if not place.has_data():
            place.export_data(
                [], {"context": context.level.name.lower(), "context_id": tree.context_id(context)}
            )
        _export_purpose(provider, tree, place)
    return writer.finalise(directory)


#: Rows about one forum post (read marks, ratings, tags), written in the post's folder.
_POST_KINDS = ("ForumRead", "Rating", "PostTag")
#: Forum-wide preferences and the metadata key Moodle's forum provider writes each under.
_FORUM_PREFERENCES = {
    "ForumSubscription": ("subscriptionpreference", "subscribed", "Subscribed to the forum"),
    "ForumDigest": ("digestpreference", "digest", "Mail digest chosen for the forum"),
    "ForumTrackingPreference": (
        "trackreadpreference",
        "tracking",
        "Read tracking of the forum (off: the user turned it off)",
    ),
}


def _place_forum_following(
    rows: dict[str, list[dict[str, Any]]],
    writer: MoodleContentWriter,
    post_tree: dict[str, tuple[str, int, str]],
) -> None:
    """Subscriptions, digest, tracking, read marks, ratings and tags, as mod_forum writes them.

    Forum preferences are the forum folder's metadata (``subscriptionpreference``,
    ``digestpreference``, ``trackreadpreference``); a discussion subscription is its
    discussion folder's ``preference``; in a post's folder, a read mark is the ``postread``
    metadata, ratings the ``rating.json`` related data (core_rating) and tags ``tags.json``
    (core_tag).
    """
    for kind, (key, field, description) in _FORUM_PREFERENCES.items():
        for row in rows.get(kind, []):
            module = writer.with_context(Context.module(row["activity_id"]))
            module.export_metadata([], key, row[field], description)
    for row in rows.get("ForumDiscussionSubscription", []):
        module = writer.with_context(Context.module(row["activity_id"]))
        area = ["Discussions", f"{row['discussion_id']}-{row['discussion']}"]
        module.export_metadata(area, "preference", row, "The user's subscription to it")
    related: dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]] = {}
    for kind in _POST_KINDS:
        for row in rows.get(kind, []):
            area = ["Discussions", f"{row['discussion_id']}-{row['discussion']}"]
            folders = (*area, *_post_folders(row["post_id"], post_tree))
            if kind == "ForumRead":
                module = writer.with_context(Context.module(row["activity_id"]))
                module.export_metadata(folders, "postread", row, "When the user read the post")
            else:
                name = "rating" if kind == "Rating" else "tags"
                related.setdefault((row["activity_id"], folders, name), []).append(row)
    for (activity, folders, name), found in related.items():
        data = _numbered(found) if name == "rating" else [row["tag"] for row in found]
        writer.with_context(Context.module(activity)).export_related_data(folders, name, data)


#: Rows about one glossary entry and the related-data file each is written in.
_ENTRY_KINDS = {
    "GlossaryTag": "tags",
    "GlossaryRating": "rating",
    "GlossaryRatingGiven": "rating",
    "GlossaryAlias": "aliases",
    "GlossaryEntryCategory": "categories",
}


def _place_glossary(rows: dict[str, list[dict[str, Any]]], writer: MoodleContentWriter) -> None:
    """Glossary entries as mod_glossary writes them.

    The user's entries go in the ``entries`` list of the glossary's ``data.json``; in
    ``Entries/<concept> (<id>)/``, tags (``tags.json``, core_tag) and ratings
    (``rating.json``, core_rating), with the entry's aliases and categories beside them.
    """
    for entry in rows.get("GlossaryEntry", []):
        module = writer.with_context(Context.module(entry["activity_id"]))
        module.add_to_data([], "entries", [entry])
    related: dict[tuple[str, tuple[str, ...], str], list[dict[str, Any]]] = {}
    for kind, name in _ENTRY_KINDS.items():
        for row in rows.get(kind, []):
            place = ("Entries", f"{row['concept']} ({row['entry_id']})")
            related.setdefault((row["activity_id"], place, name), []).append(row)
    for (activity, folders, name), found in related.items():
        data: Any = _numbered(found) if name == "rating" else found
        if name == "tags":
            data = [row["tag"] for row in found]
        writer.with_context(Context.module(activity)).export_related_data(folders, name, data)


def _export_purpose(provider: MoodleProvider, tree: MoodleContextTree, place: Any) -> None:
    """The registry's purpose where it applies: a course's own, an activity's own or its type's."""
    context = place.context
    registry = provider.registry
    if context.level is ContextLevel.COURSE:
        purpose = registry.instance_purpose(ContextLevel.COURSE, int(context.instance_id))
    elif context.level is ContextLevel.MODULE:
        cmid = int(context.instance_id)
        module = tree.activity_type(cmid)
        # The activity context's own purpose, its course's when inheriting, else its type's.
        purpose = registry.activity_purpose(cmid, module, tree.course_of(cmid)) if module else None
    else:
        purpose = registry.level_purpose(context.level)
    if purpose is None:
        return
    place.export_metadata([], "purpose", purpose.name, "Purpose of the processing (data registry)")
    basis = purpose.basis
    place.export_metadata(
        [],
        "lawful_basis",
        None if basis is None else basis.moodle_code,
        "Lawful basis of the processing (GDPR Art. 6(1))",
    )
    place.export_metadata(
        [],
        "retention",
        None if purpose.retention is None else str(purpose.retention),
        "How long Moodle keeps the data after the context expires (ISO 8601)",
    )


def _unix(iso: str | None) -> int:
    return to_unix(dt.datetime.fromisoformat(iso)) if iso else 0


def _post_folders(post_id: str, tree: dict[str, tuple[str, int, str]]) -> list[str]:
    """The nested folders of a post: its ancestors' first, each ``<created>-<subject>-<id>``.

    ``created`` is Moodle's Unix time, as in Moodle's export. A loop in broken parent
    links stops at the first post seen twice.
    """
    chain: list[str] = []
    seen: set[str] = set()
    current = post_id
    while current in tree and current not in seen:
        seen.add(current)
        parent, created, subject = tree[current]
        chain.append(f"{created}-{subject}-{current}")
        current = parent
    return list(reversed(chain))


def _place_content(
    rows: dict[str, list[dict[str, Any]]],
    writer: MoodleContentWriter,
    user_id: str,
    post_tree: dict[str, tuple[str, int, str]],
) -> None:
    """Forum, assignment and quiz work, messages, files, badges, notes and profile fields.

    Each goes where Moodle's own provider writes it: ``Discussions/<id>-<name>/`` (a post
    in ``<created>-<subject>-<id>/`` inside it, ``created`` in Unix time, a reply inside
    its parent's folder), ``attempt <n>/`` with ``Submission Text/``
    and ``grade/`` for an assignment, ``Attempts/<n>/`` for a quiz, ``Messages/``,
    ``Badges/<name>/`` and the profile field type's folder in the user context, ``Notes/``
    in the course. File metadata goes in ``_files/<filearea>/files.json`` of the file's
    context: the content stays in Moodle's file store, which a database reader cannot open.
    """
    me = writer.with_context(Context.user(user_id))
    for discussion in rows.get("ForumDiscussion", []):
        module = writer.with_context(Context.module(discussion["activity_id"]))
        area = f"{discussion['discussion_id']}-{discussion['name']}"
        module.export_data(["Discussions", area], discussion)
    for post in rows.get("ForumPost", []):
        module = writer.with_context(Context.module(post["activity_id"]))
        area = f"{post['discussion_id']}-{post['discussion']}"
        folders = _post_folders(post["post_id"], post_tree) or [
            f"{_unix(post['created_at'])}-{post['subject']}-{post['post_id']}"
        ]
        module.export_data(["Discussions", area, *folders], post)
    for submission in rows.get("AssignSubmission", []):
        module = writer.with_context(Context.module(submission["activity_id"]))
        folder = f"attempt {submission['attempt']}"
        text = submission.get("online_text")
        module.export_data([folder], {k: v for k, v in submission.items() if k != "online_text"})
        if text:
            module.export_data([folder, "Submission Text"], {"text": text})
    for grade in rows.get("AssignGrade", []):
        module = writer.with_context(Context.module(grade["activity_id"]))
        module.export_data([f"attempt {grade['attempt']}", "grade"], grade)
    for quiz_attempt in rows.get("QuizAttempt", []):
        module = writer.with_context(Context.module(quiz_attempt["activity_id"]))
        module.export_data(["Attempts", str(quiz_attempt["attempt"])], quiz_attempt)
    for question in rows.get("QuizQuestion", []):
        module = writer.with_context(Context.module(question["activity_id"]))
        folders = ["Attempts", str(question["attempt"]), "Questions", str(question["slot"])]
        module.export_data(folders, question)
    for grade in rows.get("QuizGrade", []):
        writer.with_context(Context.module(grade["activity_id"])).set_in_data([], "grade", grade)
    for message in rows.get("Message", []):
        label = message["conversation"] or f"Conversation {message['conversation_id']}"
        me.add_to_data(["Messages", label], "messages", [message])
    for badge in rows.get("Badge", []):
        me.export_data(["Badges", badge["badge"]], badge)
    for field in rows.get("ProfileField", []):
        label = _PROFILE_FIELD_LABELS.get(field["type"], field["type"])
        me.set_in_data([label], field["field"], field)
    for note in rows.get("Note", []):
        course = writer.with_context(Context.course(note["course_id"]))
        course.add_to_data(["Notes"], "notes", [note])
    for entry in rows.get("File", []):
        place = writer.with_context(row_context(entry, user_id))
        place.export_file_references([], entry["filearea"], [entry])
