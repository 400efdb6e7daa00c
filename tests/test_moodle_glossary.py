"""Glossary entries (mod_glossary): read, listed, declared, exported and planned for deletion.

On a site the fixture generator fills with glossaries (entries, aliases, categories, tags,
ratings by other learners), on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._read_glossary import GLOSSARY_SOURCES
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    MemoryWriter,
    MetadataCollection,
    UserList,
)
from learnprivacy.testing.moodle import create_schema, populate
from tests import NOW
from tests.conftest import in_course_module, open_engine

SOURCES = {source.name: source for source in GLOSSARY_SOURCES}


def _entries(engine: sa.Engine) -> list[tuple[int, int, int, str]]:
    """(author, course module, entry id, concept) of every entry, in id order."""
    e = MoodleSchema()["glossary_entries"]
    joined, cm = in_course_module(e, e.c.glossaryid, "glossary")
    with engine.connect() as c:
        rows = c.execute(
            sa.select(e.c.userid, cm.c.id, e.c.id, e.c.concept).select_from(joined).order_by(e.c.id)
        ).all()
    return [(int(a), int(b), int(i), str(n)) for a, b, i, n in rows]


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, dict[str, Any]]]:
    """A generated site with a glossary per course; the author with the most entries."""
    engine = open_engine(new_database())
    create_schema(engine)
    populate(engine, now=NOW, users=40, courses=3, glossaries=True)
    entries = _entries(engine)
    authors = Counter((author, cmid) for author, cmid, _, _ in entries)
    learner = max(
        {a for a, _ in authors},
        key=lambda a: (len({c for (x, c) in authors if x == a}), sum(
            n for (x, _), n in authors.items() if x == a)),
    )  # fmt: skip
    yield engine, {"learner": learner, "entries": entries}
    engine.dispose()


@pytest.fixture
def moodle(site: tuple[sa.Engine, dict[str, Any]]) -> Iterator[MoodleDatabase]:
    """The adapter over the site."""
    with MoodleDatabase(site[0]) as db:
        yield db


def test_the_generator_fills_every_glossary_table(site: tuple[sa.Engine, Any]) -> None:
    """Entries, aliases, category links, tags and ratings of entries are all generated."""
    schema = MoodleSchema()
    with site[0].connect() as c:
        for name in ("glossary_entries", "glossary_alias", "glossary_entries_categories"):
            assert c.execute(sa.select(sa.func.count()).select_from(schema[name])).scalar()
        r, ti = schema["rating"], schema["tag_instance"]
        assert c.execute(sa.select(sa.func.count()).where(r.c.component == "mod_glossary")).scalar()
        assert c.execute(
            sa.select(sa.func.count()).where(ti.c.component == "mod_glossary")
        ).scalar()


def test_only_the_learners_own_entries_are_read(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, Any]]
) -> None:
    """The learner's entries are exactly the rows they wrote; what hangs on them too.

    Attack: another learner's entry in the same glossary is never read as the learner's.
    """
    ids = site[1]
    learner = ids["learner"]
    mine = {str(i) for a, _, i, _ in ids["entries"] if a == learner}
    read = moodle.content(SOURCES["GlossaryEntry"], learner)
    assert {r["entry_id"] for r in read} == mine
    for kind in ("GlossaryAlias", "GlossaryEntryCategory", "GlossaryTag", "GlossaryRating"):
        assert {r["entry_id"] for r in moodle.content(SOURCES[kind], learner)} <= mine, kind
    given = moodle.content(SOURCES["GlossaryRatingGiven"], learner)
    assert all(r["author_was_you"] and not r["on_your_entry"] for r in given)
    assert not {r["entry_id"] for r in given} & mine


def test_metadata_contexts_users_and_export_agree(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, Any]], tmp_path: Path
) -> None:
    """Each glossary is among the learner's contexts and lists them; each source is
    declared with exactly the fields exported; entries are in the glossary's ``entries``.

    Attack: no other learner's entry of the same glossary (one the learner did not rate)
    appears anywhere in the learner's export package.
    """
    ids = site[1]
    learner = str(ids["learner"])
    provider = MoodleProvider(moodle)
    glossaries = {Context.module(str(c)) for a, c, _, _ in ids["entries"] if a == ids["learner"]}
    contexts = provider.get_contexts_for_userid(learner)
    assert glossaries <= set(contexts)
    for glossary in glossaries:
        userlist = UserList(glossary, "moodle")
        provider.get_users_in_context(userlist)
        assert learner in userlist.user_ids
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList.approve(learner, contexts), writer)
    tables = {i.name: i for i in provider.get_metadata(MetadataCollection("moodle"))}
    for source in GLOSSARY_SOURCES:
        assert set(tables[source.table].fields) == set(source.fields), source.name
        exported = writer.rows[("moodle", source.name)]
        assert all(set(row) == set(source.fields) for row in exported), source.name
    assert writer.rows[("moodle", "GlossaryEntry")]
    out = provider.export_layout(learner, tmp_path / "layout")
    files = {str(p.relative_to(out)): p for p in out.rglob("*.json")}
    listed = [
        entry["entry_id"]
        for path, file in files.items()
        if re.search(r"/Glossary [^/]+ _\.\d+/data\.json$", path)
        for entry in json.loads(file.read_text(encoding="utf-8"))["entries"]
    ]
    mine = {str(i) for a, _, i, _ in ids["entries"] if a == ids["learner"]}
    assert sorted(listed) == sorted(mine)
    rated = {r["entry_id"] for r in writer.rows[("moodle", "GlossaryRatingGiven")]}
    others = [
        concept
        for a, c, i, concept in ids["entries"]
        if a != ids["learner"] and Context.module(str(c)) in glossaries and str(i) not in rated
    ]
    assert others
    text = "".join(p.read_text(encoding="utf-8") for p in files.values())
    assert not [concept for concept in others if concept in text]


def test_deletion_plan_counts_only_approved_glossaries(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, Any]]
) -> None:
    """The plan counts the learner's entries in the approved glossary, as mod_glossary's
    delete_data_for_user deletes them.

    Attack: entries in a glossary that is not approved are not in the plan.
    """
    ids = site[1]
    learner = ids["learner"]
    per_glossary = Counter(c for a, c, _, _ in ids["entries"] if a == learner)
    assert len(per_glossary) >= 2
    chosen, count = per_glossary.most_common(1)[0]
    provider = MoodleProvider(moodle)
    plan = provider.deletion_plan(ApprovedContextList(str(learner), [Context.module(str(chosen))]))
    assert plan["GlossaryEntry"] == {"table": "glossary_entries", "action": "delete", "rows": count}
    aliases = [
        r for r in moodle.content(SOURCES["GlossaryAlias"], learner)
        if r["activity_id"] == str(chosen)
    ]  # fmt: skip
    assert plan.get("GlossaryAlias", {"rows": 0})["rows"] == len(aliases)
    everything = provider.deletion_plan(
        ApprovedContextList(str(learner), [Context.module(str(c)) for c in per_glossary])
    )
    assert everything["GlossaryEntry"]["rows"] == sum(per_glossary.values()) > count
    assert not provider.deletion_plan(
        ApprovedContextList(str(learner), [Context.user(str(learner))])
    ).get("GlossaryEntry")
