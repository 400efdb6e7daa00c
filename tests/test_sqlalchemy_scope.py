"""A binding acts on its own models only, and only while it lives.

Two applications (or two test cases) in one process each bind their own models; an
unrelated session on unrelated models is left exactly as it was; a binding dropped
without ``close()`` stops acting once it is garbage collected.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.errors import PlaintextError
from tests import NOW
from tests.inplace_models import bind, declarative_models, new_base, restrict_user


def _app(tmp_path: Path, name: str) -> SimpleNamespace:
    models = declarative_models()
    privacy, engine = bind(tmp_path, models.Base, keys=f"{name}-keys.db", app=f"{name}.db")
    with Session(engine) as s:
        s.add(models.User(id="u1", email=f"ana@{name}.example", name="Ana", created_at=NOW))
        s.add(models.User(id="u2", email=f"bob@{name}.example", name="Bob", created_at=NOW))
        s.commit()
    return SimpleNamespace(m=models, privacy=privacy, engine=engine)


class _Seen:
    """The statements the sessions of this process run, as the last listener sees them."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    def __call__(self, state: ORMExecuteState) -> None:
        self.statements.append(state.statement)

    def criteria_entities(self) -> list[Any]:
        """The entities the seen statements carry loader criteria for."""
        return [
            option.entity.class_ if hasattr(option.entity, "class_") else option.entity
            for statement in self.statements
            for option in statement._with_options
            if type(option).__name__ == "LoaderCriteriaOption"
        ]


@pytest.fixture
def seen() -> Iterator[_Seen]:
    listener = _Seen()
    event.listen(Session, "do_orm_execute", listener)
    yield listener
    event.remove(Session, "do_orm_execute", listener)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[SimpleNamespace, SimpleNamespace]]:
    first, second = _app(tmp_path, "first"), _app(tmp_path, "second")
    yield first, second
    for app in (first, second):
        app.privacy.close()
        app.engine.dispose()


def _compiled(engine: Engine, statement: Any) -> str:
    return str(statement.compile(engine))


def test_two_bindings_in_one_process_each_see_only_their_own_effects(
    two: tuple[SimpleNamespace, SimpleNamespace], seen: _Seen
) -> None:
    """The first app's restriction and conditions never reach the second app's queries."""
    first, second = two
    restrict_user(first)
    seen.statements.clear()
    with Session(second.engine) as s:
        users = s.scalars(select(second.m.User).order_by(second.m.User.id)).all()
        assert [u.email for u in users] == ["ana@second.example", "bob@second.example"]
        assert s.scalars(select(second.m.User.email).order_by(second.m.User.id)).all() == [
            "ana@second.example",
            "bob@second.example",
        ]
    # The second app's statements carry the second binding's conditions, none of the first.
    entities = seen.criteria_entities()
    assert entities
    assert first.m.User not in entities
    assert set(entities) <= {spec.model for spec in second.privacy.specs}
    seen.statements.clear()
    with Session(first.engine) as s:
        assert [u.email for u in s.scalars(select(first.m.User))] == ["bob@first.example"]
        assert s.scalars(select(first.m.User.email)).all() == ["bob@first.example"]
    entities = seen.criteria_entities()
    assert first.m.User in entities
    assert not set(entities) & {spec.model for spec in second.privacy.specs}


class _Other(DeclarativeBase):
    pass


class _Note(_Other):
    """A model of an application that uses no learnprivacy at all."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


def test_unrelated_session_on_unrelated_models_is_untouched(
    two: tuple[SimpleNamespace, SimpleNamespace], seen: _Seen, tmp_path: Path
) -> None:
    """No condition, no rewrite: the statement run is the one the application wrote."""
    engine = create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    _Other.metadata.create_all(engine)
    try:
        with Session(engine) as s:
            s.add(_Note(id=1, text="plain, as the application wants"))
            s.commit()
        seen.statements.clear()
        with Session(engine) as s:
            statement = select(_Note).where(_Note.id == 1)
            assert s.scalars(statement).one().text == "plain, as the application wants"
            assert s.scalars(select(_Note.text)).all() == ["plain, as the application wants"]
            assert s.scalar(select(func.count()).select_from(_Note)) == 1
        assert len(seen.statements) == 3
        for ran in seen.statements:
            assert not ran._with_options
            assert "lp_row_states" not in _compiled(engine, ran)
        assert "lp_row_states" not in _compiled(engine, statement)
    finally:
        engine.dispose()


def test_a_join_into_bound_models_from_unrelated_ones_still_leaves_restricted_rows_out(
    two: tuple[SimpleNamespace, SimpleNamespace], seen: _Seen
) -> None:
    """Scoping is by the tables a statement involves, not only by its first entity."""
    first, _second = two
    restrict_user(first)
    with Session(first.engine) as s:
        s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, text VARCHAR)"))
        s.execute(text("INSERT INTO notes VALUES (1, 'u1'), (2, 'u2')"))
        s.commit()
    with Session(first.engine) as s:
        # Twice: the second time the statement's tables come from its remembered shape.
        for _ in range(2):
            joined = select(_Note.id).join(first.m.User, first.m.User.id == _Note.text)
            assert s.scalars(joined).all() == [2]
            inner = select(_Note.id).where(_Note.text.in_(select(first.m.User.id)))
            assert s.scalars(inner).all() == [2]
        assert s.scalar(select(func.count()).select_from(first.m.User)) == 1


def test_a_binding_dropped_without_close_stops_acting_after_collection(
    tmp_path: Path, seen: _Seen
) -> None:
    """Nothing keeps it alive; its models then refuse plaintext and can be bound again."""
    app = _app(tmp_path, "dropped")
    m, engine = app.m, app.engine
    restrict_user(app)
    gone = weakref.ref(app.privacy)
    del app
    gc.collect()
    assert gone() is None
    try:
        seen.statements.clear()
        with Session(engine) as s:
            # No condition any more, and no decryption: the stored tokens come back.
            users = s.scalars(select(m.User).order_by(m.User.id)).all()
            assert [u.id for u in users] == ["u1", "u2"]
            assert all(u.email.startswith("lp1.") for u in users)
            assert not seen.criteria_entities()
        with Session(engine) as s:
            # Writes are not encrypted any more: the column refuses the plaintext and
            # nothing is written.
            s.add(m.User(id="u3", email="cy@dropped.example", name="Cy", created_at=NOW))
            with pytest.raises(PlaintextError):
                s.commit()
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM users")).scalar_one() == 2
        # The models can be bound again (the old listeners are gone, not doubled).
        again = lps.LearnPrivacy(
            m.Base, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'again-keys.db'}"
        )
        try:
            with Session(engine) as s:
                s.add(m.User(id="u4", email="di@dropped.example", name="Di", created_at=NOW))
                s.commit()
            with Session(engine) as s:
                assert s.get(m.User, "u4").email == "di@dropped.example"
                assert s.scalars(select(m.User.email).where(m.User.id == "u4")).one() == (
                    "di@dropped.example"
                )
            with engine.connect() as c:
                stored = c.execute(text("SELECT email FROM users WHERE id = 'u4'")).scalar_one()
                assert stored.startswith("lp1.")
                assert "di@" not in stored
        finally:
            again.close()
    finally:
        engine.dispose()


def test_many_bindings_made_and_dropped_leave_no_listener_behind(tmp_path: Path) -> None:
    """The process-wide hooks do not grow with every binding an app factory makes."""

    def listeners() -> int:
        session = Session()
        return sum(
            len(getattr(session.dispatch, name))
            for name in ("do_orm_execute", "before_flush", "after_flush")
        )

    first = _app(tmp_path, "warm")
    first.privacy.close()
    first.engine.dispose()
    before = listeners()
    for n in range(3):
        app = _app(tmp_path, f"n{n}")
        app.engine.dispose()
        del app
    gc.collect()
    assert listeners() == before


def test_one_statement_over_two_bindings_models_decrypts_each_by_its_own(
    tmp_path: Path,
) -> None:
    """A join of two bindings' models in one database: both personal columns in clear,
    both bindings' restrictions applied."""
    first = _app(tmp_path, "shared")

    Other = new_base()

    class Badge(Other):
        __tablename__ = "badges"
        __privacy__ = lps.Privacy(subject="holder", purpose="badges", basis=LawfulBasis.CONTRACT)
        id: Mapped[int] = mapped_column(primary_key=True)
        holder: Mapped[str]
        motto: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Badge motto")

    second = lps.LearnPrivacy(
        Other, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'badges-keys.db'}"
    )
    try:
        Other.metadata.create_all(first.engine)
        with Session(first.engine) as s:
            s.add_all(
                [Badge(id=1, holder="u1", motto="Ana's"), Badge(id=2, holder="u2", motto="Bob's")]
            )
            s.commit()
        with Session(first.engine) as s:
            assert second.restrict(s, s.get(Badge, 1), reason="dispute", now=NOW)
            s.commit()
        User = first.m.User
        both = select(User.email, Badge.motto).join(Badge, Badge.holder == User.id)
        with Session(first.engine) as s:
            assert s.execute(both).all() == [("bob@shared.example", "Bob's")]
            with_restricted = both.order_by(Badge.id).execution_options(include_restricted=True)
            assert [tuple(r) for r in s.execute(with_restricted)] == [
                ("ana@shared.example", "Ana's"),
                ("bob@shared.example", "Bob's"),
            ]
        with first.engine.connect() as c:
            assert (
                c.execute(text("SELECT motto FROM badges WHERE id = 2"))
                .scalar_one()
                .startswith("lp1.")
            )
    finally:
        second.close()
        first.privacy.close()
        first.engine.dispose()
