"""Copying a store to another database (SQLite to PostgreSQL, typically), then verifying it.

Every table is copied as it is: record rows with their tokens, the wrapped keys and
tombstones, the audit log and its sealed head, and ``lp_meta`` with the store id. Tokens
are bound to their learner, record and field, never to the database, and the keys stay
wrapped under the same master key, so nothing is decrypted or re-encrypted on the way:
the copy is the same store in another database, whose audit references, blind indexes,
pseudonyms and erasure replays keep working.

The target must be empty of learnprivacy tables. Its schema and every row are written in
one transaction, so a copy that fails leaves it as it was. The source is read in one
transaction too (a snapshot), in batches, so memory stays flat whatever its size.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Connection, Table, delete, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from learnprivacy.crypto import Keyring
from learnprivacy.errors import AuditTampered, ConfigurationError, IntegrityError, ValidationError
from learnprivacy.store._bulk import bulk_insert
from learnprivacy.store._engine import Database
from learnprivacy.store._epochs import Vault
from learnprivacy.store._keydb import KeyDatabase, default_keys_url
from learnprivacy.store._migrate import VERSION_TABLE
from learnprivacy.store._open import migrate
from learnprivacy.store._schema import ANONYMISED, RecordTable
from learnprivacy.store._store import Store
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD, KEY_OUTBOX, META

__all__ = ["CopyReport", "copy_store"]

#: The store's own tables, in the order they are copied (record tables come after).
_OWN_TABLES = (META, KEY_OUTBOX, AUDIT, AUDIT_HEAD)


@attrs.frozen(kw_only=True)
class CopyReport:
    """What :func:`copy_store` copied and checked; no URL (it may hold a password).

    ``tables`` maps each table to its number of rows, the same in the source snapshot and
    in the target. ``audit_entries`` is the length of the audit log, verified on the
    target. ``sampled`` counts the records read back from the target, decrypted and
    compared with the source's.
    """

    store_id: str
    source: str
    target: str
    tables: Mapping[str, int]
    audit_entries: int
    sampled: int

    @property
    def rows(self) -> int:
        """How many rows were copied in all."""
        return sum(self.tables.values())


def copy_store(
    source_url: str,
    target_url: str,
    *,
    keyring: Keyring,
    keys: str | KeyDatabase | None = None,
    vault: Vault | str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    samples: int = 100,
) -> CopyReport:
    """Copy the store at ``source_url`` into the empty database at ``target_url``.

    For moving from SQLite to PostgreSQL (``docs/howto-move-to-postgres.md``)::

        copy_store("sqlite:///lms.db", "postgresql+psycopg://lms@db/lms", keyring=keyring)

    The wrapped keys are not copied: they stay in the source's key database, ``keys``
    (default: the SQLite source's sibling ``.keys.db``), which the copy uses too. Move
    or back up the key database on its own (``learnprivacy keys backup``). ``vault`` is
    the source's vault (as ``Store(..., vault=)``; default: the key database's), which
    the copy shares with it.

    ``keyring`` holds the source's master key (the target uses the same one). Rows are
    read and written ``batch_size`` at a time, in one transaction on each side. Stop the
    writers first: what they write after the copy started is not copied.

    Afterwards the copy is checked, and :class:`CopyReport` returned only if every check
    passes: the target is opened as a store with ``keyring`` (the same store id, the
    master key check), its audit chain verifies, every table holds as many rows as the
    source snapshot did, and up to ``samples`` records per record type, picked at random,
    decrypt on the target to records equal to the source's.

    Raises:
        ConfigurationError: a URL is not a database URL, is an in-memory database, the
            source holds no store (or a table of a record type this process does not
            know), or the target already holds learnprivacy tables. Nothing is written.
        WrongMasterKeyError: ``keyring`` is not the source's master key.
        AuditTampered: the source's audit log does not verify; nothing is written.
        IntegrityError: writing to the target failed (it is left as it was), or the
            copy does not verify (the target then holds the copy: drop it).
    """
    if not isinstance(keyring, Keyring):
        raise ConfigurationError("copy_store needs keyring=Keyring(...)")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValidationError("batch_size must be a positive int", field="batch_size")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ValidationError("samples must be a non-negative int", field="samples")
    source_file = _check_url(source_url, "source_url")
    target_file = _check_url(target_url, "target_url")
    if source_file is not None and not source_file.is_file():
        raise ConfigurationError("the source database file does not exist")
    _check_source(source_url)
    if isinstance(keys, KeyDatabase):
        key_db, owned_keys = keys, False
    else:
        key_db = KeyDatabase(default_keys_url(source_url) if keys is None else keys)
        owned_keys = True
    # A SQLite target that does not exist yet is created by the first connection: if the
    # copy fails before committing, the empty file is removed again.
    created = target_file is not None and not target_file.exists()
    committed = False
    try:
        with _database(target_url) as target_db:
            with target_db.read() as connection:
                _refuse_non_empty(connection)
            with Store(source_url, keyring=keyring, keys=key_db, vault=vault) as source:
                source.audit.verify()
                rows = source.batch_size if batch_size is None else batch_size
                counts, picked = _copy(source, target_db, rows, samples)
                committed = True
                sampled = _verify(source, target_url, keyring, key_db, vault, counts, picked)
                audit_entries = len(source.audit)
                dialects = source._db.engine.dialect.name, target_db.engine.dialect.name
                store_id = source.store_id
    except BaseException:
        if created and not committed and target_file is not None:
            _remove_sqlite(target_file)
        raise
    finally:
        if owned_keys:
            key_db.close()
    return CopyReport(
        store_id=store_id,
        source=dialects[0],
        target=dialects[1],
        tables=counts,
        audit_entries=audit_entries,
        sampled=sampled,
    )


# -- checks before anything is written ------------------------------------------------


def _check_url(url: object, field: str) -> Path | None:
    """Check ``url``; return the file of a SQLite URL, ``None`` for other databases."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{field} must be a database URL")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"{field} is not a database URL") from None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(f"{field} is an in-memory SQLite database: use a file")
    return Path(parsed.database)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def _database(url: str) -> Iterator[Database]:
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


def _refuse_non_empty(connection: Connection) -> None:
    names = inspect(connection).get_table_names()
    # An LMS's own tables (its Alembic's alembic_version among them) may share the
    # database; only the store's tables and its version table make a target non-empty.
    if any(name.startswith("lp_") or name == VERSION_TABLE for name in names):
        raise ConfigurationError(
            "the target database already holds learnprivacy tables: copy into an empty "
            "database (drop and create it again)"
        )


def _check_source(url: str) -> None:
    with _database(url) as db, db.read() as connection:
        if META.name not in inspect(connection).get_table_names():
            raise ConfigurationError("the source database holds no learnprivacy store")


def _tables(source: Store, connection: Connection) -> list[tuple[Table, RecordTable | None]]:
    record_tables = source._record_tables()
    known = {table.name for table in _OWN_TABLES} | {rt.table.name for rt in record_tables}
    for name in sorted(inspect(connection).get_table_names()):
        if name.startswith("lp_") and name not in known:
            raise ConfigurationError(
                f"the source holds table {name} of a record type this process does not "
                "know: import (register) its record class before copying"
            )
    own: list[tuple[Table, RecordTable | None]] = [(table, None) for table in _OWN_TABLES]
    return own + [(rt.table, rt) for rt in record_tables]


# -- the copy ---------------------------------------------------------------------------


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """A read transaction that sees one state of the whole source."""
    with db.engine.connect() as connection:
        if db.is_postgres:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


class _Sample:
    """Up to ``size`` rows of a stream, each equally likely (reservoir sampling)."""

    __slots__ = ("_random", "rows", "seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0
        self.rows: list[Sequence[Any]] = []
        # Which rows are checked need not be secret, only spread over the table.
        self._random = random.Random(os.urandom(16))  # noqa: S311 - sampling, not security

    def offer(self, row: Sequence[Any]) -> None:
        self.seen += 1
        if len(self.rows) < self.size:
            self.rows.append(row)
        else:
            slot = self._random.randrange(self.seen)
            if slot < self.size:
                self.rows[slot] = row


def _copy(
    source: Store, target_db: Database, batch_size: int, samples: int
) -> tuple[dict[str, int], list[tuple[RecordTable, Sequence[Any]]]]:
    counts: dict[str, int] = {}
    picked: list[tuple[RecordTable, Sequence[Any]]] = []
    with _snapshot(source._db) as reader, target_db.write() as writer:
        # Checked again inside the write transaction, which on SQLite holds the lock
        # and on PostgreSQL is serialised with other openers by migrate()'s lock.
        _refuse_non_empty(writer)
        migrate(target_db, writer)
        # migrate() gave the new schema a store id of its own: the source's replaces it.
        writer.execute(delete(META))
        for table, rt in _tables(source, reader):
            expected = reader.execute(select(func.count()).select_from(table)).scalar_one()
            sample = _Sample(samples) if rt is not None else None
            copied = _copy_table(reader, writer, table, batch_size, sample)
            if copied != expected:
                raise IntegrityError(f"table {table.name}: {copied} rows read of {expected}")
            counts[table.name] = copied
            if rt is not None and sample is not None:
                picked.extend((rt, row) for row in sample.rows)
    return counts, picked


def _copy_table(
    reader: Connection,
    writer: Connection,
    table: Table,
    batch_size: int,
    sample: _Sample | None,
) -> int:
    query = select(table).order_by(*table.primary_key.columns)
    result = reader.execution_options(yield_per=batch_size).execute(query)
    anonymised = list(table.columns).index(table.c[ANONYMISED]) if sample is not None else -1
    copied = 0
    for rows in result.partitions():
        try:
            bulk_insert(writer, table, [dict(row._mapping) for row in rows])
        except DBAPIError as exc:
            # The driver's message quotes the rows' values: name the table and the
            # error class only.
            raise IntegrityError(
                f"copying table {table.name} failed on the target: {type(exc.orig).__name__}"
            ) from None
        if sample is not None:
            for row in rows:
                # Anonymised rows are out of normal reads and have nothing to decrypt.
                if row[anonymised] is None:
                    sample.offer(tuple(row))
        copied += len(rows)
    return copied


# -- verification -------------------------------------------------------------------------


def _outcome(read: Callable[[], Any]) -> tuple[str, Any]:
    """A read's result, or the class of the error it raised (shredded keys raise alike)."""
    try:
        return "value", read()
    except Exception as exc:
        return "error", type(exc).__name__


def _verify(
    source: Store,
    target_url: str,
    keyring: Keyring,
    key_db: KeyDatabase,
    vault: Vault | str | os.PathLike[str] | None,
    counts: Mapping[str, int],
    picked: Sequence[tuple[RecordTable, Sequence[Any]]],
) -> int:
    # Opening the copy as a store checks its master key and binds its audit keys, which
    # derive from the copied blind-index key and store id.
    with Store(target_url, keyring=keyring, keys=key_db, vault=vault) as target:
        if target.store_id != source.store_id:
            raise IntegrityError("the copy has another store id than the source")
        try:
            target.audit.verify()
        except AuditTampered as exc:
            raise IntegrityError("the copy's audit log does not verify") from exc
        tables = {table.name: table for table in _OWN_TABLES}
        tables.update((rt.table.name, rt.table) for rt in target._record_tables())
        with target._db.read() as connection:
            for name, expected in counts.items():
                found = connection.execute(select(func.count()).select_from(tables[name]))
                if found.scalar_one() != expected:
                    raise IntegrityError(f"table {name}: the copy holds another number of rows")
        for rt, row in picked:
            record_id = row[list(rt.table.columns).index(rt.table.c.id)]
            expected_record = _outcome(partial(source._codec(rt.cls).from_row, row))
            copied_record = _outcome(
                partial(target.get, rt.cls, record_id, include_restricted=True)
            )
            if copied_record != expected_record:
                raise IntegrityError(
                    f"a {rt.name} record of the copy does not decrypt to the source's"
                )
    return len(picked)
