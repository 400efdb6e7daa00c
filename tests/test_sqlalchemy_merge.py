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
from sqlalchemy import text
from sqlalchemy.orm import Session

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
