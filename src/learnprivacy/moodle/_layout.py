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

import html
import json
import re
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
# Characters Moodle's writer (clean_param PARAM_PATH) would not keep in a folder name.
_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]+")


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
            return Path(f"System _.{system}") / _safe(
                f"{self._name(*key)} _.{context.level.name.lower()}{context.instance_id}"
            )
        parts = []
        for cid in found[1]:
            level, instance = self._levels.get(cid, key)
            parts.append(_safe(f"{self._name(level, instance)} _.{cid}"))
        return Path(*parts)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip() or "_"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=4, ensure_ascii=False, default=str)
    path.write_text(text, encoding="utf-8")
    # Moodle's bundled index.html loads data.js twins; ours links the JSON files directly.


def _numbered(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(n): row for n, row in enumerate(rows)}


def export_moodle_layout(provider: MoodleProvider, user_id: str, directory: str | Path) -> Path:
    """Write one learner's data into ``directory`` as Moodle's privacy export lays it out.

    Every context :meth:`MoodleProvider.get_contexts_for_userid` returns is approved and
    exported; each record or row goes to its context's folder (:func:`context_of`), in the
    subcontext Moodle uses for it. Returns ``directory``; its ``index.html`` is a tree of
    the contexts linking each ``data.json``.
    """
    root = Path(directory)
    contexts = provider.get_contexts_for_userid(user_id)
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList.approve(user_id, contexts), writer)
    tree = MoodleContextTree(provider)
    files: dict[Path, Any] = {}

    def put(context: Context, subpath: str, data: Any) -> None:
        files[tree.folder(context) / subpath] = data

    def merge(context: Context, subpath: str, key: str, items: list[dict[str, Any]]) -> None:
        path = tree.folder(context) / subpath
        files.setdefault(path, {}).setdefault(key, []).extend(items)

    component = provider.component
    rows = {name: list(found) for (comp, name), found in writer.rows.items() if comp == component}
    for learner in rows.get("Learner", []):
        put(Context.user(user_id), "data.json", learner)
    user_file = tree.folder(Context.user(user_id)) / "data.json"
    for account in rows.get(PROFILE_TYPE, []):
        # Moodle's user data.json is the profile itself; the Learner record sits beside it.
        if user_file in files:
            put(Context.user(user_id), "Learner/data.json", files[user_file])
        put(Context.user(user_id), "data.json", account)
    for event in rows.get("AccessEvent", []):
        merge(Context.system(), "Logs/Access events/data.json", "events", [event])
    for entry in rows.get(LOG_TYPE, []):
        merge(row_context(entry, user_id), "Logs/Standard log/data.json", "logs", [entry])
    by_component: dict[str, dict[str, Any]] = {}
    for preference in rows.get(PREFERENCE_TYPE, []):
        by_component.setdefault(preference["component"], {})[preference["name"]] = {
            "value": preference["value"]
        }
    for component, values in by_component.items():
        put(Context.system(), f"User preferences/{_safe(component)}.json", values)
    for answer in rows.get(ACCEPTANCE_TYPE, []):
        name = f"Policy {answer['policy']} (version {answer['version']})"
        put(
            Context.user(user_id),
            f"Privacy and policies/User agreements/{_safe(name)}/data.json",
            answer,
        )
    for consent in rows.get("Consent", []):
        merge(
            Context.user(user_id), "Privacy and policies/Consents/data.json", "consents", [consent]
        )
    for progress in rows.get("Progress", []):
        if progress.get("activity_id"):
            module = Context.module(progress["activity_id"])
            if progress["id"].startswith("course_modules_completion/"):
                files.setdefault(tree.folder(module) / "data.json", {})["completion"] = progress
            else:
                merge(module, "Grades/data.json", "scores", [progress])
        else:
            merge(
                Context.course(progress["course_id"]),
                "Completion/data.json",
                "completions",
                [progress],
            )
    for certificate in rows.get("Certificate", []):
        merge(
            Context.course(certificate["course_id"]),
            "Certificates/data.json",
            "certificates",
            [certificate],
        )
    for grade in rows.get(GRADE_TYPE, []):
        place = Context.module(grade["activity_id"]) if grade.get("activity_id") else None
        merge(place or Context.course(grade["course_id"]), "Grades/data.json", "grades", [grade])
    _place_content(rows, put, merge, files, tree, user_id)
    by_method: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for enrolment in rows.get(ENROLMENT_TYPE, []):
        by_method.setdefault((enrolment["course_id"], enrolment["method"]), []).append(enrolment)
    for (course, method), found in by_method.items():
        put(Context.course(course), f"Enrolments/{_safe(method)}.json", _numbered(found))
    # Every context folder holds a data.json, as Moodle's does (its own description).
    for context in contexts:
        folder = tree.folder(context)
        files.setdefault(
            folder / "data.json",
            {"context": context.level.name.lower(), "context_id": tree.context_id(context)},
        )
    root.mkdir(parents=True, exist_ok=True)
    for path, data in sorted(files.items()):
        _write_json(root / path, data)
    _write_index(root, sorted(files))
    return root


def _place_content(
    rows: dict[str, list[dict[str, Any]]],
    put: Any,
    merge: Any,
    files: dict[Path, Any],
    tree: MoodleContextTree,
    user_id: str,
) -> None:
    """Forum, assignment and quiz work, messages, files, badges, notes and profile fields.

    Each goes where Moodle's own provider writes it: ``Discussions/<id>-<name>/`` (a post
    in ``<created>-<subject>-<id>/`` inside it), ``attempt <n>/`` with ``Submission Text/``
    and ``grade/`` for an assignment, ``Attempts/<n>/`` for a quiz, ``Messages/``,
    ``Badges/<name>/`` and the profile field type's folder in the user context, ``Notes/``
    in the course. File metadata goes in ``Files/`` of the file's context: the content
    stays in Moodle's file store, which a database reader cannot open.
    """
    me = Context.user(user_id)
    for discussion in rows.get("ForumDiscussion", []):
        module = Context.module(discussion["activity_id"])
        area = _safe(f"{discussion['discussion_id']}-{discussion['name']}")
        put(module, f"Discussions/{area}/data.json", discussion)
    for post in rows.get("ForumPost", []):
        module = Context.module(post["activity_id"])
        area = _safe(f"{post['discussion_id']}-{post['discussion']}")
        created = post["created_at"] or ""
        name = _safe(f"{created[:10]}-{post['subject'] or 'post'}-{post['post_id']}")
        put(module, f"Discussions/{area}/{name}/data.json", post)
    for submission in rows.get("AssignSubmission", []):
        module = Context.module(submission["activity_id"])
        folder = f"attempt {submission['attempt']}"
        text = submission.get("online_text")
        put(
            module,
            f"{folder}/data.json",
            {k: v for k, v in submission.items() if k != "online_text"},
        )
        if text:
            put(module, f"{folder}/Submission Text/data.json", {"text": text})
    for grade in rows.get("AssignGrade", []):
        module = Context.module(grade["activity_id"])
        put(module, f"attempt {grade['attempt']}/grade/data.json", grade)
    for quiz_attempt in rows.get("QuizAttempt", []):
        module = Context.module(quiz_attempt["activity_id"])
        put(module, f"Attempts/{quiz_attempt['attempt']}/data.json", quiz_attempt)
    for grade in rows.get("QuizGrade", []):
        path = tree.folder(Context.module(grade["activity_id"])) / "data.json"
        files.setdefault(path, {})["grade"] = grade
    for message in rows.get("Message", []):
        label = message["conversation"] or f"Conversation {message['conversation_id']}"
        merge(me, f"Messages/{_safe(label)}/data.json", "messages", [message])
    for badge in rows.get("Badge", []):
        put(me, f"Badges/{_safe(badge['badge'])}/data.json", badge)
    for field in rows.get("ProfileField", []):
        label = _PROFILE_FIELD_LABELS.get(field["type"], field["type"])
        path = tree.folder(me) / _safe(label) / "data.json"
        files.setdefault(path, {})[field["field"]] = field
    for note in rows.get("Note", []):
        merge(Context.course(note["course_id"]), "Notes/data.json", "notes", [note])
    for entry in rows.get("File", []):
        context = row_context(entry, user_id)
        merge(context, "Files/data.json", "files", [entry])


def _write_index(root: Path, paths: list[Path]) -> None:
    """A navigable tree of the folders, each file linked (no script needed)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.parts[:-1]:
            node = node.setdefault(part, {})
        node.setdefault("__files__", []).append(path)

    def render(node: dict[str, Any]) -> str:
        items = []
        for name in sorted(k for k in node if k != "__files__"):
            items.append(f"<li><details open><summary>{html.escape(name)}</summary>")
            items.append(render(node[name]) + "</details></li>")
        for path in node.get("__files__", []):
            href = "/".join(path.parts)
            items.append(f'<li><a href="{html.escape(href)}">{html.escape(path.name)}</a></li>')
        return "<ul>" + "".join(items) + "</ul>"

    body = render(tree)
    (root / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Data export</title></head><body><h1>Data export</h1>"
        f"<nav>{body}</nav></body></html>\n",
        encoding="utf-8",
    )
