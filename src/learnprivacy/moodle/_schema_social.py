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

from learnprivacy.moodle._columns import char, integer, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["FORUM_FOLLOW_TABLES", "SOCIAL_TABLES", "social_tables"]


def _pair(tables: MoodleTables, name: str, other: str) -> None:
    """A table linking a user to another user (contacts, requests, blocks)."""
    tables.add(
        name,
        integer("userid", 10),
        integer(other, 10),
        integer("timecreated", 10, notnull=False),
        indexes=("userid", other),
    )


def _messaging(tables: MoodleTables) -> None:
    tables.add(
        "message_user_actions",
        integer("userid", 10),
        integer("messageid", 10),
        integer("action", 10),
        integer("timecreated", 10),
        indexes=("messageid",),
        unique=("userid, messageid, action",),
    )
    _pair(tables, "message_contacts", "contactid")
    _pair(tables, "message_contact_requests", "requesteduserid")
    _pair(tables, "message_users_blocked", "blockeduserid")
    tables.add(
        "notifications",
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
        indexes=("useridto", "useridfrom"),
    )
    tables.add(
        "favourite",
        char("component", 100),
        char("itemtype", 100),
        integer("itemid", 10),
        integer("contextid", 10),
        integer("userid", 10),
        integer("ordering", 10, notnull=False),
        integer("timecreated", 10),
        integer("timemodified", 10),
        indexes=("userid",),
        unique=("component, itemtype, itemid, contextid, userid",),
    )


def _rating_and_tags(tables: MoodleTables) -> None:
    tables.add(
        "rating",
        integer("contextid", 10),
        char("component", 100),
        char("ratingarea", 50),
        integer("itemid", 10),
        integer("scaleid", 10),
        integer("rating", 10),
        integer("userid", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        indexes=("component, ratingarea, contextid, itemid", "userid"),
    )
    tables.add(
        "tag",
        integer("userid", 10),
        integer("tagcollid", 10),
        char("name", 255),
        char("rawname", 255),
        integer("isstandard", 1, default=0),
        text("description"),
        integer("descriptionformat", 2, default=0),
        integer("flag", 4, notnull=False, default=0),
        integer("timemodified", 10, notnull=False),
        indexes=("userid",),
        unique=("tagcollid, name",),
    )
    tables.add(
        "tag_instance",
        integer("tagid", 10),
        char("component", 100),
        char("itemtype", 100),
        integer("itemid", 10),
        integer("contextid", 10, notnull=False),
        integer("tiuserid", 10, default=0),
        integer("ordering", 10, notnull=False),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("component, itemtype, itemid, contextid, tiuserid, tagid", "tagid", "contextid"),
    )


def _ids_table(tables: MoodleTables, name: str, columns: str, *indexes: str) -> None:
    """A table of id columns that default to 0 (``int(10)``), with its indexes."""
    tables.add(
        name,
        *(integer(column.strip(), 10, default=0) for column in columns.split(",")),
        indexes=indexes,
    )


def _forum_follow(tables: MoodleTables) -> None:
    _ids_table(tables, "forum_subscriptions", "userid, forum", "userid", "forum")
    tables.add(
        "forum_discussion_subs",
        integer("forum", 10),
        integer("userid", 10),
        integer("discussion", 10),
        integer("preference", 10, default=1),
        indexes=("forum",),
        unique=("userid, discussion",),
    )
    tables.add(
        "forum_digests",
        integer("userid", 10),
        integer("forum", 10),
        integer("maildigest", 1, default=-1),
        unique=("forum, userid, maildigest",),
    )
    _ids_table(tables, "forum_track_prefs", "userid, forumid", "userid, forumid")
    _ids_table(
        tables,
        "forum_read",
        "userid, forumid, discussionid, postid, firstread, lastread",
        "userid, forumid",
        "userid, discussionid",
        "postid, userid",
    )
    _ids_table(
        tables,
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


def social_tables(tables: MoodleTables) -> None:
    """Add the messaging, favourite, rating, tag and forum-following tables to ``tables``."""
    for build in (_messaging, _rating_and_tags, _forum_follow):
        build(tables)
