"""Tables of the same name in two schemas: each keeps its own tokens and row states.

A table declared in a schema (``__table_args__ = {"schema": ...}``) is named
``"schema"."table"`` in its tokens' binding, blind indexes, row references and row
states; a table without a schema keeps its bare name (the tokens it always had). A token
copied between ``a.users`` and ``b.users`` (same learner, same key, same column) does not
open, and restricting a row of one does not restrict its namesake in the other. On the
old code the token opened (the other schema's e-mail address was read as this one's) and
the restriction covered both rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateSchema

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.errors import DecryptionError, RestrictedRecordError
from tests import NOW
from tests.inplace_models import bind, declarative_models

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

MASTER = bytes(range(32))


def _two_schemas() -> SimpleNamespace:
    """``users`` in schema ``a`` and in schema ``b``, on one declarative base."""

    class Base(DeclarativeBase):
        pass

    def user(schema: str) -> type[Any]:
        return type(
            f"User{schema.upper()}",
            (Base,),
            {
                "__tablename__": "users",
                "__table_args__": {"schema": schema},
                "__privacy__": lps.Privacy(
                    subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT
                ),
                "__annotations__": {"id": Mapped[str], "email": Mapped[str]},
                "id": mapped_column(primary_key=True),
                "email": lps.personal(DataCategory.CONTACT, "E-mail", blind_index=True),
            },
        )

    return SimpleNamespace(Base=Base, A=user("a"), B=user("b"))


@pytest.fixture
def schemas(postgres_server: TemporaryPostgres) -> Iterator[SimpleNamespace]:
    """Ana (``u1``) in ``a.users`` and in ``b.users``, with two addresses."""
    m = _two_schemas()
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.from_master_key(MASTER), keys=postgres_server.create_database()
    )
    engine = create_engine(postgres_server.create_database())
    with engine.begin() as c:
        c.execute(CreateSchema("a"))
        c.execute(CreateSchema("b"))
    m.Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(m.A(id="u1", email="ana@work.example"))
        s.add(m.B(id="u1", email="ana@home.example"))
        s.commit()
    try:
        yield SimpleNamespace(m=m, privacy=privacy, engine=engine)
    finally:
        privacy.close()
        engine.dispose()


@pytest.mark.postgres
def test_each_schema_reads_its_own_values(schemas: SimpleNamespace) -> None:
    m, privacy = schemas.m, schemas.privacy
    assert {s.table for s in privacy.specs} == {'"a"."users"', '"b"."users"'}
    with Session(schemas.engine) as s:
        assert s.get(m.A, "u1").email == "ana@work.example"
        assert s.get(m.B, "u1").email == "ana@home.example"
        assert [u.id for u in privacy.find(s, m.B.email, "ana@home.example")] == ["u1"]
        assert privacy.find(s, m.B.email, "ana@work.example") == []


@pytest.mark.postgres
def test_a_token_copied_to_the_same_named_table_of_another_schema_does_not_open(
    schemas: SimpleNamespace,
) -> None:
    with schemas.engine.begin() as c:
        c.execute(text("UPDATE b.users SET email = (SELECT email FROM a.users WHERE id = 'u1')"))
    with Session(schemas.engine) as s, pytest.raises(DecryptionError) as raised:
        s.get(schemas.m.B, "u1")
    assert '"b"."users".email' in str(raised.value)
    assert "ana@" not in str(raised.value)


@pytest.mark.postgres
def test_a_restriction_in_one_schema_leaves_the_namesake_row_alone(
    schemas: SimpleNamespace,
) -> None:
    """``a.users`` u1 restricted: ``b.users`` u1 can still be changed (the old code
    refused it, the two rows sharing one reference), and ``a.users`` u1 cannot be
    deleted."""
    m, privacy = schemas.m, schemas.privacy
    with Session(schemas.engine) as s:
        assert privacy.restrict(s, s.get(m.A, "u1"), reason="dispute", now=NOW)
        s.commit()
    with Session(schemas.engine) as s:
        s.get(m.B, "u1").email = "ana@new.example"
        s.commit()
    with Session(schemas.engine) as s:
        assert s.get(m.B, "u1").email == "ana@new.example"
        with pytest.raises(RestrictedRecordError):
            s.execute(delete(m.A).where(m.A.id == "u1"))
        s.rollback()
    with schemas.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM a.users")).scalar_one() == 1


def test_a_table_without_a_schema_keeps_its_bare_name(tmp_path: Path) -> None:
    """Tokens of a table without a schema are bound to ``users/<key>/<column>``, as
    they always were: a token made that way before opens."""
    from learnprivacy.crypto import FieldCipher

    m = declarative_models()
    privacy, engine = bind(tmp_path, m.Base)
    try:
        assert privacy.spec(m.User).table == "users"
        cipher = FieldCipher(privacy.keyring)
        token = cipher.encrypt("ana@example.org", subject="u1", context="users/u1/email")
        with Session(engine) as s:
            s.add(m.User(id="u1", email="placeholder@example.org", name="Ana"))
            s.commit()
        with engine.begin() as c:
            c.execute(text("UPDATE users SET email = :t WHERE id = 'u1'"), {"t": token})
        with Session(engine) as s:
            assert s.get(m.User, "u1").email == "ana@example.org"
    finally:
        privacy.close()
        engine.dispose()


@pytest.mark.postgres
def test_an_export_lists_each_schemas_table_apart(schemas: SimpleNamespace, tmp_path: Path) -> None:
    """The learner's package holds both tables, each under its schema-qualified name,
    with its own value in clear."""
    import json
    import zipfile

    out = tmp_path / "ana.zip"
    with Session(schemas.engine) as s:
        schemas.privacy.export_subject(s, "u1", out, now=NOW)
    with zipfile.ZipFile(out) as package:
        tables = {
            name: json.loads(package.read(name))
            for name in package.namelist()
            if name.startswith("data/") and name.endswith("users.json")
        }
    found = {name: [r["email"] for r in t["records"]] for name, t in tables.items()}
    assert sorted(found.values()) == [["ana@home.example"], ["ana@work.example"]]
    assert len(found) == 2
