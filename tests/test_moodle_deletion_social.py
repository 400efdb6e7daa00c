"""The deletion plan for what people follow, rate, tag and exchange besides messages.

Counted as Moodle 4.5's providers would delete it, never done (the adapter is read-only):
core_message's message actions, conversation favourites, contacts, contact requests,
blocks and notifications (own user context); mod_forum's subscriptions, digests, tracking,
read marks, queued mails, the ratings and tags on the user's posts (approved forum);
mod_assign's submission and feedback files (approved assignment); core_tag's tags the user
created (system context: kept, creator cleared). On SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.errors import PolicyError
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._schema import MoodleSchema, table_group
from learnprivacy.moodle._time import to_unix
from learnprivacy.providers import ApprovedContextList, Context
from learnprivacy.testing.moodle import insert_rows
from tests import NOW
from tests.conftest import in_course_module, synthetic_site
from tests.test_moodle_deletion import forum_posts

SCHEMA = MoodleSchema()
STAMP = to_unix(NOW)


def _new(c: sa.Connection, table: str, **values: Any) -> int:
    key = c.execute(SCHEMA[table].insert().values(**values)).inserted_primary_key
    return int(key[0])


def _one(c: sa.Connection, statement: Any) -> Any:
    return c.execute(statement).first()


def _forum_pair(c: sa.Connection) -> dict[str, int]:
    """A forum with posts by two authors, another forum, and their ids and contexts."""
    ctx = SCHEMA["context"]
    rows = forum_posts(c)
    first = rows[0]
    other = next(r for r in rows if r[2] == first[2] and r[1] != first[1])
    elsewhere = next(r for r in rows if r[2] != first[2])

    def context_of(cmid: int) -> int:
        found = _one(
            c, sa.select(ctx.c.id).where(ctx.c.contextlevel == 70, ctx.c.instanceid == cmid)
        )
        return int(found[0])

    return {
        "poster": int(first[1]), "post": int(first[0]), "other": int(other[1]),
        "other_post": int(other[0]), "cm": int(first[2]), "forum": int(first[3]),
        "discussion": int(first[4]), "context": context_of(int(first[2])),
        "forum2": int(elsewhere[3]), "discussion2": int(elsewhere[4]),
        "context2": context_of(int(elsewhere[2])),
    }  # fmt: skip


def _plant(engine: sa.Engine, learners: list[int]) -> dict[str, int]:
    """Rows around one forum poster whose fate under Moodle's providers is known."""
    with engine.begin() as c:
        ids = _forum_pair(c)
        poster, other = ids["poster"], ids["other"]
        friend, stranger = [u for u in learners if u not in (poster, other)][:2]
        ctx = SCHEMA["context"]
        poster_ctx = int(_one(c, sa.select(ctx.c.id).where(
            ctx.c.contextlevel == 30, ctx.c.instanceid == poster))[0])  # fmt: skip
        # A one-to-one conversation of the poster's, and one without them.
        mine = _new(c, "message_conversations", type=1, enabled=1, timecreated=STAMP)
        theirs = _new(c, "message_conversations", type=1, enabled=1, timecreated=STAMP)
        insert_rows(c, "message_conversation_members", [
            {"conversationid": conv, "userid": u, "timecreated": STAMP}
            for conv, u in ((mine, poster), (mine, friend), (theirs, friend), (theirs, stranger))
        ])  # fmt: skip
        sent = _new(c, "messages", useridfrom=poster, conversationid=mine, timecreated=STAMP)
        got = _new(c, "messages", useridfrom=friend, conversationid=mine, timecreated=STAMP)
        far = _new(c, "messages", useridfrom=stranger, conversationid=theirs, timecreated=STAMP)
        insert_rows(c, "message_user_actions", [
            {"userid": u, "messageid": m, "action": 1, "timecreated": STAMP}
            for u, m in ((poster, got), (friend, sent), (friend, got), (friend, far))
        ])  # fmt: skip
        favourite = {"itemtype": "message_conversations", "timecreated": STAMP,
                     "timemodified": STAMP}  # fmt: skip
        insert_rows(c, "favourite", [
            {**favourite, "component": "core_message", "itemid": mine, "contextid": poster_ctx,
             "userid": poster},
            {**favourite, "component": "core_course", "itemid": 1, "contextid": poster_ctx,
             "userid": poster},
            {**favourite, "component": "core_message", "itemid": mine,
             "contextid": poster_ctx + 1, "userid": friend},
        ])  # fmt: skip
        for table, column, pairs in (
            ("message_contacts", "contactid", ((poster, friend), (stranger, poster),
                                               (friend, stranger))),
            ("message_contact_requests", "requesteduserid", ((friend, poster), (friend, stranger))),
            ("message_users_blocked", "blockeduserid", ((poster, stranger), (stranger, friend))),
        ):  # fmt: skip
            insert_rows(
                c, table, [{"userid": a, column: b, "timecreated": STAMP} for a, b in pairs]
            )
        insert_rows(c, "notifications", [
            {"useridfrom": a, "useridto": b, "subject": "s", "timecreated": STAMP}
            for a, b in ((poster, friend), (-10, poster), (friend, stranger))
        ])  # fmt: skip
        # Following forums: the approved one and another.
        forum, forum2 = ids["forum"], ids["forum2"]
        subscribed = ((poster, forum), (poster, forum2), (friend, forum))
        insert_rows(c, "forum_subscriptions", [{"userid": u, "forum": f} for u, f in subscribed])
        insert_rows(c, "forum_discussion_subs", [
            {"userid": poster, "forum": forum, "discussion": ids["discussion"], "preference": 1},
            {"userid": friend, "forum": forum, "discussion": ids["discussion"], "preference": 1},
        ])  # fmt: skip
        insert_rows(c, "forum_digests", [{"userid": poster, "forum": f, "maildigest": 1}
                                         for f in (forum, forum2)])  # fmt: skip
        insert_rows(c, "forum_track_prefs", [{"userid": poster, "forumid": f}
                                             for f in (forum, forum2)])  # fmt: skip
        insert_rows(c, "forum_read", [
            {"userid": u, "forumid": forum, "discussionid": ids["discussion"], "postid": p,
             "firstread": STAMP, "lastread": STAMP}
            for u, p in ((poster, ids["post"]), (poster, ids["other_post"]), (friend, ids["post"]))
        ])  # fmt: skip
        insert_rows(c, "forum_queue", [
            {"userid": poster, "discussionid": d, "postid": 1, "timemodified": STAMP}
            for d in (ids["discussion"], ids["discussion2"])
        ])  # fmt: skip
        # Ratings: two on the poster's post, one the poster gave, one of another component.
        rating = {"component": "mod_forum", "ratingarea": "post", "scaleid": -3, "rating": 2,
                  "timecreated": STAMP, "timemodified": STAMP}  # fmt: skip
        insert_rows(c, "rating", [
            {**rating, "contextid": ids["context"], "itemid": ids["post"], "userid": friend},
            {**rating, "contextid": ids["context"], "itemid": ids["post"], "userid": other},
            {**rating, "contextid": ids["context"], "itemid": ids["other_post"], "userid": poster},
            {**rating, "contextid": ids["context"], "itemid": ids["post"], "userid": friend,
             "component": "mod_glossary", "ratingarea": "entry"},
            {**rating, "contextid": ids["context2"], "itemid": ids["post"], "userid": friend},
        ])  # fmt: skip
        tag = _new(c, "tag", userid=poster, tagcollid=1, name="revision", rawname="Revision")
        _new(c, "tag", userid=friend, tagcollid=1, name="examen", rawname="Examen")
        insert_rows(c, "tag_instance", [
            {"tagid": tag, "component": "mod_forum", "itemtype": "forum_posts", "itemid": p,
             "contextid": ids["context"], "tiuserid": 0}
            for p in (ids["post"], ids["other_post"])
        ])  # fmt: skip
    return {**ids, "friend": friend, "stranger": stranger, "poster_ctx": poster_ctx}


def _assign_files(engine: sa.Engine) -> dict[str, int]:
    """Files on one submission and one grade of an assignment, and on someone else's."""
    s = SCHEMA["assign_submission"]
    ctx = SCHEMA["context"]
    in_module, cm = in_course_module(s, s.c.assignment, "assign")
    with engine.begin() as c:
        joined = in_module.join(ctx, sa.and_(ctx.c.instanceid == cm.c.id, ctx.c.contextlevel == 70))
        columns = (s.c.id, s.c.userid, s.c.assignment, cm.c.id, ctx.c.id)
        row = _one(c, sa.select(*columns).select_from(joined).order_by(s.c.id))
        submission, author, assignment, cmid, context = (int(v) for v in row)
        others = _one(c, sa.select(s.c.id).where(s.c.assignment == assignment,
                                                 s.c.userid != author))  # fmt: skip
        grade = _new(c, "assign_grades", assignment=assignment, userid=author, timecreated=STAMP,
                     timemodified=STAMP, grader=2, grade=5, attemptnumber=99)  # fmt: skip
        placed = [
            ("assignsubmission_file", "submission_files", submission),
            ("assignsubmission_onlinetext", "submissions_onlinetext", submission),
            ("assignfeedback_file", "feedback_files", grade),
            ("assignsubmission_file", "submission_files", int(others[0]) if others else 0),
            ("assignfeedback_file", "feedback_files", grade + 1000),
        ]
        for n, (component, area, item) in enumerate(placed):
            insert_rows(c, "files", [
                {"contenthash": f"a{n:039d}", "pathnamehash": f"assign{n}{name}".ljust(40, "x"),
                 "contextid": context, "component": component, "filearea": area, "itemid": item,
                 "filepath": "/", "filename": name, "userid": author, "filesize": 1,
                 "timecreated": STAMP, "timemodified": STAMP}
                for name in (".", f"f{n}.pdf")
            ])  # fmt: skip
    return {"author": author, "cm": cmid, "context": context, "assignment": assignment}


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, dict[str, int]]]:
    """A generated site with the planted rows."""
    engine, summary = synthetic_site(new_database(), users=30, courses=3)
    learners = sorted(summary.learner_ids - summary.invalid_email_user_ids - {1, 2})
    planted = _plant(engine, learners)
    assigned = _assign_files(engine)
    yield engine, {**planted, **{f"assign_{k}": v for k, v in assigned.items()}}
    engine.dispose()


@pytest.fixture
def provider(site: tuple[sa.Engine, dict[str, int]]) -> Iterator[MoodleProvider]:
    """The provider over the site."""
    with MoodleDatabase(site[0]) as db:
        yield MoodleProvider(db)


def _plan(provider: MoodleProvider, user: int, *contexts: Context) -> dict[str, Any]:
    return provider.deletion_plan(ApprovedContextList(str(user), list(contexts)))


def _rows(plan: dict[str, Any], kind: str) -> int:
    return int(plan.get(kind, {}).get("rows", 0))


def test_messaging_rows_of_the_own_context(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """core_message: the poster's actions, the actions on what they sent, their favourite,
    and the contacts, requests, blocks and notifications they are on either side of.

    Attack: the friend's read mark on the friend's own message, the actions in a
    conversation without the poster, the friend's favourite, a favourite of another
    component and the rows between two other people are never counted.
    """
    ids = site[1]
    poster = ids["poster"]
    plan = _plan(provider, poster, Context.user(str(poster)))
    assert _rows(plan, "MessageAction") == 2
    assert plan["ConversationFavourite"] == {"table": "favourite", "action": "delete", "rows": 1}
    assert _rows(plan, "Contact") == 2
    assert _rows(plan, "ContactRequest") == 1
    assert _rows(plan, "BlockedUser") == 1
    assert plan["Notification"] == {"table": "notifications", "action": "delete", "rows": 2}
    # The stranger, in no conversation with the poster: only their own rows.
    stranger = _plan(provider, ids["stranger"], Context.user(str(ids["stranger"])))
    assert _rows(stranger, "Contact") == 2  # with the poster and with the friend
    assert _rows(stranger, "MessageAction") == 1  # the friend's mark on what they sent
    # Nothing of it without the poster's own context.
    forum_only = _plan(provider, poster, Context.module(str(ids["cm"])))
    assert not {"Contact", "Notification", "MessageAction"} & set(forum_only)


def test_forum_following_in_the_approved_forum_only(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """mod_forum: subscriptions, digest, tracking, read marks and queue of that forum.

    Attack: the poster's rows for the other forum and the friend's rows for this one stay.
    """
    ids = site[1]
    plan = _plan(provider, ids["poster"], Context.module(str(ids["cm"])))
    expected = {
        "ForumSubscription": 1,
        "ForumDiscussionSubscription": 1,
        "ForumDigest": 1,
        "ForumTrackingPreference": 1,
        "ForumRead": 2,
        "ForumQueue": 1,
    }
    assert {kind: _rows(plan, kind) for kind in expected} == expected
    assert plan["ForumRead"]["table"] == "forum_read"
    assert not set(expected) & set(_plan(provider, ids["poster"], Context.user(str(ids["poster"]))))


def test_ratings_on_own_posts_go_ratings_given_stay(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """core_rating through mod_forum: ratings *on* the poster's posts are deleted, the
    rating the poster gave on another post stays (``kept``), as do other components'.

    Attack: counting by rater (``rating.userid``) would give 1 deleted, not 2; the glossary
    rating on the same item id and the rating filed under another forum's context are
    not the post's.
    """
    ids = site[1]
    plan = _plan(provider, ids["poster"], Context.module(str(ids["cm"])))
    assert plan["Rating"] == {"table": "rating", "action": "delete", "rows": 2, "kept": 1}
    other = _plan(provider, ids["other"], Context.module(str(ids["cm"])))
    assert other["Rating"]["rows"] == 1  # the poster's rating of their post
    assert other["Rating"]["kept"] == 1  # the rating they gave on the poster's post


def test_tags_on_own_posts_and_tags_created(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """core_tag: tags on the poster's posts go with the forum; the tag they created stays
    with its creator cleared, and only with the system context approved."""
    ids = site[1]
    poster = ids["poster"]
    plan = _plan(provider, poster, Context.module(str(ids["cm"])))
    assert plan["PostTag"] == {"table": "tag_instance", "action": "delete", "rows": 1}
    assert "Tag" not in plan
    system = _plan(provider, poster, Context.system())
    assert system["Tag"] == {"table": "tag", "action": "clear creator", "rows": 1}
    assert "PostTag" not in system


def test_assignment_files_of_own_submissions_and_grades(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """mod_assign: files of the author's submission (file and online text areas) and of
    the feedback on their grade, "." entries included, as delete_area_files removes them.

    Attack: the file on another learner's submission and a feedback file whose item is a
    submission id (not a grade) are not counted.
    """
    ids = site[1]
    author, cm = ids["assign_author"], ids["assign_cm"]
    db = provider.database
    s, g, f = db.schema["assign_submission"], db.schema["assign_grades"], db.schema["files"]
    with db.connect() as connection:
        mine = {
            kind: set(connection.execute(sa.select(t.c.id).where(
                t.c.userid == author, t.c.assignment == ids["assign_assignment"])).scalars())
            for kind, t in (("submission", s), ("grade", g))
        }  # fmt: skip
        files = connection.execute(
            sa.select(f.c.component, f.c.filearea, f.c.itemid).where(
                f.c.contextid == ids["assign_context"]
            )
        ).all()
    areas = {
        ("assignsubmission_file", "submission_files"): "submission",
        ("assignsubmission_onlinetext", "submissions_onlinetext"): "submission",
        ("assignfeedback_file", "feedback_files"): "grade",
    }
    expected = sum(1 for c, a, item in files if (c, a) in areas and item in mine[areas[(c, a)]])
    assert expected >= 6  # the planted ones: two files, a feedback file, their "." entries
    assert expected < len(files)  # the other learner's and the misfiled one are there
    entry = _plan(provider, author, Context.module(str(cm)))["AssignFile"]
    assert (entry["table"], entry["action"], entry["component"]) == (
        "files",
        "delete",
        "mod_assign",
    )
    assert entry["rows"] == expected
    assert "AssignFile" not in _plan(provider, author, Context.user(str(author)))


def test_plan_writes_nothing_and_deletion_is_refused(
    provider: MoodleProvider, site: tuple[sa.Engine, dict[str, int]]
) -> None:
    """Every table counted here is unchanged after a full plan; deleting is refused."""
    ids = site[1]
    poster = str(ids["poster"])
    db = provider.database

    def counts() -> dict[str, int]:
        with db.connect() as connection:
            return {
                t: int(
                    connection.execute(
                        sa.select(sa.func.count()).select_from(db.schema[t])
                    ).scalar()
                )
                for t in sorted({*table_group("social"), *table_group("forum_follow")})
            }

    before = counts()
    approved = ApprovedContextList.approve(poster, provider.get_contexts_for_userid(poster))
    plan = provider.deletion_plan(
        ApprovedContextList(poster, [*approved, Context.module(str(ids["cm"])), Context.system()])
    )
    assert {"MessageAction", "Contact", "ForumRead", "Rating", "PostTag", "Tag"} <= set(plan)
    assert counts() == before
    with pytest.raises(PolicyError):
        provider.delete_data_for_user(approved)
    with pytest.raises(PolicyError), db.connect() as connection:
        connection.execute(db.schema["rating"].delete())
    assert counts() == before
