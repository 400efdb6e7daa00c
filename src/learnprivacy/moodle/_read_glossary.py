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
from learnprivacy.moodle._read_social import RATING_FIELDS, in_module_context, rating_values
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["GLOSSARY_SOURCES"]

_ENTRY_READS = ("glossary_entries", "glossary", "context", "course_modules", "modules")
_ENTRY = {
    "activity_id": "Glossary (course module)",
    "entry_id": "Id of the entry",
    "concept": "Concept the entry defines",
}


def _entry_of(schema: MoodleSchema) -> tuple[Any, Any, Any, Any]:
    """Entries joined to their glossary, course module and module context."""
    e = schema["glossary_entries"]
    joined, cm, ctx = in_module_context(schema, e, "glossary", e.c.glossaryid)
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
    cmid, eid, concept, *rating, author = row
    return {
        "activity_id": str(cmid),
        "entry_id": str(eid),
        "concept": concept,
        **rating_values(tuple(rating), user_id),
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


def _rating_source(name: str, given: bool, users_in: Any, description: str) -> ContentSource:
    """Ratings of the user's entries (``given`` False) or the user's of others' entries."""
    label = "given on glossary entries" if given else "glossary entries"
    return _glossary_source(
        name,
        f"rating ({label})",
        ("rating",),
        statement=_rating_statement(given),
        mapper=_rating_row,
        users_in=users_in,
        fields={
            **_ENTRY,
            **RATING_FIELDS,
            "on_your_entry": "Whether the rated entry is the user's",
        },
        description=description,
    )


def _attached_source(
    names: tuple[str, ...], statement: Any, field: tuple[str, str], description: str
) -> ContentSource:
    """A source of one value attached to each of the user's entries: ``names`` is the
    source's name, its table and the tables its statement reads beside the entries."""
    name, table, *reads = names
    return _glossary_source(
        name,
        table,
        tuple(reads),
        statement=statement,
        mapper=_attached_row(field[0]),
        users_in=_AUTHORS,
        fields={**_ENTRY, field[0]: field[1]},
        description=description,
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
    _attached_source(
        ("GlossaryAlias", "glossary_alias", "glossary_alias"),
        _attached_statement("glossary_alias", "alias"),
        ("alias", "Other word the entry is linked from"),
        "Aliases of the user's glossary entries",
    ),
    _attached_source(
        ("GlossaryEntryCategory", "glossary_entries_categories", "glossary_categories"),
        _attached_statement("glossary_entries_categories", "name"),
        ("category", "Category the entry is filed in"),
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
        _tag_statement,
        ("tag", "Tag of the entry"),
        "Tags of the user's glossary entries",
    ),
)
