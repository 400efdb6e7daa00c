"""add_all writes rows built straight in the driver's form (tuples in column order).

``Codec.insert_values`` replaces a column dict per record converted afterwards: these
tests check that what it writes is exactly what SQLAlchemy's own ``insert()`` of the
record's dict would store, for every built-in type on SQLite and PostgreSQL, and attack
the rows it writes (tokens swapped between columns or rows, a batch failing half-way).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from learnprivacy import records as rec
from learnprivacy.errors import DecryptionError, IntegrityError, ValidationError
from learnprivacy.store import Store
from learnprivacy.store._bulk import insert_plan
from learnprivacy.store._codec import _score_out, _to_text, column_value
from learnprivacy.store._schema import Kind
from tests.store_fixtures import copy_token, learner, records_for


def _reference(connection: Any, codec: Any, record: Any) -> dict[str, Any]:
    """The column values SQLAlchemy's own ``insert()`` binds for ``record``, worked out
    field by field without the codec's row building: each clear value's column form
    through its column type's bind processor, the blind index of each indexed value,
    ``None`` for tokens (they are checked by opening them) and for unset columns."""
    dialect = connection.dialect
    values: dict[str, Any] = {}
    for spec in codec.rt.fields:
        value = getattr(record, spec.name)
        if spec.encrypted:
            if spec.blind_index and value is not None:
                values[spec.index_column] = codec.blind_index(spec.name, _to_text(spec)(value))
        elif spec.kind is Kind.SCORE:
            if value is not None:
                values.update(zip(spec.columns, _score_out(value), strict=True))
        else:
            values[spec.name] = column_value(spec, value)
    for column in codec.rt.table.columns:
        value = values.get(column.name)
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        values[column.name] = value if value is None or process is None else process(value)
    return values


def _stored(connection: Any, table: Any, record_id: str) -> tuple[Any, ...]:
    """The row of ``record_id`` as the driver returns it, SQLAlchemy's processing left out."""
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    quoted = connection.dialect.identifier_preparer.format_table(table)
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    found = connection.exec_driver_sql(
        f"SELECT {names} FROM {quoted} WHERE id = {mark}",
        (record_id,),
    ).one()
    return tuple(found)


def test_rows_built_for_the_driver_are_what_sqlalchemy_would_store(store: Store) -> None:
    """Every clear column and blind index equals SQLAlchemy's binding of the record's
    values; every token opens to its field's value; the stored row is the built one."""
    records = [learner("L1"), *records_for("L1")]
    store.add_all(records)
    cipher = store.cipher
    with store._db.write() as connection:
        for record in records:
            codec = store._codec(type(record))
            table = codec.rt.table
            plan = insert_plan(connection, table)
            assert plan is not None
            build = codec.insert_values(connection.dialect.name, *plan)
            assert build is not None
            built = build(record)
            reference = _reference(connection, codec, record)
            wanted = tuple(reference[c.name] for c in table.columns)
            stored = _stored(connection, table, record.id)
            subject = getattr(record, "learner_id", record.id)
            tokens = {
                spec.token_column: f"{codec.rt.name}/{record.id}/{spec.name}"
                for spec in codec.rt.fields
                if spec.encrypted
            }
            assert len(built) == len(wanted) == len(stored) == len(table.columns)
            for column, mine, theirs, kept in zip(
                table.columns, built, wanted, stored, strict=True
            ):
                context = tokens.get(column.name)
                if context is None:
                    assert mine == theirs, column.name
                    assert kept == mine, column.name
                    continue
                # Each token has its own nonce: the value opens from both, at its place.
                value = getattr(record, column.name.removesuffix("_token"))
                if value is None:
                    assert mine is None, column.name
                    assert kept is None, column.name
                    continue
                spec = next(f for f in codec.rt.fields if f.name == column.name[:-6])
                for token in (mine, kept):
                    opened = cipher.decrypt(token, subject=subject, context=context)
                    assert opened == _to_text(spec)(value), column.name


def test_a_dialect_converting_tokens_keeps_the_column_dicts(store: Store) -> None:
    """A plan converting a token or blind index column gets no builder (to_row is used)."""
    codec = store._codec(rec.Learner)
    names = [c.name for c in codec.rt.table.columns]
    converters: list[Any] = [str if name == "email_bidx" else None for name in names]
    assert codec.insert_values("other-dialect", names, converters) is None
    plain: list[Any] = [None] * len(names)
    assert codec.insert_values("plain-dialect", names, plain) is not None


def test_tokens_swapped_between_columns_of_a_built_row_do_not_open(store: Store) -> None:
    """A token the builder wrote for one field, moved to another field of the same row,
    fails: each token is bound to its field and record."""
    store.add_all([learner("L1"), learner("L2")])
    copy_token(store, "L1", "L1", column="username_token", target_column="email_token")
    with pytest.raises(DecryptionError):
        store.get(rec.Learner, "L1")
    assert store.get(rec.Learner, "L2") == learner("L2")


def test_a_token_moved_to_another_row_of_the_same_batch_does_not_open(store: Store) -> None:
    store.add_all([learner("L1"), learner("L2")])
    copy_token(store, "L1", "L2", column="given_name_token")
    with pytest.raises(DecryptionError):
        store.get(rec.Learner, "L2")


def test_a_batch_failing_half_way_leaves_nothing_of_the_earlier_batches(store: Store) -> None:
    """Rows built for several batches go in one transaction: a duplicate id in the last
    batch leaves none of the earlier batches' rows, and nothing is reported added."""
    store.add(learner("L9"))
    store.batch_size = 3
    records = [learner(f"L{i}") for i in range(7)] + [learner("L9")]
    with pytest.raises(IntegrityError):
        store.add_all(records)
    with store._db.read() as connection:
        ids = connection.execute(select(store._table(rec.Learner).table.c.id)).scalars().all()
        added = connection.execute(
            text("SELECT count(*) FROM lp_audit WHERE action = 'add'")
        ).scalar_one()
    assert ids == ["L9"]
    assert added == 1
    assert store.get(rec.Learner, "L9") == learner("L9")


@pytest.mark.parametrize("intruder", [object(), rec.Learner, {"id": "L3"}])
def test_anything_but_a_record_in_a_batch_is_refused_and_nothing_is_added(
    store: Store, intruder: Any
) -> None:
    """Classes are checked once per batch: an object of another class (a record class
    itself, a dict) anywhere in the batch stops it before anything is written."""
    with pytest.raises(ValidationError):
        store.add_all([learner("L1"), intruder, learner("L2")])
    assert store.count(rec.Learner) == 0


def test_a_batch_of_new_keys_is_stored_in_key_order(sqlite_store: Store) -> None:
    """New keys go into the key table sorted by (reference, key id), whatever the order
    of the learners: consecutive rows share the key indexes' pages. Every key is there."""
    written = [learner(f"L{i:03d}") for i in range(60)][::-1]
    sqlite_store.add_all(written)
    with sqlite_store._key_db._db.read() as connection:
        rows = connection.exec_driver_sql(
            "SELECT subject_ref, key_id FROM lpk_keys ORDER BY rowid"
        ).all()
    refs = {sqlite_store.keyring.key_ref(r.id) for r in written}
    mine = [tuple(row) for row in rows if row[0] in refs]
    assert len(mine) == len(written)
    assert mine == sorted(mine)
    assert [r.id for r in sqlite_store.query(rec.Learner)] == sorted(r.id for r in written)
