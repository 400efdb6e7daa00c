"""The Moodle read path's shortcuts decide every row exactly as the checking path does.

The adapter builds records from driver rows without re-checking what it computed itself,
checks a repeated name once, keeps PostgreSQL's NUMERIC cells as text for the grade
mappers and pauses the garbage collector while it builds a chunk. Each test here tampers
with the rows a shortcut sees (names with control characters or blanks, NUL where the
engine stores it, timestamps no datetime can hold, grades outside their range, NaN) and
holds the result, records and reported rows, to the one the records' own constructors
give for the same rows read through SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from learnprivacy.errors import ValidationError
from learnprivacy.moodle import MoodleDatabase, ScanIssues, _trusted
from learnprivacy.moodle import _read_accounts as accounts
from learnprivacy.moodle import _read_learning as learning
from learnprivacy.moodle._time import from_unix
from learnprivacy.records import Learner
from learnprivacy.testing.moodle import create_schema, populate
from tests import NOW
from tests.conftest import open_engine

# A timestamp no datetime can hold (year 31 million), and one before year 1.
_FAR = 10**15
_BEFORE = -(10**14)


def _site(new_database: Callable[[], str], users: int = 60) -> sa.Engine:
    engine = open_engine(new_database())
    create_schema(engine)
    populate(engine, now=NOW, users=users, courses=4, activities=1, content=False)
    return engine


def _tamper_users(engine: sa.Engine) -> list[int]:
    """Give learner accounts the values a shortcut could wrongly accept; their ids."""
    given = ["Ana\x07", "Ana", "   ", "\t", "Ana\n", "Ana", "é", "Ana"]
    if engine.dialect.name != "postgresql":  # PostgreSQL refuses NUL in text itself
        given += ["Ana\x00", "\x00"]
    family = ["Silva", "", "Silva\x1b", "Silva", "Silva", "Silva"]
    dates = [
        {"timecreated": _FAR},
        {"timecreated": 0, "firstaccess": _FAR},
        {"timecreated": 0, "firstaccess": 0},
        {"lastaccess": _FAR},
        {"lastaccess": _BEFORE},
        {"timecreated": _BEFORE},
    ]
    emails = ["ana@example.org\n", "ana@", "Ana.Silva+x@example.org"]
    changes: list[dict[str, Any]] = [
        *({"firstname": g} for g in given),
        *({"lastname": f} for f in family),
        *dates,
        *({"email": e} for e in emails),
    ]
    user = MoodleDatabase(engine).schema["user"]
    with engine.begin() as connection:
        ids = list(
            connection.execute(
                sa.select(user.c.id)
                .where(user.c.deleted == 0, user.c.username != "guest", user.c.id > 2)
                .order_by(user.c.id)
            ).scalars()
        )
        assert len(ids) > len(changes)
        # Every second account, so that accepted names are remembered in between.
        tampered = ids[::2][: len(changes)]
        for uid, values in zip(tampered, changes, strict=True):
            connection.execute(user.update().where(user.c.id == uid).values(**values))
    return tampered


_TEXTS = ("username", "email", "given_name", "family_name")


def _checked_learner(row: Any) -> Learner | None:
    """A learner row through the constructor, every field checked (None: refused)."""
    created, first, last, course_access = row[5:]
    try:
        created_at = from_unix(created) or from_unix(first)
        last_at = from_unix(max(last or 0, course_access or 0))
        texts = dict(zip(_TEXTS, row[1:5], strict=True))
        if created_at is None:
            return None
        return Learner(id=str(row[0]), created_at=created_at, last_activity_at=last_at, **texts)
    except ValidationError:
        return None


def test_learners_decide_tampered_rows_as_the_constructor(
    new_database: Callable[[], str],
) -> None:
    """Control characters, blanks, NUL, unvalidated addresses and timestamps out of range:
    each account is read, or skipped and reported, exactly as the checking constructor
    decides, including names already remembered as valid and read again."""
    engine = _site(new_database)
    tampered = _tamper_users(engine)
    with MoodleDatabase(engine, chunk_size=7) as db:
        statement = accounts.learner_statement(db.schema, None, "guest", sorted(db.admin_ids))
        rows = [tuple(row) for row in db.stream(statement)]
        # Twice: the second read meets every name remembered by the first.
        for _ in range(2):
            issues = ScanIssues()
            fast = list(db.learners(issues=issues))
            expected = {int(row[0]): _checked_learner(row) for row in rows}
            assert fast == [r for r in expected.values() if r is not None]
            refused = {uid for uid, record in expected.items() if record is None}
            assert {i.row_id for i in issues if i.table == "user"} == refused
            assert refused & set(tampered)  # the tampering was seen
            assert set(tampered) - refused  # and some of it is valid
    engine.dispose()


def _tamper_grades(engine: sa.Engine) -> None:
    """Course totals outside their range, an empty range, a pass mark, NaN (PostgreSQL),
    and completion dates no datetime can hold."""
    schema = MoodleDatabase(engine).schema
    gi, gg, cc = schema["grade_items"], schema["grade_grades"], schema["course_completions"]
    with engine.begin() as connection:
        items = list(
            connection.execute(
                sa.select(gi.c.id).where(gi.c.itemtype == "course").order_by(gi.c.id)
            ).scalars()
        )
        grades = list(
            connection.execute(
                sa.select(gg.c.id).where(gg.c.itemid.in_(items)).order_by(gg.c.id)
            ).scalars()
        )
        assert len(items) >= 3
        assert len(grades) >= 8
        connection.execute(gi.update().where(gi.c.id == items[0]).values(gradepass=50))
        connection.execute(gi.update().where(gi.c.id == items[1]).values(grademax=0))
        finals = ["500", "-3", "0.00001", "99.99999", "50", "49.99999"]
        if engine.dialect.name == "postgresql":
            finals.append("NaN")
        for grade_id, final in zip(grades, finals, strict=False):
            connection.execute(
                gg.update().where(gg.c.id == grade_id).values(finalgrade=Decimal(final))
            )
        completions = list(connection.execute(sa.select(cc.c.id).order_by(cc.c.id)).scalars())
        for completion_id, value in zip(completions, [_FAR, _BEFORE, 0], strict=False):
            connection.execute(
                cc.update()
                .where(cc.c.id == completion_id)
                .values(timecompleted=value, timestarted=0, timeenrolled=value)
            )


def test_course_progress_decides_tampered_grades_as_the_decimal_path(
    new_database: Callable[[], str],
) -> None:
    """Grades read as PostgreSQL's text give the records and issues that SQLAlchemy's
    Decimals give, on every engine, and every record passes its constructor."""
    engine = _site(new_database)
    _tamper_grades(engine)
    with MoodleDatabase(engine, chunk_size=5) as db:
        statement = learning.course_progress_statement(db.schema, None, False)
        learning._OUTCOMES.clear()
        fast_issues = ScanIssues()
        fast = list(db.course_progress(issues=fast_issues))
        learning._OUTCOMES.clear()
        slow_issues = ScanIssues()
        rows = [tuple(row) for row in db.stream(statement)]
        slow = [learning.map_course_progress(row, slow_issues) for row in rows]
    assert fast == [record for record in slow if record is not None]
    assert fast_issues.counts() == slow_issues.counts()
    assert list(fast_issues) == list(slow_issues)
    rules = set(fast_issues.counts())
    assert any("outside its item's range" in rule for rule in rules)
    assert any("empty grade range" in rule for rule in rules)
    assert any("out of the supported range" in rule for rule in rules)
    if engine.dialect.name == "postgresql":
        assert any("not a finite number" in rule for rule in rules)
    for record in fast:
        values = {f.name: getattr(record, f.name) for f in attrs.fields(type(record))}
        assert type(record)(**values) == record
    engine.dispose()


class _Watching(ScanIssues):
    """Issues that note whether the collector ran while a row was reported, and can fail."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.collector_on: list[bool] = []
        self.fail = fail

    def report(self, *args: Any, **kwargs: Any) -> None:
        self.collector_on.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("the caller's sink failed")
        super().report(*args, **kwargs)


@pytest.fixture
def collector_as_found() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.usefixtures("collector_as_found")
def test_a_read_gives_the_garbage_collector_back_as_it_found_it(
    new_database: Callable[[], str],
) -> None:
    """Paused while a chunk is built, running while the caller holds the records, left
    off when it was off, and back on after an error raised half-way through a chunk."""
    engine = _site(new_database)
    _tamper_users(engine)
    with MoodleDatabase(engine, chunk_size=4) as db:
        gc.enable()
        sink = _Watching()
        between = [gc.isenabled() for _ in db.learners(issues=sink)]
        assert sink.collector_on
        assert not any(sink.collector_on)
        assert between
        assert all(between)
        assert gc.isenabled()

        gc.disable()
        between = [gc.isenabled() for _ in db.learners(issues=_Watching())]
        assert between
        assert not any(between)
        assert not gc.isenabled()

        gc.enable()
        failing = _Watching(fail=True)
        with pytest.raises(RuntimeError):
            list(db.learners(issues=failing))
        assert failing.collector_on == [False]
        assert gc.isenabled()
    engine.dispose()


_NAMES = ["Ana", "Ana\x00", "Ana", " ", "", "Ana\ud800", "Ana\x07", "é", "Ana", None, 42]


def test_repeated_values_are_checked_once_and_refused_ones_every_time() -> None:
    """A name is remembered only once its check passed: a refused value is refused again,
    whatever was read before it, and a full memory starts afresh."""
    build = _trusted.builder(
        Learner,
        checked=frozenset({"given_name", "family_name"}),
        repeating=frozenset({"given_name"}),
    )
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def outcome(maker: Callable[..., Learner], name: object) -> Learner | None:
        try:
            return maker(id="1", username="ana", email="ana@example.org", given_name=name,
                         family_name="Silva", created_at=at)  # fmt: skip
        except ValidationError:
            return None

    for name in _NAMES * 3:
        assert outcome(build, name) == outcome(Learner, name), repr(name)


def test_a_lookalike_of_a_remembered_name_is_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A str subclass equal to (and hashing like) a remembered name, but holding a NUL,
    is refused: only exact str values are looked up. Past the memory's size, the next
    value is checked again."""

    class Lookalike(str):
        def __eq__(self, other: object) -> bool:
            return other == "Ana" or str.__eq__(self, other)

        def __hash__(self) -> int:
            return hash("Ana")

    monkeypatch.setattr(_trusted, "REMEMBERED", 2)
    build = _trusted.builder(
        Learner, checked=frozenset({"given_name"}), repeating=frozenset({"given_name"})
    )
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    values = {"id": "1", "username": "ana", "email": "ana@example.org", "family_name": "S",
              "created_at": at}  # fmt: skip
    build(given_name="Ana", **values)
    with pytest.raises(ValidationError):
        build(given_name=Lookalike("\x00"), **values)
    for name in ("Bea", "Cy", "Di", "Ana"):  # the memory fills and starts afresh
        build(given_name=name, **values)
    with pytest.raises(ValidationError):
        build(given_name="Ana\x00", **values)


def test_repeating_fields_must_be_checked_ones() -> None:
    """Remembering a field the builder does not check would skip nothing but mislead."""
    with pytest.raises(TypeError):
        _trusted.builder(Learner, repeating=frozenset({"given_name"}))
