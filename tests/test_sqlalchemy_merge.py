"""``Session.merge`` of a detached instance of a bound model, on SQLite and PostgreSQL.

A merge that loads the row (``load=True``) opens the stored tokens through the query and
writes the detached object's changes as new tokens. A merge that does not
(``load=False``) copies the detached object's state, already opened when it was loaded,
and fires the load event with no query: those values are not tokens and are kept as
they are (they once raised ``PlaintextError``, then ``AttributeError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, defer, load_only

from learnprivacy.errors import KeyShreddedError, RestrictedRecordError
from tests import NOW
from tests.inplace_models import bound_declarative

MASTER = bytes(range(32))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Ana (``u1``) and Bob (``u2``), on SQLite or PostgreSQL."""
    yield from bound_declarative(request, tmp_path, MASTER)


def _detached(app: SimpleNamespace, user_id: str) -> Any:
    with Session(app.engine) as s:
        user = s.get(app.m.User, user_id)
        s.expunge(user)
    return user


def _stored_name(app: SimpleNamespace, user_id: str) -> str:
    with app.engine.connect() as c:
        value = c.execute(text("SELECT name FROM users WHERE id = :i"), {"i": user_id}).scalar()
    assert isinstance(value, str)
    return value


def test_a_merge_that_loads_writes_the_detached_changes_as_tokens(app: SimpleNamespace) -> None:
    user = _detached(app, "u1")
    user.name = "Ana Changed"
    with Session(app.engine) as s:
        merged = s.merge(user)
        assert merged.name == "Ana Changed"
        s.commit()
    stored = _stored_name(app, "u1")
    assert stored.startswith("lp1.")
    assert "Ana" not in stored
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").name == "Ana Changed"


def test_a_merge_without_load_keeps_the_opened_values(app: SimpleNamespace) -> None:
    user = _detached(app, "u1")
    name, email = user.name, user.email
    before = _stored_name(app, "u1")
    with Session(app.engine) as s:
        merged = s.merge(user, load=False)
        assert (merged.name, merged.email) == (name, email)
        s.commit()
    assert _stored_name(app, "u1") == before
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").name == name


def _restrict(app: SimpleNamespace, user_id: str) -> None:
    with Session(app.engine) as s:
        user = s.get(app.m.User, user_id)
        assert app.privacy.restrict(s, user, reason="contested accuracy", now=NOW)
        s.commit()


def _row_count(app: SimpleNamespace) -> int:
    with app.engine.connect() as c:
        found = c.execute(text("SELECT count(*) FROM users")).scalar()
    assert isinstance(found, int)
    return found


def test_a_merge_of_a_row_restricted_since_is_refused_with_the_typed_error(
    app: SimpleNamespace,
) -> None:
    """The detached copy was read before the row was restricted: the merge's own query
    no longer sees the row. It must be refused as a write of a restricted row, before
    anything is written, not fail on the table's unique key (SQLAlchemy's
    ``IntegrityError``, quoting the row id and its tokens)."""
    user = _detached(app, "u1")
    _restrict(app, "u1")
    before = _stored_name(app, "u1")
    user.name = "Ana Changed"
    with Session(app.engine) as s:
        s.merge(user)
        with pytest.raises(RestrictedRecordError, match="users") as raised:
            s.flush()
        assert "Ana" not in str(raised.value)
        s.rollback()
    assert _stored_name(app, "u1") == before
    assert _row_count(app) == 2
    with Session(app.engine) as s:  # an unchanged copy is refused too: it would insert
        s.merge(_detached_restricted(app, "u1"))
        with pytest.raises(RestrictedRecordError):
            s.commit()


def test_a_merge_of_a_missing_row_still_inserts(app: SimpleNamespace) -> None:
    """The check does not stand in the way of a merge that creates a new row (the
    get-then-add pattern), and finds a row restricted under another key unrelated."""
    _restrict(app, "u2")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u3") is None
        s.merge(app.m.User(id="u3", email="cy@example.org", name="Cy", created_at=NOW))
        s.commit()
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u3").name == "Cy"


def test_a_merge_without_load_of_a_restricted_row_is_refused(app: SimpleNamespace) -> None:
    user = _detached(app, "u1")
    _restrict(app, "u1")
    with Session(app.engine) as s:
        merged = s.merge(user, load=False)
        merged.name = "Ana Changed"
        with pytest.raises(RestrictedRecordError):
            s.flush()


def _detached_restricted(app: SimpleNamespace, user_id: str) -> Any:
    with Session(app.engine) as s:
        user = s.get(app.m.User, user_id, execution_options={"include_restricted": True})
        s.expunge(user)
    return user


#: Reads of one user by key, each way the ORM offers.
KEYED_READS = {
    "get": lambda s, m: s.get(m.User, "u1"),
    "with_for_update": lambda s, m: s.get(m.User, "u1", with_for_update=True),
    "load_only": lambda s, m: s.scalars(
        select(m.User).where(m.User.id == "u1").options(load_only(m.User.name))
    ).first(),
    "defer": lambda s, m: s.scalars(
        select(m.User).where(m.User.id == "u1").options(defer(m.User.email))
    ).first(),
}


@pytest.mark.parametrize("read", sorted(KEYED_READS))
def test_a_restricted_row_is_hidden_from_every_keyed_read(app: SimpleNamespace, read: str) -> None:
    _restrict(app, "u1")
    with Session(app.engine) as s:
        assert KEYED_READS[read](s, app.m) is None
        assert KEYED_READS["get"](s, app.m) is None


@pytest.mark.parametrize("read", sorted(KEYED_READS))
def test_an_erased_learner_reads_as_nothing_or_refused(app: SimpleNamespace, read: str) -> None:
    """After erasure, every keyed read finds no row, or a row whose personal values
    cannot be read: never the learner's values."""
    with Session(app.engine) as s:
        assert app.privacy.erase_subject(s, "u1", now=NOW).erased > 0
        s.commit()
    with Session(app.engine) as s:
        found = KEYED_READS[read](s, app.m)
        if found is not None:
            with pytest.raises(KeyShreddedError):
                _ = (found.name, found.email)
