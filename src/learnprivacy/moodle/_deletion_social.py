"""The rest of what Moodle 4.5's providers remove for one user: counted, never done.

Following each provider's ``delete_data_for_user``:

- core_message, for the conversations it acts on (see :mod:`._deletion`): the user's own
  actions on their messages (read, deleted: ``message_user_actions``), and every user's
  actions on the messages the user sent; the user's favourites among conversations in
  those contexts (core_favourites, ``favourite``). In the user's own context it also
  deletes the contacts, contact requests and blocks the user is on either side of, and
  the notifications the user sent or received.
- mod_forum, per approved forum: the user's subscriptions (forum and discussion), digest
  preference, tracking preference, read marks and queued mails; the ratings *on* the
  user's posts (core_rating; the ratings the user gave on other people's posts stay,
  they are part of those posts' aggregates) and the tags on the user's posts (core_tag).
- mod_assign, per approved assignment: the files of the user's submissions (file and
  online text areas) and of the feedback on the user's grades.
- core_tag, in the system context: the tags the user created stay (others may use them)
  and lose their creator (``userid`` set to 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from learnprivacy.moodle._deletion import conversations_for
from learnprivacy.moodle._schema import MoodleSchema, table_group
from learnprivacy.providers import Context, ContextLevel

__all__ = ["KINDS", "PLAN_TABLES", "SOCIAL_PLANS", "plan_entries", "social_plan"]

Counts = dict[str, Any]
_COUNT = sa.func.count


def _own(user_id: int, approved: set[Context]) -> bool:
    return Context.user(str(user_id)) in approved


def _ids(approved: set[Context], level: ContextLevel) -> list[int]:
    return sorted(
        int(c.instance_id) for c in approved if c.level is level and c.instance_id.isdigit()
    )


def _context_ids(schema: MoodleSchema, level: ContextLevel, instances: Any) -> Any:
    ctx = schema["context"]
    return sa.select(ctx.c.id).where(
        ctx.c.contextlevel == int(level), ctx.c.instanceid.in_(instances)
    )


def _instances(schema: MoodleSchema, modname: str, cmids: list[int]) -> Any:
    """The activity instance ids (``forum.id``) of approved course modules of one type."""
    cm, m = schema["course_modules"], schema["modules"]
    return (
        sa.select(cm.c.instance)
        .select_from(cm.join(m, m.c.id == cm.c.module))
        .where(m.c.name == modname, cm.c.id.in_(cmids))
    )


def message_extras(schema: MoodleSchema, user_id: int, approved: set[Context]) -> Counts:
    """Message actions, conversation favourites, contacts, requests, blocks, notifications."""
    out: Counts = {}
    chosen = conversations_for(schema, user_id, approved)
    if chosen is not None:
        mua, msg = schema["message_user_actions"], schema["messages"]
        out["MessageAction"] = (
            sa.select(_COUNT())
            .select_from(mua.join(msg, msg.c.id == mua.c.messageid))
            .where(
                msg.c.conversationid.in_(chosen),
                sa.or_(mua.c.userid == user_id, msg.c.useridfrom == user_id),
            )
        )
        fav, conv = schema["favourite"], schema["message_conversations"]
        scopes = []
        # core_favourites drops the user's conversation favourites in each context where
        # core_message found conversations of theirs: the user's own for one-to-one ones.
        in_chosen = sa.select(conv.c.contextid).where(conv.c.id.in_(chosen))
        courses = _ids(approved, ContextLevel.COURSE)
        if courses:
            scopes.append(
                sa.and_(
                    fav.c.contextid.in_(_context_ids(schema, ContextLevel.COURSE, courses)),
                    fav.c.contextid.in_(in_chosen.where(conv.c.contextid.is_not(None))),
                )
            )
        if _own(user_id, approved):
            has_individual = sa.select(conv.c.id).where(
                conv.c.id.in_(chosen), conv.c.contextid.is_(None)
            )
            scopes.append(
                sa.and_(
                    fav.c.contextid.in_(_context_ids(schema, ContextLevel.USER, [user_id])),
                    has_individual.exists(),
                )
            )
        out["ConversationFavourite"] = sa.select(_COUNT()).where(
            fav.c.userid == user_id,
            fav.c.component == "core_message",
            fav.c.itemtype == "message_conversations",
            sa.or_(*scopes),
        )
    if _own(user_id, approved):
        for name, table, other in (
            ("Contact", "message_contacts", "contactid"),
            ("ContactRequest", "message_contact_requests", "requesteduserid"),
            ("BlockedUser", "message_users_blocked", "blockeduserid"),
            ("Notification", "notifications", "useridto"),
        ):
            t = schema[table]
            mine = t.c.useridfrom if table == "notifications" else t.c.userid
            out[name] = sa.select(_COUNT()).where(sa.or_(mine == user_id, t.c[other] == user_id))
    return out


def forum_extras(schema: MoodleSchema, user_id: int, approved: set[Context]) -> Counts:
    """Subscriptions, digests, tracking, read marks, queued mails; ratings and tags of posts."""
    cmids = _ids(approved, ContextLevel.MODULE)
    if not cmids:
        return {}
    forums = _instances(schema, "forum", cmids)
    out: Counts = {}
    for name, table, column in (
        ("ForumSubscription", "forum_subscriptions", "forum"),
        ("ForumDiscussionSubscription", "forum_discussion_subs", "forum"),
        ("ForumDigest", "forum_digests", "forum"),
        ("ForumTrackingPreference", "forum_track_prefs", "forumid"),
        ("ForumRead", "forum_read", "forumid"),
    ):
        t = schema[table]
        out[name] = sa.select(_COUNT()).where(t.c.userid == user_id, t.c[column].in_(forums))
    d, q = schema["forum_discussions"], schema["forum_queue"]
    out["ForumQueue"] = sa.select(_COUNT()).where(
        q.c.userid == user_id, q.c.discussionid.in_(sa.select(d.c.id).where(d.c.forum.in_(forums)))
    )
    out.update(_on_posts(schema, user_id, cmids))
    return out


def _on_posts(schema: MoodleSchema, user_id: int, cmids: list[int]) -> Counts:
    """Ratings and tags on the user's posts in approved forums, and ratings they gave."""
    p, d = schema["forum_posts"], schema["forum_discussions"]
    cm, m, ctx = schema["course_modules"], schema["modules"], schema["context"]
    r, ti = schema["rating"], schema["tag_instance"]
    in_forums = ctx.join(cm, sa.and_(cm.c.id == ctx.c.instanceid, cm.c.id.in_(cmids))).join(
        m, sa.and_(m.c.id == cm.c.module, m.c.name == "forum")
    )
    forum_contexts = (
        sa.select(ctx.c.id)
        .select_from(in_forums)
        .where(ctx.c.contextlevel == int(ContextLevel.MODULE))
    )

    def own_post(itemid: Any, contextid: Any) -> Any:
        """Whether the item is one of the user's posts, in the forum of that context."""
        return (
            sa.select(p.c.id)
            .select_from(
                p.join(d, d.c.id == p.c.discussion).join(in_forums, cm.c.instance == d.c.forum)
            )
            .where(
                p.c.id == itemid,
                p.c.userid == user_id,
                ctx.c.id == contextid,
                ctx.c.contextlevel == int(ContextLevel.MODULE),
            )
            .exists()
        )

    post_ratings = sa.and_(r.c.component == "mod_forum", r.c.ratingarea == "post")
    return {
        "Rating": sa.select(_COUNT()).where(post_ratings, own_post(r.c.itemid, r.c.contextid)),
        "RatingGiven": sa.select(_COUNT()).where(
            post_ratings,
            r.c.userid == user_id,
            r.c.contextid.in_(forum_contexts),
            sa.not_(own_post(r.c.itemid, r.c.contextid)),
        ),
        "PostTag": sa.select(_COUNT()).where(
            ti.c.component == "mod_forum",
            ti.c.itemtype == "forum_posts",
            own_post(ti.c.itemid, ti.c.contextid),
        ),
    }


#: Files mod_assign's sub-plugins delete: (component, area, item is a "submission" or "grade").
_ASSIGN_FILE_AREAS = (
    ("assignsubmission_file", "submission_files", "submission"),
    ("assignsubmission_onlinetext", "submissions_onlinetext", "submission"),
    ("assignfeedback_file", "feedback_files", "grade"),
    ("assignfeedback_comments", "feedback", "grade"),
)


def assign_files(schema: MoodleSchema, user_id: int, approved: set[Context]) -> Counts:
    """Files of the user's submissions and of the feedback on their grades."""
    cmids = _ids(approved, ContextLevel.MODULE)
    if not cmids:
        return {}
    f, ctx = schema["files"], schema["context"]
    cm, m = schema["course_modules"], schema["modules"]
    s, g = schema["assign_submission"], schema["assign_grades"]
    items = {
        "submission": sa.select(s.c.id).where(
            s.c.userid == user_id, s.c.assignment == cm.c.instance
        ),
        "grade": sa.select(g.c.id).where(g.c.userid == user_id, g.c.assignment == cm.c.instance),
    }
    areas = [
        sa.and_(f.c.component == component, f.c.filearea == area, f.c.itemid.in_(items[kind]))
        for component, area, kind in _ASSIGN_FILE_AREAS
    ]
    return {
        "AssignFile": sa.select(_COUNT())
        .select_from(
            f.join(ctx, ctx.c.id == f.c.contextid)
            .join(cm, cm.c.id == ctx.c.instanceid)
            .join(m, m.c.id == cm.c.module)
        )
        .where(
            ctx.c.contextlevel == int(ContextLevel.MODULE),
            cm.c.id.in_(cmids),
            m.c.name == "assign",
            sa.or_(*areas),
        )
    }


def created_tags(schema: MoodleSchema, user_id: int, approved: set[Context]) -> Counts:
    """The tags the user created: kept, their creator cleared (system context)."""
    if Context.system() not in approved:
        return {}
    t = schema["tag"]
    return {"Tag": sa.select(_COUNT()).where(t.c.userid == user_id)}


Plan = Callable[[MoodleSchema, int, set[Context]], Counts]

#: Each plan with the tables it reads; a plan whose tables a site lacks counts nothing.
SOCIAL_PLANS: tuple[tuple[Plan, tuple[str, ...]], ...] = (
    (
        message_extras,
        (
            "message_user_actions",
            "favourite",
            "message_contacts",
            "message_contact_requests",
            "message_users_blocked",
            "notifications",
        ),
    ),
    (forum_extras, (*table_group("forum_follow"), "rating", "tag_instance")),
    (assign_files, ("assign_submission", "assign_grades", "files")),
    (created_tags, ("tag",)),
)

#: Every table the plans read (the deletion plan's grants).
PLAN_TABLES = frozenset(name for _, tables in SOCIAL_PLANS for name in tables)

#: What each counted kind is: (table, Moodle's action).
KINDS: dict[str, tuple[str, str]] = {
    "MessageAction": ("message_user_actions", "delete"),
    "ConversationFavourite": ("favourite", "delete"),
    "Contact": ("message_contacts", "delete"),
    "ContactRequest": ("message_contact_requests", "delete"),
    "BlockedUser": ("message_users_blocked", "delete"),
    "Notification": ("notifications", "delete"),
    "ForumSubscription": ("forum_subscriptions", "delete"),
    "ForumDiscussionSubscription": ("forum_discussion_subs", "delete"),
    "ForumDigest": ("forum_digests", "delete"),
    "ForumTrackingPreference": ("forum_track_prefs", "delete"),
    "ForumRead": ("forum_read", "delete"),
    "ForumQueue": ("forum_queue", "delete"),
    "Rating": ("rating", "delete"),
    "PostTag": ("tag_instance", "delete"),
    "AssignFile": ("files", "delete"),
    "Tag": ("tag", "clear creator"),
}


def social_plan(
    schema: MoodleSchema, user_id: int, approved: set[Context], present: Callable[[str], bool]
) -> Counts:
    """Count statements per kind for every plan whose tables ``present`` says exist."""
    out: Counts = {}
    for plan, tables in SOCIAL_PLANS:
        if all(present(name) for name in tables):
            out.update(plan(schema, user_id, approved))
    return out


def plan_entries(counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The deletion plan's entries for the kinds counted here (those with rows)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, (table, action) in KINDS.items():
        given = counts.get("RatingGiven", 0) if kind == "Rating" else 0
        if counts.get(kind) or given:
            entry: dict[str, Any] = {"table": table, "action": action, "rows": counts.get(kind, 0)}
            if kind == "Rating":
                entry["kept"] = given  # the ratings the user gave on other people's posts
            if kind == "AssignFile":
                entry["component"] = "mod_assign"
            out[kind] = entry
    return out
