"""Records read back are built without re-running the validators of decrypted fields.

AES-GCM vouches for a decrypted value (the text encrypted for this record, learner and
field, from a record whose validators accepted it); a clear column vouches for nothing,
so its validators still run. These tests attack the clear columns in SQL and check the
builder's fallbacks for classes whose construction does more than set fields.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from sqlalchemy import text, update

from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner
from learnprivacy.store import Store, _codec
from learnprivacy.store._codec import _checks
from learnprivacy.store._schema import FieldSpec, Kind
from tests.store_fixtures import learner


def _tamper(store: Store, learner_id: str, **values: Any) -> None:
    table = store._table(Learner).table
    with store._db.write() as connection:
        connection.execute(update(table).where(table.c.id == learner_id).values(**values))


def test_records_read_back_equal_what_was_written(store: Store) -> None:
    written = [learner(f"L{i}", organisation_id=f"ORG{i}") for i in range(4)]
    store.add_all(written)
    assert store.query(Learner) == written
    assert [store.get(Learner, r.id) for r in written] == written


@pytest.mark.parametrize("value", ["ORG\x01", " ", "\t"])
def test_a_tampered_clear_column_is_still_refused_on_read(store: Store, value: str) -> None:
    """organisation_id is stored in clear: a value its validator refuses, written straight
    into the table, makes the read fail with ValidationError, as building the record by
    hand would."""
    store.add_all([learner("L1"), learner("L2")])
    _tamper(store, "L2", organisation_id=value)
    with pytest.raises(ValidationError):
        store.query(Learner)
    with pytest.raises(ValidationError):
        store.get(Learner, "L2")
    assert store.get(Learner, "L1") == learner("L1")


def test_only_vouched_validators_are_skipped(store: Store) -> None:
    """Learner: the clear fields a tampered column could make wrong keep their validators
    (organisation_id, basis); the encrypted fields' and the timestamps' run on NULL
    only; the id's runs when no token of the row was opened."""
    rt = store._table(Learner)
    checks = _checks(Learner, rt.fields, rt.subject_column)
    assert checks is not None
    assert [name for _, name, _ in checks.always] == ["organisation_id", "basis"]
    assert set(checks.when_none) == {
        "username",
        "email",
        "given_name",
        "family_name",
        "created_at",
        "last_activity_at",
        "contract_end_at",
    }
    assert [name for _, name, _ in checks.ids] == ["id"]


def _spec(name: str, kind: Kind, *, encrypted: bool = False) -> FieldSpec:
    # name, kind, optional, personal, encrypted, identifier, blind index
    return FieldSpec(name, kind, False, encrypted, encrypted, False, False)


@attrs.frozen(kw_only=True)
class _Checked:
    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    secret: str = attrs.field(validator=attrs.validators.instance_of(str))
    clear: int = attrs.field(validator=attrs.validators.instance_of(int))
    at: Any = attrs.field(validator=attrs.validators.instance_of(object))


def test_a_datetime_with_another_validator_keeps_it() -> None:
    """Only ``aware_datetime`` is vouched for by the conversion: a DATETIME field with a
    validator of its own keeps it for every value."""
    specs = [
        _spec("id", Kind.TEXT),
        _spec("secret", Kind.TEXT, encrypted=True),
        _spec("clear", Kind.INT),
        _spec("at", Kind.DATETIME),
    ]
    checks = _checks(_Checked, specs, "id")
    assert checks is not None
    assert [name for _, name, _ in checks.always] == ["clear", "at"]
    assert set(checks.when_none) == {"secret"}
    assert [name for _, name, _ in checks.ids] == ["id"]
    # Without an encrypted field nothing vouches for the id.
    clear_only = _checks(_Checked, [s for s in specs if not s.encrypted], "id")
    assert clear_only is not None
    assert [name for _, name, _ in clear_only.always] == ["id", "secret", "clear", "at"]
    assert not clear_only.ids


@attrs.frozen(kw_only=True)
class _PostInit:
    low: int
    high: int

    def __attrs_post_init__(self) -> None:
        if self.low > self.high:
            raise ValidationError("low above high", field="low")


@attrs.frozen(kw_only=True)
class _Converted:
    number: int = attrs.field(converter=int)


def test_classes_that_do_more_than_set_fields_are_built_by_calling_them() -> None:
    specs = [_spec("low", Kind.INT), _spec("high", Kind.INT)]
    assert _checks(_PostInit, specs, "low") is None
    assert _checks(_Converted, [_spec("number", Kind.INT)], "number") is None


@pytest.mark.parametrize("built", ["fields set", "called"])
@pytest.mark.parametrize(
    ("column", "value"),
    [("basis", "bogus"), ("basis", 7), ("created_at", "garbage"), ("created_at", 12345)],
)
def test_a_column_holding_what_no_record_writes_is_a_typed_error(
    store: Store, monkeypatch: pytest.MonkeyPatch, built: str, column: str, value: Any
) -> None:
    """A clear column rewritten in SQL to something its type cannot be read from (no
    member of the enum, no timestamp, a number where text belongs) is refused with
    ValidationError naming the field, quoting nothing of the value and chaining nothing
    (it was a bare KeyError or ValueError quoting the column's text), whichever way the
    record is built."""
    if store._db.is_postgres and column == "created_at":
        pytest.skip("PostgreSQL types its timestamp columns")
    if built == "called":
        # As for a class whose construction does more than set fields.
        monkeypatch.setattr(_codec, "_checks", lambda *_args: None)
    store.add_all([learner("L1"), learner("L2")])
    table = store._table(Learner).table.name
    with store._db.write() as connection:
        connection.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = 'L2'"), {"v": value})
    for read in (lambda: store.query(Learner), lambda: store.get(Learner, "L2")):
        with pytest.raises(ValidationError) as refused:
            read()
        assert refused.value.field == f"Learner.{column}"
        assert str(value) not in str(refused.value)
        assert refused.value.__context__ is None
    assert store.get(Learner, "L1") == learner("L1")
