"""Start-up: the heavy modules ``learnprivacy --help`` and ``import learnprivacy.store`` load.

Timing is measured by ``benchmarks/bench_startup.py`` (CPU time against a bare interpreter);
these tests check the cause instead: the modules loaded, in a fresh interpreter.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pytest

from learnprivacy.cli import COMMANDS, main
from learnprivacy.cli._app import LearnPrivacyGroup, short_help
from tests import fresh_stderr, modules_after, packages_in


def _help_modules(*argv: str) -> tuple[set[str], str]:
    code = (
        "import sys, contextlib, io\n"
        f"sys.argv = ['learnprivacy', *{list(argv)!r}]\n"
        "from learnprivacy.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(out.getvalue().replace('\\n', ' '), file=sys.stderr)\n"
    )
    lines = fresh_stderr(code)
    return set(json.loads(lines[-1])), lines[-2]


HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "alembic", "cryptography", "httpx", "jinja2")


def test_help_loads_no_command_module_and_no_heavy_dependency() -> None:
    """``learnprivacy --help`` lists every command without importing any of them."""
    modules, text = _help_modules("--help")
    assert packages_in(modules, HEAVY) == set()
    assert not {m for m in modules if m.startswith("learnprivacy.cli._") and "store" in m}
    assert "learnprivacy.cli._requests" not in modules
    assert "learnprivacy.store" not in modules
    assert "rich.markdown" not in modules
    for name, entry in COMMANDS.items():
        assert name in text
        assert " ".join(entry.help.split()[:3]) in " ".join(text.split())


def test_a_command_loads_its_module_when_it_runs() -> None:
    """Attack on laziness going too far: ``audit --help`` really imports the command."""
    modules, text = _help_modules("audit", "--help")
    assert "learnprivacy.cli._store_commands" in modules
    assert "verify" in text


def test_the_table_summaries_are_the_commands_own() -> None:
    """Each summary in the lazy table equals the loaded command's summary."""
    for name, entry in COMMANDS.items():
        assert entry.help == short_help(entry.load()), name


def test_every_registered_command_is_in_the_table() -> None:
    """Every command the modules register is in the table (a new one cannot be forgotten)."""
    from learnprivacy.cli._register_commands import register_register_commands
    from learnprivacy.cli._store_commands import register_store_commands

    group = click.Group("all")
    register_store_commands(group)
    register_register_commands(group)
    names = set(group.commands) | {"demo", "keys", "migrate-encrypt", "requests"}
    assert names == set(COMMANDS)


def test_walking_commands_loads_them_all() -> None:
    """Code that walks ``main.commands`` (docs, completion) sees real commands."""
    assert set(main.commands) == set(COMMANDS)
    assert all(isinstance(c, click.Command) for c in main.commands.values())
    assert "requests" in main.commands
    assert main.commands.get("nope") is None


def test_a_wrong_summary_is_what_help_would_show() -> None:
    """Attack: the table is what ``--help`` prints, so a stale summary would be visible."""
    from learnprivacy.cli._app import LazyCommand

    group = LearnPrivacyGroup(
        "g", lazy={"audit": LazyCommand("learnprivacy.cli._store_commands:audit", "Stale.")}
    )
    ctx = click.Context(group, info_name="g")
    assert "Stale." in group.get_help(ctx)
    with pytest.raises(AssertionError):
        assert group.lazy["audit"].help == short_help(group.lazy["audit"].load())


def test_import_store_loads_no_orm_validation_or_migration_library() -> None:
    """``import learnprivacy.store`` loads SQLAlchemy Core only: no ORM, SQLModel,
    pydantic or Alembic (Alembic loads when a migration runs)."""
    modules = modules_after("import learnprivacy.store")
    assert "sqlalchemy" in modules
    assert packages_in(modules, ("sqlmodel", "pydantic", "pydantic_core", "alembic")) == set()
    assert not {m for m in modules if m.startswith("sqlalchemy.orm")}


def test_import_store_defers_dialects_and_the_retention_engine() -> None:
    """``import learnprivacy.store`` loads no SQL dialect (the engine that connects loads
    its own), nor the retention engine, sweep or erasure code (loaded with the first
    sweep or erasure): together a third of its start-up."""
    modules = modules_after("import learnprivacy.store")
    assert not {m for m in modules if m.startswith("sqlalchemy.dialects.")}
    deferred = {
        "learnprivacy.retention",
        "learnprivacy.store._sweep",
        "learnprivacy.store._erasure",
    }
    assert not deferred & modules


def test_a_key_database_keeps_one_active_key_per_scope_with_the_deferred_index() -> None:
    """Attack on the deferral: the partial unique index is still created, so a second
    active key for the same reference and scope is refused by the database."""

    from learnprivacy.keys import KeyDatabase

    _check_one_active_key_per_scope(
        KeyDatabase("sqlite://"),
        "SELECT sql FROM sqlite_master WHERE name = 'uq_lpk_keys_active'",
        "INSERT INTO lpk_keys VALUES ('k1_x', ?, 'contract', ?, 'm', x'00')",
        "WHERE state = 'active'",
    )


def _check_one_active_key_per_scope(keys: Any, index_query: str, row: str, *says: str) -> None:
    """The partial unique index that ``index_query`` reads back exists and holds each of
    ``says``; the database takes a retired key beside the active one but refuses a second
    active key for the same reference and scope (``row`` inserts a key: its placeholders
    are the reference and the state). Closes ``keys``."""
    import sqlalchemy as sa

    with keys._db.engine.begin() as connection:
        found = connection.exec_driver_sql(index_query).scalar()
        assert found is not None
        for part in says:
            assert part in found
        connection.exec_driver_sql(row, ("a", "active"))
        connection.exec_driver_sql(row, ("b", "retired"))
        with pytest.raises(sa.exc.IntegrityError):
            connection.exec_driver_sql(row, ("c", "active"))
    keys.close()


def test_opening_a_store_stays_without_the_orm(tmp_path: Any) -> None:
    """Attack: a store created, written and read back still loads no ORM or SQLModel."""
    code = (
        "import datetime as dt\n"
        "from learnprivacy.crypto import Keyring\n"
        "from learnprivacy.records import Learner\n"
        "from learnprivacy.store import Store\n"
        f"store = Store('sqlite:///{tmp_path}/s.db', keyring=Keyring.generate())\n"
        "t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)\n"
        "store.add(Learner(id='L1', username='u', email='a@example.org', given_name='A',"
        " family_name='B', created_at=t))\n"
        "assert store.get(Learner, 'L1').given_name == 'A'\n"
        "assert store.audit.verify()\n"
        "store.close()\n"
    )
    modules = modules_after(code)
    assert packages_in(modules, ("sqlmodel", "pydantic", "pydantic_core")) == set()
    assert not {m for m in modules if m.startswith("sqlalchemy.orm")}


def test_a_sqlite_key_database_loads_no_postgresql_dialect() -> None:
    """Opening a SQLite key database loads SQLite's dialect only (the partial index's
    PostgreSQL option cost a fresh process about 40 ms of its first open)."""
    modules = modules_after(
        "from learnprivacy.keys import KeyDatabase; KeyDatabase('sqlite://').close()"
    )
    assert "sqlalchemy.dialects.sqlite" in modules
    assert not {m for m in modules if m.startswith("sqlalchemy.dialects.postgresql")}


@pytest.mark.slow
def test_a_postgresql_key_database_opened_after_a_sqlite_one_has_the_partial_index(
    postgres_server: Any,
) -> None:
    """Attack on opening dialects one by one: a process that opened a SQLite key
    database first still gives a PostgreSQL one the partial unique index (a plain
    unique index there would refuse a retired key beside the active one)."""

    from learnprivacy.keys import KeyDatabase

    KeyDatabase("sqlite://").close()
    _check_one_active_key_per_scope(
        KeyDatabase(postgres_server.create_database()),
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_lpk_keys_active'",
        "INSERT INTO lpk_keys VALUES ('k1_x', %s, 'contract', %s, 'm', '\\x00')",
        "WHERE",
        "active",
    )
