"""``get_users_in_context`` reads only the context's rows, and answers as a full read does."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._provider import context_of, row_context
from learnprivacy.moodle._sources import RECORD_SOURCES
from learnprivacy.providers import Context, UserList
from learnprivacy.testing.moodle import FixtureSummary
from tests.conftest import synthetic_site

# A course no other row names: a completion there is read only by a read of every course.
_ELSEWHERE = 987_654


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, FixtureSummary]]:
    """A small synthetic site with content, plus one undated completion in another course."""
    engine, summary = synthetic_site(new_database(), users=50, courses=5)
    cc = sa.table("mdl_course_completions", sa.column("userid"), sa.column("course"),
                  sa.column("timeenrolled"), sa.column("timestarted"))  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            sa.insert(cc).values(
                userid=min(summary.learner_ids), course=_ELSEWHERE, timeenrolled=0, timestarted=0
            )
        )
    yield engine, summary
    engine.dispose()


def _full_read_answer(db: MoodleDatabase, context: Context) -> set[str]:
    """The answer as it was computed before: every record and grade of the site read,
    then filtered by context."""
    found: set[str] = set()
    if context.instance_id.isdigit():
        level, instance = int(context.level), int(context.instance_id)
        found.update(str(u) for u in db.log_users_in(level, instance))
        found.update(str(u) for u in db.content_users_in(level, instance))
    if context.level is ContextLevel.COURSE:
        found.update(str(u) for u, c in db.enrolments() if c == int(context.instance_id))
    for source in RECORD_SOURCES:
        for record in db.read(source):
            if context_of(record) == context:
                found.add(record.learner_id)
    if context.level in (ContextLevel.COURSE, ContextLevel.MODULE):
        for uid, row in db.grades():
            if row_context(row) == context:
                found.add(str(uid))
    accounts = db.users(user_ids=sorted(found, key=int))
    return {str(u.id) for u in accounts if not (u.deleted or u.guest)}


def _contexts(db: MoodleDatabase) -> list[Context]:
    courses = [Context.course(c.id) for c in db.courses()]
    modules = [Context.module(cmid) for cmid in sorted(db.activity_types())]
    return [Context.system(), *courses, *modules, Context.course(_ELSEWHERE)]


def test_same_users_as_a_full_read(site: tuple[sa.Engine, FixtureSummary]) -> None:
    """Every course, activity and the system context: the same users as reading it all."""
    with MoodleDatabase(site[0]) as db:
        provider = MoodleProvider(db)
        contexts = _contexts(db)
        assert len(contexts) > 10
        nonempty = 0
        for context in contexts:
            userlist = UserList(context, "moodle")
            provider.get_users_in_context(userlist)
            expected = _full_read_answer(db, context)
            assert set(userlist.user_ids) == expected, context
            nonempty += bool(expected)
        assert nonempty > len(contexts) // 2


def test_a_course_reads_only_its_own_rows(site: tuple[sa.Engine, FixtureSummary]) -> None:
    """Another course's broken completion is never read for this course's users.

    A full read maps every completion of the site, and reports the undated one elsewhere;
    reading only the course's rows never meets it.
    """
    with MoodleDatabase(site[0]) as db:
        course = min(c.id for c in db.courses())
        provider = MoodleProvider(db)
        provider.get_users_in_context(UserList(Context.course(course), "moodle"))
        module = min(db.activity_types())
        provider.get_users_in_context(UserList(Context.module(module), "moodle"))
        assert not [i for i in db.issues if i.table == "course_completions"]
        # The broken row is there, and a read of its own course reports it.
        provider.get_users_in_context(UserList(Context.course(_ELSEWHERE), "moodle"))
        assert [i.rule for i in db.issues if i.table == "course_completions"] == ["no date at all"]
