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
from learnprivacy.moodle._read_content import ContentSource, _iso, _module_users
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["GLOSSARY_SOURCES"]

_MODULE_LEVEL = 70
_ENTRY_READS = ("glossary_entries", "glossary", "context", "course_modules", "modules")
_ENTRY = {
    "activity_id": "Glossary (course module)",
    "entry_id": "Id of the entry",
    "concept": "Concept the entry defines",
}


def _entry_of(schema: MoodleSchema) -> tuple[Any, Any, Any, Any]:
    """Entries joined to their glossary, course module and module context."""
    e, g = schema["glossary_entries"], schema["glossary"]
    cm, m, ctx = schema["course_modules"], schema["modules"], schema["context"]
    joined = (
        e.join(g, g.c.id == e.c.glossaryid)
        .join(cm, cm.c.instance == g.c.id)
        .join(m, sa.and_(m.c.id == cm.c.module, m.c.name == "glossary"))
        .join(ctx, sa.and_(ctx.c.instanceid == cm.c.id, ctx.c.contextlevel == _MODULE_LEVEL))
    )
    return joined, e, cm, ctx


def _entry_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    joined, e, cm, _ = _entry_of(schema)
    return (
        sa.select(
            cm.c.id, e.c.id, e.c.concept, e.c.definition, e.c.approved, e.c.timecreated,
            e.c.timemodified,
        )
        .select_from(joined)
        .where(e.c.userid == user_id)
        .order_by(e.c.id)
    )  # fmt: skip


def _entry_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, eid, concept, definition, approved, created, modified = row
    return {
        "activity_id": str(cmid),
        "entry_id": str(eid),
        "concept": concept,
        "definition": definition,
        "approved": bool(approved),
        "created_at": _iso(created),
        "modified_at": _iso(modified),
    }


def _attached_statement(table: str, value: str) -> Any:
    """Statement factory: the ``value`` of ``table`` rows attached to the user's entries
    (``glossary_alias.alias``; ``glossary_categories.name`` through the link table)."""

    def statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
        joined, e, cm, _ = _entry_of(schema)
        t = schema[table]
        source: sa.FromClause = t
        if table == "glossary_entries_categories":
            c = schema["glossary_categories"]
            source = t.join(c, c.c.id == t.c.categoryid)
            column = c.c[value]
        else:
            column = t.c[value]
        return (
            sa.select(cm.c.id, e.c.id, e.c.concept, column)
            .select_from(source.join(joined, e.c.id == t.c.entryid))
            .where(e.c.userid == user_id)
            .order_by(t.c.id)
        )

    return statement


def _attached_row(key: str) -> Any:
    def mapper(row: Any, user_id: int) -> dict[str, Any]:
        cmid, eid, concept, value = row
        return {"activity_id": str(cmid), "entry_id": str(eid), "concept": concept, key: value}

    return mapper


def _rating_statement(given: bool) -> Any:
    """Ratings of the user's own entries (by anyone), or those the user gave on others'."""

    def statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
        r = schema["rating"]
        joined, e, cm, ctx = _entry_of(schema)
        whose = (
            sa.and_(r.c.userid == user_id, e.c.userid != user_id)
            if given
            else e.c.userid == user_id
        )
        return (
            sa.select(
                cm.c.id, e.c.id, e.c.concept, r.c.rating, r.c.scaleid, r.c.timecreated,
                r.c.timemodified, r.c.userid, e.c.userid,
            )
            .select_from(r.join(joined, sa.and_(e.c.id == r.c.itemid, ctx.c.id == r.c.contextid)))
            .where(r.c.component == "mod_glossary", r.c.ratingarea == "entry", whose)
            .order_by(r.c.id)
        )  # fmt: skip

    return statement


def _rating_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, eid, concept, value, scale, created, modified, rater, author = row
    return {
        "activity_id": str(cmid),
        "entry_id": str(eid),
        "concept": concept,
        "rating": int(value),
        "scale_id": int(scale),
        "created_at": _iso(created),
        "modified_at": _iso(modified),
        "author_was_you": rater == user_id,
        "on_your_entry": author == user_id,
    }


def _tag_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    ti, tag = schema["tag_instance"], schema["tag"]
    joined, e, cm, ctx = _entry_of(schema)
    return (
        sa.select(cm.c.id, e.c.id, e.c.concept, tag.c.rawname)
        .select_from(
            ti.join(tag, tag.c.id == ti.c.tagid).join(
                joined, sa.and_(e.c.id == ti.c.itemid, ctx.c.id == ti.c.contextid)
            )
        )
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


_AUTHORS = _module_users("glossary", "glossary_entries", "glossary", "glossaryid")
_RATING_FIELDS = {
    **_ENTRY,
    "rating": "Rating given (a scale item's number, or points)",
    "scale_id": "Scale rated on (negative: a custom scale's id)",
    "created_at": "When the rating was given",
    "modified_at": "When it last changed",
    "author_was_you": "Whether the user gave the rating",
    "on_your_entry": "Whether the rated entry is the user's",
}


def _glossary_source(name: str, table: str, reads: tuple[str, ...], **values: Any) -> ContentSource:
    """A mod_glossary source of rows in a glossary's context (module ``glossary``, optional)."""
    return ContentSource(
        name=name,
        table=table,
        reads=(*reads, *_ENTRY_READS),
        level=ContextLevel.MODULE,
        module="glossary",
        optional=True,
        summary=f"Moodle's {table} table, exported as {name} rows",
        **values,
    )


#: The sources of this module, in export order (appended to the content sources).
GLOSSARY_SOURCES: tuple[ContentSource, ...] = (
    _glossary_source(
        "GlossaryEntry",
        "glossary_entries",
        (),
        statement=_entry_statement,
        mapper=_entry_row,
        users_in=_AUTHORS,
        fields={
            **_ENTRY,
            "definition": "Definition written by the user",
            "approved": "Whether a teacher approved the entry",
            "created_at": "When the entry was written",
            "modified_at": "When it last changed",
        },
        description="Glossary entries the user wrote",
    ),
    _glossary_source(
        "GlossaryAlias",
        "glossary_alias",
        ("glossary_alias",),
        statement=_attached_statement("glossary_alias", "alias"),
        mapper=_attached_row("alias"),
        users_in=_AUTHORS,
        fields={**_ENTRY, "alias": "Other word the entry is linked from"},
        description="Aliases of the user's glossary entries",
    ),
    _glossary_source(
        "GlossaryEntryCategory",
        "glossary_entries_categories",
        ("glossary_entries_categories", "glossary_categories"),
        statement=_attached_statement("glossary_entries_categories", "name"),
        mapper=_attached_row("category"),
        users_in=_AUTHORS,
        fields={**_ENTRY, "category": "Category the entry is filed in"},
        description="Categories of the user's glossary entries",
    ),
    _glossary_source(
        "GlossaryRating",
        "rating (glossary entries)",
        ("rating",),
        statement=_rating_statement(given=False),
        mapper=_rating_row,
        users_in=_AUTHORS,
        fields=_RATING_FIELDS,
        description="Every rating of the user's glossary entries",
    ),
    _glossary_source(
        "GlossaryRatingGiven",
        "rating (given on glossary entries)",
        ("rating",),
        statement=_rating_statement(given=True),
        mapper=_rating_row,
        users_in=_raters_in,
        fields=_RATING_FIELDS,
        description="Ratings the user gave on others' glossary entries",
    ),
    _glossary_source(
        "GlossaryTag",
        "tag_instance (glossary entries)",
        ("tag_instance", "tag"),
        statement=_tag_statement,
        mapper=_attached_row("tag"),
        users_in=_AUTHORS,
        fields={**_ENTRY, "tag": "Tag of the entry"},
        description="Tags of the user's glossary entries",
    ),
)
