"""Core tables of what people hold and exchange: messages, files, badges, notes, profile fields.

Transcribed from Moodle 4.5's ``lib/db/install.xml``: ``message_conversations``,
``message_conversation_members`` and ``messages`` (core_message), ``files`` (the file
pool's metadata; content lives in moodledata, not in the database), ``badge`` and
``badge_issued`` (core_badges), ``post`` (core_notes keeps notes there, ``module =
'notes'``) and ``user_info_field`` / ``user_info_data`` (custom profile fields).
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["PEOPLE_TABLES", "people_tables"]


def _messages(tables: MoodleTables) -> None:
    tables.add(
        "message_conversations",
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
        indexes=("type", "convhash", "contextid"),
    )
    tables.add(
        "message_conversation_members",
        integer("conversationid", 10),
        integer("userid", 10),
        integer("timecreated", 10),
        indexes=("conversationid", "userid"),
    )
    tables.add(
        "messages",
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
        indexes=("conversationid, timecreated", "useridfrom"),
    )


def _files(tables: MoodleTables) -> None:
    tables.add(
        "files",
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
        indexes=("component, filearea, contextid, itemid", "contenthash", "contextid", "userid"),
        unique=("pathnamehash",),
    )


def _badges(tables: MoodleTables) -> None:
    tables.add(
        "badge",
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
        indexes=("type", "courseid"),
    )
    tables.add(
        "badge_issued",
        integer("badgeid", 10, default=0),
        integer("userid", 10, default=0),
        text("uniquehash", notnull=True),
        integer("dateissued", 10, default=0),
        integer("dateexpire", 10, notnull=False),
        integer("visible", 1, default=0),
        integer("issuernotified", 10, notnull=False),
        indexes=("userid",),
        unique=("badgeid, userid",),
    )


def _post(tables: MoodleTables) -> None:
    tables.add(
        "post",
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
        indexes=("lastmodified", "module", "subject", "userid", "usermodified"),
        unique=("id, userid",),
    )


def _user_info(tables: MoodleTables) -> None:
    tables.add(
        "user_info_field",
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
    tables.add(
        "user_info_data",
        integer("userid", 10, default=0),
        integer("fieldid", 10, default=0),
        text("data", notnull=True),
        integer("dataformat", 2, default=0),
        unique=("userid, fieldid",),
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


def people_tables(tables: MoodleTables) -> None:
    """Add the message, file, badge, note and profile field tables to ``tables``."""
    for build in (_messages, _files, _badges, _post, _user_info):
        build(tables)
