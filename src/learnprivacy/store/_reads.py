"""Reading records back: decrypted, typed, restricted and anonymised rows left out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, func, select

from learnprivacy.crypto._blind_index import normalise_text
from learnprivacy.crypto._token import Opener
from learnprivacy.errors import ValidationError
from learnprivacy.store._bulk import cursor_rows
from learnprivacy.store._codec import Codec, RowReader, column_value
from learnprivacy.store._common import collector_paused, visible
from learnprivacy.store._schema import ANONYMISED, FieldSpec, Kind, RecordTable

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = [
    "anonymised",
    "count",
    "decode_rows",
    "fetch",
    "find",
    "iter_records_of",
    "records_of",
    "select_records",
    "subjects",
]

R = TypeVar("R")

#: Rows per page of :func:`iter_records_of`. The first page is small: a caller that only
#: asks whether a learner holds any record decrypts a few rows, not a thousand.
FIRST_PAGE = 100
PAGE = 1_000
#: Rows whose keys :func:`decode_rows` fetches together.
KEY_PAGE = 5_000
#: Rows whose keys :func:`decode_rows` unwraps together, just before reading them.
OPEN_PAGE = 250


def decode_rows(
    store: Store,
    codec: Codec,
    rows: Sequence[Sequence[Any]],
    read: RowReader | None = None,
) -> list[Any]:
    """Records of ``rows`` (inside :meth:`Store.reading`), fetching their keys at once.

    ``read``: how a row becomes a record (:meth:`Codec.raw_reader` for rows fetched
    with :func:`fetch`), by default :meth:`Codec.from_row` (rows SQLAlchemy processed).

    Rows go in slices of :data:`KEY_PAGE`: the wrapped keys of a slice's learners are
    fetched in one query, then unwrapped :data:`OPEN_PAGE` rows at a time, just before
    those rows are read, so that each key's AES-GCM object is used while it is still in
    the CPU's caches. The openers made are kept for the following rows (a learner's
    records are spread over a slice) until more than :data:`OPEN_PAGE` learners' are held,
    then dropped, so a read of many learners neither holds every key at once nor churns
    the keyring's cache. The garbage collector is paused for each slice (see
    ``collector_paused``).
    """
    if not rows:
        return []
    at = codec.position(codec.rt.subject_column)
    keyring = store.keyring
    from_row = codec.from_row if read is None else read
    records: list[Any] = []
    for start in range(0, len(rows), KEY_PAGE):
        page = rows[start : start + KEY_PAGE]
        with collector_paused():
            live = keyring._live_keys(keyring._key_refs({row[at] for row in page}))
            openers: dict[str, dict[str, Opener]] = {}
            for first in range(0, len(page), OPEN_PAGE):
                part = page[first : first + OPEN_PAGE]
                if len(openers) > OPEN_PAGE:
                    openers = {}
                keyring._open_keys(live, {row[at] for row in part}, openers)
                records.extend([from_row(row, openers) for row in part])
            del live, openers
    return records


def fetch(
    connection: Connection, codec: Codec, query: Select[Any]
) -> tuple[Sequence[Sequence[Any]], RowReader]:
    """The rows of ``query`` (a ``select`` of the codec's whole table) and how to read them.

    SQLAlchemy runs the statement (its compiled cache, its parameter processing); the rows
    are taken from the driver's cursor and read by :meth:`Codec.raw_reader`, which applies
    the same result processors in the same pass that builds the records, without a
    ``Row`` per row. Rows it cannot read that way are fetched through SQLAlchemy.
    """
    result = connection.execute(query)
    read = codec.raw_reader(connection.dialect, result.cursor.description)
    if read is None:
        return result.all(), codec.from_row
    return cursor_rows(result), read


def _matching(
    store: Store,
    cls: type[R],
    values: Mapping[str, Any],
    condition: Callable[[RecordTable, FieldSpec | None, str, Any], ColumnElement[bool]],
    *,
    limit: int | None = None,
    include_restricted: bool,
) -> list[R]:
    """Visible records of ``cls`` meeting ``condition`` for each of ``values``, by id.

    ``condition`` turns one (field, value) pair into a SQL condition, or raises
    ``ValidationError`` for a field it cannot match on.
    """
    rt = store._table(cls)
    table = rt.table
    specs = {f.name: f for f in rt.fields}
    conditions = visible(table, include_restricted=include_restricted)
    conditions.extend(condition(rt, specs.get(name), name, value) for name, value in values.items())
    query = select(table).where(*conditions).order_by(table.c.id)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError("limit must be a non-negative int", field="limit")
        query = query.limit(limit)
    codec = store._codec(cls)
    with store._reading() as connection:
        rows, read = fetch(connection, codec, query)
        return decode_rows(store, codec, rows, read)


def _equals(rt: RecordTable, spec: FieldSpec | None, name: str, value: Any) -> ColumnElement[bool]:
    """``name`` equals ``value`` in SQL: clear, single-column fields only."""
    if spec is None:
        raise ValidationError(f"{rt.name} has no field {name}", field=f"{rt.name}.{name}")
    if spec.encrypted or spec.kind is Kind.SCORE:
        raise ValidationError(
            f"{rt.name}.{name} cannot be filtered on in SQL (encrypted or composite); "
            "use find() for blind-indexed fields",
            field=f"{rt.name}.{name}",
        )
    column = rt.table.c[name]
    if value is None:
        return column.is_(None)
    condition: ColumnElement[bool] = column == column_value(spec, value)
    return condition


def select_records(
    store: Store,
    cls: type[R],
    filters: Mapping[str, Any],
    *,
    limit: int | None,
    include_restricted: bool,
) -> list[R]:
    """Records of ``cls`` whose clear fields equal ``filters``, ordered by id."""
    return _matching(
        store, cls, filters, _equals, limit=limit, include_restricted=include_restricted
    )


def records_of(store: Store, learner_id: str, *, include_restricted: bool) -> list[Any]:
    """Every record of ``learner_id``, the learner's own first, then by type and id."""
    out: list[Any] = []
    with store._reading() as connection:
        for rt in store._record_tables():
            table = rt.table
            query = (
                select(table)
                .where(
                    table.c[rt.subject_column] == learner_id,
                    *visible(table, include_restricted=include_restricted),
                )
                .order_by(table.c.id)
            )
            codec = store._codec(rt.cls)
            rows, read = fetch(connection, codec, query)
            out.extend(decode_rows(store, codec, rows, read))
    return out


def iter_records_of(
    store: Store,
    learner_id: str,
    *,
    include_restricted: bool,
    record_types: Iterable[type[Any] | str] | None,
) -> Iterator[Any]:
    """Every record of ``learner_id``, in :func:`records_of`'s order, a page at a time.

    The arguments are checked here, before the first page is read.
    """
    if not isinstance(learner_id, str) or not learner_id:
        raise ValidationError("learner_id must be a non-empty str", field="learner_id")
    tables = store._record_tables()
    if record_types is not None:
        if isinstance(record_types, str | type):
            raise ValidationError(
                "record_types must be a collection of record types", field="record_types"
            )
        wanted = {store._table(t).name for t in record_types}
        tables = [rt for rt in tables if rt.name in wanted]
    return _pages(store, tables, learner_id, include_restricted)


def _pages(
    store: Store, tables: list[RecordTable], learner_id: str, include_restricted: bool
) -> Iterator[Any]:
    # Keyset pagination: each page is one short read transaction (rows, their keys and
    # their decryption), over before the page is handed out. No transaction, connection
    # or snapshot is held while the caller works on the records: a slow consumer neither
    # keeps SQLite's write-ahead log from being checkpointed after an erasure nor pins a
    # PostgreSQL snapshot, and an abandoned iterator holds nothing. The (learner_id, id)
    # index makes each page a range scan. Records added or erased between two pages are
    # seen by the later pages, as any reader after that commit would see them.
    for rt in tables:
        table = rt.table
        codec = store._codec(rt.cls)
        at_id = codec.position("id")
        base = select(table).where(
            table.c[rt.subject_column] == learner_id,
            *visible(table, include_restricted=include_restricted),
        )
        last: str | None = None
        size = FIRST_PAGE
        while True:
            query = base if last is None else base.where(table.c.id > last)
            with store._reading() as connection:
                rows, read = fetch(connection, codec, query.order_by(table.c.id).limit(size))
                page = decode_rows(store, codec, rows, read)
            if not rows:
                break
            last = rows[-1][at_id]
            full = len(rows) == size
            del rows
            yield from page
            # Dropped before the next page is read: at most one page is alive at a time.
            del page
            if not full:
                break
            size = PAGE


def find(
    store: Store, cls: type[R], values: Mapping[str, str], *, include_restricted: bool
) -> list[R]:
    """Records whose blind-indexed fields match ``values`` (then checked after decrypting)."""
    codec = store._codec(cls)

    def indexed(
        rt: RecordTable, spec: FieldSpec | None, name: str, value: Any
    ) -> ColumnElement[bool]:
        if spec is None or not spec.blind_index:
            raise ValidationError(f"{rt.name}.{name} has no blind index", field=f"{rt.name}.{name}")
        if not isinstance(value, str):
            raise ValidationError(f"{rt.name}.{name} lookups take text", field=f"{rt.name}.{name}")
        return rt.table.c[spec.index_column] == codec.blind_index(name, value)

    found = _matching(store, cls, values, indexed, include_restricted=include_restricted)
    # A truncated index can collide: keep only true matches.
    return [
        r
        for r in found
        if all(normalise_text(str(getattr(r, k))) == normalise_text(v) for k, v in values.items())
    ]


def subjects(store: Store, course_id: str | None, *, include_restricted: bool) -> list[str]:
    """Learner ids with data (with records in ``course_id`` when given)."""
    found: set[str] = set()
    with store._reading() as connection:
        for rt in store._record_tables():
            table = rt.table
            names = {f.name: f for f in rt.fields}
            conditions = visible(table, include_restricted=include_restricted)
            if course_id is not None:
                spec = names.get("course_id")
                if spec is None or spec.encrypted:
                    continue
                conditions.append(table.c.course_id == course_id)
            column = table.c[rt.subject_column]
            found.update(connection.execute(select(column).where(*conditions).distinct()).scalars())
    return sorted(found)


def count(store: Store, cls: type[Any], include_restricted: bool, only_anonymised: bool) -> int:
    """How many rows of ``cls``."""
    table = store._table(cls).table
    conditions: list[ColumnElement[bool]]
    if only_anonymised:
        conditions = [table.c[ANONYMISED].isnot(None)]
    else:
        conditions = visible(table, include_restricted=include_restricted)
    with store._reading() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(table).where(*conditions)
            ).scalar_one()
        )


def anonymised(store: Store, cls: type[Any]) -> Iterator[dict[str, Any]]:
    """Non-personal fields of the anonymised rows of ``cls``, streamed, with the random
    person id that stands for the learner (``learner_id``, or ``id`` for accounts)."""
    codec = store._codec(cls)
    rt = codec.rt
    table = rt.table
    query = select(table).where(table.c[ANONYMISED].isnot(None)).order_by(table.c.id)
    with store._db.engine.connect() as connection:
        for row in _stream(connection, query):
            facts = codec.facts(row)
            facts[rt.subject_column] = row._mapping[rt.subject_column]
            yield facts


def _stream(connection: Connection, query: Any) -> Iterator[Any]:
    result = connection.execution_options(yield_per=1_000).execute(query)
    yield from result
