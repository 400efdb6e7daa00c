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
from sqlalchemy import update

from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._codec import _builder
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


@attrs.frozen(kw_only=True)
class _Checked:
    secret: str = attrs.field(validator=attrs.validators.instance_of(str))
    clear: int = attrs.field(validator=attrs.validators.instance_of(int))


def test_the_builder_skips_only_the_authenticated_fields_validators() -> None:
    build = _builder(_Checked, frozenset({"secret"}))
    made = build({"secret": "s", "clear": 3})
    assert made == _Checked(secret="s", clear=3)
    with pytest.raises(TypeError):
        build({"secret": "s", "clear": "not an int"})
    # A missing field is not papered over: the class itself refuses the call.
    with pytest.raises(TypeError):
        build({"secret": "s"})


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
    with pytest.raises(ValidationError):
        _builder(_PostInit, frozenset({"low"}))({"low": 2, "high": 1})
    assert _builder(_Converted, frozenset())({"number": "7"}).number == 7
