"""Encrypting existing plaintext columns in place: resumable, with progress, verified.

An application adopting the integration has tables whose personal columns still hold
plaintext. :func:`migrate_encrypt` turns them into tokens, batch by batch, each batch
one transaction: a value that already is a token is left alone, so a run killed half-way
is simply run again and continues where it stopped. At the end every personal value of
the table is read back and decrypted under its row's binding; the report says
``verified`` only when every one of them opened. Blind-index columns must exist first
(an Alembic migration adds them; see docs/howto-integrate.md).
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

from learnprivacy._inplace import INDEX_SUFFIX, ModelSpec, is_token
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
    the table, ``verified`` is true once every personal value was decrypted back.
    """

    table: str
    rows: int
    encrypted: int
    batches: int
    verified: bool


def migrate_encrypt(
    privacy: LearnPrivacy,
    engine: Engine,
    models: Any = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[EncryptionReport]:
    """Encrypt the plaintext personal values of the declared tables in ``engine``'s database.

    ``models``: one model class, several, or ``None`` for every declared model. Raises
    :class:`~learnprivacy.errors.ConfigurationError` when a blind-index column is missing
    and :class:`~learnprivacy.errors.IntegrityError` when verification finds a value
    that does not decrypt (the message names the table, the column and how many).
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
        _encrypt_table(privacy, engine, spec, batch_size, progress)
        for spec in specs
        if spec.personal
    ]


def _encrypt_table(
    privacy: LearnPrivacy,
    engine: Engine,
    spec: ModelSpec,
    batch_size: int,
    progress: Progress | None,
) -> EncryptionReport:
    table = spec.model.__table__
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for column in spec.indexed:
        name = column.column + INDEX_SUFFIX
        if name not in present:
            raise ConfigurationError(
                f"{table.name}.{name} does not exist yet: add the blind-index column "
                "(Alembic: op.add_column) before encrypting"
            )
    width = len(spec.key_columns)
    subject_column = table.c[spec.subject_column]
    columns = [*key_columns(spec), subject_column] + [table.c[c.column] for c in spec.personal]
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
    rows = privacy.rows
    done = encrypted = batches = 0
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
                for column, value in zip(spec.personal, row[width + 1 :], strict=True):
                    if value is None or is_token(value):
                        continue
                    if subject is None:
                        raise ConfigurationError(
                            f"{table.name}.{spec.subject_column}: a row with personal values "
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
            batches += 1
            done += len(page)
        if progress is not None:
            progress(table.name, done, total)
    _verify(privacy, engine, spec, batch_size)
    return EncryptionReport(
        table=table.name, rows=total, encrypted=encrypted, batches=batches, verified=True
    )


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
    """Decrypt every personal value of the table under its binding; raise on any failure."""
    table = spec.model.__table__
    width = len(spec.key_columns)
    columns = [*key_columns(spec), table.c[spec.subject_column]] + [
        table.c[c.column] for c in spec.personal
    ]
    failures: dict[str, int] = {}
    last: Any = None
    with engine.connect() as connection:
        while True:
            page = _page_after(connection, spec, columns, last, batch_size)
            if not page:
                break
            last = _key(spec, page[-1])
            for row in page:
                key, subject = _key(spec, row), str(row[width])
                for column, value in zip(spec.personal, row[width + 1 :], strict=True):
                    if value is None:
                        continue
                    try:
                        privacy.rows.decrypt(spec, column, key, subject, value)
                    except CryptoError:
                        failures[column.column] = failures.get(column.column, 0) + 1
    if failures:
        detail = ", ".join(f"{table.name}.{c}: {n}" for c, n in sorted(failures.items()))
        raise IntegrityError(f"verification failed, values that do not decrypt: {detail}")
