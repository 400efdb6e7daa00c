"""Forum subscriptions, digests, tracking, read marks, ratings and tags: read and exported.

Read with Moodle 4.5's tables, listed in the contexts and users of the forum, declared in
the metadata with the fields the rows carry, and written where Moodle's forum provider
writes them (forum and discussion metadata, a post's ``postread`` metadata, its
``rating.json`` and ``tags.json``); on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._read_social import SOCIAL_SOURCES
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    MemoryWriter,
    MetadataCollection,
    UserList,
)
from learnprivacy.testing.moodle import insert_rows
from tests import test_moodle_deletion_social as planted

SOURCES = {source.name: source for source in SOCIAL_SOURCES}


# The deletion plan's site: subscriptions, read marks, ratings and tags around a poster.
site = planted.site


@pytest.fixture
def moodle(site: tuple[sa.Engine, dict[str, int]]) -> Iterator[MoodleDatabase]:
    """The adapter over the site."""
    with MoodleDatabase(site[0]) as db:
        yield db


def _rows(db: MoodleDatabase, name: str, user: int) -> list[dict[str, Any]]:
    return db.content(SOURCES[name], user)


def test_rows_hold_moodles_values(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """The poster's subscriptions, digests, tracking, read marks, ratings and tags.

    Attack: the glossary rating on the same item id and the rating filed under another
    forum's context are not the post's ratings; the tag on another author's post is not
    the poster's.
    """
    ids = site[1]
    poster = ids["poster"]
    assert len(_rows(moodle, "ForumSubscription", poster)) == 2
    assert {r["digest"] for r in _rows(moodle, "ForumDigest", poster)} == {"complete"}
    assert [r["tracking"] for r in _rows(moodle, "ForumTrackingPreference", poster)] == [
        False,
        False,
    ]
    [discussion] = _rows(moodle, "ForumDiscussionSubscription", poster)
    assert (discussion["discussion_id"], discussion["subscribed"]) == (
        str(ids["discussion"]),
        True,
    )
    read = _rows(moodle, "ForumRead", poster)
    assert {r["post_id"] for r in read} == {str(ids["post"]), str(ids["other_post"])}
    assert all(r["first_read_at"] and r["first_read_at"].endswith("+00:00") for r in read)
    ratings = _rows(moodle, "Rating", poster)
    on_mine = [r for r in ratings if r["on_your_post"]]
    given = [r for r in ratings if r["author_was_you"]]
    assert len(on_mine) == 2
    assert [r["post_id"] for r in given] == [str(ids["other_post"])]
    assert len(ratings) == 3
    assert [r["tag"] for r in _rows(moodle, "PostTag", poster)] == ["Revision"]
    # The other author's post carries the tag too, but it is theirs.
    assert [r["post_id"] for r in _rows(moodle, "PostTag", ids["other"])] == [
        str(ids["other_post"])
    ]


def test_other_raters_appear_as_flags(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """Ratings of the poster's post say who rated only as ``author_was_you``."""
    ids = site[1]
    for row in _rows(moodle, "Rating", ids["poster"]):
        assert not {"userid", "rater", "author"} & set(row)
        assert set(row) == set(SOURCES["Rating"].fields)


def test_declared_metadata_is_what_is_exported(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """Each source is declared with its table and exactly the fields its exported rows carry,
    under the forum type's purpose."""
    provider = MoodleProvider(moodle)
    collection = provider.get_metadata(MetadataCollection("moodle"))
    tables = {item.name: item for item in collection}
    poster = str(site[1]["poster"])
    writer = MemoryWriter()
    contexts = provider.get_contexts_for_userid(poster)
    provider.export_user_data(ApprovedContextList.approve(poster, contexts), writer)
    for source in SOCIAL_SOURCES:
        assert set(tables[source.table].fields) == set(source.fields), source.name
        exported = writer.rows[("moodle", source.name)]
        assert exported, source.name
        assert all(set(row) == set(source.fields) for row in exported), source.name
        assert provider.describe(source.name).purpose == provider.describe("ForumPost").purpose


def test_contexts_and_users_agree_with_the_export(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """The friend, who only subscribed to, read and rated in the forum, is listed in it, and
    exporting it for them writes those rows; the forum is among their contexts."""
    ids = site[1]
    provider = MoodleProvider(moodle)
    forum = Context.module(str(ids["cm"]))
    friend = str(ids["friend"])
    assert forum in set(provider.get_contexts_for_userid(friend))
    userlist = UserList(forum, "moodle")
    provider.get_users_in_context(userlist)
    assert {friend, str(ids["poster"]), str(ids["other"])} <= set(userlist.user_ids)
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList(friend, [forum]), writer)
    kinds = {name for (_, name) in writer.rows}
    assert {"ForumSubscription", "ForumDiscussionSubscription", "ForumRead", "Rating"} <= kinds
    # Approving only the user context exports none of it.
    alone = MemoryWriter()
    provider.export_user_data(ApprovedContextList(friend, [Context.user(friend)]), alone)
    assert not {name for (_, name) in alone.rows} & set(SOURCES)


def test_layout_writes_them_where_the_forum_provider_does(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, int]], tmp_path: Path
) -> None:
    """Forum metadata, discussion preference, a post's ``postread``, ``rating`` and ``tags``."""
    ids = site[1]
    out = MoodleProvider(moodle).export_layout(str(ids["poster"]), tmp_path / "layout")
    files = {str(p.relative_to(out)): p for p in out.rglob("*.json")}
    marker = f"_.{ids['context']}/"
    forum_meta = json.loads(files[next(p for p in files if p.endswith(f"{marker}metadata.json"))]
                            .read_text())  # fmt: skip
    assert forum_meta["subscriptionpreference"]["value"] is True
    assert forum_meta["digestpreference"]["value"] == "complete"
    assert forum_meta["trackreadpreference"]["value"] is False
    post_folder = next(
        p.rsplit("/", 1)[0]
        for p in files
        if marker in p and p.endswith(f"-{ids['post']}/data.json")
    )
    ratings = json.loads(files[f"{post_folder}/rating.json"].read_text())
    assert len(ratings) == 2
    assert all(r["on_your_post"] and not r["author_was_you"] for r in ratings.values())
    assert json.loads(files[f"{post_folder}/tags.json"].read_text()) == ["Revision"]
    post_meta = json.loads(files[f"{post_folder}/metadata.json"].read_text())
    assert post_meta["postread"]["value"]["post_id"] == str(ids["post"])
    discussion = (
        next(p for p in files if marker in p and f"/Discussions/{ids['discussion']}-" in p).split(
            "/Discussions/"
        )[0]
        + "/Discussions/"
    )
    subscribed = [
        json.loads(path.read_text())["preference"]["value"]
        for name, path in files.items()
        if name.startswith(discussion) and name.count("/") == discussion.count("/") + 1
        and name.endswith("metadata.json")
    ]  # fmt: skip
    assert [row["subscribed"] for row in subscribed] == [True]


def test_an_activity_purpose_of_its_own_is_shown_in_its_folder(
    site: tuple[sa.Engine, dict[str, int]], tmp_path: Path
) -> None:
    """A forum whose context has a purpose of its own shows it in its ``metadata.json``;
    another forum shows the type's.

    Attack: before, every forum's folder showed its type's purpose, whatever the registry
    set on the forum itself.
    """
    ids = site[1]
    insert_rows(site[0], "tool_dataprivacy_purpose", [
        {"id": 900, "name": "forum archive", "lawfulbases": "gdpr_art_6_1_f",
         "retentionperiod": "P7Y", "usermodified": 2, "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    insert_rows(site[0], "tool_dataprivacy_ctxinstance", [
        {"contextid": ids["context"], "purposeid": 900, "categoryid": 0, "usermodified": 2,
         "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    with MoodleDatabase(site[0]) as db:
        out = MoodleProvider(db).export_layout(str(ids["poster"]), tmp_path / "layout")
    metadata = {str(p.relative_to(out)): p for p in out.rglob("metadata.json")}

    def purpose_of(context: int) -> Any:
        path = next(
            p for name, p in metadata.items() if name.endswith(f"_.{context}/metadata.json")
        )
        return json.loads(path.read_text()).get("purpose", {}).get("value")

    assert purpose_of(ids["context"]) == "forum archive"
    assert purpose_of(ids["context2"]) != "forum archive"
