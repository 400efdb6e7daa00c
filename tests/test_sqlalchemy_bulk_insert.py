"""Bulk inserts through the session on declared models, on SQLite and a real PostgreSQL.

``session.execute(insert(User), [{...}, ...])`` (the ORM's bulk insert) bypasses the
flush events. Its rows are encrypted as a flush encrypts them (tokens under each
learner's key, bound to table, key and column; blind indexes computed); anything that
cannot be encrypted per row is refused with a typed error naming table and column,
never the value, and nothing is written. Plaintext never reaches the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, insert, literal, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from learnprivacy.errors import DecryptionError, PlaintextError, ValidationError
from tests.inplace_models import bound_declarative, restrict_user

MASTER = bytes(range(32))
WHEN = dt.datetime(2026, 3, 1, 9, 0)
NEW = [
    {"id": "u3", "email": "Cleo@Example.org", "name": "Cleo Martin"},
    {"id": "u4", "email": "dan@example.org", "name": "Dan Roy", "last_login_at": WHEN},
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Ana (``u1``, two posts) and Bob (``u2``, one post), on SQLite or PostgreSQL."""
    yield from bound_declarative(request, tmp_path, MASTER)


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The fixture ``app`` on SQLite only."""
    yield from bound_declarative(SimpleNamespace(param="sqlite"), tmp_path, MASTER)


def _raw(app: SimpleNamespace) -> list[tuple[Any, ...]]:
    with app.engine.connect() as c:
        users = c.execute(text("SELECT id, email, email_bidx, name FROM users ORDER BY id"))
        posts = c.execute(text("SELECT id, author_id, body FROM forum_posts ORDER BY id"))
        return [tuple(r) for r in users] + [tuple(r) for r in posts]


def _no_plaintext(app: SimpleNamespace, *values: str) -> None:
    stored = repr(_raw(app)).lower()
    for value in values:
        assert value.lower() not in stored


def test_a_bulk_insert_is_encrypted_bound_and_indexed(app: SimpleNamespace) -> None:
    """The rows are stored as tokens with blind indexes, read back in clear, found by
    their blind index; the caller's dicts keep their values."""
    rows = [dict(r) for r in NEW]
    with Session(app.engine) as s:
        s.execute(insert(app.m.User), rows)
        s.execute(
            insert(app.m.Post),
            [{"id": 10, "author_id": "u3", "body": "Hello from Cleo", "posted_at": WHEN}],
        )
        s.commit()
    assert rows == NEW
    _no_plaintext(app, "cleo", "Dan Roy", "Hello from Cleo", "dan@example.org")
    with Session(app.engine) as s:
        cleo = s.get(app.m.User, "u3")
        assert (cleo.email, cleo.name) == ("Cleo@Example.org", "Cleo Martin")
        assert s.get(app.m.User, "u4").last_login_at == WHEN
        assert s.get(app.m.Post, 10).body == "Hello from Cleo"
        found = app.privacy.find(s, app.m.User.email, "cleo@example.org")
        assert [u.id for u in found] == ["u3"]


def test_a_core_insert_of_the_table_through_the_session_is_encrypted(
    app: SimpleNamespace,
) -> None:
    """The table's own insert, rows keyed by column name: encrypted the same way."""
    with Session(app.engine) as s:
        s.execute(insert(app.m.User.__table__), [dict(NEW[0])])
        s.commit()
    _no_plaintext(app, "cleo")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u3").name == "Cleo Martin"


def test_bulk_inserted_tokens_are_bound_to_their_row(app: SimpleNamespace) -> None:
    """A token of a bulk-inserted row copied to another row does not open there."""
    with Session(app.engine) as s:
        s.execute(insert(app.m.User), [dict(r) for r in NEW])
        s.commit()
    with app.engine.begin() as c:
        token = c.execute(text("SELECT name FROM users WHERE id = 'u3'")).scalar_one()
        c.execute(text("UPDATE users SET name = :t WHERE id = 'u4'"), {"t": token})
    with Session(app.engine) as s, pytest.raises(DecryptionError, match=r"users\.name"):
        s.get(app.m.User, "u4")


def _attacks(m: SimpleNamespace) -> list[tuple[str, Any, Any, type[Exception]]]:
    """(name, statement, parameters, error) of bulk inserts that cannot be encrypted;
    every one is a complete row (the old code stored the plaintext of most of them)."""
    mail, name = "mallory@example.org", "Mallory Doe"

    def shaped(form: Any) -> Any:
        return insert(m.User).values(id="u9", email=form(mail), name=form(name))

    def quoted(value: str) -> Any:
        return literal_column(f"'{value}'")

    row = {"id": "u9", "email": mail, "name": name}
    post = {"author_id": "u1", "body": "Mallory was here", "posted_at": WHEN}
    return [
        ("literal", insert(m.User).values(row), None, PlaintextError),
        ("bound literal", shaped(literal), None, PlaintextError),
        ("literal column", shaped(quoted), None, PlaintextError),
        ("function", shaped(func.lower), None, PlaintextError),
        (
            "multi values",
            insert(m.User).values([{"id": "u9", "email": literal(mail), "name": literal(name)}]),
            None,
            PlaintextError,
        ),
        (
            "from select",
            insert(m.User).from_select(
                ["id", "email", "name"], select(literal("u9"), literal(mail), literal(name))
            ),
            None,
            PlaintextError,
        ),
        ("a token in a row", insert(m.User), [{**row, "name": "lp1.stolen"}], PlaintextError),
        (
            "a blind index in a row",
            insert(m.User),
            [{**row, "email_bidx": "b1_x"}],
            ValidationError,
        ),
        (
            "a blind index in values",
            insert(m.User).values(email_bidx="b1_x"),
            [row],
            ValidationError,
        ),
        ("no key", insert(m.Post), [post], ValidationError),
    ]


@pytest.mark.parametrize("attack", range(10))
def test_a_bulk_insert_that_cannot_be_encrypted_is_refused_and_writes_nothing(
    app: SimpleNamespace, attack: int
) -> None:
    """Plaintext in ``.values()``, an INSERT ... SELECT, a token or a blind index given
    directly, a row without its key: a typed error naming table and column, never the
    value, and nothing written (the old code stored the expressions' plaintext)."""
    name, statement, parameters, error = _attacks(app.m)[attack]
    stored = _raw(app)
    with Session(app.engine) as s:
        with pytest.raises(error) as raised:
            s.execute(statement, parameters)
        s.commit()
    message = str(raised.value).lower()
    assert "users." in message or "forum_posts." in message, name
    assert "mallory" not in message, name
    assert "stolen" not in message, name
    assert _raw(app) == stored, name


def test_a_token_copied_from_another_row_is_refused(app: SimpleNamespace) -> None:
    """Bob's stored token given as a new row's value: refused (it would stay bound to
    Bob's row), not stored."""
    with app.engine.connect() as c:
        bobs = c.execute(text("SELECT email FROM users WHERE id = 'u2'")).scalar_one()
    stored = _raw(app)
    with Session(app.engine) as s:
        with pytest.raises(PlaintextError, match=r"users\.email") as raised:
            s.execute(insert(app.m.User), [{"id": "u9", "email": bobs, "name": "M"}])
        s.commit()
    assert bobs not in str(raised.value)
    assert _raw(app) == stored


def test_a_row_without_its_learner_is_refused(app: SimpleNamespace) -> None:
    stored = _raw(app)
    with Session(app.engine) as s:
        with pytest.raises(ValidationError, match=r"forum_posts\.author_id"):
            s.execute(insert(app.m.Post), [{"id": 11, "body": "Mallory", "posted_at": WHEN}])
        s.commit()
    assert _raw(app) == stored


def test_an_upsert_is_refused(app: SimpleNamespace) -> None:
    """``ON CONFLICT DO UPDATE`` could overwrite a restricted row without encrypting:
    refused, nothing written; ``ON CONFLICT DO NOTHING`` runs (encrypted)."""
    dialect = postgresql if app.engine.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(app.m.User).on_conflict_do_update(
        index_elements=["id"], set_={"last_login_at": WHEN}
    )
    stored = _raw(app)
    with Session(app.engine) as s:
        with pytest.raises(ValidationError, match="users"):
            s.execute(upsert, [{"id": "u1", "name": "Mallory"}])
        s.commit()
    assert _raw(app) == stored
    with Session(app.engine) as s:
        s.execute(dialect.insert(app.m.User).on_conflict_do_nothing(), [dict(NEW[0])])
        s.commit()
    _no_plaintext(app, "cleo")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u3").email == "Cleo@Example.org"


@pytest.mark.parametrize("prefix", ["OR REPLACE", "OR IGNORE"])
def test_an_insert_or_replace_over_a_restricted_row_is_refused(
    sqlite_app: SimpleNamespace, prefix: str
) -> None:
    """SQLite's ``INSERT OR REPLACE`` (``prefix_with``) deletes the row it collides with
    and writes the new one: over Bob's restricted account it replaced the account (the
    upsert check only read the ``ON CONFLICT`` clause). Any ``OR`` conflict clause other
    than ``OR IGNORE``, and ``REPLACE``, is refused as an upsert is; ``OR IGNORE``
    leaves the restricted row as it is."""
    app = sqlite_app
    restrict_user(app, "u2")
    stored = _raw(app)
    statement = insert(app.m.User).prefix_with(prefix)
    with Session(app.engine) as s:
        if prefix == "OR REPLACE":
            with pytest.raises(ValidationError, match="users"):
                s.execute(statement, [{"id": "u2", "email": "mallory@example.org", "name": "M"}])
        else:
            s.execute(statement, [{"id": "u2", "email": "mallory@example.org", "name": "M"}])
        s.commit()
    assert _raw(app) == stored


def test_a_bulk_insert_makes_new_learners_keys_in_the_key_store(app: SimpleNamespace) -> None:
    """The new learners' keys are in the key store (not only cached): a fresh binding
    opens the rows."""
    with Session(app.engine) as s:
        s.execute(insert(app.m.User), [dict(r) for r in NEW])
        s.commit()
    app.privacy.keyring.clear_cache("u3")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u3").name == "Cleo Martin"


def test_a_bulk_insert_returning_objects_gives_them_in_clear(app: SimpleNamespace) -> None:
    """``insert(User).returning(User)``: the objects come back decrypted, the table holds
    tokens."""
    with Session(app.engine) as s:
        users = s.scalars(insert(app.m.User).returning(app.m.User), [dict(r) for r in NEW])
        assert sorted((u.id, u.name) for u in users) == [("u3", "Cleo Martin"), ("u4", "Dan Roy")]
        s.commit()
    _no_plaintext(app, "cleo", "Dan Roy")
