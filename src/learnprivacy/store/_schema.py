"""One SQL table per record type, derived from the record's field metadata.

Each field becomes columns according to its privacy declaration and type:

=================================  ==================================================
personal, encrypted                ``<field>_token``: the FieldCipher token, nothing else
  ... with ``blind_index=True``    ``<field>_bidx``: keyed blind index, indexed
``Score``                          ``<field>_raw``, ``_min``, ``_max`` (exact) and
                                   ``<field>_kinds`` (which of int/float/Decimal each was)
``datetime``                       naive UTC timestamp
``Decimal``                        :class:`ExactDecimal`
enums                              their value as text (``LawfulBasis``: its name)
``timedelta``                      whole microseconds, ``BIGINT``
``str``/``int``/``float``/``bool``  the matching SQL type
=================================  ==================================================

plus three bookkeeping columns: ``lp_restricted_at``, ``lp_restriction_reason`` and
``lp_anonymised_at``. Personal columns are all nullable, since anonymisation empties them.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from learnprivacy.errors import ConfigurationError
from learnprivacy.records import Score, fields_of
from learnprivacy.store._types import ExactDecimal

__all__ = [
    "ANONYMISED",
    "BOOKKEEPING",
    "BUILTIN_TYPES",
    "METADATA",
    "REASON",
    "RESTRICTED",
    "FieldSpec",
    "Kind",
    "RecordTable",
    "table_name",
]

#: Naming convention so that index and constraint names are stable across databases and
#: migrations can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

#: The metadata every store table belongs to (fixed tables and record tables).
METADATA = MetaData(naming_convention=NAMING)

RESTRICTED = "lp_restricted_at"
REASON = "lp_restriction_reason"
ANONYMISED = "lp_anonymised_at"
BOOKKEEPING = (RESTRICTED, REASON, ANONYMISED)

#: Record types whose tables the versioned migrations create; any other registered type
#: gets its table created on first use.
BUILTIN_TYPES = (
    "Learner",
    "Progress",
    "Certificate",
    "Invoice",
    "Consent",
    "Funding",
    "AccessEvent",
)


class Kind(enum.Enum):
    """How a field's value is stored."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    DATE = "date"
    TIMEDELTA = "timedelta"
    ENUM = "enum"
    SCORE = "score"


_SIMPLE: dict[Any, Kind] = {
    str: Kind.TEXT,
    int: Kind.INT,
    float: Kind.FLOAT,
    bool: Kind.BOOL,
    Decimal: Kind.DECIMAL,
    dt.datetime: Kind.DATETIME,
    dt.date: Kind.DATE,
    dt.timedelta: Kind.TIMEDELTA,
    Score: Kind.SCORE,
}


@attrs.frozen
class FieldSpec:
    """How one record field maps to columns."""

    name: str
    kind: Kind
    optional: bool
    personal: bool
    encrypted: bool
    identifier: bool
    blind_index: bool
    enum_type: type[enum.Enum] | None = None

    @property
    def token_column(self) -> str:
        """Column of the ciphertext of an encrypted field."""
        return f"{self.name}_token"

    @property
    def index_column(self) -> str:
        """Column of the blind index of a blind-indexed field."""
        return f"{self.name}_bidx"

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column this field occupies."""
        if self.encrypted:
            extra = (self.index_column,) if self.blind_index else ()
            return (self.token_column, *extra)
        if self.kind is Kind.SCORE:
            return tuple(f"{self.name}_{part}" for part in ("raw", "min", "max", "kinds"))
        return (self.name,)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise ConfigurationError("the store supports one type per field (or None)")
        return args[0], True
    return tp, False


def _spec(cls: type[Any], name: str, hint: Any) -> FieldSpec:
    info = next(f for f in fields_of(cls) if f.name == name)
    tp, optional = _strip_optional(hint)
    enum_type: type[enum.Enum] | None = None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        kind, enum_type = Kind.ENUM, tp
    elif tp in _SIMPLE:
        kind = _SIMPLE[tp]
    else:
        raise ConfigurationError(
            f"{cls.__name__}.{name} has a type the store cannot persist"
            " (str, int, float, bool, Decimal, datetime, date, timedelta, enum, Score)"
        )
    if info.encrypted and kind is Kind.SCORE:
        raise ConfigurationError(f"{cls.__name__}.{name}: an encrypted Score is not supported")
    if name.startswith("lp_"):
        raise ConfigurationError(f"{cls.__name__}.{name}: field names must not start with lp_")
    return FieldSpec(
        name=name,
        kind=kind,
        optional=optional,
        personal=info.personal,
        encrypted=info.encrypted,
        identifier=info.identifier,
        blind_index=info.encrypted and info.blind_index,
        enum_type=enum_type,
    )


def _sql_type(spec: FieldSpec) -> TypeEngine[Any]:
    if spec.kind is Kind.TEXT:
        return String(255) if spec.identifier or spec.name.endswith("_id") else Text()
    types: dict[Kind, TypeEngine[Any]] = {
        Kind.INT: BigInteger(),
        Kind.FLOAT: Float(),
        Kind.BOOL: Boolean(),
        Kind.DECIMAL: ExactDecimal(),
        Kind.DATETIME: DateTime(),
        Kind.DATE: Date(),
        Kind.TIMEDELTA: BigInteger(),
        Kind.ENUM: String(64),
    }
    return types[spec.kind]


def table_name(cls: type[Any]) -> str:
    """``lp_`` and the snake_case class name: ``AccessEvent`` -> ``lp_access_event``."""
    return "lp_" + re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class RecordTable:
    """The table of one record type and the column layout of each of its fields."""

    __slots__ = (
        "cls",
        "fields",
        "has_learner",
        "id_personal",
        "name",
        "scope",
        "subject_column",
        "table",
    )

    def __init__(self, cls: type[Any]) -> None:
        if not attrs.has(cls):
            raise ConfigurationError(f"{cls.__name__} is not an attrs record class")
        hints = typing.get_type_hints(cls)
        names = [a.name for a in attrs.fields(cls)]
        if "id" not in names:
            raise ConfigurationError(f"{cls.__name__} has no id field")
        self.cls: type[Any] = cls
        self.name: str = cls.__name__
        scope = getattr(cls, "key_scope", None)
        if not isinstance(scope, str):
            raise ConfigurationError(f"{cls.__name__} declares no key_scope")
        self.scope = scope
        self.fields = tuple(_spec(cls, n, hints[n]) for n in names)
        by_name = {f.name: f for f in self.fields}
        if by_name["id"].encrypted:
            raise ConfigurationError(f"{cls.__name__}.id must not be encrypted")
        self.has_learner = "learner_id" in by_name
        if self.has_learner and by_name["learner_id"].encrypted:
            raise ConfigurationError(f"{cls.__name__}.learner_id must not be encrypted")
        self.subject_column = "learner_id" if self.has_learner else "id"
        #: Whether the id is itself personal (a Learner's id is the learner id).
        self.id_personal = by_name["id"].personal
        self.table = self._build()

    def _build(self) -> Table:
        existing = METADATA.tables.get(table_name(self.cls))
        if existing is not None:
            return existing
        columns: list[Column[Any]] = []
        indexes: list[Index] = []
        tname = table_name(self.cls)
        for spec in self.fields:
            if spec.name == "id":
                columns.append(Column("id", String(255), primary_key=True))
            elif spec.encrypted:
                columns.append(Column(spec.token_column, Text(), nullable=True))
                if spec.blind_index:
                    columns.append(Column(spec.index_column, String(64), nullable=True))
                    indexes.append(Index(f"ix_{tname}_{spec.index_column}", spec.index_column))
            elif spec.kind is Kind.SCORE:
                for part in ("raw", "min", "max"):
                    columns.append(Column(f"{spec.name}_{part}", ExactDecimal(), nullable=True))
                columns.append(Column(f"{spec.name}_kinds", String(3), nullable=True))
            else:
                nullable = spec.optional or (spec.personal and not spec.identifier)
                columns.append(Column(spec.name, _sql_type(spec), nullable=nullable))
                # Sweeps select on dates and join on the learner; both need an index. The
                # learner's index also holds the id, so that reading a learner's records
                # page by page (``id > last ORDER BY id``) is a range scan of the index.
                if spec.name == "learner_id":
                    indexes.append(Index(f"ix_{tname}_learner_id_id", "learner_id", "id"))
                elif spec.kind is Kind.DATETIME:
                    indexes.append(Index(f"ix_{tname}_{spec.name}", spec.name))
        columns.append(Column(RESTRICTED, DateTime(), nullable=True))
        columns.append(Column(REASON, Text(), nullable=True))
        columns.append(Column(ANONYMISED, DateTime(), nullable=True))
        # The re-check after an anonymisation reads the rows anonymised since a moment
        # (``lp_anonymised_at >= since``): an index, not a scan of the whole table.
        indexes.append(Index(f"ix_{tname}_{ANONYMISED}", ANONYMISED))
        return Table(tname, METADATA, *columns, *indexes)

    def __repr__(self) -> str:
        return f"RecordTable({self.name}, table={self.table.name!r})"
