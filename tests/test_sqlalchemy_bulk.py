"""The application's bulk statements on declared models, on SQLite and a real PostgreSQL.

``session.execute(delete(Model).where(...))`` and ``session.execute(update(Model)...)``
bypass the ORM's per-row flush events. A bulk delete is audited row by row as deleted by
the application, in the same transaction (a rollback leaves no entry), and refused for a
restricted row; a bulk update that would write anything but ``NULL`` into a personal
column raises a typed error and writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import (
    create_engine,
    delete,
    event,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    IntegrityError,
    PlaintextError,
    RestrictedRecordError,
    ValidationError,
)
from tests import NOW
from tests.inplace_models import bound_declarative, new_base, restrict_user

MASTER = bytes(range(32))
REASON = "deleted by the application"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Ana (``u1``, two posts) and Bob (``u2``, one post), on SQLite or PostgreSQL."""
    yield from bound_declarative(request, tmp_path, MASTER)


def _entries(app: SimpleNamespace) -> list[Any]:
    with Session(app.engine) as s:
        entries = list(app.privacy.audit(s).entries())
        assert app.privacy.audit(s).verify()
    return entries


def _stored(app: SimpleNamespace) -> list[tuple[Any, ...]]:
    with app.engine.connect() as c:
        users = c.execute(text("SELECT id, email, email_bidx, name FROM users ORDER BY id"))
        posts = c.execute(text("SELECT id, author_id, body FROM forum_posts ORDER BY id"))
        return [tuple(r) for r in users] + [tuple(r) for r in posts]


@pytest.mark.parametrize("synchronize", ["auto", "fetch", "evaluate", False])
def test_a_bulk_delete_is_audited_row_by_row(app: SimpleNamespace, synchronize: Any) -> None:
    """Every row the statement deletes is named in an entry of the same transaction, as
    ``session.delete()`` would have written (the old code wrote none)."""
    m = app.m
    before = len(_entries(app))
    with Session(app.engine) as s:
        loaded = s.scalars(select(m.Post).where(m.Post.author_id == "u1")).all()
        ids = sorted(p.id for p in loaded)
        result = s.execute(
            delete(m.Post).where(m.Post.author_id == "u1"),
            execution_options={"synchronize_session": synchronize},
        )
        assert result.rowcount == 2
        s.commit()
        assert s.scalars(select(m.Post.author_id)).all() == ["u2"]
    entries = _entries(app)[before:]
    assert len(entries) == 1
    (entry,) = entries
    assert (entry.action, entry.record_type, entry.details["reason"]) == ("erase", "Post", REASON)
    assert sorted(entry.details["ids"]) == ids
    assert entry.details["count"] == 2
    assert entry.subject_ref == app.privacy.subject_ref("u1")


def test_a_bulk_delete_of_learners_names_them_by_reference(app: SimpleNamespace) -> None:
    """Rows of the learners' own table are named by the learners' references, never by
    their ids; objects not flushed yet are flushed first and audited too."""
    m = app.m
    with Session(app.engine) as s:
        s.execute(delete(m.Post))
        s.add(m.User(id="u3", email="cy@example.org", name="Cy"))
        result = s.execute(delete(m.User).where(m.User.id.in_(["u2", "u3"])))
        assert result.rowcount == 2
        s.commit()
        assert s.scalars(select(m.User.id)).all() == ["u1"]
    entries = _entries(app)
    users = entries[-1]
    assert users.record_type == "User"
    assert users.details["subject_refs"] == sorted(app.privacy.subject_ref(u) for u in ("u2", "u3"))
    assert users.subject_ref is None
    # Named by reference only (no id list: the key of these rows is the learner id).
    assert sorted(users.details) == ["count", "reason", "subject_refs", "table"]
    posts = entries[-2]
    assert (posts.record_type, posts.details["count"]) == ("Post", 3)


def test_a_rolled_back_bulk_delete_leaves_no_entry(app: SimpleNamespace) -> None:
    """The entry is written in the statement's transaction: a rollback takes both back."""
    m = app.m
    before, stored = _entries(app), _stored(app)
    with Session(app.engine) as s:
        s.execute(delete(m.Post).where(m.Post.author_id == "u1"))
        s.rollback()
    assert _entries(app) == before
    assert _stored(app) == stored


def test_a_bulk_delete_matching_nothing_writes_nothing(app: SimpleNamespace) -> None:
    before = _entries(app)
    with Session(app.engine) as s:
        assert s.execute(delete(app.m.Post).where(app.m.Post.author_id == "nobody")).rowcount == 0
        s.commit()
    assert _entries(app) == before


def test_a_bulk_delete_of_a_restricted_row_is_refused(app: SimpleNamespace) -> None:
    """As ``session.delete()``: a restricted row refuses deletion; nothing is deleted."""
    restrict_user(app, "u2")
    before, stored = _entries(app), _stored(app)
    with Session(app.engine) as s:
        with pytest.raises(RestrictedRecordError, match="users"):
            s.execute(delete(app.m.User).where(app.m.User.id.in_(["u1", "u2"])))
        s.rollback()
    assert _entries(app) == before
    assert _stored(app) == stored


@contextlib.contextmanager
def _meanwhile(app: SimpleNamespace, other: Any, prefix: str, write: Any) -> Iterator[list[bool]]:
    """While the block runs, the first statement of ``app``'s engine starting with
    ``prefix`` is preceded by ``write(session)`` committed through ``other``: the list
    given gets ``True``, or ``False`` when ``other`` found the database locked."""
    fired: list[bool] = []

    def run(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix) and not fired:
            try:
                with Session(other) as intruder:
                    write(intruder)
                    intruder.commit()
                fired.append(True)
            except OperationalError:
                fired.append(False)  # locked out

    event.listen(app.engine, "before_cursor_execute", run)
    try:
        yield fired
    finally:
        event.remove(app.engine, "before_cursor_execute", run)
        other.dispose()


def test_a_row_inserted_between_the_read_and_the_delete_rolls_it_back(
    app: SimpleNamespace,
) -> None:
    """Another transaction commits a matching post just before the DELETE runs: the
    statement would delete a row nobody read, so the whole transaction is rolled back
    and a typed error raised; nothing is deleted, no entry written. On SQLite the bulk
    delete holds the write lock from its read on: the other transaction cannot commit,
    and the posts read are the posts deleted."""
    m = app.m
    sqlite = app.server is None
    other = create_engine(app.url, connect_args={"timeout": 0.2} if sqlite else {})
    before = _entries(app)

    def insert(intruder: Session) -> None:
        intruder.add(m.Post(author_id="u1", body="written meanwhile", posted_at=NOW))

    with _meanwhile(app, other, "DELETE", insert) as fired, Session(app.engine) as s:
        if sqlite:
            assert s.execute(delete(m.Post).where(m.Post.author_id == "u1")).rowcount == 2
        else:
            with pytest.raises(IntegrityError, match="forum_posts"):
                s.execute(delete(m.Post).where(m.Post.author_id == "u1"))
        assert fired == [not sqlite]
        s.commit()
    with Session(app.engine) as s:
        bodies = sorted(p.body for p in s.scalars(select(m.Post).where(m.Post.author_id == "u1")))
    if sqlite:
        assert bodies == []
        assert len(_entries(app)) == len(before) + 1
        return
    assert bodies == ["Ana's first post", "Ana's second post", "written meanwhile"]
    assert _entries(app) == before


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The fixture ``app`` on SQLite only."""
    yield from bound_declarative(SimpleNamespace(param="sqlite"), tmp_path, MASTER)


def test_a_row_swapped_between_the_read_and_the_delete_is_never_deleted_unaudited(
    sqlite_app: SimpleNamespace,
) -> None:
    """Attack (SQLite): just before the DELETE runs, another connection deletes one of the
    posts it matched and commits a new one it matches too. The count is the same, so the
    count alone cannot tell; every row the statement deletes must still be named in its
    entry, and no entry may name a row the statement did not delete."""
    app = sqlite_app
    m = app.m
    # The intruder gives up at once when it finds the database locked.
    other = create_engine(app.url, connect_args={"timeout": 0.2})
    before = len(_entries(app))
    with app.engine.connect() as c:
        posts = c.execute(text("SELECT id FROM forum_posts WHERE author_id = 'u1'")).scalars()
        first = min(posts)

    def swap(intruder: Session) -> None:
        intruder.delete(intruder.get(m.Post, first))
        intruder.add(m.Post(author_id="u1", body="written meanwhile", posted_at=NOW))

    with _meanwhile(app, other, "DELETE", swap) as fired, Session(app.engine) as s:
        s.execute(delete(m.Post).where(m.Post.author_id == "u1"))
        assert fired
        s.commit()
    with app.engine.connect() as c:
        kept = set(c.execute(text("SELECT id FROM forum_posts")).scalars())
    entries = [e for e in _entries(app)[before:] if e.record_type == "Post"]
    named = [i for e in entries for i in e.details["ids"]]
    assert len(named) == len(set(named)), "a row named twice as deleted"
    written = set(range(1, max([*kept, *named]) + 1))
    assert set(named) == written - kept


@pytest.mark.parametrize("how", ["bulk", "flush"])
def test_a_row_restricted_between_the_check_and_the_update_is_not_updated(
    app: SimpleNamespace, how: str
) -> None:
    """Attack: another connection restricts Bob's account just before the UPDATE runs
    (a bulk UPDATE, or the session's flush of Bob's changed object), after its check
    found no restricted row. The restriction either waits for the update (the update
    held the write lock, on PostgreSQL the rows' locks, from its check on) or the update
    does not touch the row; a restricted row is never changed. The intruder gives up at
    once when it meets a lock. The flush case changed the row on both engines before."""
    m = app.m
    other = create_engine(
        app.url,
        connect_args={"timeout": 0.2} if app.server is None else {"options": "-c lock_timeout=200"},
    )

    def restrict(intruder: Session) -> None:
        app.privacy.restrict(intruder, intruder.get(m.User, "u2"), reason="dispute", now=NOW)

    with Session(app.engine) as s:
        if how == "flush":
            bob = s.get(m.User, "u2")
            assert bob is not None
            assert bob.last_login_at is None
            bob.last_login_at = NOW
        with (
            _meanwhile(app, other, "UPDATE USERS", restrict) as fired,
            contextlib.suppress(RestrictedRecordError),
        ):
            if how == "bulk":
                s.execute(update(m.User).values(last_login_at=NOW))
            s.commit()
        assert fired
    with app.engine.connect() as c:
        bobs = c.execute(text("SELECT last_login_at FROM users WHERE id = 'u2'")).scalar()
    assert not (fired == [True] and bobs is not None), "a restricted row was updated"


def _attacks(m: SimpleNamespace) -> list[tuple[str, Any]]:
    return [
        ("literal", update(m.User).values(email="mallory@example.org")),
        ("function", update(m.User).values(email=func.lower("mallory@example.org"))),
        ("expression", update(m.User).values(email=func.lower(m.User.name))),
        ("literal column", update(m.User).values({m.User.name: literal_column("'Mallory'")})),
        ("bound literal", update(m.User).values(name=literal("Mallory"))),
        ("another column's token", update(m.User).values(email=m.User.name)),
        ("ordered", update(m.User).ordered_values((m.User.name, "Mallory"))),
        ("a post's body", update(m.Post).where(m.Post.id == 1).values(body="spam")),
    ]


@pytest.mark.parametrize("attack", range(8))
def test_a_bulk_update_writing_into_a_personal_column_raises_and_writes_nothing(
    app: SimpleNamespace, attack: int
) -> None:
    """Plaintext (a literal, a SQL expression) or another column's token written in bulk:
    a typed error naming table and column, never the value, and the rows unchanged (the
    expressions were stored by the old code)."""
    name, statement = _attacks(app.m)[attack]
    stored = _stored(app)
    with Session(app.engine) as s:
        with pytest.raises(PlaintextError) as raised:
            s.execute(statement)
        s.commit()
    error = raised.value
    assert error.table in ("users", "forum_posts"), name
    assert error.column in ("email", "name", "body"), name
    assert "Mallory" not in str(error)
    assert "mallory" not in str(error)
    assert _stored(app) == stored
    with Session(app.engine) as s:
        ana = s.get(app.m.User, "u1")
        assert (ana.email, ana.name) == ("ana@example.org", "Ana Silva")


def test_a_bulk_update_by_primary_key_of_a_personal_value_is_refused(
    app: SimpleNamespace,
) -> None:
    """ORM bulk UPDATE by primary key (a list of dicts), plaintext or a token read from
    another row: refused before anything is written."""
    with app.engine.connect() as c:
        bobs = c.execute(text("SELECT email FROM users WHERE id = 'u2'")).scalar_one()
    stored = _stored(app)
    for value in ("mallory@example.org", bobs):
        with Session(app.engine) as s:
            with pytest.raises(PlaintextError, match=r"users\.email"):
                s.execute(update(app.m.User), [{"id": "u1", "email": value}])
            s.commit()
    assert _stored(app) == stored


def test_a_bulk_update_of_the_key_the_subject_or_a_blind_index_is_refused(
    app: SimpleNamespace,
) -> None:
    m = app.m
    stored = _stored(app)
    for statement in (
        update(m.User).where(m.User.id == "u1").values(id="u9"),
        update(m.Post).values(author_id="u2"),
        update(m.User).values(email_bidx="b1_forged"),
    ):
        with Session(app.engine) as s:
            with pytest.raises(ValidationError):
                s.execute(statement)
            s.commit()
    assert _stored(app) == stored


def test_a_bulk_update_by_primary_key_moving_a_row_to_another_learner_is_refused(
    app: SimpleNamespace,
) -> None:
    """Attack: ORM bulk UPDATE by primary key giving Ana's post Bob's id as its author.
    The row's tokens stay bound to Ana's key: erasing Ana would leave the post behind,
    filed under Bob. Refused like the same change made with a WHERE clause."""
    with app.engine.connect() as c:
        post = c.execute(text("SELECT id FROM forum_posts WHERE author_id = 'u1'")).first()
    assert post is not None
    stored = _stored(app)
    with Session(app.engine) as s:
        with pytest.raises(ValidationError, match="forum_posts"):
            s.execute(update(app.m.Post), [{"id": post[0], "author_id": "u2"}])
        s.commit()
    assert _stored(app) == stored


def test_a_bulk_update_of_other_columns_runs_but_not_on_a_restricted_row(
    app: SimpleNamespace,
) -> None:
    """Columns that are not personal are updated in bulk as usual; a statement matching a
    restricted row is refused, as ``session.flush()`` refuses its update."""
    m = app.m
    with Session(app.engine) as s:
        assert s.execute(update(m.User).values(last_login_at=NOW)).rowcount == 2
        s.commit()
    restrict_user(app, "u2")
    with Session(app.engine) as s:
        with pytest.raises(RestrictedRecordError, match="users"):
            s.execute(update(m.User).values(last_login_at=None))
        s.rollback()
        assert s.execute(update(m.User).where(m.User.id == "u1").values(last_login_at=None))
        s.commit()
    with app.engine.connect() as c:
        rows = c.execute(text("SELECT id, last_login_at FROM users ORDER BY id")).all()
    assert rows[0][1] is None
    assert rows[1][1] is not None


def test_a_personal_column_cleared_in_bulk_takes_its_blind_index(tmp_path: Path) -> None:
    """``NULL`` is the one value a bulk update may write into a personal column; its blind
    index goes with it, so a lookup no longer finds the row."""

    Base = new_base()

    class Member(Base):
        __tablename__ = "members"
        __privacy__ = lps.Privacy(subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT)
        id: Mapped[str] = mapped_column(primary_key=True)
        phone: Mapped[str | None] = lps.personal(
            DataCategory.CONTACT, "Phone", blind_index=True, nullable=True
        )

    privacy = lps.LearnPrivacy(
        Base, keyring=Keyring.from_master_key(MASTER), keys=f"sqlite:///{tmp_path / 'k.db'}"
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all([Member(id="m1", phone="+351 1"), Member(id="m2", phone="+351 2")])
            s.commit()
            s.execute(update(Member).where(Member.id == "m1").values(phone=None))
            s.commit()
            assert privacy.find(s, Member.phone, "+351 1") == []
            assert [m.id for m in privacy.find(s, Member.phone, "+351 2")] == ["m2"]
            rows = s.execute(text("SELECT id, phone, phone_bidx FROM members ORDER BY id")).all()
        assert rows[0] == ("m1", None, None)
        assert rows[1][1].startswith("lp1.")
        assert rows[1][2].startswith("b1_")
    finally:
        privacy.close()
        engine.dispose()
