"""Declaring columns on the application's own models: ``personal`` and ``not_personal``.

``personal(...)`` makes a text column that only ever holds tokens (:class:`TokenText`
refuses anything else on its way to the database, so a Core ``insert`` or a query
comparing the column to a plaintext value fails before it runs, naming the column).
``blind_index=True`` adds a second column, ``<name>_bidx``, mapped on the model and
indexed, as soon as the model class is built: ``create_all`` and Alembic see it.

SQLModel models use :func:`personal_field` and :func:`not_personal_field`, the same
declarations in SQLModel's ``Field`` form.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, String, Text, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.orm import Mapper, mapped_column
from sqlalchemy.types import TypeDecorator

from learnprivacy._inplace import INDEX_SUFFIX, INFO_KEY, ColumnPrivacy
from learnprivacy.basis import DataCategory
from learnprivacy.crypto._token import PREFIX
from learnprivacy.errors import PlaintextError

__all__ = [
    "TokenText",
    "declaration_of",
    "not_personal",
    "not_personal_field",
    "personal",
    "personal_field",
]

#: Length of a blind-index value: "b1_" and at most 43 base64 characters.
_INDEX_LENGTH = 48


class _UnwrappedPlaintextError(PlaintextError, DontWrapMixin):
    """Raised from a bind processor: SQLAlchemy lets it through unwrapped (typed)."""


class TokenText(TypeDecorator[str]):
    """A text column that holds learnprivacy tokens and nothing else.

    Values bound for the database must be tokens (or ``None``): a plaintext value raises
    :class:`~learnprivacy.errors.PlaintextError` naming the column, never the value.
    Values read are returned as stored; the integration decrypts them on load.
    """

    impl = Text
    cache_ok = True

    def __init__(self, where: str = "a personal column") -> None:
        super().__init__()
        #: "table.column", set when the model is built; names the column in errors.
        self.where = where

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Let tokens and ``None`` through; refuse anything else."""
        # is_token(), inline: this runs for every personal value written or compared.
        if value is None or (type(value) is str and value.startswith(PREFIX)):
            return value
        table, _, column = self.where.partition(".")
        raise _UnwrappedPlaintextError(
            f"{self.where}: a value that is not a token was about to be written or compared "
            "(personal columns are written through the ORM session, found with "
            "LearnPrivacy.find)",
            table=table or None,
            column=column or None,
        )

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """Comparisons go through this type too, so they are checked the same way."""
        return self


def _info(declaration: ColumnPrivacy, info: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(info or {})
    merged[INFO_KEY] = declaration
    return merged


def _personal(
    category: DataCategory, description: str, blind_index: bool, exported: bool, identifier: bool
) -> ColumnPrivacy:
    """The declaration of a personal column, for :func:`personal` and :func:`personal_field`."""
    return ColumnPrivacy(
        personal=True,
        category=category,
        description=description,
        blind_index=blind_index,
        exported=exported,
        identifier=identifier,
    )


def _not_personal(category: DataCategory, description: str, exported: bool) -> ColumnPrivacy:
    """The declaration of a column that is not personal, for both ``not_personal`` forms."""
    return ColumnPrivacy(
        personal=False, category=category, description=description, exported=exported
    )


def personal(
    category: DataCategory,
    description: str,
    *,
    blind_index: bool = False,
    exported: bool = True,
    identifier: bool = False,
    nullable: bool | None = None,
    info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A personal column of a declarative model: stored encrypted, decrypted on load.

    ``blind_index=True`` adds an indexed ``<name>_bidx`` column for
    :meth:`LearnPrivacy.find` (exact match, normalised and case-folded). Other keyword
    arguments go to ``mapped_column`` (a type given there is replaced: the column stores
    tokens).
    """
    declaration = _personal(category, description, blind_index, exported, identifier)
    if nullable is not None:
        kwargs["nullable"] = nullable
    return mapped_column(TokenText(), info=_info(declaration, info), **kwargs)


def not_personal(
    description: str,
    *args: Any,
    category: DataCategory = DataCategory.NONE,
    exported: bool = True,
    info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A column that holds no personal value on its own (dates, codes, amounts).

    Positional and keyword arguments go to ``mapped_column`` (type, ``nullable``...).
    """
    declaration = _not_personal(category, description, exported)
    return mapped_column(*args, info=_info(declaration, info), **kwargs)


def personal_field(
    category: DataCategory,
    description: str,
    *,
    blind_index: bool = False,
    exported: bool = True,
    identifier: bool = False,
    nullable: bool = False,
    **kwargs: Any,
) -> Any:
    """:func:`personal` for SQLModel models (a ``sqlmodel.Field``)."""
    declaration = _personal(category, description, blind_index, exported, identifier)
    if nullable and "default" not in kwargs:
        kwargs["default"] = None
    return _model_field(declaration, kwargs, sa_type=TokenText, nullable=nullable)


def not_personal_field(
    description: str,
    *,
    category: DataCategory = DataCategory.NONE,
    exported: bool = True,
    **kwargs: Any,
) -> Any:
    """:func:`not_personal` for SQLModel models (a ``sqlmodel.Field``)."""
    return _model_field(_not_personal(category, description, exported), kwargs)


def _model_field(declaration: ColumnPrivacy, kwargs: dict[str, Any], **field: Any) -> Any:
    """A ``sqlmodel.Field`` whose column carries ``declaration`` in its ``info``."""
    from sqlmodel import Field

    column_kwargs = dict(kwargs.pop("sa_column_kwargs", None) or {})
    column_kwargs["info"] = _info(declaration, column_kwargs.get("info"))
    return Field(sa_column_kwargs=column_kwargs, **field, **kwargs)


def declaration_of(column: Any) -> ColumnPrivacy | None:
    """The :class:`ColumnPrivacy` of a table column, or ``None`` if it has none."""
    info = getattr(column, "info", None)
    found = info.get(INFO_KEY) if info else None
    return found if isinstance(found, ColumnPrivacy) else None


@event.listens_for(Mapper, "after_mapper_constructed")
def _complete_model(mapper: Mapper[Any], cls: type[Any]) -> None:
    """Name each token column in its errors and add the blind-index columns it asks for.

    Runs when a model class is built, before any ``create_all`` or Alembic comparison.
    """
    table = mapper.local_table
    if not hasattr(table, "append_column") or not hasattr(table, "name"):
        return
    for column in list(table.columns):
        declaration = declaration_of(column)
        if declaration is None or not declaration.personal:
            continue
        if isinstance(column.type, TokenText):
            column.type.where = f"{table.name}.{column.name}"
        else:
            column.type = TokenText(f"{table.name}.{column.name}")
        if not declaration.blind_index:
            continue
        index_name = column.name + INDEX_SUFFIX
        if index_name in table.columns:
            continue
        index_column: Column[Any] = Column(
            index_name, String(_INDEX_LENGTH), nullable=True, index=True
        )
        table.append_column(index_column)
        attribute = next((p.key for p in mapper.column_attrs if column in p.columns), column.name)
        mapper.add_property(attribute + INDEX_SUFFIX, index_column)
