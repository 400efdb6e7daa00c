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
from learnprivacy.moodle._content import (
    ACTIVITY,
    ContentSource,
    Field,
    activity_source,
    always,
    flag,
    ident,
    in_activity,
    in_module_context,
    iso,
    module_users,
    read,
    same,
    when,
    whole,
    yours,
)
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["RATING", "SOCIAL_SOURCES"]


def _forum_rows(table: str, link: str) -> Any:
    """Frame factory: the user's rows of ``table`` (naming their forum in ``link``)."""

    def frame(schema: MoodleSchema, user_id: int) -> Any:
        t = schema[table]
        joined, cm = in_activity(schema, "forum", t, t.c[link])
        return {"cm": cm, "t": t}, (
            sa.select().select_from(joined).where(t.c.userid == user_id).order_by(t.c.id)
        )

    return frame


# forum_digests.maildigest: Moodle's digest types.
_DIGESTS = {-1: "default", 0: "none", 1: "complete", 2: "subjects"}


def _digest(digest: Any) -> str:
    return _DIGESTS.get(int(digest), str(digest))


def _post_of(schema: MoodleSchema) -> tuple[Any, Any, Any, Any, Any]:
    """Posts joined to their discussion, forum, course module and module context."""
    p, d = schema["forum_posts"], schema["forum_discussions"]
    joined, cm, ctx = in_module_context(
        schema, p.join(d, d.c.id == p.c.discussion), "forum", d.c.forum
    )
    return joined, p, d, cm, ctx


def _discussion_subs(schema: MoodleSchema, user_id: int) -> Any:
    s, d = schema["forum_discussion_subs"], schema["forum_discussions"]
    joined, cm = in_activity(schema, "forum", s.join(d, d.c.id == s.c.discussion), d.c.forum)
    return {"cm": cm, "d": d, "s": s}, (
        sa.select().select_from(joined).where(s.c.userid == user_id).order_by(s.c.id)
    )


def _subscribed_at(preference: Any) -> str | None:
    # 0: unsubscribed from the discussion; otherwise the time of subscribing.
    return iso(preference) if preference and int(preference) > 1 else None


def _reads(schema: MoodleSchema, user_id: int) -> Any:
    r = schema["forum_read"]
    joined, p, d, cm, _ = _post_of(schema)
    return {"cm": cm, "d": d, "p": p, "r": r}, (
        sa.select()
        .select_from(r.join(joined, p.c.id == r.c.postid))
        .where(r.c.userid == user_id)
        .order_by(r.c.id)
    )


def _ratings(schema: MoodleSchema, user_id: int) -> Any:
    r = schema["rating"]
    joined, p, d, cm, ctx = _post_of(schema)
    return {"cm": cm, "d": d, "p": p, "r": r}, (
        sa.select()
        .select_from(r.join(joined, sa.and_(p.c.id == r.c.itemid, ctx.c.id == r.c.contextid)))
        .where(
            r.c.component == "mod_forum",
            r.c.ratingarea == "post",
            sa.or_(r.c.userid == user_id, p.c.userid == user_id),
        )
        .order_by(r.c.id)
    )


#: A ``rating`` row (the frame's ``r``) as exported (core_rating), the rater told only by
#: ``author_was_you``.
RATING: tuple[Field, ...] = (
    ("rating", whole("r.rating"), "Rating given (a scale item's number, or points)"),
    ("scale_id", whole("r.scaleid"), "Scale rated on (negative: a custom scale's id)"),
    ("created_at", when("r.timecreated"), "When the rating was given"),
    ("modified_at", when("r.timemodified"), "When it last changed"),
    ("author_was_you", yours("r.userid"), "Whether the user gave the rating"),
)


def _tags(schema: MoodleSchema, user_id: int) -> Any:
    ti, tag = schema["tag_instance"], schema["tag"]
    joined, p, d, cm, ctx = _post_of(schema)
    on = sa.and_(p.c.id == ti.c.itemid, ctx.c.id == ti.c.contextid)
    return {"cm": cm, "d": d, "p": p, "tag": tag}, (
        sa.select()
        .select_from(ti.join(tag, tag.c.id == ti.c.tagid).join(joined, on))
        .where(ti.c.component == "mod_forum", ti.c.itemtype == "forum_posts", p.c.userid == user_id)
        .order_by(ti.c.id)
    )


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


_FORUM: Field = ("activity_id", ident("cm.id"), "Forum (course module)")
_DISCUSSION: tuple[Field, ...] = (
    _FORUM,
    ("discussion_id", ident("d.id"), "Id of the discussion"),
    ("discussion", same("d.name"), "Discussion name"),
)
_POST: tuple[Field, ...] = (*_DISCUSSION, ("post_id", ident("p.id"), "Id of the post"))
_POST_READS = ("forum_posts", "forum_discussions", "forum", "context", *ACTIVITY)


def _forum_source(name: str, table: str, reads: tuple[str, ...], **values: Any) -> ContentSource:
    """A mod_forum source of rows in a forum's context, read from ``table`` and ``reads``."""
    return activity_source(
        name,
        "forum",
        reads=(table, *reads),
        **values,
    )


def _forum_table_source(
    name: str, table: str, link: str, field: Field, description: str
) -> ContentSource:
    """A source of one forum-wide row per forum, naming its forum in ``link``."""
    return _forum_source(
        name,
        table,
        ("forum", *ACTIVITY),
        frame=_forum_rows(table, link),
        columns=(_FORUM, field),
        users_in=module_users("forum", table, link),
        description=description,
    )


#: The sources of this module, in export order (appended to the content sources).
SOCIAL_SOURCES: tuple[ContentSource, ...] = (
    _forum_table_source(
        "ForumSubscription",
        "forum_subscriptions",
        "forum",
        ("subscribed", always(True), "Subscribed to the forum"),
        "Forums the user is subscribed to",
    ),
    _forum_table_source(
        "ForumDigest",
        "forum_digests",
        "forum",
        (
            "digest",
            read(_digest, "t.maildigest"),
            "Mail digest chosen for the forum (none, complete, subjects, default)",
        ),
        "The user's mail digest choice per forum",
    ),
    _forum_table_source(
        "ForumTrackingPreference",
        "forum_track_prefs",
        "forumid",
        # A forum_track_prefs row means the user turned read tracking off for that forum.
        (
            "tracking",
            always(False),
            "Whether unread posts are tracked (false: the user turned it off)",
        ),
        "Forums where the user turned read tracking off",
    ),
    _forum_source(
        "ForumDiscussionSubscription",
        "forum_discussion_subs",
        ("forum_discussions", "forum", *ACTIVITY),
        frame=_discussion_subs,
        columns=(
            *_DISCUSSION,
            (
                "subscribed",
                flag("s.preference"),
                "Subscribed to (true) or unsubscribed from (false) the discussion",
            ),
            ("subscribed_at", read(_subscribed_at, "s.preference"), "When the user subscribed"),
        ),
        users_in=module_users("forum", "forum_discussion_subs", "forum"),
        description="Discussions the user subscribed to or unsubscribed from",
    ),
    _forum_source(
        "ForumRead",
        "forum_read",
        _POST_READS,
        frame=_reads,
        columns=(
            *_POST,
            ("first_read_at", when("r.firstread"), "When the user first read the post"),
            ("last_read_at", when("r.lastread"), "When the user last read the post"),
        ),
        users_in=module_users("forum", "forum_read", "forumid"),
        description="Forum posts the user has read (read tracking)",
    ),
    _forum_source(
        "Rating",
        "rating",
        _POST_READS,
        frame=_ratings,
        columns=(
            *_POST,
            *RATING,
            ("on_your_post", yours("p.userid"), "Whether the rated post is the user's"),
        ),
        users_in=_post_users("rating", "itemid", "rater", component="mod_forum", ratingarea="post"),
        description="Ratings the user gave on forum posts, and every rating of their posts",
    ),
    _forum_source(
        "PostTag",
        "tag_instance",
        ("tag", *_POST_READS),
        frame=_tags,
        columns=(*_POST, ("tag", same("tag.rawname"), "Tag of the post")),
        users_in=_post_users(
            "tag_instance", "itemid", "author", component="mod_forum", itemtype="forum_posts"
        ),
        description="Tags of the user's forum posts",
    ),
)
