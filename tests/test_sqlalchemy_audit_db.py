"""The audit log in a database the caller names (``LearnPrivacy(..., audit=)``).

Entries are staged in the application's transaction (an outbox), then moved to the audit
database once it commits: a rollback records nothing, a process killed between the
commit and the move loses no entry and writes none twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import Session

import learnprivacy.sqlalchemy as lps
from learnprivacy.crypto import Keyring
from tests import NOW
from tests.inplace_models import declarative_models
from tests.inplace_worker import run_killed
from tests.test_sqlalchemy_erasure import populate, schedule

MASTER = bytes(range(32))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Models bound with the audit log in the key database, on SQLite."""
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    m = declarative_models()
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.from_master_key(MASTER), keys=keys, audit=keys
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    m.Base.metadata.create_all(engine)
    populate(engine, m)
    yield SimpleNamespace(m=m, privacy=privacy, engine=engine, path=tmp_path, keys=keys)
    privacy.close()
    engine.dispose()


def _audit_rows(app: SimpleNamespace) -> list[str]:
    engine = create_engine(app.keys)
    try:
        if "lp_audit" not in inspect(engine).get_table_names():
            return []
        with engine.connect() as c:
            return list(c.execute(text("SELECT action FROM lp_audit ORDER BY sequence")).scalars())
    finally:
        engine.dispose()


def _outbox(app: SimpleNamespace) -> int:
    with app.engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM lp_audit_outbox")).scalar_one())


def test_entries_land_in_the_named_database_and_none_in_the_apps(app: SimpleNamespace) -> None:
    """An erasure's entries are in the key database's audit log, chained and verified;
    the application's database has no audit table, and its outbox is empty."""
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        assert _outbox(app) == 0  # not committed yet: nothing visible
        s.commit()
    assert _audit_rows(app) == ["erasure_request", "erase", "erase", "shred"]
    assert _outbox(app) == 0
    tables = set(inspect(app.engine).get_table_names())
    assert "lp_audit" not in tables
    assert "lp_audit_outbox" in tables
    with Session(app.engine) as s:
        log = app.privacy.audit(s)
        assert log.verify()
        assert [e.action for e in log.entries()] == ["erasure_request", "erase", "erase", "shred"]


def test_a_rollback_records_nothing(app: SimpleNamespace) -> None:
    """Staged entries roll back with the change they describe."""
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.rollback()
        assert s.get(app.m.User, "u1") is not None
    with Session(app.engine) as s:
        assert list(app.privacy.audit(s).entries()) == []
    assert _outbox(app) == 0


def test_application_deletes_and_sweeps_are_audited_there_too(app: SimpleNamespace) -> None:
    """A delete through the ORM is recorded in the named database once committed."""
    with Session(app.engine) as s:
        post = s.get(app.m.Post, 1)
        s.delete(post)
        s.commit()
    assert _audit_rows(app) == ["erase"]


@pytest.mark.parametrize("mode", ["audit-before-move", "audit-after-append"])
def test_a_process_killed_before_or_during_the_move_loses_and_repeats_nothing(
    app: SimpleNamespace, mode: str
) -> None:
    """SIGKILL after the commit, before the entries reach the audit database or before
    the outbox row is removed: the next call completes the log, each entry once."""
    run_killed(mode, app, app.keys)
    assert _outbox(app) == 1
    expected = ["erasure_request", "erase", "erase", "shred"]
    assert _audit_rows(app) == (expected if mode == "audit-after-append" else [])
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1") is None
        app.privacy.find(s, app.m.User.email, "bob@example.org")
        s.commit()
    assert _outbox(app) == 0
    assert _audit_rows(app) == expected
    with Session(app.engine) as s:
        assert app.privacy.audit(s).verify()


def test_audit_must_be_a_url_or_an_engine(tmp_path: Path) -> None:
    """Anything else is a configuration error at binding."""
    from learnprivacy.errors import ConfigurationError

    m = declarative_models()
    with pytest.raises(ConfigurationError, match="audit="):
        lps.LearnPrivacy(
            m.Base,
            keyring=Keyring.generate(),
            keys=f"sqlite:///{tmp_path / 'k.db'}",
            audit=42,  # type: ignore[arg-type]
        )


def _every_row(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return {
                t: sorted((tuple(r) for r in c.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
                for t in inspect(engine).get_table_names()
            }
    finally:
        engine.dispose()


def test_a_dry_run_sweep_moves_nothing_out_of_the_outbox(app: SimpleNamespace) -> None:
    """A crash left committed entries in the outbox: a dry-run sweep must leave them
    there, and every table of the application's and the audit database as it was (on
    the old code the dry run moved them to the audit log and emptied the outbox)."""
    run_killed("audit-before-move", app, app.keys)
    assert _outbox(app) == 1
    app_db = f"sqlite:///{app.path / 'app.db'}"
    before = (_every_row(app_db), _every_row(app.keys))
    with Session(app.engine) as s:
        report = app.privacy.sweep(s, schedule(app.m), now=NOW, dry_run=True)
        s.commit()
    assert report.dry_run
    app.engine.dispose()
    assert (_every_row(app_db), _every_row(app.keys)) == before
    assert _outbox(app) == 1
    # The next real call still moves them, each entry once.
    with Session(app.engine) as s:
        app.privacy.audit(s)
        s.commit()
    assert _outbox(app) == 0
    assert _audit_rows(app) == ["erasure_request", "erase", "erase", "shred"]
