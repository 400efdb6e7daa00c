"""Encrypting existing plaintext columns in place: resumable, with progress, verified.

An application adopting the integration has tables whose personal columns still hold
plaintext. :func:`migrate_encrypt` turns them into tokens, batch by batch, each batch
one transaction: a value that already is a token is left alone, so a run killed half-way
is simply run again and continues where it stopped. A token whose blind index is
missing (a column indexed after its values were encrypted) gets its index in the same
way. At the end every personal value of the table is read back and decrypted under its
row's binding, and every blind index is compared with the one its decrypted value gives;
the report says ``verified`` only when all of them hold. Blind-index columns must exist
first (an Alembic migration adds them; see docs/howto-integrate.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    String,
    func,
    inspect,
    literal,
    select,
    update,
)

from learnprivacy._inplace import INDEX_SUFFIX, ColumnSpec, ModelSpec, is_token
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.errors import ConfigurationError, CryptoError, IntegrityError
from learnprivacy.sqlalchemy._rowkeys import key_after, key_columns, key_is

if TYPE_CHECKING:
    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["EncryptionReport", "migrate_encrypt"]

#: ``progress(table, rows_done, rows_total)``, called after each committed batch.
Progress = Callable[[str, int, int], None]


@attrs.frozen(kw_only=True)
class EncryptionReport:
    """What :func:`migrate_encrypt` did to one table.

    ``encrypted`` counts the values turned into tokens by this run, ``rows`` the rows of
    the table, ``reindexed`` the blind indexes this run wrote for values that already
    were tokens (missing ones; wrong ones too with ``repair_indexes``), ``verified`` is
    true once every personal value was decrypted back and every blind index matched.
    """

    table: str
    rows: int
    encrypted: int
    batches: int
    verified: bool
    reindexed: int = 0


def migrate_encrypt(
    privacy: LearnPrivacy,
    engine: Engine,
    models: Any = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    repair_indexes: bool = False,
) -> list[EncryptionReport]:
    """Encrypt the plaintext personal values of the declared tables in ``engine``'s database.

    ``models``: one model class, several, or ``None`` for every declared model. A token
    whose blind index is empty gets it; with ``repair_indexes``, a blind index that does
    not match its value is rewritten too (without it, the verification reports it: an
    index changed behind the application's back is not silently put right). Raises
    :class:`~learnprivacy.errors.ConfigurationError` when a blind-index column is missing
    and :class:`~learnprivacy.errors.IntegrityError` when verification finds a value
    that does not decrypt or a blind index that does not match its value (the message
    names the table, the column and how many, never a value).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError("batch_size must be a positive int")
    if models is None:
        specs = list(privacy.specs)
    elif isinstance(models, type):
        specs = [privacy.spec(models)]
    else:
        specs = [privacy.spec(m) for m in models]
    with engine.begin() as connection:
        privacy.side.ensure(connection)
    return [
        _encrypt_table(privacy, engine, spec, batch_size, progress, bool(repair_indexes))
        for spec in specs
        if spec.personal
    ]


def _encrypt_table(
    privacy: LearnPrivacy,
    engine: Engine,
    spec: ModelSpec,
    batch_size: int,
    progress: Progress | None,
    repair_indexes: bool,
) -> EncryptionReport:
    table = spec.model.__table__
    # The table in its own schema, not a namesake the search path finds first.
    present = {c["name"] for c in inspect(engine).get_columns(table.name, schema=table.schema)}
    for column in spec.indexed:
        name = column.column + INDEX_SUFFIX
        if name not in present:
            raise ConfigurationError(
                f"{spec.table}.{name} does not exist yet: add the blind-index column "
                "(Alembic: op.add_column) before encrypting"
            )
    width = len(spec.key_columns)
    ends = width + 1 + len(spec.personal)
    subject_column = table.c[spec.subject_column]
    columns = _read_columns(spec)
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
    rows = privacy.rows
    done = encrypted = reindexed = batches = 0
    last: Any = None
    while True:
        with engine.begin() as connection:
            page = _page_after(connection, spec, columns, last, batch_size)
            if not page:
                break
            last = _key(spec, page[-1])
            for row in page:
                key, subject = _key(spec, row), row[width]
                values: dict[str, Any] = {}
                # What the row held when read: the write happens only if it still does.
                held = [subject_column == subject]
                indexes = _stored_indexes(spec, row)
                row_reindexed = 0
                for column, value in zip(spec.personal, row[width + 1 : ends], strict=True):
                    if value is None or is_token(value):
                        stored = indexes.get(column.column)
                        if stored is not None and not repair_indexes:
                            # Checked by the verification (which reports a wrong one),
                            # rewritten only when asked.
                            continue
                        index = _index_to_write(privacy, spec, column, key, subject, value)
                        if index == stored or (index is None and value is not None):
                            continue
                        index_column = table.c[column.column + INDEX_SUFFIX]
                        values[index_column.name] = index
                        value_column = table.c[column.column]
                        held.append(
                            value_column.is_(None)
                            if value is None
                            else _as_read(value_column, value)
                        )
                        held.append(
                            index_column.is_(None) if stored is None else index_column == stored
                        )
                        row_reindexed += 1
                        continue
                    if subject is None:
                        raise ConfigurationError(
                            f"{spec.table}.{spec.subject_column}: a row with personal values "
                            "has no subject; it cannot be encrypted"
                        )
                    values[column.column] = rows.encrypt(spec, column, key, str(subject), value)
                    held.append(_as_read(table.c[column.column], value))
                    if column.privacy.blind_index:
                        values[column.column + INDEX_SUFFIX] = rows.index(spec, column, value)
                if values:
                    # A value another writer changed since the read (a rectification in
                    # clear during a rolling upgrade, an anonymisation) is not overwritten
                    # with the token of the old one: left as it is, the verification
                    # reports it and the next run encrypts it.
                    written = connection.execute(
                        update(table).where(key_is(spec, key), *held).values(values)
                    ).rowcount
                    if written:
                        encrypted += len([k for k in values if not k.endswith(INDEX_SUFFIX)])
                        reindexed += row_reindexed
            batches += 1
            done += len(page)
        if progress is not None:
            progress(spec.table, done, total)
    _verify(privacy, engine, spec, batch_size)
    return EncryptionReport(
        table=spec.table,
        rows=total,
        encrypted=encrypted,
        batches=batches,
        verified=True,
        reindexed=reindexed,
    )


def _read_columns(spec: ModelSpec) -> list[Any]:
    """What a pass reads of each row: its key, its subject, its personal values, then
    the blind indexes of the indexed ones."""
    table = spec.model.__table__
    return (
        [*key_columns(spec), table.c[spec.subject_column]]
        + [table.c[c.column] for c in spec.personal]
        + [table.c[c.column + INDEX_SUFFIX] for c in spec.indexed]
    )


def _stored_indexes(spec: ModelSpec, row: Sequence[Any]) -> dict[str, Any]:
    """The blind indexes a row read with :func:`_read_columns` holds, by value column."""
    start = len(spec.key_columns) + 1 + len(spec.personal)
    return {c.column: index for c, index in zip(spec.indexed, row[start:], strict=True)}


def _index_to_write(
    privacy: LearnPrivacy,
    spec: ModelSpec,
    column: ColumnSpec,
    key: Any,
    subject: Any,
    token: str | None,
) -> str | None:
    """The blind index of the value of ``token``; ``None`` when there is no value, the
    column is not indexed or the token does not open (the verification reports it)."""
    if token is None or not column.privacy.blind_index or subject is None:
        return None
    try:
        return privacy.rows.index(
            spec, column, privacy.rows.decrypt(spec, column, key, str(subject), token)
        )
    except CryptoError:
        return None


def _key(spec: ModelSpec, row: Sequence[Any]) -> Any:
    """The key of a row whose first columns are the key's."""
    return tuple(row[: len(spec.key_columns)]) if spec.composite else row[0]


def _as_read(column: Any, value: Any) -> Any:
    """``column`` still holds plaintext ``value`` (compared as stored: the column's own
    type refuses plaintext)."""
    return column == literal(value, LargeBinary() if isinstance(value, bytes) else String())


def _page_after(
    connection: Connection, spec: ModelSpec, columns: Sequence[Any], last: Any, size: int
) -> Sequence[Any]:
    """The next ``size`` rows in key order after key ``last`` (from the first if ``None``)."""
    query = select(*columns).order_by(*key_columns(spec)).limit(size)
    if last is not None:
        query = query.where(key_after(spec, last))
    return connection.execute(query).all()


def _verify(privacy: LearnPrivacy, engine: Engine, spec: ModelSpec, batch_size: int) -> None:
    """Decrypt every personal value of the table under its binding and recompute its
    blind index; raise on any failure."""
    width = len(spec.key_columns)
    ends = width + 1 + len(spec.personal)
    columns = _read_columns(spec)
    failures: dict[str, int] = {}
    wrong: dict[str, int] = {}
    last: Any = None
    with engine.connect() as connection:
        while True:
            page = _page_after(connection, spec, columns, last, batch_size)
            if not page:
                break
            last = _key(spec, page[-1])
            for row in page:
                key, subject = _key(spec, row), str(row[width])
                indexes = _stored_indexes(spec, row)
                for column, value in zip(spec.personal, row[width + 1 : ends], strict=True):
                    expected = None
                    if value is not None:
                        try:
                            clear = privacy.rows.decrypt(spec, column, key, subject, value)
                        except CryptoError:
                            failures[column.column] = failures.get(column.column, 0) + 1
                            continue
                        if column.privacy.blind_index:
                            expected = privacy.rows.index(spec, column, clear)
                    if column.privacy.blind_index and indexes[column.column] != expected:
                        name = column.column + INDEX_SUFFIX
                        wrong[name] = wrong.get(name, 0) + 1
    problems = []
    if failures:
        detail = ", ".join(f"{spec.table}.{c}: {n}" for c, n in sorted(failures.items()))
        problems.append(f"values that do not decrypt: {detail}")
    if wrong:
        detail = ", ".join(f"{spec.table}.{c}: {n}" for c, n in sorted(wrong.items()))
        problems.append(f"blind indexes that do not match their values: {detail}")
    if problems:
        raise IntegrityError(f"verification failed, {'; '.join(problems)}")
