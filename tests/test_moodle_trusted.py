"""Records the adapter builds without re-checking values it made valid equal checked ones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs
import pytest

from learnprivacy.errors import ValidationError
from learnprivacy.moodle import MoodleDatabase
from learnprivacy.moodle._trusted import builder
from learnprivacy.records import Learner, Progress, Score
from tests.conftest import synthetic_site


def test_fast_records_equal_checked_ones(new_database: Callable[[], str]) -> None:
    """Every Learner and course Progress read equals the one its constructor builds."""
    engine, summary = synthetic_site(new_database(), users=80, courses=5)
    with MoodleDatabase(engine) as db:
        learners = list(db.learners())
        progress = list(db.course_progress())
        # Unvalidated addresses are still refused and reported, not built.
        assert {int(i.row_id) for i in db.issues if i.table == "user"} >= set(
            summary.invalid_email_user_ids
        )
    assert learners
    assert progress
    for record in [*learners, *progress]:
        values = {f.name: getattr(record, f.name) for f in attrs.fields(type(record))}
        checked = type(record)(**values)
        assert checked == record
        assert repr(checked) == repr(record)  # personal values masked the same way
    engine.dispose()


def test_checked_fields_are_still_checked() -> None:
    """The fields named as checked run the record's own validators."""
    build = builder(Learner, checked=frozenset({"email"}))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValidationError):
        build(id="1", username="ana", email="ana@", given_name="Ana", family_name="S",
              created_at=at)  # fmt: skip
    with pytest.raises(TypeError):
        build(id="1", username="ana", email="ana@example.org", given_name="Ana",
              family_name="S", created_at=at, unknown=1)  # fmt: skip
    with pytest.raises(TypeError):
        build(id="1")  # a field without default is required


def test_classes_with_joint_invariants_are_refused() -> None:
    """Score checks its fields together: no fast path for it, nor for unknown fields."""
    with pytest.raises(TypeError):
        builder(Score)
    with pytest.raises(TypeError):
        builder(Progress, checked=frozenset({"no_such_field"}))


_TEXTS = [
    "ana", " ana ", "Ana Silva", "", " ", "\t\n", "a\x00b", "a\ud800", "é", "a\nb",
    "ana@example.org", "ana@example.org\n", "ana@", "@example.org", "ana@example",
    "ana@@example.org", "a b@example.org", "ana@exa_mple.org", "ana@example.org ",
    "x" * 64 + "@example.org", "x" * 65 + "@example.org", "ana@" + "a" * 250 + ".org",
    "ana@-example.org", "Ana.Silva+tag@sub.example.co.uk", "ana@example.org\x00",
]  # fmt: skip


class _Text(str):
    """A str subclass: the inline tests decline it, the validators decide."""


@pytest.mark.parametrize("field", ["username", "email", "given_name", "family_name"])
def test_inline_checks_accept_exactly_what_the_validators_accept(field: str) -> None:
    """A checked field built fast accepts and refuses the same values as the constructor."""
    build = builder(Learner, checked=frozenset({"username", "email", "given_name", "family_name"}))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    good = {"username": "ana", "email": "ana@example.org", "given_name": "Ana",
            "family_name": "Silva"}  # fmt: skip
    for value in [*_TEXTS, *(_Text(t) for t in _TEXTS), None, 42, b"ana"]:
        values = {**good, field: value}
        try:
            Learner(id="1", created_at=at, **values)
        except ValidationError:
            expected = False
        else:
            expected = True
        try:
            built = build(id="1", created_at=at, **values)
        except ValidationError:
            accepted = False
        else:
            accepted = True
            assert getattr(built, field) is value
        assert accepted == expected, (field, repr(value)[:40])
