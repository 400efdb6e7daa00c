"""What Moodle 4.5's core_message and core_notes providers remove for one user.

Counted, never done: the adapter is read-only. The semantics follow Moodle's providers:

- core_message, in the user's own context: in each conversation with no context (the
  one-to-one and self conversations) the user is a member of, the messages the user sent
  are deleted, and so is the user's membership; the other members' messages stay (the
  conversation remains theirs). core_group does the same, in a course context, for the
  course's group conversations (component ``core_group``, item type ``groups``).
- core_notes, in a course context: the notes the user wrote in that course are deleted;
  notes others wrote about the user stay (they are the author's).
- core_user, in the user's own context: every file of component ``user`` in that context
  (private files, drafts, profile picture and description files, directory entries
  included), whoever uploaded it.
- mod_forum, in a forum's context: the files of the ``post`` and ``attachment`` areas
  whose item is one of the user's posts there (the posts' rows stay, their text blanked);
  files on other people's posts stay, whoever uploaded them.

Files in other components' areas are their providers' and not counted here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.providers import Context, ContextLevel

__all__ = [
    "FILE_TABLES",
    "FORUM_FILE_TABLES",
    "MESSAGE_TABLES",
    "NOTE_TABLES",
    "conversations_for",
    "file_plan",
    "forum_file_plan",
    "message_plan",
    "note_plan",
]

MESSAGE_TABLES = ("messages", "message_conversations", "message_conversation_members", "context")
NOTE_TABLES = ("post",)
FILE_TABLES = ("files", "context")
FORUM_FILE_TABLES = (
    "files",
    "context",
    "forum_posts",
    "forum_discussions",
    "course_modules",
    "modules",
)


def _own(user_id: int, approved: set[Context]) -> bool:
    return Context.user(str(user_id)) in approved


def _courses(approved: set[Context]) -> list[int]:
    return sorted(
        int(c.instance_id)
        for c in approved
        if c.level is ContextLevel.COURSE and c.instance_id.isdigit()
    )


def conversations_for(schema: MoodleSchema, user_id: int, approved: set[Context]) -> Any:
    """Ids of the conversations Moodle's providers act on for ``user_id``, or None."""
    conv, member = schema["message_conversations"], schema["message_conversation_members"]
    ctx = schema["context"]
    scopes: list[sa.ColumnElement[bool]] = []
    if _own(user_id, approved):
        scopes.append(conv.c.contextid.is_(None))
    courses = _courses(approved)
    if courses:
        in_courses = (
            sa.select(ctx.c.id)
            .where(ctx.c.contextlevel == int(ContextLevel.COURSE))
            .where(ctx.c.instanceid.in_(courses))
        )
        scopes.append(
            sa.and_(
                conv.c.contextid.in_(in_courses),
                conv.c.component == "core_group",
                conv.c.itemtype == "groups",
            )
        )
    if not scopes:
        return None
    return (
        sa.select(conv.c.id)
        .select_from(conv.join(member, member.c.conversationid == conv.c.id))
        .where(member.c.userid == user_id, sa.or_(*scopes))
    )


def message_plan(
    schema: MoodleSchema, user_id: int, approved: set[Context]
) -> dict[str, Any] | None:
    """Count statements for messages deleted, messages kept and memberships deleted."""
    chosen = conversations_for(schema, user_id, approved)
    if chosen is None:
        return None
    msg, member = schema["messages"], schema["message_conversation_members"]
    count = sa.func.count()
    in_chosen = msg.c.conversationid.in_(chosen)
    return {
        "sent": sa.select(count).where(in_chosen, msg.c.useridfrom == user_id),
        "others": sa.select(count).where(
            in_chosen, sa.or_(msg.c.useridfrom != user_id, msg.c.useridfrom.is_(None))
        ),
        "members": sa.select(count).where(
            member.c.userid == user_id, member.c.conversationid.in_(chosen)
        ),
    }


def note_plan(schema: MoodleSchema, user_id: int, approved: set[Context]) -> dict[str, Any] | None:
    """Count statements for the notes deleted (written by the user) and those kept."""
    courses = _courses(approved)
    if not courses:
        return None
    post = schema["post"]
    notes = sa.and_(post.c.module == "notes", post.c.courseid.in_(courses))
    count = sa.func.count()
    return {
        "written": sa.select(count).where(notes, post.c.usermodified == user_id),
        # Kept: the notes about the user others shared (exported as the user's data).
        "about": sa.select(count).where(
            notes,
            post.c.userid == user_id,
            post.c.usermodified != user_id,
            post.c.publishstate.in_(("public", "site")),
        ),
    }


def file_plan(schema: MoodleSchema, user_id: int, approved: set[Context]) -> dict[str, Any] | None:
    """Count statement for the files core_user deletes from the user's own context."""
    if not _own(user_id, approved):
        return None
    f, ctx = schema["files"], schema["context"]
    own = (
        sa.select(ctx.c.id)
        .where(ctx.c.contextlevel == int(ContextLevel.USER))
        .where(ctx.c.instanceid == user_id)
    )
    return {
        "user_files": sa.select(sa.func.count()).where(
            f.c.contextid.in_(own), f.c.component == "user"
        )
    }


def forum_file_plan(
    schema: MoodleSchema, user_id: int, approved: set[Context]
) -> dict[str, Any] | None:
    """Count statement for the files of the user's posts in the approved forums."""
    modules = sorted(
        int(c.instance_id)
        for c in approved
        if c.level is ContextLevel.MODULE and c.instance_id.isdigit()
    )
    if not modules:
        return None
    f, ctx = schema["files"], schema["context"]
    p, d = schema["forum_posts"], schema["forum_discussions"]
    cm, m = schema["course_modules"], schema["modules"]
    own_post = (
        sa.select(p.c.id)
        .select_from(
            p.join(d, d.c.id == p.c.discussion)
            .join(cm, cm.c.instance == d.c.forum)
            .join(m, sa.and_(m.c.id == cm.c.module, m.c.name == "forum"))
        )
        .where(p.c.id == f.c.itemid, p.c.userid == user_id, cm.c.id == ctx.c.instanceid)
        .exists()
    )
    return {
        "forum_files": sa.select(sa.func.count())
        .select_from(f.join(ctx, ctx.c.id == f.c.contextid))
        .where(
            ctx.c.contextlevel == int(ContextLevel.MODULE),
            ctx.c.instanceid.in_(modules),
            f.c.component == "mod_forum",
            f.c.filearea.in_(("post", "attachment")),
            own_post,
        )
    }
