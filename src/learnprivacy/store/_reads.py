"""Reading records back: decrypted, typed, restricted and anonymised rows left out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Connection, func, select

from learnprivacy.crypto import normalise_text
from learnprivacy.errors import ValidationError
from learnprivacy.store._codec import Codec, column_value
from learnprivacy.store._common import visible
from learnprivacy.store._schema import ANONYMISED, Kind

if TYPE_CHECKING:
    from learnprivacy.store._store import Store

__all__ = ["anonymised", "count", "decode_rows", "find", "records_of", "select_records", "subjects"]

R = TypeVar("R")


def decode_rows(store: Store, codec: Codec, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Records of ``rows`` (inside :meth:`Store.reading`), fetching their keys at once."""
    if not rows:
        return []
    at = codec.position(codec.rt.subject_column)
    with store.key_store.batch({row[at] for row in rows}):
        return [codec.from_row(row) for row in rows]


def select_records(
    store: Store,
    cls: type[R],
    filters: Mapping[str, Any],
    *,
    limit: int | None,
    include_restricted: bool,
) -> list[R]:
    """Records of ``cls`` whose clear fields equal ``filters``, ordered by id."""
    rt = store.table(cls)
    table = rt.table
    specs = {f.name: f for f in rt.fields}
    conditions = visible(table, include_restricted=include_restricted)
    for name, value in filters.items():
        spec = specs.get(name)
        if spec is None:
            raise ValidationError(f"{rt.name} has no field {name}", field=f"{rt.name}.{name}")
        if spec.encrypted or spec.kind is Kind.SCORE:
            raise ValidationError(
                f"{rt.name}.{name} cannot be filtered on in SQL (encrypted or composite); "
                "use find() for blind-indexed fields",
                field=f"{rt.name}.{name}",
            )
        column = table.c[name]
        if value is None:
            conditions.append(column.is_(None))
        else:
            conditions.append(column == column_value(spec, value))
    query = select(table).where(*conditions).order_by(table.c.id)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError("limit must be a non-negative int", field="limit")
        query = query.limit(limit)
    with store.reading() as connection:
        rows = connection.execute(query).all()
        return decode_rows(store, store.codec(cls), rows)


def records_of(store: Store, learner_id: str, *, include_restricted: bool) -> list[Any]:
    """Every record of ``learner_id``, the learner's own first, then by type and id."""
    out: list[Any] = []
    with store.reading() as connection:
        for rt in store.tables():
            table = rt.table
            query = (
                select(table)
                .where(
                    table.c[rt.subject_column] == learner_id,
                    *visible(table, include_restricted=include_restricted),
                )
                .order_by(table.c.id)
            )
            rows = connection.execute(query).all()
            out.extend(decode_rows(store, store.codec(rt.cls), rows))
    return out


def find(
    store: Store, cls: type[R], values: Mapping[str, str], *, include_restricted: bool
) -> list[R]:
    """Records whose blind-indexed fields match ``values`` (then checked after decrypting)."""
    rt = store.table(cls)
    codec = store.codec(cls)
    table = rt.table
    specs = {f.name: f for f in rt.fields}
    conditions = visible(table, include_restricted=include_restricted)
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None or not spec.blind_index:
            raise ValidationError(f"{rt.name}.{name} has no blind index", field=f"{rt.name}.{name}")
        if not isinstance(value, str):
            raise ValidationError(f"{rt.name}.{name} lookups take text", field=f"{rt.name}.{name}")
        conditions.append(table.c[spec.index_column] == codec.blind_index(name, value))
    with store.reading() as connection:
        rows = connection.execute(select(table).where(*conditions).order_by(table.c.id)).all()
        found = decode_rows(store, codec, rows)
    # A truncated index can collide: keep only true matches.
    return [
        r
        for r in found
        if all(normalise_text(str(getattr(r, k))) == normalise_text(v) for k, v in values.items())
    ]


def subjects(store: Store, course_id: str | None, *, include_restricted: bool) -> list[str]:
    """Learner ids with data (with records in ``course_id`` when given)."""
    found: set[str] = set()
    with store.reading() as connection:
        for rt in store.tables():
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
    table = store.table(cls).table
    conditions: list[ColumnElement[bool]]
    if only_anonymised:
        conditions = [table.c[ANONYMISED].isnot(None)]
    else:
        conditions = visible(table, include_restricted=include_restricted)
    with store.reading() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(table).where(*conditions)
            ).scalar_one()
        )


def anonymised(store: Store, cls: type[Any]) -> Iterator[dict[str, Any]]:
    """Non-personal fields of the anonymised rows of ``cls``, streamed."""
    codec = store.codec(cls)
    table = codec.rt.table
    query = select(table).where(table.c[ANONYMISED].isnot(None)).order_by(table.c.id)
    with store.database.engine.connect() as connection:
        for row in _stream(connection, query):
            yield codec.facts(row)


def _stream(connection: Connection, query: Any) -> Iterator[Any]:
    result = connection.execution_options(yield_per=1_000).execute(query)
    yield from result
