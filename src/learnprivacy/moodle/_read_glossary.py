"""Glossary entries the learner wrote, and what hangs on them (mod_glossary).

mod_glossary's provider writes, per glossary, the user's entries (concept, definition,
times) in the ``entries`` list of the glossary's ``data.json``, and for each entry, in
``Entries/<concept> (<id>)/``, its tags (core_tag) and ratings (core_rating): every
rating of the user's own entries, the user's own ratings of others' entries (the other
raters appear as a flag, never by id). Read here from ``glossary_entries``, ``rating``
(component ``mod_glossary``, area ``entry``) and ``tag_instance``; the entry's aliases
(``glossary_alias``) and categories (``glossary_entries_categories``), which Moodle deletes
with the entry, are exported beside them so that nothing deleted goes unseen.
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
    flag,
    ident,
    in_module_context,
    module_users,
    same,
    when,
    yours,
)
from learnprivacy.moodle._read_social import RATING
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["GLOSSARY_SOURCES"]

_ENTRY_READS = ("glossary_entries", "glossary", "context", *ACTIVITY)
_ENTRY: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Glossary (course module)"),
    ("entry_id", ident("e.id"), "Id of the entry"),
    ("concept", same("e.concept"), "Concept the entry defines"),
)


def _entry_of(schema: MoodleSchema) -> tuple[Any, Any, Any, Any]:
    """Entries joined to their glossary, course module and module context."""
    e = schema["glossary_entries"]
    joined, cm, ctx = in_module_context(schema, e, "glossary", e.c.glossaryid)
    return joined, e, cm, ctx


def _entries(schema: MoodleSchema, user_id: int) -> Any:
    joined, e, cm, _ = _entry_of(schema)
    return {"cm": cm, "e": e}, (
        sa.select().select_from(joined).where(e.c.userid == user_id).order_by(e.c.id)
    )


def _attached(table: str) -> Any:
    """Frame factory: ``table`` rows attached to the user's entries, their value in the
    table called ``v`` (``glossary_alias``; ``glossary_categories`` through the link
    table ``glossary_entries_categories``)."""

    def frame(schema: MoodleSchema, user_id: int) -> Any:
        joined, e, cm, _ = _entry_of(schema)
        t = schema[table]
        source: sa.FromClause = t
        value = t
        if table == "glossary_entries_categories":
            value = schema["glossary_categories"]
            source = t.join(value, value.c.id == t.c.categoryid)
        return {"cm": cm, "e": e, "v": value}, (
            sa.select()
            .select_from(source.join(joined, e.c.id == t.c.entryid))
            .where(e.c.userid == user_id)
            .order_by(t.c.id)
        )

    return frame


def _ratings(given: bool) -> Any:
    """Ratings of the user's own entries (by anyone), or those the user gave on others'."""

    def frame(schema: MoodleSchema, user_id: int) -> Any:
        r = schema["rating"]
        joined, e, cm, ctx = _entry_of(schema)
        whose = (
            sa.and_(r.c.userid == user_id, e.c.userid != user_id)
            if given
            else e.c.userid == user_id
        )
        return {"cm": cm, "e": e, "r": r}, (
            sa.select()
            .select_from(r.join(joined, sa.and_(e.c.id == r.c.itemid, ctx.c.id == r.c.contextid)))
            .where(r.c.component == "mod_glossary", r.c.ratingarea == "entry", whose)
            .order_by(r.c.id)
        )

    return frame


def _tags(schema: MoodleSchema, user_id: int) -> Any:
    ti, tag = schema["tag_instance"], schema["tag"]
    joined, e, cm, ctx = _entry_of(schema)
    on = sa.and_(e.c.id == ti.c.itemid, ctx.c.id == ti.c.contextid)
    return {"cm": cm, "e": e, "tag": tag}, (
        sa.select()
        .select_from(ti.join(tag, tag.c.id == ti.c.tagid).join(joined, on))
        .where(
            ti.c.component == "mod_glossary",
            ti.c.itemtype == "glossary_entries",
            e.c.userid == user_id,
        )
        .order_by(ti.c.id)
    )


def _raters_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
    """``users_in`` for the ratings given: the raters of one glossary's entries."""
    if level is not ContextLevel.MODULE:
        return None
    r = schema["rating"]
    joined, e, cm, ctx = _entry_of(schema)
    return (
        sa.select(r.c.userid)
        .select_from(r.join(joined, sa.and_(e.c.id == r.c.itemid, ctx.c.id == r.c.contextid)))
        .where(cm.c.id == instance, r.c.component == "mod_glossary", r.c.ratingarea == "entry")
    )


_AUTHORS = module_users("glossary", "glossary_entries", "glossaryid")


def _glossary_source(name: str, table: str, reads: tuple[str, ...], **values: Any) -> ContentSource:
    """A mod_glossary source of rows in a glossary's context, read from ``reads`` and the
    entries' tables."""
    return activity_source(
        name,
        "glossary",
        table=table,
        reads=(*reads, *_ENTRY_READS),
        **values,
    )


def _rating_source(name: str, given: bool, users_in: Any, description: str) -> ContentSource:
    """Ratings of the user's entries (``given`` False) or the user's of others' entries."""
    label = "given on glossary entries" if given else "glossary entries"
    return _glossary_source(
        name,
        f"rating ({label})",
        ("rating",),
        frame=_ratings(given),
        columns=(
            *_ENTRY,
            *RATING,
            ("on_your_entry", yours("e.userid"), "Whether the rated entry is the user's"),
        ),
        users_in=users_in,
        description=description,
    )


def _attached_source(
    names: tuple[str, ...], frame: Any, field: Field, description: str
) -> ContentSource:
    """A source of one value attached to each of the user's entries: ``names`` is the
    source's name, its table and the tables its frame reads beside the entries."""
    name, table, *reads = names
    return _glossary_source(
        name,
        table,
        tuple(reads),
        frame=frame,
        columns=(*_ENTRY, field),
        users_in=_AUTHORS,
        description=description,
    )


#: The sources of this module, in export order (appended to the content sources).
GLOSSARY_SOURCES: tuple[ContentSource, ...] = (
    _glossary_source(
        "GlossaryEntry",
        "glossary_entries",
        (),
        frame=_entries,
        columns=(
            *_ENTRY,
            ("definition", same("e.definition"), "Definition written by the user"),
            ("approved", flag("e.approved"), "Whether a teacher approved the entry"),
            ("created_at", when("e.timecreated"), "When the entry was written"),
            ("modified_at", when("e.timemodified"), "When it last changed"),
        ),
        users_in=_AUTHORS,
        description="Glossary entries the user wrote",
    ),
    _attached_source(
        ("GlossaryAlias", "glossary_alias", "glossary_alias"),
        _attached("glossary_alias"),
        ("alias", same("v.alias"), "Other word the entry is linked from"),
        "Aliases of the user's glossary entries",
    ),
    _attached_source(
        ("GlossaryEntryCategory", "glossary_entries_categories", "glossary_categories"),
        _attached("glossary_entries_categories"),
        ("category", same("v.name"), "Category the entry is filed in"),
        "Categories of the user's glossary entries",
    ),
    _rating_source(
        "GlossaryRating", False, _AUTHORS, "Every rating of the user's glossary entries"
    ),
    _rating_source(
        "GlossaryRatingGiven",
        True,
        _raters_in,
        "Ratings the user gave on others' glossary entries",
    ),
    _attached_source(
        ("GlossaryTag", "tag_instance (glossary entries)", "tag_instance", "tag"),
        _tags,
        ("tag", same("tag.rawname"), "Tag of the entry"),
        "Tags of the user's glossary entries",
    ),
)
