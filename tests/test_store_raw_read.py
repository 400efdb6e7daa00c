"""Reads take their rows from the driver's cursor, not from SQLAlchemy ``Row`` objects.

The store's codec applies each column's SQLAlchemy result processor itself, in the pass
that builds the record. These tests check that the records are the very ones the
SQLAlchemy path builds, for every built-in record type and column kind, on SQLite and
PostgreSQL, and that a clear column tampered with in SQL still fails the read the way
it fails through SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from sqlalchemy import Row, select, text, update

from learnprivacy import records as rec
from learnprivacy.crypto import _token
from learnprivacy.errors import ValidationError
from learnprivacy.store import Store
from learnprivacy.store._reads import fetch
from tests.store_fixtures import learner, records_for


def _both_ways(store: Store, cls: type[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """The records of ``cls`` read through SQLAlchemy rows and through :func:`fetch`,
    and the raw rows ``fetch`` read."""
    codec = store._codec(cls)
    table = store._table(cls).table
    query = select(table).order_by(table.c.id)
    with store._reading() as connection:
        rows = connection.execute(query).all()
        processed = [codec.from_row(row) for row in rows]
        raw, read = fetch(connection, codec, query)
        direct = [read(row, None) for row in raw]
    return processed, direct, list(raw)


def test_driver_rows_read_as_sqlalchemy_rows_do(store: Store) -> None:
    """Every built-in type (timestamps, durations, decimals, scores, enums, flags):
    the records read from the cursor equal those read through SQLAlchemy, and equal
    what was written."""
    written = [learner("L1", organisation_id="ORG1"), *records_for("L1")]
    written += [learner("L2"), *records_for("L2")]
    store.add_all(written)
    for cls in {type(r) for r in written}:
        processed, direct, raw = _both_ways(store, cls)
        assert raw
        assert not isinstance(raw[0], Row)
        assert direct == processed
        assert [type(getattr(r, f)) for r in direct for f in attrs_names(r)] == [
            type(getattr(r, f)) for r in processed for f in attrs_names(r)
        ]
        assert sorted(direct, key=lambda r: r.id) == sorted(
            (r for r in written if type(r) is cls), key=lambda r: r.id
        )
    assert store.query(rec.Learner) == [r for r in written if type(r) is rec.Learner]


def attrs_names(record: Any) -> list[str]:
    """The field names of an attrs record."""
    return [a.name for a in attrs.fields(type(record))]


def test_a_description_that_is_not_the_tables_is_read_through_sqlalchemy(store: Store) -> None:
    store.add_all([learner("L1")])
    codec = store._codec(rec.Learner)
    table = store._table(rec.Learner).table
    with store._reading() as connection:
        cursor = connection.execute(select(table)).cursor
        assert cursor is not None
        description = cursor.description
        assert codec.raw_reader(connection.dialect, description) is not None
        assert codec.raw_reader(connection.dialect, description[:-1]) is None


def _error(call: Any) -> type[BaseException] | None:
    """The type of the exception ``call()`` raises, or ``None``."""
    try:
        call()
    except Exception as error:
        return type(error)
    return None


def _tamper_sql(store: Store, sql: str) -> None:
    with store._db.write() as connection:
        connection.execute(text(sql))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("organisation_id", "ORG\x01"),
        ("organisation_id", " "),
        ("basis", "not-a-basis"),
    ],
)
def test_a_tampered_clear_column_fails_both_ways(store: Store, column: str, value: str) -> None:
    """A clear column set in SQL to a value the record refuses fails the read from the
    cursor with the error the SQLAlchemy path raises, and the store's reads refuse it."""
    store.add_all([learner("L1"), learner("L2")])
    table = store._table(rec.Learner).table
    with store._db.write() as connection:
        connection.execute(update(table).where(table.c.id == "L2").values({column: value}))
    errors = [_error(lambda way=way: _both_ways_one(store, way)) for way in range(2)]
    assert errors[0] is not None
    assert errors[0] is errors[1]
    with pytest.raises(errors[0]):
        store.query(rec.Learner)
    assert store.get(rec.Learner, "L1") == learner("L1")


def _both_ways_one(store: Store, way: int) -> list[Any]:
    codec = store._codec(rec.Learner)
    table = store._table(rec.Learner).table
    query = select(table).order_by(table.c.id)
    with store._reading() as connection:
        if way == 0:
            return [codec.from_row(row) for row in connection.execute(query).all()]
        raw, read = fetch(connection, codec, query)
        return [read(row, None) for row in raw]


def test_a_tampered_timestamp_on_sqlite_fails_both_ways(store: Store) -> None:
    """SQLite keeps timestamps as text: garbage written there is refused by SQLAlchemy's
    own parser on both paths, never read as some other time. Read from the cursor (the
    store's reads), the parser's error, which quotes the text, becomes ValidationError
    naming the field (see test_store_read_build)."""
    if not store._db.is_sqlite:
        pytest.skip("PostgreSQL types its timestamp columns")
    store.add_all([learner("L1")])
    _tamper_sql(store, "UPDATE lp_learner SET created_at = 'yesterday' WHERE id = 'L1'")
    errors = [_error(lambda way=way: _both_ways_one(store, way)) for way in range(2)]
    assert errors[0] is not None
    assert issubclass(errors[0], ValueError)
    assert errors[1] is ValidationError


def test_a_tampered_decimal_on_sqlite_fails_both_ways(store: Store) -> None:
    if not store._db.is_sqlite:
        pytest.skip("PostgreSQL types its numeric columns")
    written = [learner("L1"), *records_for("L1")]
    store.add_all(written)
    _tamper_sql(store, "UPDATE lp_invoice SET amount = '12,5'")
    codec = store._codec(rec.Invoice)
    table = store._table(rec.Invoice).table
    with store._reading() as connection:
        through = _error(
            lambda: [codec.from_row(row) for row in connection.execute(select(table)).all()]
        )
        raw, read = fetch(connection, codec, select(table))
        direct = _error(lambda: [read(row, None) for row in raw])
    assert through is not None
    # From the cursor, the parser's error becomes ValidationError naming the field.
    assert direct is ValidationError


@pytest.mark.parametrize("value", ["\\N", "back\\slash", "quote'\"", "comma,semi;colon", "ü€😀"])
def test_clear_text_that_bulk_loading_could_misread_comes_back_as_written(
    store: Store, value: str
) -> None:
    """PostgreSQL ingest streams rows through COPY's text format, where ``\\N`` means
    NULL and a backslash escapes: such text in a clear column (and the wrapped keys'
    bytes) must come back exactly, on both engines."""
    written = [learner("L1", organisation_id=value), learner("L2", organisation_id=None)]
    store.add_all(written)
    assert store.query(rec.Learner) == written
    assert store.query(rec.Learner, organisation_id=value) == written[:1]


def test_a_pages_openers_are_those_the_one_token_path_makes(store: Store) -> None:
    """The openers a read builds for a page (associated data and headers computed inline)
    are the ones ``Keyring._opener`` makes token by token: same header, same associated
    data prefix, and they open the stored tokens. Were they wrong, every token would take
    the slow path and this test, not the results, would tell."""
    store.add_all([learner("L1"), learner("L2")])
    keyring = store.keyring
    cipher = store._cipher
    openers = keyring._openers_of_subjects(keyring._key_refs(["L1", "L2"]))
    table = store._table(rec.Learner).table
    with store._reading() as connection:
        rows = connection.execute(select(table.c.id, table.c.email_token)).all()
    assert len(rows) == 2
    for subject, token in rows:
        assert len(openers[subject]) == 1
        head = _token.decode(token)[: _token.HEADER_SIZE]
        made = keyring._opener(subject, head)
        page = openers[subject][token[: _token.HEADER_TEXT_SIZE]]
        assert page[1:] == made[1:]
        context = f"Learner/{subject}/email"
        assert page[0].decrypt is not made[0].decrypt
        assert cipher._decrypt_with(openers[subject], [token], subject, [context]) == [
            learner(subject).email
        ]


def test_reads_across_many_small_unwrapping_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read a few at a time after their keys are unwrapped, in slices whose
    keys are fetched together: with tiny slices, a learner's records spread over several
    of them still read back whole (the openers kept, or dropped and made again)."""
    from learnprivacy.store import _reads

    monkeypatch.setattr(_reads, "OPEN_PAGE", 2)
    monkeypatch.setattr(_reads, "KEY_PAGE", 5)
    people = [learner(f"L{i}") for i in range(7)]
    written = people + [r for p in people for r in records_for(p.id)]
    store.add_all(written)
    assert store.query(rec.Learner) == people
    for cls in {type(r) for r in written}:
        expected = sorted((r for r in written if type(r) is cls), key=lambda r: r.id)
        assert store.query(cls) == expected
    mine = store.records_of("L3")
    assert mine[0] == people[3]
    assert sorted(mine, key=_by_type) == sorted(
        (r for r in written if r.id.startswith("L3")), key=_by_type
    )


def _by_type(record: Any) -> tuple[str, str]:
    return type(record).__name__, record.id
