"""``to_json_dict`` compiles one plan per record class: its output must be the same, key for
key and byte for byte once JSON-encoded, as dumping every value by its own type.

``reference_json_dict`` below is that per-value dispatch, written out here so the compiled
plan is checked against something it does not share.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records import Score, to_json_dict
from learnprivacy.records._serialise import JsonForm, format_duration
from learnprivacy.requests._params import FieldChange, RectificationParams
from learnprivacy.testing.strategies import aware_datetimes
from tests import sample

BUILT_IN = (
    rec.Learner,
    rec.Progress,
    rec.Certificate,
    rec.Invoice,
    rec.Funding,
    rec.Consent,
    rec.AccessEvent,
)


def reference_value(value: Any) -> Any:
    """One value's JSON form, decided by the value's own type (the former dispatch)."""
    kind = type(value)
    if value is None or issubclass(kind, bool | str | int | float):
        return value
    if issubclass(kind, LawfulBasis):
        return value.name.lower()
    if issubclass(kind, enum.Enum):
        return value.value
    if issubclass(kind, dt.datetime):
        return dt.datetime.isoformat(value)
    if issubclass(kind, dt.timedelta):
        return format_duration(value)
    if issubclass(kind, Decimal):
        return str(value)
    if issubclass(kind, Score):
        return {
            "raw": reference_value(value.raw),
            "min": reference_value(value.min),
            "max": reference_value(value.max),
            "scaled": round(value.scaled, 6),
        }
    if issubclass(kind, tuple | list):
        return [reference_value(item) for item in value]
    if issubclass(kind, Mapping):
        return {key: reference_value(item) for key, item in value.items()}
    if issubclass(kind, JsonForm):
        return value.to_dict()
    raise TypeError(f"cannot serialise {kind.__name__}")


def reference_json_dict(record: object) -> dict[str, Any]:
    return {a.name: reference_value(getattr(record, a.name)) for a in attrs.fields(type(record))}


def assert_same(record: object) -> None:
    got, want = to_json_dict(record), reference_json_dict(record)
    assert list(got) == list(want)
    assert got == want
    assert json.dumps(got) == json.dumps(want)
    # Exact types too: 1 and 1.0 and True compare equal but are written differently.
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


# Datetimes with microseconds and offsets; durations with days and microseconds.
instants = aware_datetimes().flatmap(
    lambda d: st.integers(0, 999_999).map(lambda us: d.replace(microsecond=us))
)
durations = st.builds(
    dt.timedelta,
    days=st.integers(0, 400),
    seconds=st.integers(0, 86_399),
    microseconds=st.integers(0, 999_999),
)
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**9)


@st.composite
def mixed_scores(draw: st.DrawFn) -> Score:
    """Scores of ints, floats or Decimals (one kind per score, as subtraction needs)."""
    kind = draw(st.sampled_from(["int", "float", "decimal", "int-decimal"]))
    low = draw(st.integers(-100, 100))
    high = draw(st.integers(low + 1, low + 1_000))
    raw: Any = draw(st.integers(low, high))
    bounds: tuple[Any, Any] = (low, high)
    if kind == "float":
        raw = draw(st.floats(low, high, allow_nan=False))
        bounds = (float(low), float(high))
    elif kind == "decimal":
        raw = draw(st.decimals(low, high, places=3, allow_nan=False))
        bounds = (Decimal(low), Decimal(high))
    elif kind == "int-decimal":
        raw = Decimal(raw) / 1
    return Score(raw=raw, min=bounds[0], max=bounds[1])


def _varied(record: Any, draw: st.DrawFn) -> Any:
    """``record`` with its optional, dated, scored and amounted fields redrawn."""
    changes: dict[str, Any] = {}
    fields = attrs.fields_dict(type(record))
    for name, value in attrs.asdict(record, recurse=False).items():
        optional = fields[name].default is None
        if isinstance(value, dt.datetime) or (optional and name.endswith("_at")):
            candidate = draw(instants)
            # Keep the record's own order checks happy: later dates than the one drawn.
            changes[name] = None if optional and draw(st.booleans()) else candidate
        elif name == "score":
            changes[name] = draw(st.none() | mixed_scores())
        elif name == "time_spent":
            changes[name] = draw(st.none() | durations)
        elif name == "amount":
            changes[name] = draw((st.none() if optional else st.nothing()) | amounts)
        elif optional and draw(st.booleans()):
            changes[name] = None
    try:
        return attrs.evolve(record, **changes)
    except ValidationError:  # an order or range check refused the draw
        return record


@st.composite
def varied_records(draw: st.DrawFn) -> Any:
    record = draw(st.one_of(*(st.from_type(cls) for cls in BUILT_IN)))
    return _varied(record, draw)


@settings(max_examples=300, deadline=None)
@given(varied_records())
def test_every_built_in_record_dumps_as_by_each_values_type(record: Any) -> None:
    assert_same(record)


@given(st.sampled_from(BUILT_IN), st.data())
def test_record_with_every_optional_none(cls: type, data: st.DataObject) -> None:
    record = data.draw(st.from_type(cls))
    nulls = {a.name: None for a in attrs.fields(cls) if a.default is None}
    assert_same(attrs.evolve(record, **nulls))


def test_the_plan_is_built_once_per_class() -> None:
    from learnprivacy.records import _serialise

    offset = dt.timezone(dt.timedelta(hours=2))
    learner = sample(rec.Learner, created_at=dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=offset))
    to_json_dict(learner)
    plan = _serialise._PLANS[rec.Learner]
    to_json_dict(learner)
    assert _serialise._PLANS[rec.Learner] is plan
    assert to_json_dict(learner)["created_at"] == "2020-01-02T03:04:05.000006+02:00"


class _Text(str):
    pass


class _Instant(dt.datetime):
    pass


class _Colour(enum.StrEnum):
    RED = "red"


def _forced(record: Any, **values: Any) -> Any:
    """``record`` with values its validators would refuse (set behind their back)."""
    copy = attrs.evolve(record)
    for name, value in values.items():
        object.__setattr__(copy, name, value)
    return copy


@given(st.from_type(rec.Progress))
def test_values_not_of_the_declared_type_dump_by_their_own_type(record: rec.Progress) -> None:
    """A plan decides by declared type but checks each value: a subclass, a mixin enum
    or another type altogether is dumped as before, never through the wrong converter."""
    utc = dt.datetime(2021, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC)
    assert_same(
        _forced(
            record,
            id=_Text("P-sub"),
            course_id=_Colour.RED,
            recorded_at=_Instant(2021, 5, 6, tzinfo=dt.UTC),
            status="completed",
            score={"raw": Decimal("1.50"), "when": utc},
            time_spent=utc,
            activity_id=(Decimal("2"), dt.timedelta(hours=1)),
            basis=LawfulBasis.CONSENT,
        )
    )
    unknown = _forced(record, learner_id=object())
    with pytest.raises(TypeError):
        reference_json_dict(unknown)
    with pytest.raises(TypeError):
        to_json_dict(unknown)


@attrs.frozen
class _Loose(JsonForm):
    anything: Any
    later: Missing  # type: ignore[name-defined]  # noqa: F821 - never resolvable
    items: tuple[Decimal, ...]
    table: Mapping[str, Any]


@attrs.frozen
class _Tagged(JsonForm):
    kind: ClassVar[str] = "tagged"
    loose: tuple[_Loose, ...]
    change: FieldChange | None


def test_classes_without_usable_annotations_dump_by_value_type() -> None:
    when = dt.datetime(2022, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    loose = _Loose(
        anything=Decimal("3.10"),
        later=dt.timedelta(minutes=90),
        items=(Decimal("1"), Decimal("2.5")),
        table={"at": when, "score": Score(raw=3, min=0, max=4)},
    )
    assert_same(loose)
    change = FieldChange(record_type="Learner", record_id="L1", field="email", value="a@b.c")
    tagged = _Tagged(loose=(loose,), change=change)
    assert tagged.to_dict()["kind"] == "tagged"
    assert_same(tagged)
    assert_same(_Tagged(loose=(), change=None))
    assert_same(RectificationParams(changes=(change,)))
