"""Another process's erasure is final for this one too.

This process reads a learner: her keys are unwrapped in its keyring's cache. Another
process (a keyring of its own on the same key database) erases her. The records
database is then restored from a copy taken before the erasure. Whatever way this
process reads her rows back, they must not open: the key database, not its memory,
says which keys are alive (``KeyShreddedError``). Every other learner reads as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.models import User
from django.db import connections, transaction
from django.test import TransactionTestCase
from django.test.utils import CaptureQueriesContext

from learnprivacy.django import _settings
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import runtime
from learnprivacy.errors import KeyShreddedError
from lms.models import Course, Enrolment, ForumPost, Profile

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
#: The tables an erasure changes, parents first.
TABLES = ("auth_user", "lms_profile", "lms_enrolment", "lms_forumpost")


def copy_tables() -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row of :data:`TABLES`, as a backup of the records database holds them."""
    copied = {}
    with connections["default"].cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            copied[table] = ([c[0] for c in cursor.description], list(cursor.fetchall()))
    return copied


def restore_tables(copied: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    """Put the records database back as :func:`copy_tables` found it."""
    with transaction.atomic(), connections["default"].cursor() as cursor:
        for table in reversed(TABLES):
            cursor.execute(f"DELETE FROM {table}")
        for table in TABLES:
            columns, rows = copied[table]
            marks = ", ".join(["%s"] * len(columns))
            for row in rows:
                cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", row)


@contextmanager
def another_process() -> Iterator[None]:
    """Run the block with a keyring of its own on the same key database, as another
    worker process would (its own cache of unwrapped keys); this one's afterwards."""
    mine = _settings._runtime
    _settings.reset_runtime()
    try:
        yield
    finally:
        _settings._runtime = mine


#: Each way of reading the learner's rows back, given her and her course.
READS: dict[str, Callable[[User, Course], object]] = {
    "get": lambda user, course: Profile.objects.get(user=user).phone,
    "all": lambda user, course: [p.city for p in Profile.objects.order_by("pk")],
    "iterator": lambda user, course: [
        p.phone for p in Profile.objects.order_by("pk").iterator(chunk_size=1)
    ],
    "first": lambda user, course: Profile.objects.filter(user=user).first().city,  # type: ignore[union-attr]
    "related": lambda user, course: User.objects.get(pk=user.pk).profile.phone,
    "select_related": lambda user, course: [
        p.author.username + p.body for p in ForumPost.objects.select_related("author")
    ],
    "reverse_select_related": lambda user, course: [
        u.profile.phone for u in User.objects.select_related("profile").filter(pk=user.pk)
    ],
    "prefetch": lambda user, course: [
        e.grade
        for u in User.objects.prefetch_related("enrolment_set")
        for e in u.enrolment_set.all()
    ],
    "raw": lambda user, course: [
        p.phone for p in Profile.objects.raw("SELECT * FROM lms_profile ORDER BY id")
    ],
    "in_bulk": lambda user, course: [p.phone for p in Profile.objects.in_bulk().values()],
}


class StaleCachedKeyTests(TransactionTestCase):
    """A learner erased by another process reads back from a restored copy as erased."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        # A process of its own: the key database was emptied since the last test.
        _settings.reset_runtime()

    def test_keys_cached_here_do_not_open_rows_erased_elsewhere(self) -> None:
        bob = User.objects.create(username="bob", last_login=NOW)
        Profile.objects.create(user=bob, phone="+44 7700 900001", city="Leeds", joined=NOW)
        for index, (name, read) in enumerate(sorted(READS.items())):
            with self.subTest(read=name):
                ana = User.objects.create(username=f"ana{index}", last_login=NOW)
                Profile.objects.create(user=ana, phone="+33 6 12 34 56 78", city="Lyon", joined=NOW)
                course = Course.objects.create(code=f"C{index}", title="GDPR 101")
                Enrolment.objects.create(user=ana, course=course, enrolled_at=NOW, grade=12)
                ForumPost.objects.create(author=ana, course=course, body="Hi", posted_at=NOW)
                # This process reads her: her keys are in its cache.
                assert Profile.objects.get(user=ana).phone == "+33 6 12 34 56 78"
                assert str(ana.pk) in runtime().keyring._cache.subjects
                copied = copy_tables()
                with another_process():
                    assert get_privacy().erase_subject(ana.pk, now=NOW).erased >= 3
                restore_tables(copied)
                with self.assertRaises(KeyShreddedError):
                    read(ana, course)
                assert Profile.objects.get(user=bob).phone == "+44 7700 900001"
                # Her rows go, as another erasure would take them (the next read path
                # starts from a records database holding only live learners).
                get_privacy().erase_subject(ana.pk, now=NOW)


class CachedKeyCheckCostTests(TransactionTestCase):
    """The check costs one read of the key store's shred mark per fetch while nothing
    was shredded; a look-up of the fetch's learners only when the mark changed."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        _settings.reset_runtime()

    def queries(self) -> list[str]:
        """The key database statements of one fetch of every profile."""
        with CaptureQueriesContext(connections["learnprivacy_keys"]) as queries:
            assert all(p.phone for p in Profile.objects.all())
        return [q["sql"] for q in queries]

    def test_one_short_read_per_fetch_until_something_is_shredded(self) -> None:
        users = [User.objects.create(username=f"u{n}", last_login=NOW) for n in range(3)]
        for user in users:
            Profile.objects.create(user=user, phone="+33 6 12 34 56 78", city="Lyon", joined=NOW)
        self.queries()
        (mark,) = self.queries()
        assert "lpdj_key_meta" in mark
        # Another process's erasure: the learners read are looked up, once (the mark is
        # read by the fetch, then again by the look-up, which dates what it finds).
        with another_process():
            get_privacy().erase_subject(users[1].pk, now=NOW)
        first = self.queries()
        second = self.queries()
        assert first[:2] == [mark, mark]
        assert "lpdj_keys" in first[2]
        assert len(first) == 3
        assert second == [mark]
        # This process's own erasure forgets every cached key (its shreds name learners
        # by key reference); keys unwrapped one by one on the way back are looked up at
        # the next fetch, once.
        get_privacy().erase_subject(users[0].pk, now=NOW)
        self.queries()
        assert len(self.queries()) == 3
        assert self.queries() == [mark]
