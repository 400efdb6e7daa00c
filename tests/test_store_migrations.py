"""The schema is versioned with Alembic: created on first use, upgraded without data loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from learnprivacy.crypto import Keyring
from learnprivacy.errors import RestrictedRecordError
from learnprivacy.records import Learner, Progress
from learnprivacy.store import Store, _migrate
from learnprivacy.store._migrate import head_revision
from learnprivacy.store._schema import METADATA
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    by_key,
    keys_for,
    learner,
    records_for,
    sqlite_plans,
    sqlite_statements,
)

_empty_params = pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)


def _open(url: str) -> Store:
    """The store at ``url`` under the test master key, with its own key database."""
    return Store(url, keys=keys_for(url), keyring=Keyring.from_master_key(MASTER_KEY))


def _indexes(engine: sa.Engine, table: str) -> dict[str, list[str]]:
    """The indexes of ``table``: their columns by name."""
    with engine.connect() as connection:
        return {i["name"]: i["column_names"] for i in sa.inspect(connection).get_indexes(table)}


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _downgraded(
    url: str, revision: str, change: Callable[[Store, list[Any]], object] | None = None
) -> tuple[list[Any], sa.Engine]:
    """L1's records written by the newest store (then ``change`` made on the open store),
    the store closed and its schema taken back to ``revision``: the records written and
    an engine on the database."""
    store = _open(url)
    records = [learner("L1"), *records_for("L1")]
    store.add_all(records)
    if change is not None:
        change(store, records)
    store.close()
    engine = _engine(url)
    with engine.begin() as connection:
        _migrate.downgrade(connection, revision)
    return records, engine


@_empty_params
def test_first_open_creates_the_newest_schema(empty_url: str) -> None:
    """Opening an empty database migrates it to the head revision and records it in lp_meta."""
    store = _open(empty_url)
    store.close()
    engine = _engine(empty_url)
    with engine.connect() as connection:
        assert _migrate.current_revision(connection) == head_revision()
        version = connection.execute(
            sa.text("SELECT value FROM lp_meta WHERE key = 'schema_version'")
        ).scalar_one()
        assert version == head_revision().lstrip("0")
    engine.dispose()


@_empty_params
def test_migrations_match_the_table_definitions(empty_url: str) -> None:
    """The migrated schema is exactly what the code declares (no drift between the two)."""
    _open(empty_url).close()
    engine = _engine(empty_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, METADATA)
    engine.dispose()
    managed = _managed_tables()
    assert [d for d in diffs if _table_of(d) in managed] == []


def _managed_tables() -> set[str]:
    from learnprivacy.records._base import record_type
    from learnprivacy.store._schema import BUILTIN_TYPES, table_name

    fixed = {"lp_meta", "lp_keys", "lp_key_tombstones", "lp_audit", "lp_audit_head"}
    return fixed | {table_name(record_type(n)) for n in BUILTIN_TYPES}


def _table_of(diff: Any) -> str | None:
    """The table a compare_metadata difference is about."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return _table_of(diff[0])
    kind, *rest = diff
    if kind in ("add_table", "remove_table"):
        return str(rest[0].name)
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return str(rest[0].table.name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(rest[1])
    return None


def _schema(connection: sa.Connection) -> dict[str, Any]:
    """Every table's columns, primary key and indexes, and the recorded schema version."""
    inspector = sa.inspect(connection)
    tables = {
        name: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
            inspector.get_pk_constraint(name),
            sorted(
                (i["name"], i["column_names"], i["unique"]) for i in inspector.get_indexes(name)
            ),
        )
        for name in inspector.get_table_names()
    }
    if "lp_meta" in tables:
        tables["version"] = connection.execute(sa.text("SELECT value FROM lp_meta")).scalar_one()
    if connection.dialect.name == "postgresql":
        tables["sequences"] = sorted(inspector.get_sequence_names())
    return tables


@_empty_params
def test_each_downgrade_gives_back_the_schema_of_the_revision_below(empty_url: str) -> None:
    """Walking the revisions up one at a time and back down, each revision's schema is
    the same both ways: every downgrade undoes exactly what its upgrade did."""
    revisions = ["0001", "0002", "0003", "0004", "0005", "0006", "0007"]
    engine = _engine(empty_url)
    upward = {}
    for revision in revisions:
        with engine.begin() as connection:
            _migrate.upgrade(connection, revision)
        with engine.connect() as connection:
            upward[revision] = _schema(connection)
            assert upward[revision]["version"] == revision.lstrip("0")
    assert revisions[-1] == head_revision()
    for revision in reversed(revisions[:-1]):
        with engine.begin() as connection:
            _migrate.downgrade(connection, revision)
        with engine.connect() as connection:
            assert _schema(connection) == upward[revision]
    engine.dispose()


@_empty_params
def test_upgrade_from_the_previous_revision_keeps_data(empty_url: str) -> None:
    """Data written at revision N-1 reads back, intact, after the store upgrades to N."""
    records, engine = _downgraded(
        empty_url,
        "0001",
        lambda store, _: store.restrict(Progress, "L1-P1", reason="accuracy contested", now=NOW),
    )
    with engine.connect() as connection:
        assert _migrate.current_revision(connection) == "0001"
        columns = {c["name"] for c in sa.inspect(connection).get_columns("lp_progress")}
        assert "lp_restriction_reason" not in columns
        assert connection.execute(sa.text("SELECT count(*) FROM lp_learner")).scalar_one() == 1
    engine.dispose()
    reopened = _open(empty_url)
    assert by_key(reopened.records_of("L1", include_restricted=True)) == by_key(records)
    with pytest.raises(RestrictedRecordError):  # the restriction itself survived
        reopened.get(Progress, "L1-P1")
    assert reopened.find_learner(email=records[0].email) == records[0]
    assert reopened.audit.verify()
    reopened.add(learner("L2"))
    assert reopened.get(Learner, "L2") == learner("L2")
    reopened.close()


_LMS_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


def _versions(connection: sa.Connection, table: str) -> set[str] | None:
    """The revisions in ``table``, or None when there is no such table."""
    if table not in sa.inspect(connection).get_table_names():
        return None
    return set(connection.execute(sa.text(f"SELECT version_num FROM {table}")).scalars())


@_empty_params
@pytest.mark.parametrize("lms_revision", ["ae1027a6acf", "0001"])
def test_an_lms_alembic_version_table_is_left_untouched(empty_url: str, lms_revision: str) -> None:
    """The store keeps its revision in its own table: an LMS's alembic_version (even one
    whose revision id looks like the store's) is neither read nor changed, and the store
    is created and reopened next to it."""
    engine = _engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text(_LMS_TABLE))
        connection.execute(
            sa.text("INSERT INTO alembic_version VALUES (:rev)"), {"rev": lms_revision}
        )
    for _ in range(2):
        store = _open(empty_url)
        store.add(learner(f"L{_}"))
        store.close()
    with engine.connect() as connection:
        assert _versions(connection, "alembic_version") == {lms_revision}
        assert _versions(connection, _migrate.VERSION_TABLE) == {head_revision()}
        assert MigrationContext.configure(connection).get_current_revision() == lms_revision
    engine.dispose()


@_empty_params
@pytest.mark.parametrize("lms_row", [False, True])
def test_a_store_with_the_legacy_version_table_moves_its_row(empty_url: str, lms_row: bool) -> None:
    """A store created when the store used alembic_version: on opening, its revision moves
    to the store's own table and the upgrade continues from there, data kept. The legacy
    table is dropped once empty; an LMS's row in it stays."""
    records, engine = _downgraded(empty_url, "0002")
    with engine.begin() as connection:
        # What a store created by an older version looks like.
        connection.execute(sa.text(f"DROP TABLE {_migrate.VERSION_TABLE}"))
        connection.execute(sa.text(_LMS_TABLE))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('0002')"))
        if lms_row:
            connection.execute(sa.text("INSERT INTO alembic_version VALUES ('lms42')"))
    reopened = _open(empty_url)
    with engine.connect() as connection:
        assert _versions(connection, _migrate.VERSION_TABLE) == {head_revision()}
        assert _versions(connection, "alembic_version") == ({"lms42"} if lms_row else None)
        names = {i["name"] for i in sa.inspect(connection).get_indexes("lp_progress")}
        assert "ix_lp_progress_learner_id_id" in names
    engine.dispose()
    assert by_key(reopened.records_of("L1")) == by_key(records)
    assert reopened.audit.verify()
    reopened.close()


def test_unknown_schema_version_is_refused(tmp_path: Any) -> None:
    """Store tables without a version table and with a schema version this library does
    not know: ConfigurationError, and the database is left as it was."""
    from learnprivacy.errors import ConfigurationError

    url = f"sqlite:///{tmp_path / 'future.db'}"
    _open(url).close()
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {_migrate.VERSION_TABLE}"))
        connection.execute(sa.text("UPDATE lp_meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(ConfigurationError):
        _open(url)
    with engine.connect() as connection:
        assert _versions(connection, _migrate.VERSION_TABLE) is None
    engine.dispose()


def test_migration_scripts_ship_in_the_package() -> None:
    """The migration scripts are package files, found without any alembic.ini."""
    from importlib.resources import files

    versions = files("learnprivacy.store") / "migrations" / "versions"
    names = sorted(p.name for p in versions.iterdir() if p.name.endswith(".py"))
    assert "0001_initial.py" in names
    assert head_revision() == "0007"


def test_the_known_head_is_the_newest_script() -> None:
    """The head revision known without Alembic is the newest script Alembic finds: a new
    migration that forgets to move HEAD_REVISION fails here, not in users' stores."""
    assert _migrate.script_head() == _migrate.HEAD_REVISION


def test_opening_an_up_to_date_store_loads_no_alembic(tmp_path: Any) -> None:
    """Alembic is imported only when a migration runs: importing the store and opening a
    store already at the head revision leave it unloaded (start-up time)."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'lms.db'}"
    Store(url, keyring=Keyring.from_master_key(MASTER_KEY)).close()
    probe = (
        "import sys\n"
        "from learnprivacy.crypto import Keyring\n"
        "from learnprivacy.store import Store\n"
        "assert 'alembic' not in sys.modules, 'import'\n"
        f"Store({url!r}, keyring=Keyring.from_master_key({MASTER_KEY!r})).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


@_empty_params
def test_upgrade_to_0003_replaces_the_learner_indexes(empty_url: str) -> None:
    """A store at revision 0002 gets (learner_id, id) indexes in place of (learner_id) ones,
    and pages through a learner's records afterwards."""
    records, engine = _downgraded(empty_url, "0002")
    names = _indexes(engine, "lp_progress")
    assert "ix_lp_progress_learner_id" in names
    assert "ix_lp_progress_learner_id_id" not in names
    reopened = _open(empty_url)
    indexes = _indexes(engine, "lp_progress")
    engine.dispose()
    assert indexes["ix_lp_progress_learner_id_id"] == ["learner_id", "id"]
    assert "ix_lp_progress_learner_id" not in indexes
    assert list(reopened.iter_records_of("L1")) == reopened.records_of("L1")
    assert by_key(reopened.records_of("L1")) == by_key(records)
    reopened.close()


def test_user_defined_record_types_get_a_table(tmp_path: Any, badge_type: Any) -> None:
    """A registered record class outside the built-ins gets its own table on first use."""
    store = Store(f"sqlite:///{tmp_path / 'badge.db'}", keyring=Keyring.generate())
    store.add(learner("L1"))
    badge = badge_type(id="B1", learner_id="L1", title="Secret Title", earned_at=NOW)
    store.add(badge)
    assert store.get(badge_type, "B1") == badge
    assert badge in store.records_of("L1")
    store.erase_subject("L1", now=NOW)
    assert store.get(badge_type, "B1") is None
    store.close()


def test_tables_of_user_defined_types_get_indexes_added_since(
    tmp_path: Any, badge_type: Any
) -> None:
    """A user-defined type's table created by an older version (learner index on one
    column) gets the (learner_id, id) index when a store opens; its rows are kept."""
    badge = badge_type(id="B1", learner_id="L1", title="Gold", earned_at=NOW)
    url = f"sqlite:///{tmp_path / 'badge.db'}"
    store = _open(url)
    store.add_all([learner("L1"), badge])
    store.close()
    engine = _engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_lp_badge_learner_id_id")
        connection.exec_driver_sql("CREATE INDEX ix_lp_badge_learner_id ON lp_badge (learner_id)")
    reopened = _open(url)
    indexes = _indexes(engine, "lp_badge")
    engine.dispose()
    assert indexes["ix_lp_badge_learner_id_id"] == ["learner_id", "id"]
    assert list(reopened.iter_records_of("L1", record_types=[badge_type])) == [badge]
    reopened.close()


@_empty_params
def test_upgrade_to_0005_indexes_when_rows_were_anonymised(empty_url: str) -> None:
    """A store at revision 0004 gets an ``lp_anonymised_at`` index on every record table,
    keeps its anonymised rows, and its re-check of them still reads them all."""
    progress: list[Any] = []

    def anonymise(store: Store, records: list[Any]) -> None:
        progress.extend(r for r in records if isinstance(r, Progress))
        assert store.anonymise_records(progress, now=NOW) == len(progress)

    _, engine = _downgraded(empty_url, "0004", anonymise)
    with engine.connect() as connection:
        names = {i["name"] for i in sa.inspect(connection).get_indexes("lp_progress")}
        assert "ix_lp_progress_lp_anonymised_at" not in names
    reopened = _open(empty_url)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for name in _migrate_record_tables():
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(name)}
            assert indexes[f"ix_{name}_lp_anonymised_at"] == ["lp_anonymised_at"], name
    engine.dispose()
    assert reopened.verify_anonymised(progress, since=NOW) == len(progress)
    reopened.close()


def _migrate_record_tables() -> list[str]:
    from learnprivacy.records._base import record_type
    from learnprivacy.store._schema import BUILTIN_TYPES, table_name

    return sorted(table_name(record_type(n)) for n in BUILTIN_TYPES)


def test_the_anonymisation_recheck_reads_the_index_not_the_table(tmp_path: Any) -> None:
    """The re-check after an anonymisation (``verify_anonymised(since=...)``) selects
    through the ``lp_anonymised_at`` index: SQLite's plan of every statement it runs
    names the index and never scans a record table whole."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=Keyring.generate())
    records = [learner("L1"), *records_for("L1"), learner("L2"), *records_for("L2")]
    store.add_all(records)
    progress = [r for r in records if isinstance(r, Progress) and r.learner_id == "L1"]
    store.anonymise_records(progress, now=NOW)
    # The re-check runs its statement on the driver's cursor: what SQLite itself runs.
    with sqlite_statements(store, "SELECT") as seen:
        assert store.verify_anonymised(progress, since=NOW) == len(progress)
    statements = [s for s in seen if "lp_anonymised_at" in s]
    assert statements
    for plan in sqlite_plans(store, statements).values():
        assert "ix_lp_progress_lp_anonymised_at" in plan, plan
        assert "SCAN lp_progress" not in plan, plan
    store.close()
