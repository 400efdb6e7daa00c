"""The rest of what Moodle holds about an account: profile, preferences, the full log.

Each is read as JSON-ready rows (there is no learnprivacy record type for them), with the
keys Moodle's own privacy export uses where it has them:

- ``user``: the whole profile (address, phone, institution, language, last IP...);
- ``user_preferences``: every preference, with the component Moodle files it under;
- ``logstore_standard_log``: every event the account did, underwent (``relateduserid``)
  or did while logged in as someone else (``realuserid``), in the context it happened.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnprivacy.moodle._content import iso
from learnprivacy.moodle._schema import MoodleSchema

__all__ = [
    "PROFILE_FIELDS",
    "log_row",
    "log_statement",
    "preference_component",
    "preference_row",
    "profile_row",
    "request_row",
    "request_statement",
]

#: Profile columns exported (Moodle's user data.json keys, plus what it keeps for us).
PROFILE_FIELDS = (
    "auth", "confirmed", "policyagreed", "deleted", "suspended", "username", "idnumber",
    "firstname", "lastname", "middlename", "alternatename", "email", "emailstop", "phone1",
    "phone2", "institution", "department", "address", "city", "country", "lang", "timezone",
    "description", "lastip", "firstaccess", "lastaccess", "lastlogin", "currentlogin",
    "timecreated", "timemodified",
)  # fmt: skip
_DATES = frozenset(
    {"firstaccess", "lastaccess", "lastlogin", "currentlogin", "timecreated", "timemodified"}
)
# Preference name prefixes and the component Moodle's export files them under.
_PREFERENCE_COMPONENTS = (
    ("block_online_users_", "block_online_users"),
    ("assign_", "mod_assign"),
    ("forum_", "mod_forum"),
    ("message_", "core_message"),
    ("calendar_", "core_calendar"),
    ("grade_report_", "gradereport_grader"),
    ("tool_", "tool"),
)
_FORUM_PREFERENCES = frozenset({"maildigest", "autosubscribe", "trackforums"})


def profile_row(row: Any) -> dict[str, Any]:
    """A ``user`` row as the profile Moodle exports (dates in ISO 8601, 0 as None)."""
    values = dict(zip(PROFILE_FIELDS, row, strict=True))
    for name in _DATES:
        values[name] = iso(values[name])
    for name in ("confirmed", "policyagreed", "deleted", "suspended", "emailstop"):
        values[name] = bool(values[name])
    return values


def preference_component(name: str) -> str:
    """The component a preference belongs to, as Moodle's export groups them."""
    if name in _FORUM_PREFERENCES:
        return "mod_forum"
    for prefix, component in _PREFERENCE_COMPONENTS:
        if name.startswith(prefix):
            return component
    return "core"


def preference_row(name: str, value: Any) -> dict[str, Any]:
    """One preference: its component, name and value."""
    return {"component": preference_component(name), "name": name, "value": value}


def log_statement(schema: MoodleSchema, user_id: int | None) -> sa.Select[Any]:
    """Log rows of (or about, or by someone logged in as) ``user_id``; all when None."""
    log = schema["logstore_standard_log"]
    statement = sa.select(
        log.c.id,
        log.c.eventname,
        log.c.component,
        log.c.action,
        log.c.target,
        log.c.crud,
        log.c.contextlevel,
        log.c.contextinstanceid,
        log.c.courseid,
        log.c.userid,
        log.c.relateduserid,
        log.c.realuserid,
        log.c.other,
        log.c.origin,
        log.c.ip,
        log.c.timecreated,
    ).order_by(log.c.id)
    if user_id is not None:
        statement = statement.where(
            sa.or_(
                log.c.userid == user_id,
                log.c.relateduserid == user_id,
                log.c.realuserid == user_id,
            )
        )
    return statement


def log_row(row: Any, user_id: int) -> dict[str, Any]:
    """A log row as seen by ``user_id``: who did it told by flags, never by another's id.

    The IP address is only given for the user's own actions: on an event about them done
    by someone else, the address is that other person's.
    """
    (rid, event, component, action, target, crud, level, instance, course, author,
     related, real, other, origin, ip, created) = row  # fmt: skip
    mine = author == user_id
    return {
        "event": event,
        "component": component,
        "action": action,
        "target": target,
        "crud": crud,
        "context_level": int(level or 0),
        "context_instance": str(instance or 0),
        "course_id": None if not course else str(course),
        "time": iso(created),
        "origin": origin,
        "ip": ip if mine else None,
        "other": other,
        "author_was_you": mine,
        "related_user_was_you": related == user_id,
        "logged_in_as": real is not None and real != author,
        "real_user_was_you": real == user_id,
        "log_id": int(rid),
    }


# tool_dataprivacy's api::DATAREQUEST_TYPE_* and DATAREQUEST_STATUS_* constants.
_REQUEST_TYPES = {1: "export", 2: "delete", 3: "other"}
_REQUEST_STATUSES = {
    0: "pending",
    1: "awaiting approval",
    2: "approved",
    3: "processing",
    4: "complete",
    5: "cancelled",
    6: "rejected",
    7: "download ready",
    8: "expired",
    9: "deleted",
}


def request_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    """The data requests about ``user_id`` (made by them or on their behalf)."""
    t = schema["tool_dataprivacy_request"]
    return (
        sa.select(
            t.c.type, t.c.status, t.c.requestedby, t.c.comments, t.c.timecreated,
            t.c.timemodified,
        )
        .where(t.c.userid == user_id)
        .order_by(t.c.id)
    )  # fmt: skip


def request_row(row: Any, user_id: int) -> dict[str, Any]:
    """A data request as the user sees it (the DPO's identity and notes are not theirs)."""
    kind, status, requested_by, comments, created, modified = row
    return {
        "type": _REQUEST_TYPES.get(int(kind or 0), "other"),
        "status": _REQUEST_STATUSES.get(int(status or 0), "unknown"),
        "requested_by_you": requested_by == user_id,
        "comments": comments or None,
        "created_at": iso(created),
        "modified_at": iso(modified),
    }
