"""Encrypting existing plaintext columns in place: resumable, with progress, verified."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


@pytest.mark.parametrize(
    "engine_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_value_rewritten_during_the_run_is_not_overwritten(
    setup: SimpleNamespace, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    """The application (its version still writing plaintext, during a rolling upgrade)
    rectifies a learner's name between the run's read of the row and its write: the run
    must not write the token of the old name over it. The rectified value is left in
    clear, the verification says so, and the next run encrypts it."""
    if engine_kind == "sqlite":
        engine = plaintext_database(setup.path / "app.db", with_index=True)
    else:
        engine = create_engine(request.getfixturevalue("postgres_server").create_database())
        setup.m.Base.metadata.create_all(engine)
        with engine.begin() as c:
            for i in range(ROWS):
                c.execute(
                    text("INSERT INTO users (id, email, name) VALUES (:i, :e, :n)"),
                    {"i": f"u{i:02d}", "e": f"learner{i}@example.org", "n": f"Learner {i}"},
                )
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
    result = CliRunner().invoke(
        main,
        [
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
        ],
    )
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
    assert tables["users"]["encrypted"] == 2 * ROWS
    assert tables["users"]["verified"] is True
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
