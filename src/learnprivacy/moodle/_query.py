"""What every per-learner query shares: which accounts' rows it reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["by_user", "in_id_order", "restrict_to_users"]


def restrict_to_users(
    statement: sa.Select[Any],
    user_column: sa.ColumnElement[Any],
    schema: MoodleSchema,
    user_ids: list[int] | None,
    include_deleted: bool,
) -> sa.Select[Any]:
    """Keep rows of live accounts (unless ``include_deleted``) and of ``user_ids`` if given.

    Moodle keeps some rows of deleted accounts (logs, for instance); they belong to no
    learner any more, so they are left out unless asked for.
    """
    if not include_deleted:
        u = schema["user"]
        statement = statement.join(u, sa.and_(u.c.id == user_column, u.c.deleted == 0))
    if user_ids is not None:
        statement = statement.where(user_column.in_(user_ids))
    return statement


def by_user(owner: sa.Table, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """``owner``'s ``id`` and ``userid``, then ``columns``, from ``owner``: how a statement
    of one record per row starts (its mapper unpacks ``rid, uid, ...``)."""
    return sa.select(owner.c.id, owner.c.userid, *columns).select_from(owner)


def in_id_order(
    statement: sa.Select[Any],
    owner: sa.Table,
    schema: MoodleSchema,
    user_ids: list[int] | None,
    include_deleted: bool,
) -> sa.Select[Any]:
    """``statement`` in ``owner``'s id order, kept to the rows of the users
    :func:`restrict_to_users` keeps (by ``owner.userid``)."""
    return restrict_to_users(
        statement.order_by(owner.c.id), owner.c.userid, schema, user_ids, include_deleted
    )
