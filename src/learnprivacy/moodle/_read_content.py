"""What learners write, submit, attempt, exchange and are given on a Moodle site.

Each :class:`~._content.ContentSource` reads one kind of personal data as JSON-ready rows
(no learnprivacy record type holds them), declared by the fields it exports:

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

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._content import (
    ACTIVITY,
    ContentSource,
    Field,
    activity_rows,
    activity_source,
    always,
    decimal_text,
    flag,
    ident,
    in_activity,
    module_users,
    number,
    or_none,
    read,
    same,
    when,
    whole,
    yours,
)
from learnprivacy.moodle._read_glossary import GLOSSARY_SOURCES
from learnprivacy.moodle._read_questions import QUESTION_SOURCES
from learnprivacy.moodle._read_social import SOCIAL_SOURCES
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["CONTENT_SOURCES", "ContentSource"]


def _id_or_none(value: Any) -> str | None:
    """An optional id (Moodle writes 0 for none), as text."""
    return str(value) if value else None


def _from_one(attempt: Any) -> int:
    """Moodle's attempt number (from 0) counted from 1."""
    return int(attempt or 0) + 1


# -- mod_forum ------------------------------------------------------------------------


def _discussions(schema: MoodleSchema, user_id: int) -> Any:
    joined, d, _, cm = activity_rows(schema, "forum", "forum_discussions", "forum")
    return {"cm": cm, "d": d}, (
        sa.select().select_from(joined).where(d.c.userid == user_id).order_by(d.c.id)
    )


_DISCUSSION: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Forum (course module) of the discussion"),
    ("discussion_id", ident("d.id"), "Id of the discussion"),
    ("name", same("d.name"), "Discussion name"),
    ("pinned", flag("d.pinned"), "Whether the discussion is pinned"),
    ("modified_at", when("d.timemodified"), "When the discussion last changed"),
    ("modified_by_you", yours("d.usermodified"), "Whether the user made the last change"),
    ("creator_was_you", always(True), "Whether the user started the discussion"),
    ("shown_from", when("d.timestart"), "When the discussion is shown from"),
    ("shown_until", when("d.timeend"), "When the discussion is shown until"),
    ("locked_at", when("d.timelocked"), "When the discussion was locked"),
)


def _posts(schema: MoodleSchema, user_id: int) -> Any:
    p, d, f = schema["forum_posts"], schema["forum_discussions"], schema["forum"]
    posts = p.join(d, d.c.id == p.c.discussion).join(f, f.c.id == d.c.forum)
    joined, cm = in_activity(schema, "forum", posts, f.c.id)
    return {"cm": cm, "d": d, "p": p}, (
        sa.select().select_from(joined).where(p.c.userid == user_id).order_by(p.c.id)
    )


def _whole_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


_POST: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Forum (course module) of the post"),
    ("discussion_id", ident("d.id"), "Id of the discussion"),
    ("discussion", same("d.name"), "Discussion name"),
    ("post_id", ident("p.id"), "Id of the post"),
    ("parent_id", read(_id_or_none, "p.parent"), "Post replied to"),
    ("subject", same("p.subject"), "Subject"),
    ("message", same("p.message"), "Message"),
    ("created_at", when("p.created"), "When the post was written"),
    ("modified_at", when("p.modified"), "When the post was last edited"),
    ("deleted", flag("p.deleted"), "Whether the post was deleted (Moodle blanks its text)"),
    ("private_reply", flag("p.privatereplyto"), "Whether the post is a private reply"),
    ("word_count", read(_whole_or_none, "p.wordcount"), "Number of words"),
    ("author_was_you", always(True), "Whether the user wrote the post"),
)


def _post_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    if level is not ContextLevel.MODULE:
        return None
    p, d, f = schema["forum_posts"], schema["forum_discussions"], schema["forum"]
    posts = p.join(d, d.c.id == p.c.discussion).join(f, f.c.id == d.c.forum)
    joined, cm = in_activity(schema, "forum", posts, f.c.id)
    return sa.select(p.c.userid).select_from(joined).where(cm.c.id == instance)


# -- mod_assign -----------------------------------------------------------------------


def _submissions(schema: MoodleSchema, user_id: int) -> Any:
    joined, s, _, cm = activity_rows(schema, "assign", "assign_submission", "assignment")
    text = schema["assignsubmission_onlinetext"]
    return {"cm": cm, "s": s, "text": text}, (
        sa.select()
        .select_from(joined.outerjoin(text, text.c.submission == s.c.id))
        .where(s.c.userid == user_id)
        .order_by(s.c.assignment, s.c.attemptnumber, s.c.id)
    )


_SUBMISSION: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Assignment (course module)"),
    ("attempt", read(_from_one, "s.attemptnumber"), "Attempt number (from 1)"),
    ("status", or_none("s.status"), "Submission status (new, draft, submitted, reopened)"),
    ("latest", flag("s.latest"), "Whether this is the latest attempt"),
    ("created_at", when("s.timecreated"), "When the submission was created"),
    ("modified_at", when("s.timemodified"), "When the submission last changed"),
    ("started_at", when("s.timestarted"), "When the user started it (timed assignments)"),
    ("online_text", same("text.onlinetext"), "Text submitted online"),
)


def _assign_grades(schema: MoodleSchema, user_id: int) -> Any:
    joined, g, a, cm = activity_rows(schema, "assign", "assign_grades", "assignment")
    comments = schema["assignfeedback_comments"]
    return {"cm": cm, "g": g, "a": a, "comments": comments}, (
        sa.select()
        .select_from(joined.outerjoin(comments, comments.c.grade == g.c.id))
        .where(g.c.userid == user_id)
        .order_by(g.c.assignment, g.c.attemptnumber, g.c.id)
    )


def _assign_grade(grade: Any) -> str | None:
    # -1 is Moodle's "not graded yet".
    return decimal_text(grade) if grade is not None and Decimal(grade) >= 0 else None


def _assign_maximum(maximum: Any) -> str | None:
    # A negative assign.grade is a scale (its id).
    return str(maximum) if maximum and maximum > 0 else None


_ASSIGN_GRADE: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Assignment (course module)"),
    ("attempt", read(_from_one, "g.attemptnumber"), "Attempt number (from 1)"),
    ("grade", read(_assign_grade, "g.grade"), "Grade given (None until graded)"),
    ("max_grade", read(_assign_maximum, "a.grade"), "Maximum grade (None for a scale)"),
    ("created_at", when("g.timecreated"), "When the grade was created"),
    ("modified_at", when("g.timemodified"), "When the grade last changed"),
    ("feedback", or_none("comments.commenttext"), "The teacher's feedback comments"),
)


# -- mod_quiz -------------------------------------------------------------------------


def _attempts(schema: MoodleSchema, user_id: int) -> Any:
    joined, t, q, cm = activity_rows(schema, "quiz", "quiz_attempts", "quiz")
    return {"cm": cm, "t": t, "q": q}, (
        sa.select()
        .select_from(joined)
        .where(t.c.userid == user_id)
        .order_by(t.c.quiz, t.c.attempt, t.c.id)
    )


def _rescaled(marks: Any, total: Any, scale_to: Any) -> str | None:
    """Moodle's quiz_rescale_grade: marks over the quiz's total, times its maximum grade."""
    if marks is None or not total or Decimal(total) <= 0:
        return None
    return decimal_text(round(Decimal(marks) / Decimal(total) * Decimal(scale_to), 5))


_ATTEMPT: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Quiz (course module)"),
    ("attempt", whole("t.attempt"), "Attempt number"),
    ("state", same("t.state"), "inprogress, overdue, finished or abandoned"),
    ("preview", flag("t.preview"), "Whether it was a preview"),
    ("started_at", when("t.timestart"), "When the attempt started"),
    ("finished_at", when("t.timefinish"), "When it was submitted"),
    ("modified_at", when("t.timemodified"), "When it last changed"),
    ("marks", number("t.sumgrades"), "Marks obtained"),
    ("max_marks", number("q.sumgrades"), "Marks available"),
    (
        "grade",
        read(_rescaled, "t.sumgrades", "q.sumgrades", "q.grade"),
        "Grade of the attempt, on the quiz's scale",
    ),
    ("max_grade", number("q.grade"), "Maximum grade of the quiz"),
)


def _quiz_grades(schema: MoodleSchema, user_id: int) -> Any:
    joined, g, q, cm = activity_rows(schema, "quiz", "quiz_grades", "quiz")
    return {"cm": cm, "g": g, "q": q}, (
        sa.select().select_from(joined).where(g.c.userid == user_id).order_by(g.c.quiz, g.c.id)
    )


_QUIZ_GRADE: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Quiz (course module)"),
    ("grade", number("g.grade"), "Final grade of the quiz"),
    ("max_grade", number("q.grade"), "Maximum grade"),
    ("modified_at", when("g.timemodified"), "When it last changed"),
)


# -- core_message ---------------------------------------------------------------------


def _messages(schema: MoodleSchema, user_id: int) -> Any:
    msg, conv = schema["messages"], schema["message_conversations"]
    member = schema["message_conversation_members"]
    mine = sa.and_(member.c.conversationid == conv.c.id, member.c.userid == user_id)
    return {"conv": conv, "msg": msg}, (
        sa.select()
        .select_from(msg.join(conv, conv.c.id == msg.c.conversationid).join(member, mine))
        .order_by(conv.c.id, msg.c.timecreated, msg.c.id)
    )


# message_conversations.type (\core_message\api::MESSAGE_CONVERSATION_TYPE_*).
_CONVERSATION_TYPES = {1: "individual", 2: "group", 3: "self"}


def _conversation_type(kind: Any) -> str:
    return _CONVERSATION_TYPES.get(int(kind or 0), "other")


def _message_text(full: Any, small: Any) -> str:
    return full or small or ""


_MESSAGE: tuple[Field, ...] = (
    ("conversation_id", ident("conv.id"), "Id of the conversation"),
    ("conversation", or_none("conv.name"), "Name of a group conversation"),
    ("conversation_type", read(_conversation_type, "conv.type"), "individual, group or self"),
    ("message_id", ident("msg.id"), "Id of the message"),
    ("sent_by_you", yours("msg.useridfrom"), "Whether the user sent the message"),
    ("subject", or_none("msg.subject"), "Subject"),
    ("text", read(_message_text, "msg.fullmessage", "msg.smallmessage"), "Message text"),
    ("sent_at", when("msg.timecreated"), "When it was sent"),
)


def _member_users(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    if level is not ContextLevel.USER:
        return None
    member = schema["message_conversation_members"]
    return sa.select(member.c.userid).where(member.c.userid == instance)


# -- core_files -----------------------------------------------------------------------


def _files(schema: MoodleSchema, user_id: int) -> Any:
    f, ctx = schema["files"], schema["context"]
    return {"f": f, "ctx": ctx}, (
        sa.select()
        .select_from(f.join(ctx, ctx.c.id == f.c.contextid))
        # "." rows are the directory entries Moodle's file API keeps for every area.
        .where(f.c.userid == user_id, f.c.filename != ".")
        .order_by(f.c.contextid, f.c.component, f.c.filearea, f.c.itemid, f.c.id)
    )


def _path(path: Any, name: Any) -> str:
    return f"{path or '/'}{name}"


def _size(size: Any) -> int:
    return int(size or 0)


_FILE: tuple[Field, ...] = (
    ("context_level", whole("ctx.contextlevel"), "Level of the Moodle context the file is in"),
    ("context_instance", ident("ctx.instanceid"), "Instance of that context"),
    ("component", same("f.component"), "Component owning the file"),
    ("filearea", same("f.filearea"), "File area"),
    ("item_id", ident("f.itemid"), "Item the file belongs to"),
    ("path", read(_path, "f.filepath", "f.filename"), "Path of the file in its area"),
    ("filename", same("f.filename"), "File name"),
    ("size", read(_size, "f.filesize"), "Size in bytes"),
    ("mimetype", same("f.mimetype"), "Type of content"),
    ("author", or_none("f.author"), "Author recorded with the file"),
    ("license", or_none("f.license"), "Licence recorded with the file"),
    ("created_at", when("f.timecreated"), "When the file was created"),
    ("modified_at", when("f.timemodified"), "When it last changed"),
)


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


def _badges(schema: MoodleSchema, user_id: int) -> Any:
    issued, badge = schema["badge_issued"], schema["badge"]
    return {"issued": issued, "badge": badge}, (
        sa.select()
        .select_from(issued.join(badge, badge.c.id == issued.c.badgeid))
        .where(issued.c.userid == user_id)
        .order_by(issued.c.dateissued, issued.c.id)
    )


_BADGE: tuple[Field, ...] = (
    ("badge", same("badge.name"), "Badge name"),
    ("description", or_none("badge.description"), "Badge description"),
    ("course_id", read(_id_or_none, "badge.courseid"), "Course of a course badge"),
    ("issuer", or_none("badge.issuername"), "Issuer"),
    ("issued_at", when("issued.dateissued"), "When it was issued"),
    ("expires_at", when("issued.dateexpire"), "When it expires"),
    ("shown_on_profile", flag("issued.visible"), "Whether the user shows it on their profile"),
)


def _own_users(table: str, column: str) -> Any:
    def users_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
        if level is not ContextLevel.USER:
            return None
        t = schema[table]
        return sa.select(t.c[column]).where(t.c[column] == instance)

    return users_in


# -- core_notes -----------------------------------------------------------------------

# Notes only their author sees ("personal" notes) are the author's, not the subject's.
_SHARED_NOTES = ("public", "site")


def _notes(schema: MoodleSchema, user_id: int) -> Any:
    post = schema["post"]
    about_you = sa.and_(post.c.userid == user_id, post.c.publishstate.in_(_SHARED_NOTES))
    return {"post": post}, (
        sa.select()
        .select_from(post)
        .where(post.c.module == "notes", sa.or_(about_you, post.c.usermodified == user_id))
        .order_by(post.c.courseid, post.c.id)
    )


_NOTE_STATES = {"draft": "personal", "public": "course", "site": "site"}


def _visibility(state: Any) -> Any:
    return _NOTE_STATES.get(state, state)


def _or_empty(text: Any) -> str:
    return text or ""


_NOTE: tuple[Field, ...] = (
    ("course_id", ident("post.courseid"), "Course of the note"),
    ("about_you", yours("post.userid"), "Whether the note is about the user"),
    ("written_by_you", yours("post.usermodified"), "Whether the user wrote it"),
    ("content", read(_or_empty, "post.content"), "Text of the note"),
    ("visibility", read(_visibility, "post.publishstate"), "personal, course or site"),
    ("created_at", when("post.created"), "When it was written"),
    ("modified_at", when("post.lastmodified"), "When it last changed"),
)


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


def _profile_fields(schema: MoodleSchema, user_id: int) -> Any:
    data, field = schema["user_info_data"], schema["user_info_field"]
    return {"data": data, "field": field}, (
        sa.select()
        .select_from(data.join(field, field.c.id == data.c.fieldid))
        .where(data.c.userid == user_id)
        .order_by(field.c.sortorder, field.c.id)
    )


_PROFILE_FIELD: tuple[Field, ...] = (
    ("field", same("field.shortname"), "Short name of the custom profile field"),
    ("name", same("field.name"), "Name of the field"),
    ("type", same("field.datatype"), "Kind of field (text, menu, checkbox, datetime, textarea...)"),
    ("description", or_none("field.description"), "Description of the field"),
    ("data", same("data.data"), "The user's value"),
)


#: Every content source, in the order the provider exports them: what learners write and
#: are given, then forum following, read marks, ratings and tags (mod_forum, core_rating,
#: core_tag), the questions of quiz attempts (core_question) and glossary entries
#: (mod_glossary).
CONTENT_SOURCES: tuple[ContentSource, ...] = (
    activity_source(
        "ForumDiscussion",
        "forum",
        reads=("forum_discussions", "forum", *ACTIVITY),
        frame=_discussions,
        columns=_DISCUSSION,
        users_in=module_users("forum", "forum_discussions", "forum"),
        description="Forum discussions the user started",
    ),
    activity_source(
        "ForumPost",
        "forum",
        reads=("forum_posts", "forum_discussions", "forum", *ACTIVITY),
        frame=_posts,
        columns=_POST,
        users_in=_post_users,
        description="Forum posts the user wrote",
    ),
    activity_source(
        "AssignSubmission",
        "assign",
        reads=("assign_submission", "assign", "assignsubmission_onlinetext", *ACTIVITY),
        frame=_submissions,
        columns=_SUBMISSION,
        users_in=module_users("assign", "assign_submission", "assignment", authored_only=True),
        description="Assignment submissions, with the text submitted online",
        summary="Moodle's assign_submission and assignsubmission_onlinetext tables, "
        "exported as AssignSubmission rows",
    ),
    activity_source(
        "AssignGrade",
        "assign",
        reads=("assign_grades", "assign", "assignfeedback_comments", *ACTIVITY),
        frame=_assign_grades,
        columns=_ASSIGN_GRADE,
        users_in=module_users("assign", "assign_grades", "assignment"),
        description="Assignment grades and feedback comments",
        summary="Moodle's assign_grades and assignfeedback_comments tables, "
        "exported as AssignGrade rows",
    ),
    activity_source(
        "QuizAttempt",
        "quiz",
        reads=("quiz_attempts", "quiz", *ACTIVITY),
        frame=_attempts,
        columns=_ATTEMPT,
        users_in=module_users("quiz", "quiz_attempts", "quiz"),
        description="Quiz attempts (summaries: state, dates, marks, grade)",
    ),
    activity_source(
        "QuizGrade",
        "quiz",
        reads=("quiz_grades", "quiz", *ACTIVITY),
        frame=_quiz_grades,
        columns=_QUIZ_GRADE,
        users_in=module_users("quiz", "quiz_grades", "quiz"),
        description="Final quiz grades",
    ),
    ContentSource(
        name="Message",
        reads=("messages", "message_conversations", "message_conversation_members"),
        frame=_messages,
        columns=_MESSAGE,
        users_in=_member_users,
        description="Messages of the conversations the user is a member of",
        summary="Moodle's messages, message_conversations and message_conversation_members "
        "tables, exported as Message rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="File",
        reads=("files", "context"),
        frame=_files,
        columns=_FILE,
        users_in=_file_users,
        description="Files the user uploaded (metadata: the content stays in Moodle)",
        summary="Moodle's files table (metadata only), exported as File rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="Badge",
        reads=("badge_issued", "badge"),
        frame=_badges,
        columns=_BADGE,
        users_in=_own_users("badge_issued", "userid"),
        description="Badges issued to the user",
        summary="Moodle's badge_issued and badge tables, exported as Badge rows",
        level=ContextLevel.USER,
    ),
    ContentSource(
        name="Note",
        reads=("post",),
        frame=_notes,
        columns=_NOTE,
        users_in=_note_users,
        description="Notes about the user shared in a course or site-wide, and notes "
        "the user wrote",
        summary="Moodle's post table (module 'notes'), exported as Note rows",
        level=ContextLevel.COURSE,
    ),
    ContentSource(
        name="ProfileField",
        reads=("user_info_data", "user_info_field"),
        frame=_profile_fields,
        columns=_PROFILE_FIELD,
        users_in=_own_users("user_info_data", "userid"),
        description="Custom profile fields",
        summary="Moodle's user_info_data and user_info_field tables, exported as ProfileField rows",
        level=ContextLevel.USER,
    ),
    *SOCIAL_SOURCES,
    *QUESTION_SOURCES,
    *GLOSSARY_SOURCES,
)
