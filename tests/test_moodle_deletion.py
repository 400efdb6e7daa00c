"""The deletion plan for messages and notes: what Moodle 4.5's providers would remove.

core_message deletes, in the user's own context, the messages the user sent in their
context-less conversations and the user's memberships, and keeps the other members'
messages; core_group does the same for a course's group conversations in the course
context; core_notes deletes, per course, the notes the user wrote and keeps the notes
others wrote about them. On SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._read_content import CONTENT_SOURCES
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import to_unix
from learnprivacy.providers import ApprovedContextList, Context
from learnprivacy.testing.moodle import FixtureSummary, insert_rows
from tests import NOW
from tests.conftest import in_course_module, synthetic_site

SOURCES = {source.name: source for source in CONTENT_SOURCES}
TEACHER = 2


def _insert(connection: sa.Connection, table: str, **values: Any) -> int:
    key = connection.execute(MoodleSchema()[table].insert().values(**values)).inserted_primary_key
    return int(key[0])


def _conversation(
    c: sa.Connection,
    stamp: int,
    members: tuple[int, ...],
    senders: tuple[int, ...],
    **fields: Any,
) -> int:
    """A new enabled conversation (``fields``) of ``members``, with one message from each
    of ``senders`` in turn; its id."""
    conversation = _insert(c, "message_conversations", enabled=1, timecreated=stamp, **fields)
    insert_rows(
        c,
        "message_conversation_members",
        [{"conversationid": conversation, "userid": u, "timecreated": stamp} for u in members],
    )
    for sender in senders:
        _insert(c, "messages", useridfrom=sender, conversationid=conversation, timecreated=stamp)
    return conversation


def forum_posts(c: sa.Connection) -> list[Any]:
    """Every forum post as ``(post id, author, course module, forum, discussion)``."""
    schema = MoodleSchema()
    fp, fd = schema["forum_posts"], schema["forum_discussions"]
    joined, cm = in_course_module(fp.join(fd, fd.c.id == fp.c.discussion), fd.c.forum, "forum")
    return list(
        c.execute(
            sa.select(fp.c.id, fp.c.userid, cm.c.id, fd.c.forum, fd.c.id)
            .select_from(joined)
            .order_by(fp.c.id)
        ).all()
    )


def _plant(engine: sa.Engine, summary: FixtureSummary) -> dict[str, int]:
    """Conversations and notes whose counts are known, around one learner."""
    learners = sorted(summary.learner_ids - summary.invalid_email_user_ids - {1, TEACHER})
    learner, friend, stranger, third = learners[:4]
    course = min(summary.course_ids)
    stamp = to_unix(NOW)
    with engine.begin() as c:
        ctx = MoodleSchema()["context"]
        course_context = c.execute(
            sa.select(ctx.c.id).where(ctx.c.contextlevel == 50, ctx.c.instanceid == course)
        ).scalar_one()
        # A conversation without the learner: none of it is theirs.
        _conversation(c, stamp, (friend, third), (friend, third, friend), type=1)
        # A course group conversation: core_group's, in the course context.
        _conversation(
            c,
            stamp,
            (learner, stranger),
            (learner, stranger, stranger),
            type=2,
            name="Groupe A",
            component="core_group",
            itemtype="groups",
            itemid=1,
            contextid=course_context,
        )
        # Notes: one the learner wrote about a classmate, the teacher's personal note and a
        # shared note about the learner.
        note = {"module": "notes", "courseid": course, "created": stamp, "lastmodified": stamp}
        insert_rows(
            c,
            "post",
            [
                {**note, "userid": friend, "usermodified": learner, "publishstate": "public",
                 "content": "Aide ses camarades."},
                {**note, "userid": learner, "usermodified": TEACHER, "publishstate": "draft",
                 "content": "Note personnelle de l'enseignant"},
                {**note, "userid": learner, "usermodified": TEACHER, "publishstate": "public",
                 "content": "Assidu."},
            ],
        )  # fmt: skip

        # Files: the learner's private file, a picture an administrator put in the
        # learner's context, the learner's forum attachment in the course, the friend's
        # private file.
        def user_context(uid: int) -> int:
            return int(
                c.execute(
                    sa.select(ctx.c.id).where(ctx.c.contextlevel == 30, ctx.c.instanceid == uid)
                ).scalar_one()
            )

        placed = [
            (user_context(learner), "user", "private", learner, "cv.pdf"),
            (user_context(learner), "user", "icon", TEACHER, "f1.png"),
            (course_context, "mod_forum", "attachment", learner, "notes.pdf"),
            (user_context(friend), "user", "private", friend, "secret.pdf"),
        ]
        for n, (context, component, area, uid, name) in enumerate(placed):
            for filename in (".", name):
                insert_rows(
                    c,
                    "files",
                    [
                        {
                            "contenthash": f"{n:040d}",
                            "pathnamehash": f"planted{n}{filename}".ljust(40, "x"),
                            "contextid": context,
                            "component": component,
                            "filearea": area,
                            "itemid": 0,
                            "filepath": "/",
                            "filename": filename,
                            "userid": uid,
                            "filesize": 10,
                            "timecreated": stamp,
                            "timemodified": stamp,
                        }
                    ],
                )
        # Forum files: two on a post of one author, one that author uploaded onto
        # another user's post in the same forum.
        posts = forum_posts(c)
        first = posts[0]
        other = next(p for p in posts if p[2] == first[2] and p[1] != first[1])
        forum_context = c.execute(
            sa.select(ctx.c.id).where(ctx.c.contextlevel == 70, ctx.c.instanceid == first[2])
        ).scalar_one()
        forum_files = [
            ("post", first[0], "image.png"),
            ("attachment", first[0], "annexe.pdf"),
            ("attachment", other[0], "sur-autre.pdf"),
        ]
        for n, (area, item, name) in enumerate(forum_files):
            for filename in (".", name):
                insert_rows(
                    c,
                    "files",
                    [
                        {
                            "contenthash": f"f{n:039d}",
                            "pathnamehash": f"forum{n}{area}{filename}".ljust(40, "x"),
                            "contextid": forum_context,
                            "component": "mod_forum",
                            "filearea": area,
                            "itemid": item,
                            "filepath": "/planted/",
                            "filename": filename,
                            "userid": first[1],
                            "filesize": 10,
                            "timecreated": stamp,
                            "timemodified": stamp,
                        }
                    ],
                )
    return {
        "learner": learner,
        "friend": friend,
        "stranger": stranger,
        "course": course,
        "poster": int(first[1]),
        "other_poster": int(other[1]),
        "forum": int(first[2]),
        "forum_context": int(forum_context),
    }


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, dict[str, int]]]:
    """A small synthetic site with content and planted conversations and notes."""
    engine, summary = synthetic_site(new_database(), users=40, courses=4)
    planted = _plant(engine, summary)
    yield engine, planted
    engine.dispose()


#: The ids of what :func:`_plant` planted, by name.
Planted = dict[str, int]


@pytest.fixture
def planted(site: tuple[sa.Engine, Planted]) -> Planted:
    """The ids of what :func:`_plant` planted in the site (learner, friend, course...)."""
    return site[1]


@pytest.fixture
def provider(site: tuple[sa.Engine, dict[str, int]]) -> Iterator[MoodleProvider]:
    """The provider over the site."""
    with MoodleDatabase(site[0]) as db:
        yield MoodleProvider(db)


def _count(db: MoodleDatabase, table: str, where: Any = None) -> int:
    statement = sa.select(sa.func.count()).select_from(db.schema[table])
    if where is not None:
        statement = statement.where(where)
    with db.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def _plan(provider: MoodleProvider, user: int, *contexts: Context) -> dict[str, Any]:
    return provider.deletion_plan(ApprovedContextList(str(user), list(contexts)))


def test_own_context_counts_only_messages_the_user_sent(
    provider: MoodleProvider, planted: Planted
) -> None:
    """User context: the learner's sent messages go, the other members' stay."""
    learner = planted["learner"]
    db = provider.database
    # Every conversation but the planted course group has no context.
    rows = db.content(SOURCES["Message"], learner)
    private = [r for r in rows if r["conversation"] != "Groupe A"]
    sent = sum(1 for r in private if r["sent_by_you"])
    plan = _plan(provider, learner, Context.user(str(learner)))
    assert plan["Message"] == {
        "table": "messages",
        "action": "delete",
        "rows": sent,
        "kept": len(private) - sent,
    }
    conv, member = db.schema["message_conversations"], db.schema["message_conversation_members"]
    memberships = _count(
        db,
        "message_conversation_members",
        sa.and_(
            member.c.userid == learner,
            member.c.conversationid.in_(sa.select(conv.c.id).where(conv.c.contextid.is_(None))),
        ),
    )
    assert plan["ConversationMember"]["rows"] == memberships
    assert "Note" not in plan  # notes live in course contexts


def test_group_conversation_counts_in_its_course_context(
    provider: MoodleProvider, planted: Planted
) -> None:
    """core_group's conversation: counted with the course approved, not with the user."""
    learner, course = planted["learner"], planted["course"]
    alone = _plan(provider, learner, Context.course(str(course)))
    assert alone["Message"] == {"table": "messages", "action": "delete", "rows": 1, "kept": 2}
    assert alone["ConversationMember"]["rows"] == 1
    both = _plan(provider, learner, Context.user(str(learner)), Context.course(str(course)))
    own = _plan(provider, learner, Context.user(str(learner)))
    assert both["Message"]["rows"] == own["Message"]["rows"] + 1
    assert both["Message"]["kept"] == own["Message"]["kept"] + 2


def test_another_users_messages_are_never_counted(
    provider: MoodleProvider, planted: Planted
) -> None:
    """Attack: another user's context, or a conversation without the learner, counts nothing."""
    learner, friend = planted["learner"], planted["friend"]
    db = provider.database
    msg = db.schema["messages"]
    # Moodle acts only in the user's own context: approving the friend's does nothing.
    assert _plan(provider, learner, Context.user(str(friend))) == {}
    # The friend sent messages the learner never saw; none appears in the learner's plan,
    # every one of them in the friend's.
    friend_plan = _plan(provider, friend, Context.user(str(friend)))
    friend_sent = _count(db, "messages", msg.c.useridfrom == friend)
    assert friend_plan["Message"]["rows"] == friend_sent
    learner_plan = _plan(provider, learner, Context.user(str(learner)))
    learner_sent = _count(db, "messages", msg.c.useridfrom == learner) - 1  # minus the group's
    assert learner_plan["Message"]["rows"] == learner_sent


def test_notes_counts_only_what_the_user_wrote(provider: MoodleProvider, planted: Planted) -> None:
    """Attack: the teacher's personal note and shared note about the learner are kept."""
    learner, course = planted["learner"], planted["course"]
    db = provider.database
    post = db.schema["post"]
    about = _count(
        db,
        "post",
        sa.and_(
            post.c.module == "notes",
            post.c.courseid == course,
            post.c.userid == learner,
            post.c.publishstate.in_(("public", "site")),
        ),
    )
    plan = _plan(provider, learner, Context.course(str(course)))
    assert plan["Note"] == {"table": "post", "action": "delete", "rows": 1, "kept": about}
    # The teacher's own notes, personal ones included, are the teacher's to lose.
    teacher = _plan(provider, TEACHER, Context.course(str(course)))
    written = _count(
        db,
        "post",
        sa.and_(post.c.module == "notes", post.c.courseid == course, post.c.usermodified == 2),
    )
    assert written >= 2
    assert teacher["Note"]["rows"] == written
    # Another course approved: none of this course's notes.
    other = _plan(provider, learner, Context.course(str(course + 10_000)))
    assert "Note" not in other


def test_plan_changes_nothing(provider: MoodleProvider, planted: Planted) -> None:
    """Read-only: messages, memberships and notes are all still there afterwards."""
    learner, course = planted["learner"], planted["course"]
    db = provider.database
    tables = ("messages", "message_conversation_members", "post", "files")
    before = {t: _count(db, t) for t in tables}
    contexts = provider.get_contexts_for_userid(str(learner))
    plan = provider.deletion_plan(ApprovedContextList.approve(str(learner), contexts))
    assert Context.course(str(course)) in set(contexts)
    assert {"Message", "ConversationMember", "Note", "File"} <= set(plan)
    assert {t: _count(db, t) for t in tables} == before


def _user_area_files(db: MoodleDatabase, uid: int) -> int:
    f, ctx = db.schema["files"], db.schema["context"]
    own = sa.select(ctx.c.id).where(ctx.c.contextlevel == 30, ctx.c.instanceid == uid)
    return _count(db, "files", sa.and_(f.c.contextid.in_(own), f.c.component == "user"))


def test_files_counts_the_user_area_of_the_own_context(
    provider: MoodleProvider, planted: Planted
) -> None:
    """core_user: every ``user`` file of the own context, whoever uploaded it.

    Attack: the learner's forum attachment (mod_forum's to decide) and the friend's private
    file are not counted; counting by uploader instead would differ.
    """
    learner, friend = planted["learner"], planted["friend"]
    db = provider.database
    f = db.schema["files"]
    expected = _user_area_files(db, learner)
    assert expected >= 4  # the planted private file and picture, with their "." entries
    plan = _plan(provider, learner, Context.user(str(learner)))
    assert plan["File"] == {
        "table": "files",
        "action": "delete",
        "rows": expected,
        "component": "user",
    }
    by_uploader = _count(db, "files", f.c.userid == learner)
    assert by_uploader != expected
    assert "File" not in _plan(provider, learner, Context.course(str(planted["course"])))
    friend_plan = _plan(provider, friend, Context.user(str(friend)))
    assert friend_plan["File"]["rows"] == _user_area_files(db, friend)
    assert "File" not in _plan(provider, learner, Context.user(str(friend)))


def _post_files(db: MoodleDatabase, site: dict[str, int], author: int) -> int:
    """Files of the forum's post and attachment areas on one of ``author``'s posts."""
    fp, fd, cm = (
        db.schema["forum_posts"],
        db.schema["forum_discussions"],
        db.schema["course_modules"],
    )
    with db.connect() as connection:
        ids = set(
            connection.execute(
                sa.select(fp.c.id)
                .select_from(fp.join(fd, fd.c.id == fp.c.discussion))
                .join(cm, cm.c.instance == fd.c.forum)
                .where(fp.c.userid == author, cm.c.id == site["forum"])
            ).scalars()
        )
    f = db.schema["files"]
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(f.c.itemid).where(
                f.c.contextid == site["forum_context"],
                f.c.component == "mod_forum",
                f.c.filearea.in_(("post", "attachment")),
            )
        ).scalars()
        return sum(1 for item in rows if item in ids)


def test_forum_files_of_the_users_posts_only(provider: MoodleProvider, planted: Planted) -> None:
    """mod_forum: the files of the user's posts in the approved forum go.

    Attack: a file the author uploaded onto another user's post is not counted for the
    author (it goes with that other user's posts), and no forum file is counted without
    the forum's context approved.
    """
    db = provider.database
    poster, other = planted["poster"], planted["other_poster"]
    forum = Context.module(str(planted["forum"]))
    expected = _post_files(db, planted, poster)
    assert expected >= 4
    plan = _plan(provider, poster, forum)
    assert plan["ForumFile"] == {
        "table": "files",
        "action": "delete",
        "rows": expected,
        "component": "mod_forum",
    }
    f = db.schema["files"]
    uploaded = _count(
        db, "files", sa.and_(f.c.contextid == planted["forum_context"], f.c.userid == poster)
    )
    assert uploaded == expected + 2  # the file on the other post (and its "." entry)
    assert _plan(provider, other, forum)["ForumFile"]["rows"] == _post_files(db, planted, other)
    assert "ForumFile" not in _plan(provider, poster, Context.user(str(poster)))
