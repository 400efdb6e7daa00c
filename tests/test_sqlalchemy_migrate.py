"""Encrypting existing plaintext columns in place: resumable, with progress, verified."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import learnprivacy.sqlalchemy as lps
from learnprivacy.cli import main
from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError, IntegrityError
from tests.inplace_models import declarative_models

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

MASTER = bytes(range(32))
ROWS = 23


def plaintext_database(path: Path, *, with_index: bool) -> Engine:
    """The tables as an application had them before adopting learnprivacy."""
    engine = create_engine(f"sqlite:///{path}")
    index = ", email_bidx VARCHAR(48)" if with_index else ""
    with engine.begin() as c:
        c.execute(
            text(
                "CREATE TABLE users (id VARCHAR PRIMARY KEY, email TEXT NOT NULL,"
                f" name TEXT NOT NULL, created_at DATETIME, last_login_at DATETIME{index})"
            )
        )
        c.execute(
            text(
                "CREATE TABLE forum_posts (id INTEGER PRIMARY KEY, author_id VARCHAR NOT NULL,"
                " body TEXT NOT NULL, posted_at DATETIME NOT NULL)"
            )
        )
        c.execute(
            text(
                "CREATE TABLE invoices (id VARCHAR PRIMARY KEY, user_id VARCHAR, billing_name TEXT"
                " NOT NULL, amount NUMERIC(10, 2), issued_at DATETIME NOT NULL)"
            )
        )
        for i in range(ROWS):
            c.execute(
                text("INSERT INTO users (id, email, name) VALUES (:i, :e, :n)"),
                {"i": f"u{i:02d}", "e": f"learner{i}@example.org", "n": f"Learner {i}"},
            )
            c.execute(
                text(
                    "INSERT INTO forum_posts (author_id, body, posted_at)"
                    " VALUES (:i, :b, '2026-01-01 10:00:00')"
                ),
                {"i": f"u{i:02d}", "b": f"post number {i}"},
            )
    return engine


@pytest.fixture
def setup(tmp_path: Path) -> SimpleNamespace:
    models = declarative_models()
    privacy = lps.LearnPrivacy(
        models.Base,
        keyring=Keyring.from_master_key(MASTER),
        keys=f"sqlite:///{tmp_path / 'keys.db'}",
    )
    return SimpleNamespace(m=models, privacy=privacy, path=tmp_path)


def test_encrypts_resumes_after_a_kill_and_verifies(setup: SimpleNamespace) -> None:
    """A run killed after its first batch is run again and finishes; all values verify."""
    engine = plaintext_database(setup.path / "app.db", with_index=True)
    seen: list[tuple[str, int, int]] = []

    def killed(table: str, done: int, total: int) -> None:
        seen.append((table, done, total))
        if table == "users" and done >= 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lps.migrate_encrypt(setup.privacy, engine, batch_size=5, progress=killed)
    with engine.connect() as c:
        tokens = c.execute(text("SELECT count(*) FROM users WHERE email LIKE 'lp1.%'")).scalar()
    assert tokens == 5
    progress: list[tuple[str, int, int]] = []
    reports = lps.migrate_encrypt(
        setup.privacy, engine, batch_size=5, progress=lambda *a: progress.append(a)
    )
    by_table = {r.table: r for r in reports}
    assert by_table["users"].encrypted == 2 * (ROWS - 5)
    # Posts come first (learners' own table last) and were finished by the first run.
    assert ("forum_posts", ROWS, ROWS) in seen
    assert by_table["forum_posts"].encrypted == 0
    assert all(r.verified for r in reports)
    assert progress[-1] == ("users", ROWS, ROWS)
    engine.dispose()
    data = (setup.path / "app.db").read_bytes()
    assert b"learner7@example.org" not in data
    assert b"post number 7" not in data
    with Session(engine) as s:
        user = s.get(setup.m.User, "u07")
        assert (user.email, user.name) == ("learner7@example.org", "Learner 7")
        assert setup.privacy.find(s, setup.m.User.email, "LEARNER7@example.org") == [user]
    again = lps.migrate_encrypt(setup.privacy, engine)
    assert sum(r.encrypted for r in again) == 0


def test_missing_blind_index_column_is_named(setup: SimpleNamespace) -> None:
    """The blind-index column must be added first: the error says which."""
    engine = plaintext_database(setup.path / "app.db", with_index=False)
    with pytest.raises(ConfigurationError, match=r"users\.email_bidx does not exist"):
        lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM users WHERE email LIKE 'lp1.%'")).scalar() == 0


def test_verification_catches_a_moved_token(setup: SimpleNamespace) -> None:
    """A token copied to another row after migration fails the verification."""
    engine = plaintext_database(setup.path / "app.db", with_index=True)
    lps.migrate_encrypt(setup.privacy, engine)
    with engine.begin() as c:
        c.execute(
            text("UPDATE users SET name = (SELECT name FROM users WHERE id='u01') WHERE id='u02'")
        )
    with pytest.raises(IntegrityError, match=r"users\.name: 1") as caught:
        lps.migrate_encrypt(setup.privacy, engine)
    assert "Learner" not in str(caught.value)


def _plaintext_users(
    setup: SimpleNamespace, engine_kind: str, request: pytest.FixtureRequest
) -> Engine:
    """Plaintext learners (``users`` with its blind-index column) on SQLite or on a
    database of the real PostgreSQL server."""
    if engine_kind == "sqlite":
        return plaintext_database(setup.path / "app.db", with_index=True)
    engine = create_engine(request.getfixturevalue("postgres_server").create_database())
    setup.m.Base.metadata.create_all(engine)
    with engine.begin() as c:
        for i in range(ROWS):
            c.execute(
                text("INSERT INTO users (id, email, name) VALUES (:i, :e, :n)"),
                {"i": f"u{i:02d}", "e": f"learner{i}@example.org", "n": f"Learner {i}"},
            )
    return engine


KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("engine_kind", KINDS)
def test_a_value_rewritten_during_the_run_is_not_overwritten(
    setup: SimpleNamespace, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    """The application (its version still writing plaintext, during a rolling upgrade)
    rectifies a learner's name between the run's read of the row and its write: the run
    must not write the token of the old name over it. The rectified value is left in
    clear, the verification says so, and the next run encrypts it."""
    engine = _plaintext_users(setup, engine_kind, request)
    other = create_engine(engine.url, poolclass=NullPool)
    rectified = False

    @event.listens_for(engine, "before_cursor_execute")
    def rectify(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal rectified
        if not rectified and statement.startswith("UPDATE users"):
            rectified = True
            with other.begin() as c:
                c.execute(text("UPDATE users SET name = 'Learner 0 Rectified' WHERE id = 'u00'"))

    with pytest.raises(IntegrityError, match=r"users\.name: 1") as caught:
        lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    assert rectified
    assert "Learner" not in str(caught.value)
    event.remove(engine, "before_cursor_execute", rectify)
    (report,) = lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    assert report.verified
    assert report.encrypted == 2  # the row left whole: its e-mail and its new name
    with Session(engine) as s:
        assert s.get(setup.m.User, "u00").name == "Learner 0 Rectified"
        assert s.get(setup.m.User, "u01").name == "Learner 1"
    engine.dispose()


def test_cli_migrate_encrypt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """learnprivacy migrate-encrypt imports the models, encrypts and reports as JSON."""
    engine = plaintext_database(tmp_path / "app.db", with_index=True)
    engine.dispose()
    (tmp_path / "lmsmodels.py").write_text(
        textwrap.dedent("""
        from tests.inplace_models import declarative_models
        Base = declarative_models().Base
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    monkeypatch.setenv("LEARNPRIVACY_MASTER_KEY", base64.b64encode(MASTER).decode())
    command = [
        "--json",
        "migrate-encrypt",
        "--app-db",
        f"sqlite:///{tmp_path / 'app.db'}",
        "--models",
        "lmsmodels:Base",
        "--keys",
        f"sqlite:///{tmp_path / 'keys.db'}",
        "--batch-size",
        "7",
    ]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
    assert tables["users"]["encrypted"] == 2 * ROWS
    assert tables["users"]["verified"] is True
    assert tables["users"]["reindexed"] == 0
    with engine.begin() as c:
        c.execute(text("UPDATE users SET email_bidx = 'tampered' WHERE id = 'u03'"))
    # Each run imports the models afresh, as a new process would.
    monkeypatch.delitem(sys.modules, "lmsmodels")
    tampered = CliRunner().invoke(main, command)
    assert tampered.exit_code == 3, tampered.output
    assert "users.email_bidx: 1" in tampered.output
    assert "learner3" not in tampered.output
    monkeypatch.delitem(sys.modules, "lmsmodels")
    repaired = CliRunner().invoke(main, [*command, "--repair-indexes"])
    assert repaired.exit_code == 0, repaired.output
    (users,) = [t for t in json.loads(repaired.stdout)["tables"] if t["table"] == "users"]
    assert (users["reindexed"], users["encrypted"], users["verified"]) == (1, 0, True)
    engine.dispose()
    bad = CliRunner().invoke(
        main,
        [
            "migrate-encrypt",
            "--app-db",
            "sqlite://",
            "--models",
            "nowhere:Base",
            "--keys",
            "sqlite://",
        ],
    )
    assert bad.exit_code == 2


def _find_all(setup: SimpleNamespace, engine: Engine) -> list[str]:
    """The learners ``find`` reaches by their e-mail address."""
    with Session(engine) as s:
        return [
            u.id
            for i in range(ROWS)
            for u in setup.privacy.find(s, setup.m.User.email, f"learner{i}@example.org")
        ]


@pytest.mark.parametrize("engine_kind", KINDS)
def test_verification_catches_a_tampered_blind_index(
    setup: SimpleNamespace, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    """A blind index copied from another row after migration: the tokens all open, but
    ``find`` misses the learner. The verification names the index column (never the
    value); the old code reported the table verified. ``repair_indexes`` rewrites it."""
    engine = _plaintext_users(setup, engine_kind, request)
    lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE users SET email_bidx = (SELECT email_bidx FROM users WHERE id = 'u01')"
                " WHERE id = 'u02'"
            )
        )
    with pytest.raises(IntegrityError, match=r"users\.email_bidx: 1") as caught:
        lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    assert "learner" not in str(caught.value)
    assert "u02" not in _find_all(setup, engine)
    (report,) = lps.migrate_encrypt(setup.privacy, engine, setup.m.User, repair_indexes=True)
    assert (report.verified, report.encrypted, report.reindexed) == (True, 0, 1)
    assert _find_all(setup, engine) == [f"u{i:02d}" for i in range(ROWS)]
    engine.dispose()


def _killed_worker(database: str, keys: str) -> None:
    """``migrate_encrypt`` of ``users`` in a worker process, SIGKILLed after its second
    committed batch of five rows."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.inplace_worker", "migrate-encrypt", database, keys],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]


@pytest.mark.parametrize("engine_kind", KINDS)
def test_missing_blind_indexes_are_filled_in_by_a_run_killed_then_resumed(
    setup: SimpleNamespace, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    """Tokens without their blind index (written before the index column was filled in,
    or by a run killed between the two): the old code skipped every token, reported the
    table verified and ``find`` found no one. A run SIGKILLed half-way fills in the first
    batches; the run started again fills in the rest, verifies, and ``find`` works."""
    engine = _plaintext_users(setup, engine_kind, request)
    lps.migrate_encrypt(setup.privacy, engine, setup.m.User)
    with engine.begin() as c:
        c.execute(text("UPDATE users SET email_bidx = NULL"))
    assert _find_all(setup, engine) == []
    database = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    _killed_worker(database, f"sqlite:///{setup.path / 'keys.db'}")
    with engine.connect() as c:
        filled = c.execute(text("SELECT count(*) FROM users WHERE email_bidx IS NOT NULL"))
        assert filled.scalar_one() == 10
    (report,) = lps.migrate_encrypt(setup.privacy, engine, setup.m.User, batch_size=5)
    assert (report.verified, report.encrypted, report.reindexed) == (True, 0, ROWS - 10)
    assert _find_all(setup, engine) == [f"u{i:02d}" for i in range(ROWS)]
    engine.dispose()


@pytest.mark.postgres
def test_a_table_in_a_schema_is_checked_not_its_namesake(
    postgres_server: TemporaryPostgres,
) -> None:
    """``a.users`` is migrated; ``public.users`` and ``b.users`` are namesakes. The
    blind-index column is looked for in ``a.users`` only (the old code looked in the
    search path's ``users``: it let a missing column through, then refused a present
    one), and the other two tables are left as they were."""
    from tests.test_sqlalchemy_schemas import _two_schemas

    m = _two_schemas()
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.from_master_key(MASTER), keys=postgres_server.create_database()
    )
    engine = create_engine(postgres_server.create_database())
    with engine.begin() as c:
        for table in ("public.users", "a.users", "b.users"):
            schema = table.partition(".")[0]
            if schema != "public":
                c.execute(text(f"CREATE SCHEMA {schema}"))
            index = "" if schema == "a" else ", email_bidx VARCHAR(48)"
            c.execute(text(f"CREATE TABLE {table} (id VARCHAR PRIMARY KEY, email TEXT{index})"))
            for i in range(3):
                c.execute(
                    text(f"INSERT INTO {table} (id, email) VALUES (:i, :e)"),
                    {"i": f"u{i}", "e": f"{schema}{i}@example.org"},
                )
    try:
        with pytest.raises(ConfigurationError, match=r'"a"\."users"\.email_bidx does not exist'):
            lps.migrate_encrypt(privacy, engine, m.A)
        with engine.begin() as c:
            c.execute(text("ALTER TABLE a.users ADD COLUMN email_bidx VARCHAR(48)"))
            c.execute(text("ALTER TABLE public.users DROP COLUMN email_bidx"))
        (report,) = lps.migrate_encrypt(privacy, engine, m.A)
        assert (report.table, report.verified, report.encrypted) == ('"a"."users"', True, 3)
        with engine.connect() as c:
            for schema in ("public", "b"):
                emails = c.execute(text(f"SELECT email FROM {schema}.users ORDER BY id"))
                assert list(emails.scalars()) == [f"{schema}{i}@example.org" for i in range(3)]
        with Session(engine) as s:
            assert [u.id for u in privacy.find(s, m.A.email, "a1@example.org")] == ["u1"]
    finally:
        privacy.close()
        engine.dispose()
