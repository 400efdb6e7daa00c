"""Forum posts, submissions, quiz attempts, messages, files, badges, notes, profile fields.

Each kind is read with Moodle 4.5's tables and columns, exported in the context Moodle's
own provider uses, listed by get_contexts_for_userid / get_users_in_context, and laid out
in the folder Moodle's export gives it; on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from learnprivacy.errors import NotFoundError
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._content import same
from learnprivacy.moodle._provider import CONTENT_TYPES
from learnprivacy.moodle._read_content import CONTENT_SOURCES
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import to_unix
from learnprivacy.moodle._writer import safe_name
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    ContextLevel,
    MemoryWriter,
    MetadataCollection,
    UserList,
)
from learnprivacy.testing.moodle import FixtureSummary, create_schema, insert_rows, populate
from tests import NOW
from tests.conftest import open_engine, synthetic_site

SOURCES = {source.name: source for source in CONTENT_SOURCES}
# Planted by the module's site: text that must never reach the learner's export.
TEACHERS_OWN_NOTE = "Note personnelle de l'enseignant"
OTHERS_CONVERSATION = "Conversation sans l'apprenant"


def _learner(summary: FixtureSummary) -> int:
    return min(summary.learner_ids - summary.invalid_email_user_ids - {1, 2})


def _plant(engine: sa.Engine, summary: FixtureSummary) -> dict[str, int]:
    """Rows only a careless reader would export for the learner, and one of theirs."""
    learner = _learner(summary)
    others = sorted(summary.learner_ids - {learner})[:2]
    stamp = to_unix(NOW)
    course = min(summary.course_ids)
    with engine.begin() as connection:
        insert_rows(
            connection,
            "post",
            [
                {
                    "module": "notes",
                    "userid": learner,
                    "courseid": course,
                    "content": TEACHERS_OWN_NOTE,
                    "publishstate": "draft",
                    "usermodified": 2,
                    "created": stamp,
                    "lastmodified": stamp,
                },
                {
                    "module": "notes",
                    "userid": learner,
                    "courseid": course,
                    "content": "Assidu et impliqué.",
                    "publishstate": "public",
                    "usermodified": 2,
                    "created": stamp,
                    "lastmodified": stamp,
                },
            ],
        )
        conversation = connection.execute(
            MoodleSchema()["message_conversations"]
            .insert()
            .values(type=2, name=OTHERS_CONVERSATION, enabled=1, timecreated=stamp)
        ).inserted_primary_key[0]
        insert_rows(
            connection,
            "message_conversation_members",
            [{"conversationid": conversation, "userid": u, "timecreated": stamp} for u in others],
        )
        insert_rows(
            connection,
            "messages",
            [
                {
                    "useridfrom": others[0],
                    "conversationid": conversation,
                    "fullmessage": OTHERS_CONVERSATION,
                    "timecreated": stamp,
                }
            ],
        )
    return {"learner": learner, "course": course}


@pytest.fixture(scope="module")
def site(
    new_database: Callable[[], str],
) -> Iterator[tuple[sa.Engine, FixtureSummary, dict[str, int]]]:
    """A small synthetic site with content, and planted rows, on each engine."""
    engine, summary = synthetic_site(new_database(), users=60, courses=6)
    planted = _plant(engine, summary)
    yield engine, summary, planted
    engine.dispose()


@pytest.fixture
def moodle(site: tuple[sa.Engine, FixtureSummary, dict[str, int]]) -> Iterator[MoodleDatabase]:
    """The adapter over the site."""
    with MoodleDatabase(site[0]) as db:
        yield db


def _count(db: MoodleDatabase, table: str, **where: Any) -> int:
    t = db.schema[table]
    statement = sa.select(sa.func.count()).select_from(t)
    for column, value in where.items():
        statement = statement.where(t.c[column] == value)
    with db.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def _writer_for(provider: MoodleProvider, user_id: str) -> MemoryWriter:
    writer = MemoryWriter()
    contexts = provider.get_contexts_for_userid(user_id)
    provider.export_user_data(ApprovedContextList.approve(user_id, contexts), writer)
    return writer


def _rich_learner(db: MoodleDatabase, summary: FixtureSummary) -> str:
    """A learner with forum posts, a submission, quiz attempts and messages."""
    wanted = {"ForumPost", "AssignSubmission", "QuizAttempt", "Message"}
    for uid in sorted(summary.learner_ids - summary.invalid_email_user_ids):
        if all(db.content(SOURCES[name], uid) for name in wanted):
            return str(uid)
    raise AssertionError("no learner with every kind of content in the fixture")


def test_every_row_of_the_site_is_read_for_its_author(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """Each learner's rows add up to the site's rows: none dropped, none read twice."""
    live = sorted(site[1].learner_ids)
    totals = dict.fromkeys(SOURCES, 0)
    for uid in live:
        for name, source in SOURCES.items():
            totals[name] += len(moodle.content(source, uid))
    assert totals["ForumPost"] == _count(moodle, "forum_posts")
    assert totals["ForumDiscussion"] == _count(moodle, "forum_discussions")
    assert totals["AssignSubmission"] == _count(moodle, "assign_submission")
    assert totals["AssignGrade"] == _count(moodle, "assign_grades")
    assert totals["QuizAttempt"] == _count(moodle, "quiz_attempts")
    assert totals["QuizGrade"] == _count(moodle, "quiz_grades")
    assert totals["Badge"] == _count(moodle, "badge_issued")
    assert totals["ProfileField"] == _count(moodle, "user_info_data")
    # Files: every real file, never the "." entries Moodle keeps for each folder.
    assert totals["File"] == _count(moodle, "files") - _count(moodle, "files", filename=".")
    assert totals["File"] > 0
    # Messages: each message once per member of its conversation.
    members = MoodleSchema()["message_conversation_members"]
    messages = MoodleSchema()["messages"]
    with moodle.connect() as connection:
        expected = connection.execute(
            sa.select(sa.func.count())
            .select_from(messages)
            .join(members, members.c.conversationid == messages.c.conversationid)
        ).scalar_one()
    assert totals["Message"] == expected


def test_rows_hold_moodles_values(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """A post, a submission, an attempt: their Moodle values, dates as ISO 8601 UTC."""
    learner = _rich_learner(moodle, site[1])
    post = moodle.content(SOURCES["ForumPost"], learner)[0]
    p = moodle.schema["forum_posts"]
    with moodle.connect() as connection:
        row = connection.execute(
            sa.select(p.c.subject, p.c.message, p.c.created).where(p.c.id == int(post["post_id"]))
        ).one()
    assert (post["subject"], post["message"]) == (row.subject, row.message)
    assert post["created_at"].endswith("+00:00")
    attempt = moodle.content(SOURCES["QuizAttempt"], learner)[0]
    assert attempt["state"] in {"finished", "inprogress", "overdue", "abandoned"}
    if attempt["marks"] is not None:
        # The fixture's quizzes have 10 marks for a grade out of 20.
        assert float(attempt["grade"]) == pytest.approx(float(attempt["marks"]) * 2)
    submission = moodle.content(SOURCES["AssignSubmission"], learner)[0]
    assert submission["attempt"] >= 1
    assert submission["online_text"]


def test_contexts_and_users_agree_with_the_export(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """Each activity with a learner's post lists them, and exporting it writes the post."""
    provider = MoodleProvider(moodle)
    learner = _rich_learner(moodle, site[1])
    contexts = set(provider.get_contexts_for_userid(learner))
    posts = moodle.content(SOURCES["ForumPost"], learner)
    forums = {Context.module(p["activity_id"]) for p in posts}
    assert forums <= contexts
    forum = sorted(forums, key=lambda c: int(c.instance_id))[0]
    userlist = UserList(forum, "moodle")
    provider.get_users_in_context(userlist)
    assert learner in userlist.user_ids
    for uid in userlist.user_ids:
        writer = MemoryWriter()
        provider.export_user_data(ApprovedContextList(uid, [forum]), writer)
        assert writer.rows, uid
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList(learner, [forum]), writer)
    exported = writer.rows[("moodle", "ForumPost")]
    assert {r["post_id"] for r in exported} == {
        p["post_id"] for p in posts if Context.module(p["activity_id"]) == forum
    }
    # Messages and badges live in the user context: a forum alone does not export them.
    assert ("moodle", "Message") not in writer.rows
    # Someone who never posted there is not listed, and an export of it writes nothing.
    absent = next(
        str(u)
        for u in sorted(site[1].learner_ids)
        if str(u) not in userlist.user_ids and str(u) != learner
    )
    nothing = MemoryWriter()
    provider.export_user_data(ApprovedContextList(absent, [forum]), nothing)
    assert not nothing.rows


def test_files_are_in_their_own_context(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """A submitted file belongs to the assignment's context, a private file to the user's."""
    provider = MoodleProvider(moodle)
    owners = sorted(site[1].learner_ids)
    for uid in map(str, owners):
        files = moodle.content(SOURCES["File"], uid)
        if {f["component"] for f in files} >= {"user", "assignsubmission_file"}:
            break
    else:
        pytest.skip("no learner with both kinds of file in this fixture")
    writer = _writer_for(provider, uid)
    exported = writer.rows[("moodle", "File")]
    assert len(exported) == len(files)
    for entry in exported:
        level = ContextLevel(entry["context_level"])
        assert level is (ContextLevel.USER if entry["component"] == "user" else ContextLevel.MODULE)
        assert entry["filename"] != "."
    userlist = UserList(Context.user(uid), "moodle")
    provider.get_users_in_context(userlist)
    assert userlist.user_ids == (uid,)


def test_personal_notes_and_others_conversations_stay_out(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """A teacher's personal note about the learner and a conversation without them: never."""
    learner = str(site[2]["learner"])
    writer = _writer_for(MoodleProvider(moodle), learner)
    assert ("moodle", "Note") in writer.rows  # shared notes about the learner are there
    text = json.dumps(list(writer.rows.values()), ensure_ascii=False)
    assert TEACHERS_OWN_NOTE not in text
    assert OTHERS_CONVERSATION not in text
    # The planted note exists, and shared notes about the learner are read.
    assert _count(moodle, "post", content=TEACHERS_OWN_NOTE) == 1
    for uid in sorted(site[1].learner_ids):
        notes = moodle.content(SOURCES["Note"], uid)
        assert all(n["visibility"] in {"course", "site"} for n in notes if not n["written_by_you"])


def test_other_people_appear_as_flags_never_ids(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """Messages, grades and notes name the learner's correspondents by flags only."""
    learner = _rich_learner(moodle, site[1])
    rows = _writer_for(MoodleProvider(moodle), learner).rows
    for name in ("Message", "AssignGrade", "Note", "ForumDiscussion"):
        for row in rows.get(("moodle", name), []):
            assert not {"userid", "useridfrom", "grader", "usermodified"} & set(row)
    # Both sides of a conversation are there, told apart by the flag.
    sides = {
        m["sent_by_you"]
        for uid in sorted(site[1].learner_ids)
        for m in moodle.content(SOURCES["Message"], uid)
    }
    assert sides == {True, False}


def test_deleted_accounts_export_nothing(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """A deleted account has no contexts and no content exported, whatever rows remain."""
    provider = MoodleProvider(moodle)
    for uid in map(str, sorted(site[1].deleted_user_ids)[:5]):
        assert list(provider.get_contexts_for_userid(uid)) == []
        assert not _writer_for(provider, uid).rows


def test_each_source_is_read_from_its_one_declaration() -> None:
    """A source's SELECT names each column of its fields once; its rows have every
    declared field, in the declared order (the order of the exported JSON).

    Attack: a field naming a table its frame does not join is refused when the statement
    is built, not read as nothing.
    """
    schema = MoodleSchema()
    for source in CONTENT_SOURCES:
        selected = [str(c) for c in source.statement(schema, 7).selected_columns]
        assert len(selected) == len(set(selected)), source.name
        wanted = {c for _, how, _ in source.columns for c in how.columns}
        assert len(selected) == len(wanted), source.name
        row = tuple(range(1, len(selected) + 1))
        assert list(source.mapper(row, 7)) == list(source.fields), source.name
    stray = attrs.evolve(
        SOURCES["Badge"], columns=(*SOURCES["Badge"].columns, ("x", same("p.id"), "Stray"))
    )
    with pytest.raises(KeyError):
        stray.statement(schema, 7)


def test_metadata_declares_every_content_table(moodle: MoodleDatabase) -> None:
    """Each content kind is declared with the fields its rows carry."""
    collection = MoodleProvider(moodle).get_metadata(MetadataCollection("moodle"))
    tables = {item.name: item for item in collection}
    for source in CONTENT_SOURCES:
        assert source.table in tables, source.table
        assert set(tables[source.table].fields) == set(source.fields)
    assert set(CONTENT_TYPES) == set(SOURCES)


def test_layout_puts_content_where_moodle_does(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]], tmp_path: Path
) -> None:
    """Discussions, attempts, quiz attempts, messages, badges and notes in Moodle's folders."""
    learner = _rich_learner(moodle, site[1])
    out = MoodleProvider(moodle).export_layout(learner, tmp_path / "layout")
    paths = {str(p.relative_to(out)) for p in out.rglob("*.json")}
    forum = moodle.schema["forum"]
    with moodle.connect() as connection:
        names = {n for (n,) in connection.execute(sa.select(forum.c.name))}
    # The activity's own name opens its folder, as in Moodle's export.
    assert any(f"/Forum {name} _." in p for p in paths for name in names)
    assert any("/Discussions/" in p for p in paths)
    assert any("/attempt 1/data.json" in p for p in paths)
    assert any("/attempt 1/Submission Text/data.json" in p for p in paths)
    assert any("/Attempts/1/data.json" in p for p in paths)
    assert any("/Messages/" in p and p.startswith("System _.1/User ") for p in paths)
    post = moodle.content(SOURCES["ForumPost"], learner)[0]
    written = [p for p in paths if p.endswith(f"-{post['post_id']}/data.json")]
    assert len(written) == 1
    assert json.loads((out / written[0]).read_text())["message"] == post["message"]


def test_activity_folders_follow_a_renamed_activity(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """Rename a forum in Moodle: the export's folder takes the new name."""
    engine, summary = synthetic_site(new_database(), users=30, courses=3)
    forum = MoodleSchema()["forum"]
    with engine.begin() as connection:
        connection.execute(forum.update().values(name="Espace d'échange renommé"))
    with MoodleDatabase(engine) as db:
        learner = next(
            str(u)
            for u in sorted(summary.learner_ids - summary.invalid_email_user_ids)
            if db.content(SOURCES["ForumPost"], u)
        )
        out = MoodleProvider(db).export_layout(learner, tmp_path / "renamed")
    folders = {p.name for p in out.rglob("*") if p.is_dir()}
    assert any(f.startswith("Forum Espace d'échange renommé _.") for f in folders)
    engine.dispose()


def test_missing_tables(new_database: Callable[[], str]) -> None:
    """A missing activity table gives no rows; a missing core table names itself."""
    engine = open_engine(new_database())
    schema = create_schema(engine)
    populate(engine, now=NOW, users=20, courses=2)
    with engine.begin() as connection:
        schema["quiz_attempts"].drop(connection)
        schema["files"].drop(connection)
    with MoodleDatabase(engine) as db:
        assert db.content(SOURCES["QuizAttempt"], 5) == []
        with pytest.raises(NotFoundError) as raised:
            db.content(SOURCES["File"], 5)
        assert raised.value.table == "files"  # type: ignore[attr-defined]
    engine.dispose()


def test_deletion_plan_counts_what_moodle_would_remove(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]]
) -> None:
    """Per approved context, the rows Moodle's providers would delete or blank; none goes."""
    provider = MoodleProvider(moodle)
    learner = _rich_learner(moodle, site[1])
    contexts = provider.get_contexts_for_userid(learner)
    before = _count(moodle, "forum_posts")
    plan = provider.deletion_plan(ApprovedContextList.approve(learner, contexts))
    posts = moodle.content(SOURCES["ForumPost"], learner)
    assert plan["ForumPost"] == {
        "table": "forum_posts",
        "action": "replace text",
        "rows": len(posts),
    }
    # mod_forum blanks the posts and leaves the discussions (their names) as they are.
    assert plan["ForumDiscussion"] == {
        "table": "forum_discussions",
        "action": "keep",
        "rows": len(moodle.content(SOURCES["ForumDiscussion"], learner)),
    }
    assert plan["QuizAttempt"]["action"] == "delete"
    assert plan["QuizAttempt"]["rows"] == len(moodle.content(SOURCES["QuizAttempt"], learner))
    # The fixture's conversations have no context: the learner's sent messages go, the
    # other members' stay (the planted conversation without the learner: in neither).
    messages = moodle.content(SOURCES["Message"], learner)
    sent = sum(1 for m in messages if m["sent_by_you"])
    assert plan["Message"] == {
        "table": "messages",
        "action": "delete",
        "rows": sent,
        "kept": len(messages) - sent,
    }
    # One forum approved: only that forum's posts, nothing of the quizzes.
    forum = Context.module(posts[0]["activity_id"])
    one = provider.deletion_plan(ApprovedContextList(learner, [forum]))
    assert one["ForumPost"]["rows"] == sum(
        1 for p in posts if Context.module(p["activity_id"]) == forum
    )
    assert "QuizAttempt" not in one
    assert _count(moodle, "forum_posts") == before  # read-only: nothing changed
    deleted = str(min(site[1].deleted_user_ids))
    assert provider.deletion_plan(ApprovedContextList(deleted, [forum])) == {}


def test_forum_replies_nest_under_their_parent_named_in_unix_time(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary, dict[str, int]], tmp_path: Path
) -> None:
    """A reply sits in its parent post's folder, each ``<created>-<subject>-<id>`` (Unix time).

    Attack: the parent post is another user's; its folder is there (Moodle's nesting) but
    none of its text is written into the learner's export.
    """
    p = moodle.schema["forum_posts"]
    with moodle.connect() as connection:
        posts = {
            row.id: row
            for row in connection.execute(
                sa.select(p.c.id, p.c.parent, p.c.userid, p.c.created, p.c.subject, p.c.message)
            )
        }
    reply = next(
        r for r in posts.values() if r.parent and posts[r.parent].userid != r.userid and r.userid
    )
    parent = posts[reply.parent]
    out = MoodleProvider(moodle).export_layout(str(reply.userid), tmp_path / "layout")
    written = [f for f in out.rglob("*.json") if f.parent.name.endswith(f"-{reply.id}")]
    assert len(written) == 1
    folder = written[0].parent
    expected = [f"{parent.created}-{parent.subject}-{parent.id}", f"{reply.created}-"]
    assert folder.parent.name == safe_name(expected[0])
    assert folder.name.startswith(expected[1])
    # The discussion's folder holds the first post's folder, each reply below its parent.
    chain = []
    current = parent
    while current.parent:
        current = posts[current.parent]
        chain.append(current.id)
    above = folder.parent
    for ancestor in chain:  # the parent's ancestors, nearest first
        above = above.parent
        assert above.name.endswith(f"-{ancestor}")
    assert above.parent.parent.name == "Discussions"
    assert json.loads(written[0].read_text())["post_id"] == str(reply.id)
    if parent.userid != reply.userid and parent.message:
        assert not (folder.parent / "data.json").exists()
        texts = "".join(f.read_text() for f in out.rglob("*.json"))
        assert json.dumps(parent.message)[1:-1] not in texts
