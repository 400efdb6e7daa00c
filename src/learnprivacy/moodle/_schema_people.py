"""Core tables of what people hold and exchange: messages, files, badges, notes, profile fields.

Transcribed from Moodle 4.5's ``lib/db/install.xml``: ``message_conversations``,
``message_conversation_members`` and ``messages`` (core_message), ``files`` (the file
pool's metadata; content lives in moodledata, not in the database), ``badge`` and
``badge_issued`` (core_badges), ``post`` (core_notes keeps notes there, ``module =
'notes'``) and ``user_info_field`` / ``user_info_data`` (custom profile fields).
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, sequence_id, text

__all__ = ["PEOPLE_TABLES", "people_tables"]


def _messages(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}message_conversations",
        md,
        sequence_id(),
        integer("type", 10, default=1),
        char("name", 255, notnull=False),
        char("convhash", 40, notnull=False),
        char("component", 100, notnull=False),
        char("itemtype", 100, notnull=False),
        integer("itemid", 10, notnull=False),
        integer("contextid", 10, notnull=False),
        integer("enabled", 1, default=0),
        integer("timecreated", 10),
        integer("timemodified", 10, notnull=False),
        index(p, "message_conversations", "type"),
        index(p, "message_conversations", "convhash"),
        index(p, "message_conversations", "contextid"),
    )
    sa.Table(
        f"{p}message_conversation_members",
        md,
        sequence_id(),
        integer("conversationid", 10),
        integer("userid", 10),
        integer("timecreated", 10),
        index(p, "message_conversation_members", "conversationid"),
        index(p, "message_conversation_members", "userid"),
    )
    sa.Table(
        f"{p}messages",
        md,
        sequence_id(),
        integer("useridfrom", 10),
        integer("conversationid", 10),
        text("subject"),
        text("fullmessage"),
        integer("fullmessageformat", 1, notnull=False, default=0),
        text("fullmessagehtml"),
        text("smallmessage"),
        integer("timecreated", 10),
        integer("fullmessagetrust", 2, default=0),
        text("customdata"),
        index(p, "messages", "conversationid, timecreated"),
        index(p, "messages", "useridfrom"),
    )


def _files(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}files",
        md,
        sequence_id(),
        char("contenthash", 40),
        char("pathnamehash", 40),
        integer("contextid", 10),
        char("component", 100),
        char("filearea", 50),
        integer("itemid", 10),
        char("filepath", 255),
        char("filename", 255),
        integer("userid", 10, notnull=False),
        integer("filesize", 10),
        char("mimetype", 100, notnull=False),
        integer("status", 10, default=0),
        text("source"),
        char("author", 255, notnull=False),
        char("license", 255, notnull=False),
        integer("timecreated", 10),
        integer("timemodified", 10),
        integer("sortorder", 10, default=0),
        integer("referencefileid", 10, notnull=False),
        index(p, "files", "pathnamehash", unique=True),
        index(p, "files", "component, filearea, contextid, itemid"),
        index(p, "files", "contenthash"),
        index(p, "files", "contextid"),
        index(p, "files", "userid"),
    )


def _badges(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}badge",
        md,
        sequence_id(),
        char("name", 255),
        text("description"),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("usercreated", 10),
        integer("usermodified", 10),
        char("issuername", 255),
        char("issuerurl", 255),
        char("issuercontact", 255, notnull=False),
        integer("expiredate", 10, notnull=False),
        integer("expireperiod", 10, notnull=False),
        integer("type", 1, default=1),
        integer("courseid", 10, notnull=False),
        text("message", notnull=True),
        text("messagesubject", notnull=True),
        integer("attachment", 1, default=1),
        integer("notification", 1, default=1),
        integer("status", 1, default=0),
        integer("nextcron", 10, notnull=False),
        char("version", 255, notnull=False),
        char("language", 255, notnull=False),
        index(p, "badge", "type"),
        index(p, "badge", "courseid"),
    )
    sa.Table(
        f"{p}badge_issued",
        md,
        sequence_id(),
        integer("badgeid", 10, default=0),
        integer("userid", 10, default=0),
        text("uniquehash", notnull=True),
        integer("dateissued", 10, default=0),
        integer("dateexpire", 10, notnull=False),
        integer("visible", 1, default=0),
        integer("issuernotified", 10, notnull=False),
        index(p, "badge_issued", "badgeid, userid", unique=True),
        index(p, "badge_issued", "userid"),
    )


def _post(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}post",
        md,
        sequence_id(),
        char("module", 20),
        integer("userid", 10, default=0),
        integer("courseid", 10, default=0),
        integer("groupid", 10, default=0),
        integer("moduleid", 10, default=0),
        integer("coursemoduleid", 10, default=0),
        char("subject", 128),
        text("summary"),
        text("content"),
        char("uniquehash", 255),
        integer("rating", 10, default=0),
        integer("format", 10, default=0),
        integer("summaryformat", 2, default=0),
        char("attachment", 100, notnull=False),
        char("publishstate", 20, default="draft"),
        integer("lastmodified", 10, default=0),
        integer("created", 10, default=0),
        integer("usermodified", 10, notnull=False),
        index(p, "post", "id, userid", unique=True),
        index(p, "post", "lastmodified"),
        index(p, "post", "module"),
        index(p, "post", "subject"),
        index(p, "post", "userid"),
        index(p, "post", "usermodified"),
    )


def _user_info(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}user_info_field",
        md,
        sequence_id(),
        char("shortname", 255, default="shortname"),
        text("name", notnull=True),
        char("datatype", 255),
        text("description"),
        integer("descriptionformat", 2, default=0),
        integer("categoryid", 10, default=0),
        integer("sortorder", 10, default=0),
        integer("required", 2, default=0),
        integer("locked", 2, default=0),
        integer("visible", 4, default=0),
        integer("forceunique", 2, default=0),
        integer("signup", 2, default=0),
        text("defaultdata"),
        integer("defaultdataformat", 2, default=0),
        text("param1"),
        text("param2"),
        text("param3"),
        text("param4"),
        text("param5"),
    )
    sa.Table(
        f"{p}user_info_data",
        md,
        sequence_id(),
        integer("userid", 10, default=0),
        integer("fieldid", 10, default=0),
        text("data", notnull=True),
        integer("dataformat", 2, default=0),
        index(p, "user_info_data", "userid, fieldid", unique=True),
    )


#: Unprefixed names of these core tables.
PEOPLE_TABLES = frozenset(
    {
        "message_conversations",
        "message_conversation_members",
        "messages",
        "files",
        "badge",
        "badge_issued",
        "post",
        "user_info_field",
        "user_info_data",
    }
)


def people_tables(md: sa.MetaData, prefix: str) -> None:
    """Add the message, file, badge, note and profile field tables to ``md``."""
    for build in (_messages, _files, _badges, _post, _user_info):
        build(md, prefix)
