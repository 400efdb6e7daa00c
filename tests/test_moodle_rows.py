"""Rows read straight from the driver equal SQLAlchemy's rows, on every engine."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from learnprivacy.errors import PolicyError
from learnprivacy.moodle import MoodleDatabase
from learnprivacy.moodle import _read_accounts as accounts
from learnprivacy.moodle import _read_learning as learning
from learnprivacy.testing.moodle import create_schema, populate
from tests import NOW
from tests.conftest import open_engine


def test_batches_equal_sqlalchemy_rows(new_database: Callable[[], str]) -> None:
    """Every value, its type included (NUMERIC as Decimal), as a SQLAlchemy Row gives it.

    The chunk size is smaller than the result, so rows fetched ahead by SQLAlchemy and
    later chunks both count.
    """
    engine = open_engine(new_database())
    create_schema(engine)
    populate(engine, now=NOW, users=60, courses=4)
    with MoodleDatabase(engine, chunk_size=7) as db:
        statements = [
            learning.course_progress_statement(db.schema, None, False),
            learning.grade_statement(db.schema, None, False),
            accounts.learner_statement(db.schema, None, "guest", []),
        ]
        for statement in statements:
            expected = [tuple(row) for row in db.stream(statement)]
            chunks = list(db.batches(statement))
            got = [row for chunk in chunks for row in chunk]
            assert got == expected
            assert [[type(v) for v in row] for row in got] == [
                [type(v) for v in row] for row in expected
            ]
            assert all(0 < len(chunk) <= 7 for chunk in chunks)
        grades = [row[10] for chunk in db.batches(statements[0]) for row in chunk]
        assert any(isinstance(g, Decimal) for g in grades)
    engine.dispose()


def test_batches_go_through_the_read_only_guard(new_database: Callable[[], str]) -> None:
    """A statement the guard refuses is refused on the fast path too."""
    engine = open_engine(new_database())
    create_schema(engine)
    with MoodleDatabase(engine) as db:
        u = db.schema["user"]
        locking = sa.select(u.c.id, sa.func.get_lock("learnprivacy", 1))
        with pytest.raises(PolicyError):
            list(db.batches(locking))
    engine.dispose()
