"""What each request type needs beyond the common fields: the type-specific parameters.

Parameters that hold personal values (a rectified e-mail address, the subject's own words,
an executor's name) mask them in ``repr``. Each class has a JSON-ready ``to_dict`` and a
``from_dict`` so the request book can persist it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.errors import UnknownCodeError, ValidationError
from learnprivacy.records import fields_of
from learnprivacy.records._base import record_type
from learnprivacy.records._fields import MASK
from learnprivacy.records._serialise import JsonForm
from learnprivacy.requests._vocabulary import RestrictionGrounds

__all__ = [
    "DeathAction",
    "Executor",
    "FieldChange",
    "ObjectionParams",
    "Params",
    "PostMortemDirective",
    "RectificationParams",
    "RestrictionParams",
    "WithdrawConsentParams",
    "params_from_dict",
]

JsonScalar = str | int | float | bool | None

# Fields that identify a record or tie it to its subject: rectifying them would move data
# between people or break links, so a rectification request may not touch them.
_FIXED_FIELDS = frozenset({"id", "learner_id", "basis"})


def _mask(_value: object) -> str:
    return MASK


def json_scalar(value: object, field: str) -> JsonScalar:
    """The JSON-ready form of a field value, as ``to_json_dict`` writes it."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        return require_aware(value, field).isoformat()
    if isinstance(value, enum.Enum):
        return json_scalar(value.value, field)
    if isinstance(value, Decimal):
        return str(value)
    raise ValidationError(
        f"{field} must be a plain value (text, number, date), got {type(value).__name__}",
        field=field,
    )


@attrs.frozen(kw_only=True)
class FieldChange(JsonForm):
    """One field of one record to set to a new value (Art. 16).

    ``value`` is stored in its JSON-ready form (dates as ISO 8601 text) and masked in
    ``repr``; the record's own validation runs when the change is applied.
    """

    record_type: str = attrs.field(validator=v.non_empty_text)
    # A Learner's record id is the learner id: masked like every identifier of a person.
    record_id: str = attrs.field(repr=_mask, validator=v.non_empty_text)
    field: str = attrs.field(validator=v.non_empty_text)
    value: JsonScalar = attrs.field(repr=_mask)

    def __attrs_post_init__(self) -> None:
        name = f"FieldChange.{self.field}"
        try:
            cls = record_type(self.record_type)
        except UnknownCodeError:
            raise ValidationError(
                "FieldChange.record_type is not a registered record type",
                field="FieldChange.record_type",
            ) from None
        known = {info.name for info in fields_of(cls)}
        if self.field not in known:
            raise ValidationError(
                f"{self.record_type} has no field {self.field}", field="FieldChange.field"
            )
        if self.field in _FIXED_FIELDS:
            raise ValidationError(
                f"{self.record_type}.{self.field} cannot be rectified", field=name
            )
        object.__setattr__(
            self, "value", json_scalar(self.value, f"{self.record_type}.{self.field}")
        )


def _changes(value: object) -> tuple[FieldChange, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else ()
    if not items or not all(isinstance(item, FieldChange) for item in items):
        raise ValidationError(
            "a rectification needs at least one FieldChange", field="RectificationParams.changes"
        )
    seen = set()
    for item in items:
        key = (item.record_type, item.record_id, item.field)
        if key in seen:
            raise ValidationError(
                f"{item.record_type}.{item.field} is changed twice on one record",
                field="RectificationParams.changes",
            )
        seen.add(key)
    return items


@attrs.frozen(kw_only=True)
class RectificationParams(JsonForm):
    """The field changes a rectification asks for (all applied, or none)."""

    kind: ClassVar[str] = "rectification"

    changes: tuple[FieldChange, ...] = attrs.field(converter=_changes)


@attrs.frozen(kw_only=True)
class ObjectionParams(JsonForm):
    """The purpose objected to (Art. 21).

    ``direct_marketing`` objections (Art. 21(2)) are absolute: no compelling grounds can
    override them. ``particular_situation`` holds the subject's own reasons (Art. 21(1)).
    """

    kind: ClassVar[str] = "objection"

    purpose: str = attrs.field(validator=v.non_empty_text)
    direct_marketing: bool = attrs.field(default=False)
    particular_situation: str | None = attrs.field(
        default=None,
        repr=_mask,
        validator=v.optional(v.non_empty_text),
    )


@attrs.frozen(kw_only=True)
class WithdrawConsentParams(JsonForm):
    """The purpose whose consent is withdrawn (Art. 7(3)), as ``Consent.purpose`` names it."""

    kind: ClassVar[str] = "withdraw_consent"

    purpose: str = attrs.field(validator=v.non_empty_text)


def _record_types(value: object) -> tuple[str, ...]:
    names = tuple(value) if isinstance(value, list | tuple) else None
    if names is None or not all(isinstance(n, str) for n in names):
        raise ValidationError(
            "record_types must be record type names", field="RestrictionParams.record_types"
        )
    for name in names:
        try:
            record_type(name)
        except UnknownCodeError:
            raise ValidationError(
                "RestrictionParams.record_types names an unknown record type",
                field="RestrictionParams.record_types",
            ) from None
    return names


@attrs.frozen(kw_only=True)
class RestrictionParams(JsonForm):
    """The Art. 18(1) case and, optionally, the record types to restrict (all when empty)."""

    kind: ClassVar[str] = "restriction"

    grounds: RestrictionGrounds = attrs.field(validator=v.instance_of(RestrictionGrounds))
    record_types: tuple[str, ...] = attrs.field(default=(), converter=_record_types)


class DeathAction(enum.Enum):
    """What the subject wants done with their data after their death."""

    #: Erase everything that may be erased as soon as the death is recorded.
    ERASE = "erase"
    #: Keep for ``keep_for`` after death, then erase.
    KEEP_THEN_ERASE = "keep_then_erase"
    #: Nothing special: the ordinary retention schedule applies.
    KEEP_UNDER_RETENTION = "keep_under_retention"


@attrs.frozen(kw_only=True)
class Executor(JsonForm):
    """The person the directives designate to carry them out (a third party's data)."""

    name: str = attrs.field(repr=_mask, validator=v.non_empty_text)
    email: str | None = attrs.field(
        default=None, repr=_mask, validator=v.optional(v.non_empty_text)
    )


def _keep_for(value: object) -> str | None:
    if value is None:
        return None
    # The retention Period type validates and normalises the ISO 8601 text.
    from learnprivacy.retention import Period

    period = value if isinstance(value, Period) else Period.parse(str(value))
    if period.is_zero:
        raise ValidationError(
            "PostMortemDirective.keep_for must be longer than zero",
            field="PostMortemDirective.keep_for",
        )
    return str(period)


@attrs.frozen(kw_only=True)
class PostMortemDirective(JsonForm):
    """Particular directives on the fate of one's data after death (LIL art. 85 I).

    ``on_death`` says whether to erase at once, keep for ``keep_for`` (an ISO 8601 period
    such as ``"P1Y"``) and then erase, or leave the ordinary schedule in charge.
    ``communicate_export`` asks for an export of the data to be handed to the
    ``executor``; ``instructions`` keeps any further wishes in the subject's own words.
    """

    kind: ClassVar[str] = "post_mortem_directive"

    on_death: DeathAction = attrs.field(validator=v.instance_of(DeathAction))
    keep_for: str | None = attrs.field(default=None, converter=_keep_for)
    communicate_export: bool = attrs.field(default=False)
    notify_executor: bool = attrs.field(default=True)
    instructions: str | None = attrs.field(
        default=None, repr=_mask, validator=v.optional(v.non_empty_text)
    )
    executor: Executor | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if (self.on_death is DeathAction.KEEP_THEN_ERASE) != (self.keep_for is not None):
            raise ValidationError(
                "PostMortemDirective.keep_for is required with KEEP_THEN_ERASE, and only then",
                field="PostMortemDirective.keep_for",
            )
        if self.communicate_export and self.executor is None:
            raise ValidationError(
                "PostMortemDirective.communicate_export needs an executor",
                field="PostMortemDirective.executor",
            )


Params = (
    RectificationParams
    | ObjectionParams
    | WithdrawConsentParams
    | RestrictionParams
    | PostMortemDirective
)


#: Each parameter class by its ``kind``.
_PARAMS: dict[str, type[Params]] = {
    cls.kind: cls
    for cls in (
        RectificationParams,
        ObjectionParams,
        WithdrawConsentParams,
        RestrictionParams,
        PostMortemDirective,
    )
}


def params_from_dict(data: Mapping[str, Any] | None) -> Params | None:
    """Rebuild parameters from their ``to_dict`` form (``None`` stays ``None``)."""
    if data is None:
        return None
    kind = data.get("kind") if isinstance(data, Mapping) else None
    cls = _PARAMS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValidationError("unknown request parameter kind", field="params.kind")
    return cls.from_dict(data)
