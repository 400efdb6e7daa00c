"""The typed, immutable items a privacy provider declares (Moodle's metadata ``types``).

Each item says where a component keeps or sends personal data and, beyond Moodle, why
(purpose), on what lawful basis, which data categories and for how long, so that the
GDPR Art. 30 register can be generated from the declarations alone.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from learnprivacy._controller import country_code
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.retention import Period, Trigger

__all__ = [
    "DatabaseTable",
    "ExternalLocation",
    "ItemKind",
    "MetadataItem",
    "SubsystemLink",
    "UserPreference",
]

_T = TypeVar("_T")

# Moodle string identifiers are lowercase words joined by ':' or '_' (PARAM_STRINGID).
_STRING_ID = re.compile(r"[a-zA-Z0-9_:.\-]+")


class ItemKind(enum.Enum):
    """What an item describes: a table, data sent elsewhere, a subsystem or a preference."""

    DATABASE_TABLE = "database_table"
    EXTERNAL_LOCATION = "external_location"
    SUBSYSTEM_LINK = "subsystem_link"
    USER_PREFERENCE = "user_preference"


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("a metadata item needs a non-empty name", field="name")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("descriptions must be plain text", field="summary")
    return value


def _fields(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("fields must map each field name to a description", field="fields")
    copy: dict[str, str] = {}
    for key, description in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("field names must be non-empty strings", field="fields")
        if not isinstance(description, str):
            raise ValidationError(f"description of field {key!r} must be text", field=key)
        copy[key] = description
    # A read-only view keeps the declaration immutable once built.
    return types.MappingProxyType(copy)


def _string_ids(value: object) -> Mapping[str, str]:
    mapping = _fields(value)
    for key, string_id in mapping.items():
        if not _STRING_ID.fullmatch(string_id):
            raise ValidationError(f"string id of {key!r} is not a valid identifier", field=key)
    return mapping


def _optional_string_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _STRING_ID.fullmatch(value):
        raise ValidationError("summary_id is not a valid string identifier", field="summary_id")
    return value


def _parsed(
    value: object, kind: type[_T], parse: Callable[[str], _T], field: str, expected: str
) -> _T | None:
    """``value`` if already a ``kind`` (or ``None``), else ``parse`` of its text."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        return parse(value)
    raise ValidationError(f"{field} must be {expected}", field=field)


def _basis(value: object) -> LawfulBasis | None:
    return _parsed(
        value, LawfulBasis, LawfulBasis.from_moodle, "basis", "a LawfulBasis or a Moodle code"
    )


def _categories(value: object) -> tuple[DataCategory, ...]:
    if value is None:
        return ()
    if isinstance(value, DataCategory | str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ValidationError("categories must be DataCategory members", field="categories")
    result: list[DataCategory] = []
    for item in value:
        category = item if isinstance(item, DataCategory) else DataCategory.parse(str(item))
        if category not in result:
            result.append(category)
    return tuple(result)


def _retention(value: object) -> Period | None:
    return _parsed(value, Period, Period.parse, "retention", "an ISO 8601 period or a Period")


def _trigger(value: object) -> Trigger | None:
    if value is None or isinstance(value, Trigger):
        return value
    try:
        return Trigger(value)
    except ValueError:
        raise ValidationError(
            "retention_from must be a Trigger or its value", field="retention_from"
        ) from None


def _purpose(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("purpose must be non-empty text", field="purpose")
    return value


@attrs.frozen(kw_only=True)
class MetadataItem:
    """What every declaration carries: a name, a summary and the register's facts.

    ``purpose`` is plain text ("Deliver the courses and follow progress"); ``basis`` a
    :class:`~learnprivacy.LawfulBasis` (a Moodle code such as ``"gdpr_art_6_1_b"`` is
    accepted); ``categories`` the :class:`~learnprivacy.DataCategory` members involved;
    ``retention`` an ISO 8601 period (``"P18M"``) counted from ``retention_from``.
    ``summary_id`` and ``field_ids`` are optional translation string identifiers, as
    Moodle's language strings.
    """

    name: str = attrs.field(converter=_name)
    summary: str = attrs.field(default="", converter=_text)
    purpose: str | None = attrs.field(default=None, converter=_purpose)
    basis: LawfulBasis | None = attrs.field(default=None, converter=_basis)
    categories: tuple[DataCategory, ...] = attrs.field(default=(), converter=_categories)
    retention: Period | None = attrs.field(default=None, converter=_retention)
    retention_from: Trigger | None = attrs.field(default=None, converter=_trigger)
    summary_id: str | None = attrs.field(default=None, converter=_optional_string_id)

    @property
    def kind(self) -> ItemKind:
        """What this item describes."""
        raise NotImplementedError

    @property
    def field_names(self) -> tuple[str, ...]:
        """The names of the personal fields declared, in declaration order."""
        return ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (used by the register's JSON form)."""
        return {
            "kind": self.kind.value,
            "name": self.name,
            "summary": self.summary,
            "purpose": self.purpose,
            "basis": self.basis.moodle_code if self.basis else None,
            "categories": [c.value for c in self.categories],
            "retention": str(self.retention) if self.retention else None,
            "retention_from": self.retention_from.value if self.retention_from else None,
            "summary_id": self.summary_id,
        }


@attrs.frozen(kw_only=True)
class _WithFields(MetadataItem):
    # Mappings are not hashable; equality still compares them, hashing skips them.
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_fields, hash=False)
    field_ids: Mapping[str, str] = attrs.field(factory=dict, converter=_string_ids, hash=False)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The names of the personal fields declared, in declaration order."""
        return tuple(self.fields)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, with the fields and their descriptions."""
        data = super().to_dict()
        data["fields"] = dict(self.fields)
        if self.field_ids:
            data["field_ids"] = dict(self.field_ids)
        return data


@attrs.frozen(kw_only=True)
class DatabaseTable(_WithFields):
    """A table (or collection) in the component's own storage holding personal data."""

    def __attrs_post_init__(self) -> None:
        # Moodle only warns about a table without fields; a register entry without a
        # single field is meaningless, so it is refused here.
        if not self.fields:
            raise ValidationError(f"table {self.name!r} declares no field", field="fields")

    @property
    def kind(self) -> ItemKind:
        """Always :attr:`ItemKind.DATABASE_TABLE`."""
        return ItemKind.DATABASE_TABLE


@attrs.frozen(kw_only=True)
class ExternalLocation(_WithFields):
    """Personal data sent outside the LMS: an employer, a funder (OPCO), an LRS, a
    video-conferencing service.

    ``recipient`` names who receives it (for the register's recipients column) and
    ``country`` where it is processed (ISO 3166 alpha-2 code, upper-cased, or a name),
    when known. ``internal`` marks a recipient inside the controller (its authorised
    staff, another of its departments): data leaves the LMS but reaches no third party,
    so a purpose the policy shares internally only may have it (the register's gaps
    list an external one).
    """

    recipient: str | None = None
    country: str | None = attrs.field(default=None, converter=country_code)
    internal: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @property
    def kind(self) -> ItemKind:
        """Always :attr:`ItemKind.EXTERNAL_LOCATION`."""
        return ItemKind.EXTERNAL_LOCATION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, with the recipient and country."""
        data = super().to_dict()
        data["recipient"] = self.recipient
        data["country"] = self.country
        data["internal"] = self.internal
        return data


@attrs.frozen(kw_only=True)
class SubsystemLink(_WithFields):
    """A subsystem (``core_files``, ``learnprivacy_store``) storing data for the component."""

    @property
    def kind(self) -> ItemKind:
        """Always :attr:`ItemKind.SUBSYSTEM_LINK`."""
        return ItemKind.SUBSYSTEM_LINK


@attrs.frozen(kw_only=True)
class UserPreference(MetadataItem):
    """A user preference the component stores (exported, never needed for the service)."""

    @property
    def kind(self) -> ItemKind:
        """Always :attr:`ItemKind.USER_PREFERENCE`."""
        return ItemKind.USER_PREFERENCE
