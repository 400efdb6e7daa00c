"""Plain-JSON form of records: stable English keys, ISO 8601 dates, Decimal as string.

``to_json_dict`` and ``from_json_dict`` round-trip: ``from_json_dict(type(r), to_json_dict(r))
== r`` for every valid record. Exports, the store and the CLI all use this one form.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import keyword
import re
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar

import attrs

from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._types import Score

__all__ = [
    "JsonForm",
    "format_duration",
    "from_json_dict",
    "parse_duration",
    "to_json_dict",
]

T = TypeVar("T")

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d{1,6})?)S)?)?$"
)


def format_duration(value: dt.timedelta) -> str:
    """ISO 8601 duration of a non-negative timedelta, in days and time (``P1DT2H3M4.5S``)."""
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us < 0:
        raise ValidationError("a duration must not be negative", field="duration")
    days, rest = divmod(total_us, 86_400 * 1_000_000)
    hours, rest = divmod(rest, 3_600 * 1_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or micros:
        time += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"


#: :func:`format_duration` for the field dumpers: durations repeat across records (a
#: lesson's length, a session's), each distinct one is formatted once.
_duration_text = functools.lru_cache(maxsize=4096)(format_duration)


def parse_duration(text: str) -> dt.timedelta:
    """Parse what :func:`format_duration` writes (days, hours, minutes, seconds)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT"):
        raise ValidationError("not an ISO 8601 day-time duration", field="duration")
    days, hours, minutes = (int(match.group(k) or 0) for k in ("d", "h", "m"))
    whole, _, fraction = (match.group("s") or "0").partition(".")
    micros = int((fraction + "000000")[:6])
    return dt.timedelta(
        days=days, hours=hours, minutes=minutes, seconds=int(whole), microseconds=micros
    )


def _dump(value: Any) -> Any:
    """One value's JSON form, by its type's dumper (see :func:`_dumper`)."""
    kind = type(value)
    dumper = _BY_TYPE[kind] if kind in _BY_TYPE else _dumper(kind)
    return value if dumper is None else dumper(value)


#: Number types a score part is written as it is (what :func:`_dumper` decides for them).
_PLAIN_NUMBERS = frozenset({int, float})


def _score(value: Score) -> dict[str, Any]:
    raw, low, high = value.raw, value.min, value.max
    plain = _PLAIN_NUMBERS
    return {
        "raw": raw if type(raw) in plain else _dump(raw),
        "min": low if type(low) in plain else _dump(low),
        "max": high if type(high) in plain else _dump(high),
        "scaled": round(value.scaled, 6),
    }


def _lawful_basis(value: LawfulBasis) -> str:
    return value.name.lower()


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _items(value: tuple[Any, ...] | list[Any]) -> list[Any]:
    return [_dump(item) for item in value]


def _mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _dump(item) for key, item in value.items()}


def _nested(value: JsonForm) -> dict[str, Any]:
    return value.to_dict()


#: How values of one exact type are dumped (``None``: as they are), filled as types are
#: met: :func:`_dumper` decides once per type, not per value.
_BY_TYPE: dict[type, Any] = {type(None): None}
#: The field names of each record class, in declaration order.
_NAMES: dict[type, tuple[str, ...]] = {}


def _dumper(kind: type) -> Any:
    if issubclass(kind, bool | str | int | float):
        dumper: Any = None
    elif issubclass(kind, LawfulBasis):
        dumper = _lawful_basis
    elif issubclass(kind, enum.Enum):
        dumper = _enum_value
    elif issubclass(kind, dt.datetime):
        dumper = dt.datetime.isoformat
    elif issubclass(kind, dt.timedelta):
        dumper = _duration_text
    elif issubclass(kind, Decimal):
        dumper = str
    elif issubclass(kind, Score):
        dumper = _score
    elif issubclass(kind, tuple | list):
        dumper = _items
    elif issubclass(kind, Mapping):
        dumper = _mapping
    elif issubclass(kind, JsonForm):
        dumper = _nested
    else:
        raise TypeError(f"cannot serialise {kind.__name__}")
    _BY_TYPE[kind] = dumper
    return dumper


def to_json_dict(record: object) -> dict[str, Any]:
    """The JSON-ready dict of a record: every field, in declaration order."""
    cls = type(record)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(cls)
    return plan(record)


#: The compiled :func:`to_json_dict` of each record class (see :func:`_plan`).
_PLANS: dict[type, Callable[[Any], dict[str, Any]]] = {}

#: Dumpers written inline in a plan, as an expression of the value ``{v}``.
_INLINE: dict[Any, str] = {
    None: "{v}",
    _enum_value: "{v}._value_",
    _lawful_basis: "{v}._name_.lower()",
    dt.datetime.isoformat: "{v}.isoformat()",
}


def _plan(cls: type) -> Callable[[Any], dict[str, Any]]:
    """Compile ``cls``'s :func:`to_json_dict`, deciding each field's dumper once.

    A field's dumper is the one :func:`_dumper` gives its declared type; it is used when
    the value is exactly of that type (or ``None`` for an optional field) and anything
    else goes through :func:`_dump`, so the output is the same as dumping by each
    value's type.
    """
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):  # unresolvable: dump by value type
        hints = {}
    namespace: dict[str, Any] = {"_dump": _dump, "_getattr": getattr}
    lines, items = [], []
    for n, field in enumerate(attrs.fields(cls)):
        name, value = field.name, f"v{n}"
        read = f"record.{name}" if name.isidentifier() and not keyword.iskeyword(name) else (
            f"_getattr(record, {name!r})"
        )  # fmt: skip
        lines.append(f"    {value} = {read}")
        declared, optional = _strip_optional(hints.get(name, Any))
        try:
            exact = typing.get_origin(declared) is None and isinstance(declared, type)
            dumper = _dumper(declared) if exact else _dump
        except TypeError:
            dumper = _dump
        if dumper is _dump:
            items.append(f"{name!r}: _dump({value})")
            continue
        namespace[f"_t{n}"] = declared
        if dumper in _INLINE:
            dumped = _INLINE[dumper].format(v=value)
        else:
            namespace[f"_d{n}"] = dumper
            dumped = f"_d{n}({value})"
        expression = f"{dumped} if type({value}) is _t{n} else _dump({value})"
        if optional:
            # _dump(None) is None too: this only spares the call.
            expression = f"None if {value} is None else ({expression})"
        items.append(f"{name!r}: {expression}")
    source = (
        "def to_json(record):\n"
        + "".join(line + "\n" for line in lines)
        + "    return {"
        + ", ".join(items)
        + "}\n"
    )
    exec(compile(source, f"<to_json_dict {cls.__name__}>", "exec"), namespace)  # noqa: S102
    plan: Callable[[Any], dict[str, Any]] = namespace["to_json"]
    return plan


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tuple(args)), len(args) < len(typing.get_args(tp))
    return tp, False


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValidationError("not a number", field="score") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("not a number", field="score")
    return value


def _load(tp: Any, value: Any, field: str) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ValidationError(f"{field} is required", field=field)
    try:
        if tp is LawfulBasis:
            text = str(value)
            if text.startswith("gdpr_art_6_1_"):
                return LawfulBasis.from_moodle(text)
            return LawfulBasis[text.upper()]
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(value)
        if tp is dt.datetime:
            if not isinstance(value, str):
                raise ValidationError(f"{field} must be an ISO 8601 string", field=field)
            return dt.datetime.fromisoformat(value)
        if tp is dt.timedelta:
            return parse_duration(value)
        if tp is Decimal:
            if not isinstance(value, str | int):
                raise ValidationError(f"{field} must be a decimal string", field=field)
            return Decimal(value)
        if tp is Score:
            return Score(
                raw=_number(value["raw"]), min=_number(value["min"]), max=_number(value["max"])
            )
        if isinstance(tp, type) and issubclass(tp, JsonForm):
            if not isinstance(value, Mapping):
                raise ValidationError(f"{field} must be an object", field=field)
            return tp.from_dict(value)
        origin = typing.get_origin(tp)
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise ValidationError(f"{field} must be a list", field=field)
            item = typing.get_args(tp)[0]
            return tuple(_load(item, each, f"{field}[]") for each in value)
        if origin in (Mapping, dict):
            if not isinstance(value, Mapping):
                raise ValidationError(f"{field} must be an object", field=field)
            return dict(value)
    except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"{field} has an invalid value", field=field) from None
    return value


def from_json_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a record of ``cls`` from :func:`to_json_dict` output; validates everything."""
    if not isinstance(data, dict):
        raise ValidationError(f"{cls.__name__} data must be an object", field=cls.__name__)
    hints = typing.get_type_hints(cls)
    known = {a.name for a in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(
            f"{cls.__name__} has no field(s) " + ", ".join(unknown[:5]), field=cls.__name__
        )
    kwargs = {
        name: _load(hints[name], value, f"{cls.__name__}.{name}") for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError:
        raise ValidationError(
            f"{cls.__name__} data lacks a required field", field=cls.__name__
        ) from None


class JsonForm:
    """``to_dict`` and ``from_dict`` for an attrs class, in the records' JSON form
    (:func:`to_json_dict` and :func:`from_json_dict`).

    Fields may hold texts, numbers, enums, dates, durations, tuples (JSON lists), mappings
    of texts and other ``JsonForm`` objects. A class whose ``kind`` is a class-level text
    writes it first under ``"kind"`` and checks it when read back, so the type of a
    parameter object survives the round trip.
    """

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        kind = getattr(type(self), "kind", None)
        if isinstance(kind, str):
            return {"kind": kind, **to_json_dict(self)}
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict`; a missing, unknown or ill-typed key raises
        ``ValidationError``."""
        fields = dict(data)
        kind = getattr(cls, "kind", None)
        if isinstance(kind, str) and fields.pop("kind", None) != kind:
            raise ValidationError(f"{cls.__name__} data is not of kind {kind}", field="kind")
        return from_json_dict(cls, fields)
