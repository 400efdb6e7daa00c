"""What learners follow, have read, rate and tag in forums (mod_forum, core_rating, core_tag).

Content sources in the shape of :mod:`._read_content`, each read with Moodle 4.5's tables
and exported where Moodle's forum provider writes it:

- ``forum_subscriptions``, ``forum_digests``, ``forum_track_prefs``: the forum's
  ``subscriptionpreference``, ``digestpreference`` and ``trackreadpreference`` metadata;
- ``forum_discussion_subs``: a discussion's ``preference`` metadata;
- ``forum_read``: a post's ``postread`` metadata (first and last read);
- ``rating`` (component ``mod_forum``, area ``post``): the ratings the user gave, and every
  rating of the user's own posts, as the post's ``rating`` related data (core_rating);
  the other raters appear as a flag, never by id;
- ``tag_instance`` + ``tag``: the tags of the user's posts, as the post's ``tags``
  related data (core_tag).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._read_content import ContentSource, _iso, _module_users
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["RATING_FIELDS", "SOCIAL_SOURCES", "in_module_context", "rating_values"]

_ACTIVITY = ("course_modules", "modules")


def _forum_cm(schema: MoodleSchema, forum_id: Any) -> tuple[Any, Any, Any, Any]:
    cm, m = schema["course_modules"], schema["modules"]
    return cm, m, cm.c.instance == forum_id, sa.and_(m.c.id == cm.c.module, m.c.name == "forum")


def _forum_rows(table: str, link: str, *columns: str) -> Any:
    """Statement factory: the user's rows of ``table`` (naming its forum in ``link``)."""

    def statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
        t = schema[table]
        cm, m, cm_on, m_on = _forum_cm(schema, t.c[link])
        return (
            sa.select(cm.c.id, *(t.c[c] for c in columns))
            .select_from(t.join(cm, cm_on).join(m, m_on))
            .where(t.c.userid == user_id)
            .order_by(t.c.id)
        )

    return statement


def _subscription_row(row: Any, user_id: int) -> dict[str, Any]:
    return {"activity_id": str(row[0]), "subscribed": True}


# forum_digests.maildigest: Moodle's digest types.
_DIGESTS = {-1: "default", 0: "none", 1: "complete", 2: "subjects"}


def _digest_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, digest = row
    return {"activity_id": str(cmid), "digest": _DIGESTS.get(int(digest), str(digest))}


def _tracking_row(row: Any, user_id: int) -> dict[str, Any]:
    # A forum_track_prefs row means the user turned read tracking off for that forum.
    return {"activity_id": str(row[0]), "tracking": False}


def in_module_context(
    schema: MoodleSchema, items: Any, modname: str, instance: Any
) -> tuple[Any, Any, Any]:
    """``items`` (naming their ``modname`` activity in ``instance``) joined to the course
    module and its context: ``(joined, cm, ctx)``."""
    cm, m, ctx = schema["course_modules"], schema["modules"], schema["context"]
    joined = (
        items.join(cm, cm.c.instance == instance)
        .join(m, sa.and_(m.c.id == cm.c.module, m.c.name == modname))
        .join(ctx, sa.and_(ctx.c.instanceid == cm.c.id, ctx.c.contextlevel == 70))
    )
    return joined, cm, ctx


def _post_of(schema: MoodleSchema) -> tuple[Any, Any, Any, Any, Any]:
    """Posts joined to their discussion, forum, course module and module context."""
    p, d = schema["forum_posts"], schema["forum_discussions"]
    joined, cm, ctx = in_module_context(
        schema, p.join(d, d.c.id == p.c.discussion), "forum", d.c.forum
    )
    return joined, p, d, cm, ctx


def _discussion_sub_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    s, d = schema["forum_discussion_subs"], schema["forum_discussions"]
    cm, m, cm_on, m_on = _forum_cm(schema, d.c.forum)
    return (
        sa.select(cm.c.id, d.c.id, d.c.name, s.c.preference)
        .select_from(s.join(d, d.c.id == s.c.discussion).join(cm, cm_on).join(m, m_on))
        .where(s.c.userid == user_id)
        .order_by(s.c.id)
    )


def _discussion_sub_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, did, name, preference = row
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "discussion": name,
        # 0: unsubscribed from the discussion; otherwise the time of subscribing.
        "subscribed": bool(preference),
        "subscribed_at": _iso(preference) if preference and int(preference) > 1 else None,
    }


def _read_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    r = schema["forum_read"]
    joined, p, d, cm, _ = _post_of(schema)
    return (
        sa.select(cm.c.id, d.c.id, d.c.name, p.c.id, r.c.firstread, r.c.lastread)
        .select_from(r.join(joined, p.c.id == r.c.postid))
        .where(r.c.userid == user_id)
        .order_by(r.c.id)
    )


def _read_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, did, name, pid, first, last = row
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "discussion": name,
        "post_id": str(pid),
        "first_read_at": _iso(first),
        "last_read_at": _iso(last),
    }


def _rating_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    r = schema["rating"]
    joined, p, d, cm, ctx = _post_of(schema)
    return (
        sa.select(
            cm.c.id, d.c.id, d.c.name, p.c.id, r.c.rating, r.c.scaleid, r.c.timecreated,
            r.c.timemodified, r.c.userid, p.c.userid,
        )
        .select_from(r.join(joined, sa.and_(p.c.id == r.c.itemid, ctx.c.id == r.c.contextid)))
        .where(
            r.c.component == "mod_forum",
            r.c.ratingarea == "post",
            sa.or_(r.c.userid == user_id, p.c.userid == user_id),
        )
        .order_by(r.c.id)
    )  # fmt: skip


def rating_values(rating: tuple[Any, ...], user_id: int) -> dict[str, Any]:
    """A ``rating`` row's ``(rating, scaleid, timecreated, timemodified, userid)`` as
    exported (core_rating), the rater told only by ``author_was_you``."""
    value, scale, created, modified, rater = rating
    return {
        "rating": int(value),
        "scale_id": int(scale),
        "created_at": _iso(created),
        "modified_at": _iso(modified),
        "author_was_you": rater == user_id,
    }


#: The fields :func:`rating_values` gives.
RATING_FIELDS = {
    "rating": "Rating given (a scale item's number, or points)",
    "scale_id": "Scale rated on (negative: a custom scale's id)",
    "created_at": "When the rating was given",
    "modified_at": "When it last changed",
    "author_was_you": "Whether the user gave the rating",
}


def _rating_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, did, name, pid, *rating, author = row
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "discussion": name,
        "post_id": str(pid),
        **rating_values(tuple(rating), user_id),
        "on_your_post": author == user_id,
    }


def _tag_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    ti, tag = schema["tag_instance"], schema["tag"]
    joined, p, d, cm, ctx = _post_of(schema)
    return (
        sa.select(cm.c.id, d.c.id, d.c.name, p.c.id, tag.c.rawname)
        .select_from(
            ti.join(tag, tag.c.id == ti.c.tagid).join(
                joined, sa.and_(p.c.id == ti.c.itemid, ctx.c.id == ti.c.contextid)
            )
        )
        .where(ti.c.component == "mod_forum", ti.c.itemtype == "forum_posts", p.c.userid == user_id)
        .order_by(ti.c.id)
    )


def _tag_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, did, name, pid, tag = row
    return {
        "activity_id": str(cmid),
        "discussion_id": str(did),
        "discussion": name,
        "post_id": str(pid),
        "tag": tag,
    }


def _post_users(table: str, item: str, column: str, **where: str) -> Any:
    """``users_in``: ``column`` (``rating.userid``: the raters; ``forum_posts.userid``: the
    authors) of the ``table`` rows whose ``item`` is a post of one forum, in its context."""

    def users_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
        if level is not ContextLevel.MODULE:
            return None
        t = schema[table]
        joined, p, _, cm, ctx = _post_of(schema)
        source = t if column == "rater" else p
        on = sa.and_(p.c.id == t.c[item], ctx.c.id == t.c.contextid)
        return (
            sa.select(source.c.userid)
            .select_from(t.join(joined, on))
            .where(cm.c.id == instance, *(t.c[k] == v for k, v in where.items()))
        )

    return users_in


_POST = {
    "activity_id": "Forum (course module)",
    "discussion_id": "Id of the discussion",
    "discussion": "Discussion name",
    "post_id": "Id of the post",
}
_POST_READS = ("forum_posts", "forum_discussions", "forum", "context", *_ACTIVITY)


def _forum_source(name: str, table: str, **values: Any) -> ContentSource:
    """A mod_forum source of rows in a forum's context (module ``forum``, optional)."""
    return ContentSource(
        name=name,
        table=table,
        level=ContextLevel.MODULE,
        module="forum",
        optional=True,
        summary=f"Moodle's {table} table, exported as {name} rows",
        **values,
    )


def _forum_table_source(
    name: str,
    read: tuple[str, ...],
    mapper: Any,
    field: tuple[str, str],
    description: str,
) -> ContentSource:
    """A source of one forum-wide row per forum: ``read`` is (table, forum column, columns)."""
    table, link, *columns = read
    return _forum_source(
        name,
        table,
        reads=(table, "forum", *_ACTIVITY),
        statement=_forum_rows(table, link, *columns),
        mapper=mapper,
        users_in=_module_users("forum", table, "forum", link),
        fields={"activity_id": "Forum (course module)", field[0]: field[1]},
        description=description,
    )


#: The sources of this module, in export order (appended to the content sources).
SOCIAL_SOURCES: tuple[ContentSource, ...] = (
    _forum_table_source(
        "ForumSubscription",
        ("forum_subscriptions", "forum"),
        _subscription_row,
        ("subscribed", "Subscribed to the forum"),
        "Forums the user is subscribed to",
    ),
    _forum_table_source(
        "ForumDigest",
        ("forum_digests", "forum", "maildigest"),
        _digest_row,
        ("digest", "Mail digest chosen for the forum (none, complete, subjects, default)"),
        "The user's mail digest choice per forum",
    ),
    _forum_table_source(
        "ForumTrackingPreference",
        ("forum_track_prefs", "forumid"),
        _tracking_row,
        ("tracking", "Whether unread posts are tracked (false: the user turned it off)"),
        "Forums where the user turned read tracking off",
    ),
    _forum_source(
        "ForumDiscussionSubscription",
        "forum_discussion_subs",
        reads=("forum_discussion_subs", "forum_discussions", "forum", *_ACTIVITY),
        statement=_discussion_sub_statement,
        mapper=_discussion_sub_row,
        users_in=_module_users("forum", "forum_discussion_subs", "forum", "forum"),
        fields={
            "activity_id": "Forum (course module)",
            "discussion_id": "Id of the discussion",
            "discussion": "Discussion name",
            "subscribed": "Subscribed to (true) or unsubscribed from (false) the discussion",
            "subscribed_at": "When the user subscribed",
        },
        description="Discussions the user subscribed to or unsubscribed from",
    ),
    _forum_source(
        "ForumRead",
        "forum_read",
        reads=("forum_read", *_POST_READS),
        statement=_read_statement,
        mapper=_read_row,
        users_in=_module_users("forum", "forum_read", "forum", "forumid"),
        fields={
            **_POST,
            "first_read_at": "When the user first read the post",
            "last_read_at": "When the user last read the post",
        },
        description="Forum posts the user has read (read tracking)",
    ),
    _forum_source(
        "Rating",
        "rating",
        reads=("rating", *_POST_READS),
        statement=_rating_statement,
        mapper=_rating_row,
        users_in=_post_users("rating", "itemid", "rater", component="mod_forum", ratingarea="post"),
        fields={
            **_POST,
            **RATING_FIELDS,
            "on_your_post": "Whether the rated post is the user's",
        },
        description="Ratings the user gave on forum posts, and every rating of their posts",
    ),
    _forum_source(
        "PostTag",
        "tag_instance",
        reads=("tag_instance", "tag", *_POST_READS),
        statement=_tag_statement,
        mapper=_tag_row,
        users_in=_post_users(
            "tag_instance", "itemid", "author", component="mod_forum", itemtype="forum_posts"
        ),
        fields={**_POST, "tag": "Tag of the post"},
        description="Tags of the user's forum posts",
    ),
)
