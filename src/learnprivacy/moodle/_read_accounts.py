"""Accounts and courses: ``user`` (+ ``user_lastaccess``) and ``course``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnprivacy.errors import ValidationError
from learnprivacy.moodle._issues import ScanIssues, rule_of
from learnprivacy.moodle._models import MoodleCourse, MoodleUser
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import OUT_OF_RANGE, UTC, from_unix, from_unix_lenient, utc
from learnprivacy.moodle._trusted import builder
from learnprivacy.records import Learner

__all__ = [
    "course_statement",
    "learner_statement",
    "map_course",
    "map_learner",
    "map_user",
    "user_statement",
]


def _course_access(schema: MoodleSchema) -> sa.Subquery:
    la = schema["user_lastaccess"]
    return (
        sa.select(la.c.userid, sa.func.max(la.c.timeaccess).label("timeaccess"))
        .group_by(la.c.userid)
        .subquery("la")
    )


def _accounts(schema: MoodleSchema, columns: tuple[str, ...], user_ids: list[int] | None) -> Any:
    """``user`` columns then the latest course access, in id order (of ``user_ids`` only)."""
    u, la = schema["user"], _course_access(schema)
    statement = (
        sa.select(*(u.c[name] for name in columns), la.c.timeaccess)
        .select_from(u.outerjoin(la, la.c.userid == u.c.id))
        .order_by(u.c.id)
    )
    return statement if user_ids is None else statement.where(u.c.id.in_(user_ids))


_DATES = ("timecreated", "firstaccess", "lastaccess")


def user_statement(schema: MoodleSchema, user_ids: list[int] | None) -> sa.Select[Any]:
    """Every account (deleted ones too) with the dates retention needs."""
    columns = ("id", "deleted", "suspended", "username", *_DATES)
    statement: sa.Select[Any] = _accounts(schema, columns, user_ids)
    return statement


def map_user(row: Any, guest_username: str, guest_id: int | None) -> MoodleUser:
    """A ``user_statement`` row as a :class:`MoodleUser`."""
    uid, deleted, suspended, username, created, first, last, course_access = row
    return MoodleUser(
        id=int(uid),
        deleted=bool(deleted),
        suspended=bool(suspended),
        guest=username == guest_username or uid == guest_id,
        created_at=from_unix_lenient(created),
        first_access_at=from_unix_lenient(first),
        last_access_at=from_unix_lenient(last),
        last_course_access_at=from_unix_lenient(course_access),
    )


def learner_statement(
    schema: MoodleSchema, user_ids: list[int] | None, guest_username: str, excluded: list[int]
) -> sa.Select[Any]:
    """Accounts that are learners: not deleted, not the guest account, not ``excluded``."""
    u = schema["user"]
    columns = ("id", "username", "email", "firstname", "lastname", *_DATES)
    statement: sa.Select[Any] = _accounts(schema, columns, user_ids).where(
        u.c.deleted == 0, u.c.username != guest_username
    )
    return statement.where(u.c.id.not_in(excluded)) if excluded else statement


_learner = builder(
    Learner,
    checked=frozenset({"username", "email", "given_name", "family_name"}),
    repeating=frozenset({"given_name", "family_name"}),
)


def map_learner(row: Any, issues: ScanIssues) -> Learner | None:
    """A ``learner_statement`` row as a Learner, or None (with an issue) when it cannot be."""
    uid, username, email, given, family, created, first, last, course_access = row
    # The latest of the two access dates; Moodle's 0 (and NULL) mean never.
    last = last or 0
    if (course_access or 0) > last:
        last = course_access
    try:
        # Accounts created by early installers or some imports have timecreated = 0; the
        # first access is then the earliest date Moodle knows for them. from_unix is
        # inlined (one call per account and date); a value out of range goes to it for
        # its error.
        try:
            created_at = utc(created or first, UTC) if created or first else None
            last_at = utc(last, UTC) if last else None
        except OUT_OF_RANGE:
            created_at = from_unix(created) or from_unix(first)
            last_at = from_unix(last)
        if created_at is None:
            issues.report("user", uid, "Learner.created_at", "no creation or first access date")
            return None
        # The id and dates are valid by construction; the texts are checked as the
        # constructor checks them.
        return _learner(
            id=str(uid),
            username=username,
            email=email,
            given_name=given,
            family_name=family,
            created_at=created_at,
            last_activity_at=last_at,
        )
    except ValidationError as exc:
        issues.report("user", uid, exc.field or "Learner", rule_of(exc))
        return None


def course_statement(schema: MoodleSchema) -> sa.Select[Any]:
    """Every course except the site's front page (``format = 'site'``)."""
    c = schema["course"]
    return (
        sa.select(
            c.c.id,
            c.c.shortname,
            c.c.fullname,
            c.c.category,
            c.c.startdate,
            c.c.enddate,
            c.c.timecreated,
            c.c.visible,
        )
        .where(c.c.format != "site")
        .order_by(c.c.id)
    )


def map_course(row: Any) -> MoodleCourse:
    """A ``course_statement`` row as a :class:`MoodleCourse`."""
    cid, shortname, fullname, category, start, end, created, visible = row
    return MoodleCourse(
        id=int(cid),
        shortname=shortname,
        fullname=fullname,
        category=int(category),
        start_at=from_unix_lenient(start),
        end_at=from_unix_lenient(end),
        created_at=from_unix_lenient(created),
        visible=bool(visible),
    )
