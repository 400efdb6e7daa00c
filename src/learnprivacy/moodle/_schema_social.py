"""Core and forum tables of what people say about and to each other, and how they follow.

Transcribed from Moodle 4.5's ``install.xml`` files: the rest of core_message
(``message_user_actions``, ``message_contacts``, ``message_contact_requests``,
``message_users_blocked``, ``notifications``), core_favourites (``favourite``),
core_rating (``rating``), core_tag (``tag``, ``tag_instance``) and mod_forum's
subscription, digest, tracking and read tables (``forum_subscriptions``,
``forum_discussion_subs``, ``forum_digests``, ``forum_track_prefs``, ``forum_read``,
``forum_queue``).
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, sequence_id, text

__all__ = ["FORUM_FOLLOW_TABLES", "SOCIAL_TABLES", "social_tables"]


def _pair(md: sa.MetaData, p: str, name: str, other: str) -> None:
    """A table linking a user to another user (contacts, requests, blocks)."""
    sa.Table(
        f"{p}{name}",
        md,
        sequence_id(),
        integer("userid", 10),
        integer(other, 10),
        integer("timecreated", 10, notnull=False),
        index(p, name, "userid"),
        index(p, name, other),
    )


def _messaging(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}message_user_actions",
        md,
        sequence_id(),
        integer("userid", 10),
        integer("messageid", 10),
        integer("action", 10),
        integer("timecreated", 10),
        index(p, "message_user_actions", "userid, messageid, action", unique=True),
        index(p, "message_user_actions", "messageid"),
    )
    _pair(md, p, "message_contacts", "contactid")
    _pair(md, p, "message_contact_requests", "requesteduserid")
    _pair(md, p, "message_users_blocked", "blockeduserid")
    sa.Table(
        f"{p}notifications",
        md,
        sequence_id(),
        integer("useridfrom", 10),
        integer("useridto", 10),
        text("subject"),
        text("fullmessage"),
        integer("fullmessageformat", 1, default=0),
        text("fullmessagehtml"),
        text("smallmessage"),
        char("component", 100, notnull=False),
        char("eventtype", 100, notnull=False),
        text("contexturl"),
        text("contexturlname"),
        integer("timeread", 10, notnull=False),
        integer("timecreated", 10),
        text("customdata"),
        index(p, "notifications", "useridto"),
        index(p, "notifications", "useridfrom"),
    )
    sa.Table(
        f"{p}favourite",
        md,
        sequence_id(),
        char("component", 100),
        char("itemtype", 100),
        integer("itemid", 10),
        integer("contextid", 10),
        integer("userid", 10),
        integer("ordering", 10, notnull=False),
        integer("timecreated", 10),
        integer("timemodified", 10),
        index(p, "favourite", "component, itemtype, itemid, contextid, userid", unique=True),
        index(p, "favourite", "userid"),
    )


def _rating_and_tags(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}rating",
        md,
        sequence_id(),
        integer("contextid", 10),
        char("component", 100),
        char("ratingarea", 50),
        integer("itemid", 10),
        integer("scaleid", 10),
        integer("rating", 10),
        integer("userid", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        index(p, "rating", "component, ratingarea, contextid, itemid"),
        index(p, "rating", "userid"),
    )
    sa.Table(
        f"{p}tag",
        md,
        sequence_id(),
        integer("userid", 10),
        integer("tagcollid", 10),
        char("name", 255),
        char("rawname", 255),
        integer("isstandard", 1, default=0),
        text("description"),
        integer("descriptionformat", 2, default=0),
        integer("flag", 4, notnull=False, default=0),
        integer("timemodified", 10, notnull=False),
        index(p, "tag", "tagcollid, name", unique=True),
        index(p, "tag", "userid"),
    )
    sa.Table(
        f"{p}tag_instance",
        md,
        sequence_id(),
        integer("tagid", 10),
        char("component", 100),
        char("itemtype", 100),
        integer("itemid", 10),
        integer("contextid", 10, notnull=False),
        integer("tiuserid", 10, default=0),
        integer("ordering", 10, notnull=False),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        index(p, "tag_instance", "component, itemtype, itemid, contextid, tiuserid, tagid"),
        index(p, "tag_instance", "tagid"),
        index(p, "tag_instance", "contextid"),
    )


def _ids_table(md: sa.MetaData, p: str, name: str, columns: str, *indexes: str) -> None:
    """A table of id columns that default to 0 (``int(10)``), with its indexes."""
    sa.Table(
        f"{p}{name}",
        md,
        sequence_id(),
        *(integer(column.strip(), 10, default=0) for column in columns.split(",")),
        *(index(p, name, fields) for fields in indexes),
    )


def _forum_follow(md: sa.MetaData, p: str) -> None:
    _ids_table(md, p, "forum_subscriptions", "userid, forum", "userid", "forum")
    sa.Table(
        f"{p}forum_discussion_subs",
        md,
        sequence_id(),
        integer("forum", 10),
        integer("userid", 10),
        integer("discussion", 10),
        integer("preference", 10, default=1),
        index(p, "forum_discussion_subs", "userid, discussion", unique=True),
        index(p, "forum_discussion_subs", "forum"),
    )
    sa.Table(
        f"{p}forum_digests",
        md,
        sequence_id(),
        integer("userid", 10),
        integer("forum", 10),
        integer("maildigest", 1, default=-1),
        index(p, "forum_digests", "forum, userid, maildigest", unique=True),
    )
    _ids_table(md, p, "forum_track_prefs", "userid, forumid", "userid, forumid")
    _ids_table(
        md,
        p,
        "forum_read",
        "userid, forumid, discussionid, postid, firstread, lastread",
        "userid, forumid",
        "userid, discussionid",
        "postid, userid",
    )
    _ids_table(
        md,
        p,
        "forum_queue",
        "userid, discussionid, postid, timemodified",
        "userid",
        "discussionid",
    )


#: mod_forum's tables of who follows, tracks and has read what (unprefixed).
FORUM_FOLLOW_TABLES = (
    "forum_subscriptions",
    "forum_discussion_subs",
    "forum_digests",
    "forum_track_prefs",
    "forum_read",
    "forum_queue",
)

#: Unprefixed names of these tables.
SOCIAL_TABLES = frozenset(
    {
        "message_user_actions",
        "message_contacts",
        "message_contact_requests",
        "message_users_blocked",
        "notifications",
        "favourite",
        "rating",
        "tag",
        "tag_instance",
        *FORUM_FOLLOW_TABLES,
    }
)


def social_tables(md: sa.MetaData, prefix: str) -> None:
    """Add the messaging, favourite, rating, tag and forum-following tables to ``md``."""
    for build in (_messaging, _rating_and_tags, _forum_follow):
        build(md, prefix)
