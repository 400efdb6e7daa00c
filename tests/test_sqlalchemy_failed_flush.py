"""A flush that fails after encryption gives the objects their values back.

The values of new objects are replaced by tokens just before their INSERT. When the flush
fails (an ``IntegrityError`` from the database, a refused value), the rollback expunges
the new objects and expires the persistent ones: the new ones must hold their clear
values again (not tokens bound to a row never written, which the next flush would refuse),
and a persistent one must show its committed state, never the value of the failed change.
On SQLite and a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests import NOW
from tests.inplace_models import bound_declarative

MASTER = bytes(range(32))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    yield from bound_declarative(request, tmp_path, MASTER)


def _private(obj: object) -> list[str]:
    """What the integration left on an object: stashes and blind indexes."""
    return sorted(k for k in vars(obj) if k.startswith("_learnprivacy") or k.endswith("_bidx"))


def test_new_objects_get_their_values_back_after_an_integrity_error(app: SimpleNamespace) -> None:
    m = app.m
    with Session(app.engine) as s:
        clash = m.User(id="u1", email="clash@example.org", name="Clash")
        cy = m.User(id="u3", email="cy@example.org", name="Cy")
        s.add_all([cy, clash])
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert (cy.email, cy.name) == ("cy@example.org", "Cy")
        assert (clash.email, clash.name) == ("clash@example.org", "Clash")
        assert _private(cy) == []
        assert _private(clash) == []
        # The objects are usable again: added again, they are written and read back.
        clash.id = "u4"
        s.add_all([cy, clash])
        s.commit()
    with Session(app.engine) as s:
        found = {u.id: (u.email, u.name) for u in s.scalars(select(m.User))}
        assert found["u3"] == ("cy@example.org", "Cy")
        assert found["u4"] == ("clash@example.org", "Clash")
        assert [u.id for u in app.privacy.find(s, m.User.email, "clash@example.org")] == ["u4"]
        stored = s.execute(text("SELECT email FROM users WHERE id = 'u4'")).scalar_one()
        assert stored.startswith("lp1.")


def test_a_row_whose_key_the_database_makes_gets_its_value_back(app: SimpleNamespace) -> None:
    """A post (key made by the database) refused by a NOT NULL constraint: its body had
    been replaced by the placeholder token; it is given back."""
    m = app.m
    with Session(app.engine) as s:
        post = m.Post(author_id="u1", body="a post that fails", posted_at=None)
        s.add(post)
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
        assert post.body == "a post that fails"
        assert _private(post) == []
        post.posted_at = NOW
        s.add(post)
        s.commit()
        assert s.get(m.Post, post.id).body == "a post that fails"


def test_a_failed_update_never_comes_back_in_a_later_flush(app: SimpleNamespace) -> None:
    """Ana renamed in a flush that fails on another row's INSERT: after the rollback she
    shows her committed name, and a later flush of another column neither writes nor
    shows the failed name (the old code put it back on the object from a stale stash)."""
    m = app.m
    with Session(app.engine) as s:
        ana = s.get(m.User, "u1")
        ana.name = "Ana Renamed"
        s.add(m.User(id="u2", email="clash@example.org", name="Clash"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert ana.name == "Ana Silva"
        ana.last_login_at = NOW
        s.flush()
        assert ana.name == "Ana Silva"
        s.commit()
    with Session(app.engine) as s:
        assert s.get(m.User, "u1").name == "Ana Silva"
