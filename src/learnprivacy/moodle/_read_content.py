"""What learners write, submit, attempt, exchange and are given on a Moodle site.

Each :class:`ContentSource` reads one kind of personal data as JSON-ready rows (no
learnprivacy record type holds them), with the keys the provider declares for it:

- ``forum_discussions`` / ``forum_posts`` (mod_forum): discussions the user started and
  every post they wrote, deleted ones flagged (Moodle blanks a deleted post's text);
- ``assign_submission`` (+ ``assignsubmission_onlinetext``) and ``assign_grades``
  (+ ``assignfeedback_comments``): each attempt, its online text, grade and feedback;
- ``quiz_attempts`` and ``quiz_grades`` (mod_quiz): attempt summaries and the final grade;
- ``messages`` in the ``message_conversations`` the user is a member of (core_message);
- ``files``: metadata of the files the user owns (the content lives in moodledata);
- ``badge_issued`` (core_badges), ``post`` where ``module = 'notes'`` (core_notes), and
  ``user_info_data`` (custom profile fields).

Other people appear as flags (``sent_by_you``, ``written_by_you``), never by their ids.
Each row says where it belongs: ``activity_id`` (a course module), ``course_id``, a
Moodle context (``context_level``, ``context_instance``), or the user's own context.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import from_unix_lenient

__all__ = ["CONTENT_SOURCES", "ContentSource"]

Statement = Callable[[MoodleSchema, int], sa.Select[Any]]
Mapper = Callable[[Any, int], dict[str, Any]]
UsersIn = Callable[[MoodleSchema, ContextLevel, int], sa.Select[Any] | None]


@attrs.frozen(kw_only=True)
class ContentSource:
    """One kind of row read for one user, with the fields it is declared with.

    ``reads`` is every table the statements touch; ``optional`` sources belong to
    activity modules a site may lack (nothing then), where a missing core table is an
    error naming it. ``module`` names the activity type whose registry purpose applies.
    ``users_in`` gives the statement selecting the user ids with such rows in a context
    (None when the kind has no rows at that level).
    """

    name: str
    table: str
    reads: tuple[str, ...]
    statement: Statement
    mapper: Mapper
    users_in: UsersIn
    fields: dict[str, str]
    description: str
    summary: str
    level: ContextLevel
    module: str | None = None
    optional: bool = False


def _iso(value: Any) -> str | None:
    at = from_unix_lenient(value)
    return None if at is None else at.isoformat()


def _number(value: Any) -> str | None:
    """An exact decimal as text (JSON has no decimal type), trailing zeros trimmed."""
    if value is None:
        return None
    return format(Decimal(value).normalize(), "f")


def _course_module(schema: MoodleSchema, modname: str, instance: sa.ColumnElement[Any]) -> Any:
    """``course_modules`` and ``modules`` with the join conditions for a ``modname`` activity.

    Returns ``(cm, m, cm_on, m_on)``: join ``cm`` on ``cm_on``, then ``m`` on ``m_on``
    (PostgreSQL refuses a join condition naming a table not joined yet).
    """
    cm, m = schema["course_modules"], schema["modules"]
    return cm, m, cm.c.instance == instance, sa.and_(m.c.id == cm.c.module, m.c.name == modname)


def _in_module(
    schema: MoodleSchema, modname: str, level: ContextLevel, instance: int
) -> tuple[Any, Any, Any] | None:
    """Course module join for ``users_in`` statements (None outside a module context)."""
    if level is not ContextLevel.MODULE:
        return None
    cm, m = schema["course_modules"], schema["modules"]
    return cm, m, sa.and_(cm.c.id == instance, m.c.id == cm.c.module, m.c.name == modname)


def _module_users(
    modname: str, table: str, activity: str, link: str, *, authored_only: bool = False
) -> UsersIn:
    """``users_in`` for rows of ``table`` that name their ``activity`` instance (the
    ``modname`` module's own table) in ``link``: the users of one course module.
    ``authored_only`` leaves out rows no user wrote (``userid`` 0: group submissions)."""

    def users_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
        join = _in_module(schema, modname, level, instance)
        if join is None:
            return None
        rows, parent = schema[table], schema[activity]
        cm, m, on = join
        statement = (
            sa.select(rows.c.userid)
            .select_from(rows.join(parent, parent.c.id == rows.c[link]))
            .join(cm, cm.c.instance == parent.c.id)
            .join(m, on)
        )
        return statement.where(rows.c.userid > 0) if authored_only else statement

    return users_in


# -- mod_forum ------------------------------------------------------------------------


def _discussion_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    d, f = schema["forum_discussions"], schema["forum"]
    cm, m, cm_on, m_on = _course_module(schema, "forum", f.c.id)
    return (
        sa.select(
            cm.c.id, d.c.id, d.c.name, d.c.pinned, d.c.timemodified, d.c.usermodified,
            d.c.timestart, d.c.timeend, d.c.timelocked,
        )
        .select_from(d.join(f, f.c.id == d.c.forum).join(cm, cm_on).join(m, m_on))
        .where(d.c.userid == user_id)
        .order_by(d.c.id)
    )  # fmt: skip


def _discussion_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, did, name, pinned, modified, modifier, start, end, locked = row
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "name": name,
        "pinned": bool(pinned),
        "modified_at": _iso(modified),
        "modified_by_you": modifier == user_id,
        "creator_was_you": True,
        "shown_from": _iso(start),
        "shown_until": _iso(end),
        "locked_at": _iso(locked),
    }


def _post_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    p, d, f = schema["forum_posts"], schema["forum_discussions"], schema["forum"]
    cm, m, cm_on, m_on = _course_module(schema, "forum", f.c.id)
    return (
        sa.select(
            cm.c.id, d.c.id, d.c.name, p.c.id, p.c.parent, p.c.subject, p.c.message,
            p.c.created, p.c.modified, p.c.deleted, p.c.privatereplyto, p.c.wordcount,
        )
        .select_from(
            p.join(d, d.c.id == p.c.discussion)
            .join(f, f.c.id == d.c.forum)
            .join(cm, cm_on)
            .join(m, m_on)
        )
        .where(p.c.userid == user_id)
        .order_by(p.c.id)
    )  # fmt: skip


def _post_row(row: Any, user_id: int) -> dict[str, Any]:
    (cmid, did, discussion, pid, parent, subject, message, created, modified, deleted,
     private, words) = row  # fmt: skip
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "discussion": discussion,
        "post_id": str(pid),
        "parent_id": str(parent) if parent else None,
        "subject": subject,
        "message": message,
        "created_at": _iso(created),
        "modified_at": _iso(modified),
        "deleted": bool(deleted),
        "private_reply": bool(private),
        "word_count": None if words is None else int(words),
        "author_was_you": True,
    }


def _post_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    join = _in_module(schema, "forum", level, instance)
    if join is None:
        return None
    p, d, f = schema["forum_posts"], schema["forum_discussions"], schema["forum"]
    cm, m, on = join
    return (
        sa.select(p.c.userid)
        .select_from(p.join(d, d.c.id == p.c.discussion).join(f, f.c.id == d.c.forum))
        .join(cm, cm.c.instance == f.c.id)
        .join(m, on)
    )


# -- mod_assign -----------------------------------------------------------------------

# assign_submission.status values (ASSIGN_SUBMISSION_STATUS_*).
_SUBMISSION_STATUSES = frozenset({"new", "draft", "submitted", "reopened"})


def _submission_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    s, a = schema["assign_submission"], schema["assign"]
    text = schema["assignsubmission_onlinetext"]
    cm, m, cm_on, m_on = _course_module(schema, "assign", a.c.id)
    return (
        sa.select(
            cm.c.id, s.c.attemptnumber, s.c.status, s.c.latest, s.c.timecreated,
            s.c.timemodified, s.c.timestarted, text.c.onlinetext,
        )
        .select_from(
            s.join(a, a.c.id == s.c.assignment)
            .join(cm, cm_on)
            .join(m, m_on)
            .outerjoin(text, text.c.submission == s.c.id)
        )
        .where(s.c.userid == user_id)
        .order_by(s.c.assignment, s.c.attemptnumber, s.c.id)
    )  # fmt: skip


def _submission_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, attempt, status, latest, created, modified, started, onlinetext = row
    return {
        "activity_id": str(cmid),
        "attempt": int(attempt or 0) + 1,
        "status": status if status in _SUBMISSION_STATUSES else (status or None),
        "latest": bool(latest),
        "created_at": _iso(created),
        "modified_at": _iso(modified),
        "started_at": _iso(started),
        "online_text": onlinetext,
    }


def _assign_grade_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    g, a = schema["assign_grades"], schema["assign"]
    comments = schema["assignfeedback_comments"]
    cm, m, cm_on, m_on = _course_module(schema, "assign", a.c.id)
    return (
        sa.select(
            cm.c.id, g.c.attemptnumber, g.c.grade, a.c.grade, g.c.timecreated, g.c.timemodified,
            comments.c.commenttext,
        )
        .select_from(
            g.join(a, a.c.id == g.c.assignment)
            .join(cm, cm_on)
            .join(m, m_on)
            .outerjoin(comments, comments.c.grade == g.c.id)
        )
        .where(g.c.userid == user_id)
        .order_by(g.c.assignment, g.c.attemptnumber, g.c.id)
    )  # fmt: skip


def _assign_grade_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, attempt, grade, maximum, created, modified, feedback = row
    # -1 is Moodle's "not graded yet"; a negative assign.grade is a scale (its id).
    graded = grade is not None and Decimal(grade) >= 0
    return {
        "activity_id": str(cmid),
        "attempt": int(attempt or 0) + 1,
        "grade": _number(grade) if graded else None,
        "max_grade": str(maximum) if maximum and maximum > 0 else None,
        "created_at": _iso(created),
        "modified_at": _iso(modified),
        "feedback": feedback or None,
    }


# -- mod_quiz -------------------------------------------------------------------------


def _attempt_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    t, q = schema["quiz_attempts"], schema["quiz"]
    cm, m, cm_on, m_on = _course_module(schema, "quiz", q.c.id)
    return (
        sa.select(
            cm.c.id, t.c.attempt, t.c.state, t.c.preview, t.c.timestart, t.c.timefinish,
            t.c.timemodified, t.c.sumgrades, q.c.sumgrades, q.c.grade,
        )
        .select_from(t.join(q, q.c.id == t.c.quiz).join(cm, cm_on).join(m, m_on))
        .where(t.c.userid == user_id)
        .order_by(t.c.quiz, t.c.attempt, t.c.id)
    )  # fmt: skip


def _attempt_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, attempt, state, preview, start, finish, modified, marks, total, scale_to = row
    grade = None
    if marks is not None and total and Decimal(total) > 0:
        # Moodle's quiz_rescale_grade: marks over the quiz's total, times its maximum grade.
        grade = _number(round(Decimal(marks) / Decimal(total) * Decimal(scale_to), 5))
    return {
        "activity_id": str(cmid),
        "attempt": int(attempt),
        "state": state,
        "preview": bool(preview),
        "started_at": _iso(start),
        "finished_at": _iso(finish),
        "modified_at": _iso(modified),
        "marks": _number(marks),
        "max_marks": _number(total),
        "grade": grade,
        "max_grade": _number(scale_to),
    }


def _quiz_grade_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    g, q = schema["quiz_grades"], schema["quiz"]
    cm, m, cm_on, m_on = _course_module(schema, "quiz", q.c.id)
    return (
        sa.select(cm.c.id, g.c.grade, q.c.grade, g.c.timemodified)
        .select_from(g.join(q, q.c.id == g.c.quiz).join(cm, cm_on).join(m, m_on))
        .where(g.c.userid == user_id)
        .order_by(g.c.quiz, g.c.id)
    )


def _quiz_grade_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, grade, maximum, modified = row
    return {
        "activity_id": str(cmid),
        "grade": _number(grade),
        "max_grade": _number(maximum),
        "modified_at": _iso(modified),
    }


# -- core_message ---------------------------------------------------------------------

# message_conversations.type (\core_message\api::MESSAGE_CONVERSATION_TYPE_*).
_CONVERSATION_TYPES = {1: "individual", 2: "group", 3: "self"}


def _message_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    msg, conv = schema["messages"], schema["message_conversations"]
    member = schema["message_conversation_members"]
    return (
        sa.select(
            conv.c.id, conv.c.type, conv.c.name, msg.c.id, msg.c.useridfrom, msg.c.subject,
            msg.c.fullmessage, msg.c.smallmessage, msg.c.timecreated,
        )
        .select_from(
            msg.join(conv, conv.c.id == msg.c.conversationid).join(
                member,
                sa.and_(member.c.conversationid == conv.c.id, member.c.userid == user_id),
            )
        )
        .order_by(conv.c.id, msg.c.timecreated, msg.c.id)
    )  # fmt: skip


def _message_row(row: Any, user_id: int) -> dict[str, Any]:
    cid, kind, name, mid, sender, subject, full, small, created = row
    return {
        "conversation_id": str(cid),
        "conversation": name or None,
        "conversation_type": _CONVERSATION_TYPES.get(int(kind or 0), "other"),
        "message_id": str(mid),
        "sent_by_you": sender == user_id,
        "subject": subject or None,
        "text": full or small or "",
        "sent_at": _iso(created),
    }


def _member_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    if level is not ContextLevel.USER:
        return None
    member = schema["message_conversation_members"]
    return sa.select(member.c.userid).where(member.c.userid == instance)


# -- core_files -----------------------------------------------------------------------


def _file_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    f, ctx = schema["files"], schema["context"]
    return (
        sa.select(
            ctx.c.contextlevel, ctx.c.instanceid, f.c.component, f.c.filearea, f.c.itemid,
            f.c.filepath, f.c.filename, f.c.filesize, f.c.mimetype, f.c.author, f.c.license,
            f.c.timecreated, f.c.timemodified,
        )
        .select_from(f.join(ctx, ctx.c.id == f.c.contextid))
        # "." rows are the directory entries Moodle's file API keeps for every area.
        .where(f.c.userid == user_id, f.c.filename != ".")
        .order_by(f.c.contextid, f.c.component, f.c.filearea, f.c.itemid, f.c.id)
    )  # fmt: skip


def _file_row(row: Any, user_id: int) -> dict[str, Any]:
    (level, instance, component, area, item, path, name, size, mimetype, author, licence,
     created, modified) = row  # fmt: skip
    return {
        "context_level": int(level),
        "context_instance": str(instance),
        "component": component,
        "filearea": area,
        "item_id": str(item),
        "path": f"{path or '/'}{name}",
        "filename": name,
        "size": int(size or 0),
        "mimetype": mimetype,
        "author": author or None,
        "license": licence or None,
        "created_at": _iso(created),
        "modified_at": _iso(modified),
    }


def _file_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    f, ctx = schema["files"], schema["context"]
    return (
        sa.select(f.c.userid)
        .select_from(f.join(ctx, ctx.c.id == f.c.contextid))
        .where(
            ctx.c.contextlevel == int(level),
            ctx.c.instanceid == instance,
            f.c.filename != ".",
            f.c.userid.is_not(None),
        )
    )


# -- core_badges ----------------------------------------------------------------------


def _badge_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    issued, badge = schema["badge_issued"], schema["badge"]
    return (
        sa.select(
            badge.c.name, badge.c.description, badge.c.courseid, badge.c.issuername,
            issued.c.dateissued, issued.c.dateexpire, issued.c.visible,
        )
        .select_from(issued.join(badge, badge.c.id == issued.c.badgeid))
        .where(issued.c.userid == user_id)
        .order_by(issued.c.dateissued, issued.c.id)
    )  # fmt: skip


def _badge_row(row: Any, user_id: int) -> dict[str, Any]:
    name, description, course, issuer, issued, expires, visible = row
    return {
        "badge": name,
        "description": description or None,
        "course_id": str(course) if course else None,
        "issuer": issuer or None,
        "issued_at": _iso(issued),
        "expires_at": _iso(expires),
        "shown_on_profile": bool(visible),
    }


def _own_users(table: str, column: str) -> UsersIn:
    def users_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
        if level is not ContextLevel.USER:
            return None
        t = schema[table]
        return sa.select(t.c[column]).where(t.c[column] == instance)

    return users_in


# -- core_notes -----------------------------------------------------------------------

# Notes only their author sees ("personal" notes) are the author's, not the subject's.
_SHARED_NOTES = ("public", "site")


def _note_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    post = schema["post"]
    return (
        sa.select(
            post.c.courseid, post.c.userid, post.c.usermodified, post.c.content,
            post.c.publishstate, post.c.created, post.c.lastmodified,
        )
        .where(
            post.c.module == "notes",
            sa.or_(
                sa.and_(post.c.userid == user_id, post.c.publishstate.in_(_SHARED_NOTES)),
                post.c.usermodified == user_id,
            ),
        )
        .order_by(post.c.courseid, post.c.id)
    )  # fmt: skip


_NOTE_STATES = {"draft": "personal", "public": "course", "site": "site"}


def _note_row(row: Any, user_id: int) -> dict[str, Any]:
    course, about, author, content, state, created, modified = row
    return {
        "course_id": str(course),
        "about_you": about == user_id,
        "written_by_you": author == user_id,
        "content": content or "",
        "visibility": _NOTE_STATES.get(state, state),
        "created_at": _iso(created),
        "modified_at": _iso(modified),
    }


def _note_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    if level is not ContextLevel.COURSE:
        return None
    post = schema["post"]
    about = sa.select(post.c.userid).where(
        post.c.module == "notes",
        post.c.courseid == instance,
        post.c.publishstate.in_(_SHARED_NOTES),
    )
    written = sa.select(post.c.usermodified).where(
        post.c.module == "notes", post.c.courseid == instance
    )
    return sa.union(about, written)


# -- custom profile fields ------------------------------------------------------------


def _field_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    data, field = schema["user_info_data"], schema["user_info_field"]
    return (
        sa.select(field.c.shortname, field.c.name, field.c.datatype, field.c.description,
                  data.c.data)
        .select_from(data.join(field, field.c.id == data.c.fieldid))
        .where(data.c.userid == user_id)
        .order_by(field.c.sortorder, field.c.id)
    )  # fmt: skip


def _field_row(row: Any, user_id: int) -> dict[str, Any]:
    shortname, name, datatype, description, value = row
    return {
        "field": shortname,
        "name": name,
        "type": datatype,
        "description": description or None,
        "data": value,
    }


_ACTIVITY = ("course_modules", "modules")

#: Every content source, in the order the provider exports them.
CONTENT_SOURCES: tuple[ContentSource, ...] = (
    ContentSource(
        name="ForumDiscussion",
        table="forum_discussions",
        reads=("forum_discussions", "forum", *_ACTIVITY),
        statement=_discussion_statement,
        mapper=_discussion_row,
        users_in=_module_users("forum", "forum_discussions", "forum", "forum"),
        fields={
            "activity_id": "Forum (course module) of the discussion",
            "discussion_id": "Id of the discussion",
            "name": "Discussion name",
            "pinned": "Whether the discussion is pinned",
            "modified_at": "When the discussion last changed",
            "modified_by_you": "Whether the user made the last change",
            "creator_was_you": "Whether the user started the discussion",
            "shown_from": "When the discussion is shown from",
            "shown_until": "When the discussion is shown until",
            "locked_at": "When the discussion was locked",
        },
        description="Forum discussions the user started",
        summary="Moodle's forum_discussions table, exported as ForumDiscussion rows",
        level=ContextLevel.MODULE,
        module="forum",
        optional=True,
    ),
    ContentSource(
        name="ForumPost",
        table="forum_posts",
        reads=("forum_posts", "forum_discussions", "forum", *_ACTIVITY),
        statement=_post_statement,
        mapper=_post_row,
        users_in=_post_users,
        fields={
            "activity_id": "Forum (course module) of the post",
            "discussion_id": "Id of the discussion",
            "discussion": "Discussion name",
            "post_id": "Id of the post",
            "parent_id": "Post replied to",
            "subject": "Subject",
            "message": "Message",
            "created_at": "When the post was written",
            "modified_at": "When the post was last edited",
            "deleted": "Whether the post was deleted (Moodle blanks its text)",
            "private_reply": "Whether the post is a private reply",
            "word_count": "Number of words",
            "author_was_you": "Whether the user wrote the post",
        },
        description="Forum posts the user wrote",
        summary="Moodle's forum_posts table, exported as ForumPost rows",
        level=ContextLevel.MODULE,
        module="forum",
        optional=True,
    ),
    ContentSource(
        name="AssignSubmission",
        table="assign_submission",
        reads=("assign_submission", "assign", "assignsubmission_onlinetext", *_ACTIVITY),
        statement=_submission_statement,
        mapper=_submission_row,
        users_in=_module_users(
            "assign", "assign_submission", "assign", "assignment", authored_only=True
        ),
        fields={
            "activity_id": "Assignment (course module)",
            "attempt": "Attempt number (from 1)",
            "status": "Submission status (new, draft, submitted, reopened)",
            "latest": "Whether this is the latest attempt",
            "created_at": "When the submission was created",
            "modified_at": "When the submission last changed",
            "started_at": "When the user started it (timed assignments)",
            "online_text": "Text submitted online",
        },
        description="Assignment submissions, with the text submitted online",
        summary="Moodle's assign_submission and assignsubmission_onlinetext tables, "
        "exported as AssignSubmission rows",
        level=ContextLevel.MODULE,
        module="assign",
        optional=True,
    ),
    ContentSource(
        name="AssignGrade",
        table="assign_grades",
        reads=("assign_grades", "assign", "assignfeedback_comments", *_ACTIVITY),
        statement=_assign_grade_statement,
        mapper=_assign_grade_row,
        users_in=_module_users("assign", "assign_grades", "assign", "assignment"),
        fields={
            "activity_id": "Assignment (course module)",
            "attempt": "Attempt number (from 1)",
            "grade": "Grade given (None until graded)",
            "max_grade": "Maximum grade (None for a scale)",
            "created_at": "When the grade was created",
            "modified_at": "When the grade last changed",
            "feedback": "The teacher's feedback comments",
        },
        description="Assignment grades and feedback comments",
        summary="Moodle's assign_grades and assignfeedback_comments tables, "
        "exported as AssignGrade rows",
        level=ContextLevel.MODULE,
        module="assign",
        optional=True,
    ),
    ContentSource(
        name="QuizAttempt",
        table="quiz_attempts",
        reads=("quiz_attempts", "quiz", *_ACTIVITY),
        statement=_attempt_statement,
        mapper=_attempt_row,
        users_in=_module_users("quiz", "quiz_attempts", "quiz", "quiz"),
        fields={
            "activity_id": "Quiz (course module)",
            "attempt": "Attempt number",
            "state": "inprogress, overdue, finished or abandoned",
            "preview": "Whether it was a preview",
            "started_at": "When the attempt started",
            "finished_at": "When it was submitted",
            "modified_at": "When it last changed",
            "marks": "Marks obtained",
            "max_marks": "Marks available",
            "grade": "Grade of the attempt, on the quiz's scale",
            "max_grade": "Maximum grade of the quiz",
        },
        description="Quiz attempts (summaries: state, dates, marks, grade)",
        summary="Moodle's quiz_attempts table, exported as QuizAttempt rows",
        level=ContextLevel.MODULE,
        module="quiz",
        optional=True,
    ),
    ContentSource(
        name="QuizGrade",
        table="quiz_grades",
        reads=("quiz_grades", "quiz", *_ACTIVITY),
        statement=_quiz_grade_statement,
        mapper=_quiz_grade_row,
        users_in=_module_users("quiz", "quiz_grades", "quiz", "quiz"),
        fields={
            "activity_id": "Quiz (course module)",
            "grade": "Final grade of the quiz",
            "max_grade": "Maximum grade",
            "modified_at": "When it last changed",
        },
        description="Final quiz grades",
        summary="Moodle's quiz_grades table, exported as QuizGrade rows",
        level=ContextLevel.MODULE,
        module="quiz",
        optional=True,
    ),
    ContentSource(
        name="Message",
        table="messages",
        reads=("messages", "message_conversations", "message_conversation_members"),
        statement=_message_statement,
        mapper=_message_row,
        users_in=_member_users,
        fields={
            "conversation_id": "Id of the conversation",
            "conversation": "Name of a group conversation",
            "conversation_type": "individual, group or self",
            "message_id": "Id of the message",
            "sent_by_you": "Whether the user sent the message",
            "subject": "Subject",
            "text": "Message text",
            "sent_at": "When it was sent",
        },
        description="Messages of the conversations the user is a member of",
        summary="Moodle's messages, message_conversations and message_conversation_members "
        "tables, exported as Message rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="File",
        table="files",
        reads=("files", "context"),
        statement=_file_statement,
        mapper=_file_row,
        users_in=_file_users,
        fields={
            "context_level": "Level of the Moodle context the file is in",
            "context_instance": "Instance of that context",
            "component": "Component owning the file",
            "filearea": "File area",
            "item_id": "Item the file belongs to",
            "path": "Path of the file in its area",
            "filename": "File name",
            "size": "Size in bytes",
            "mimetype": "Type of content",
            "author": "Author recorded with the file",
            "license": "Licence recorded with the file",
            "created_at": "When the file was created",
            "modified_at": "When it last changed",
        },
        description="Files the user uploaded (metadata: the content stays in Moodle)",
        summary="Moodle's files table (metadata only), exported as File rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="Badge",
        table="badge_issued",
        reads=("badge_issued", "badge"),
        statement=_badge_statement,
        mapper=_badge_row,
        users_in=_own_users("badge_issued", "userid"),
        fields={
            "badge": "Badge name",
            "description": "Badge description",
            "course_id": "Course of a course badge",
            "issuer": "Issuer",
            "issued_at": "When it was issued",
            "expires_at": "When it expires",
            "shown_on_profile": "Whether the user shows it on their profile",
        },
        description="Badges issued to the user",
        summary="Moodle's badge_issued and badge tables, exported as Badge rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="Note",
        table="post",
        reads=("post",),
        statement=_note_statement,
        mapper=_note_row,
        users_in=_note_users,
        fields={
            "course_id": "Course of the note",
            "about_you": "Whether the note is about the user",
            "written_by_you": "Whether the user wrote it",
            "content": "Text of the note",
            "visibility": "personal, course or site",
            "created_at": "When it was written",
            "modified_at": "When it last changed",
        },
        description="Notes about the user shared in a course or site-wide, and notes "
        "the user wrote",
        summary="Moodle's post table (module 'notes'), exported as Note rows",
        level=ContextLevel.COURSE,
    ),
    ContentSource(
        name="ProfileField",
        table="user_info_data",
        reads=("user_info_data", "user_info_field"),
        statement=_field_statement,
        mapper=_field_row,
        users_in=_own_users("user_info_data", "userid"),
        fields={
            "field": "Short name of the custom profile field",
            "name": "Name of the field",
            "type": "Kind of field (text, menu, checkbox, datetime, textarea...)",
            "description": "Description of the field",
            "data": "The user's value",
        },
        description="Custom profile fields",
        summary="Moodle's user_info_data and user_info_field tables, exported as ProfileField rows",
        level=ContextLevel.USER,
    ),
)

# Forum following, read marks, ratings and tags (mod_forum, core_rating, core_tag), and the
# questions of quiz attempts (core_question), and glossary entries (mod_glossary).
from learnprivacy.moodle._read_glossary import GLOSSARY_SOURCES  # noqa: E402
from learnprivacy.moodle._read_questions import QUESTION_SOURCES  # noqa: E402
from learnprivacy.moodle._read_social import SOCIAL_SOURCES  # noqa: E402

CONTENT_SOURCES = (*CONTENT_SOURCES, *SOCIAL_SOURCES, *QUESTION_SOURCES, *GLOSSARY_SOURCES)
