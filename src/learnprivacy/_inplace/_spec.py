"""A bound model, ORM-independent: its table, key, subject, columns and their privacy.

:func:`build_spec` is where the declarations are checked, once, when an integration
binds to the application's models: every column must say whether it is personal (the
primary key and the subject column excepted), the subject and the date columns named by
:class:`~learnprivacy._inplace.Privacy` must exist, and nothing personal may serve as a
key. Errors name the table and the column, never a value.

A :class:`ModelSpec` also builds the *record views* the retention engine reads: plain
objects with the attributes a :class:`~learnprivacy.retention.Schedule` expects
(``id``, ``learner_id`` for rows of another table than the learners', ``basis``,
``last_activity_at``, ``contract_end_at``, the class's ``date_field``), made from a row's
clear columns. Personal values never enter a view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from learnprivacy._inplace._declare import ColumnPrivacy, Privacy
from learnprivacy._validators import is_aware
from learnprivacy.errors import ConfigurationError
from learnprivacy.records._fields import FieldInfo

__all__ = ["INDEX_SUFFIX", "ColumnSpec", "ModelSpec", "RecordView", "build_spec", "row_key"]

#: The suffix of a blind-index column's name: ``email`` is indexed in ``email_bidx``.
INDEX_SUFFIX = "_bidx"


@attrs.frozen(kw_only=True)
class ColumnSpec:
    """One declared column: ``attribute`` on the model, ``column`` in the table."""

    attribute: str
    column: str
    privacy: ColumnPrivacy

    @property
    def personal(self) -> bool:
        """Whether the column holds a personal value (stored encrypted)."""
        return self.privacy.personal

    @property
    def index_attribute(self) -> str | None:
        """The model attribute of this column's blind index, if it has one."""
        return self.attribute + INDEX_SUFFIX if self.privacy.blind_index else None

    @property
    def index_column(self) -> str | None:
        """The table column of this column's blind index, if it has one."""
        return self.column + INDEX_SUFFIX if self.privacy.blind_index else None

    def field_info(self) -> FieldInfo:
        """The column's :class:`~learnprivacy.records.FieldInfo` (named by attribute)."""
        return self.privacy.field_info(self.attribute)


class RecordView:
    """What the retention engine sees of one row: clear columns under standard names.

    Subclassed once per model (see :meth:`ModelSpec.view`), so that the class name is the
    model's name and ``date_field``/``processing_purpose`` are the model's.
    """

    date_field = "created_at"
    processing_purpose: str | None = None

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        # Views carry ids only (a learner id is personal data): show the type alone.
        return f"<{type(self).__name__} view>"


@attrs.frozen(kw_only=True)
class ModelSpec:
    """One bound model: everything the integrations need, derived from the declarations.

    ``name`` is the model class name (the key of schedules and holds, the record type in
    the audit log); ``table`` the table name (the file stem of exports and the first part
    of every token's binding context); ``primary_key`` and ``subject`` the attributes of
    the row's key and of its learner id.

    A key of several columns (an enrolment keyed ``(user_id, course_id)``) is listed in
    ``key_attributes``/``key_columns``; ``primary_key``/``primary_key_column`` then name
    its first column only. Code that handles rows by key goes through :meth:`key_of` (a
    row's key: the value itself for one column, a tuple for several) and
    :func:`row_key` (its text, the same in binding contexts and row states).
    """

    model: type[Any]
    name: str
    table: str
    primary_key: str
    primary_key_column: str
    subject: str
    subject_column: str
    privacy: Privacy
    columns: tuple[ColumnSpec, ...]
    view_class: type[RecordView]
    key_attributes: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda self: (self.primary_key,), takes_self=True)
    )
    key_columns: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda self: (self.primary_key_column,), takes_self=True)
    )

    @property
    def composite(self) -> bool:
        """Whether the table's primary key has several columns."""
        return len(self.key_attributes) > 1

    @property
    def is_subject_table(self) -> bool:
        """Whether each row is a learner's own account (its key is the learner id)."""
        return not self.composite and self.subject == self.primary_key

    def key_of(self, row: Mapping[str, Any]) -> Any:
        """The key of a row given as ``{attribute: value}``: its one value, or the tuple of
        its values for a key of several columns; ``None`` while any part is unknown."""
        names = self.key_attributes
        if len(names) == 1:
            return row.get(self.primary_key)
        parts = tuple([row.get(name) for name in names])
        return None if None in parts else parts

    def key_values(self, key: Any) -> dict[str, Any]:
        """``{attribute: value}`` of the key ``key`` (as :meth:`key_of` returns it)."""
        if not self.composite:
            return {self.primary_key: key}
        return dict(zip(self.key_attributes, key, strict=True))

    def anonymised_subject(self, *, nullable: bool) -> str | None:
        """The learner id this table's anonymised rows get: ``NULL`` where the column
        (``nullable``) allows it, else :attr:`Privacy.anonymous`.

        Raises :class:`~learnprivacy.errors.ConfigurationError`, naming table and column,
        where the learner id cannot leave the row: it is the row's key or part of it, or
        it cannot be ``NULL`` and no placeholder is declared. An anonymised row that
        still names its learner is not anonymised.
        """
        where = f"{self.table}.{self.subject_column}"
        if self.subject in self.key_attributes:
            raise ConfigurationError(
                f"{where} is the learner id and part of the table's key: anonymising would "
                "keep it; erase these rows instead"
            )
        if nullable:
            return None
        if self.privacy.anonymous is not None:
            return self.privacy.anonymous
        raise ConfigurationError(
            f"{where} cannot be NULL: anonymising would keep the learner id; make it "
            "nullable, declare Privacy(anonymous=<a placeholder account id>), or erase instead"
        )

    @property
    def scope(self) -> str:
        """The key scope of the table's personal values."""
        return self.privacy.key_scope

    @property
    def personal(self) -> tuple[ColumnSpec, ...]:
        """The personal (encrypted) columns, in declaration order."""
        return tuple(c for c in self.columns if c.personal)

    @property
    def clear(self) -> tuple[ColumnSpec, ...]:
        """The declared columns stored in clear."""
        return tuple(c for c in self.columns if not c.personal)

    @property
    def indexed(self) -> tuple[ColumnSpec, ...]:
        """The personal columns with a blind index."""
        return tuple(c for c in self.columns if c.privacy.blind_index)

    @property
    def description(self) -> str:
        """The table's summary in exports and in the register."""
        return self.privacy.description or self.privacy.purpose

    def column(self, attribute: str) -> ColumnSpec:
        """The declared column of ``attribute``; ``ConfigurationError`` if undeclared."""
        for column in self.columns:
            if column.attribute == attribute:
                return column
        raise ConfigurationError(f"{self.table}.{attribute} is not a declared column")

    def field_infos(self) -> tuple[FieldInfo, ...]:
        """The :class:`~learnprivacy.records.FieldInfo` of every declared column."""
        return tuple(c.field_info() for c in self.columns)

    def view(self, row: Mapping[str, Any]) -> RecordView:
        """The record view of a row given as ``{attribute: value}`` (clear columns only).

        Personal attributes in ``row`` are ignored: a view never holds a personal value.
        """
        values: dict[str, Any] = {
            c.attribute: _aware(row.get(c.attribute)) for c in self.clear if c.attribute in row
        }
        values["id"] = row_key(self.key_of(row))
        if not self.is_subject_table:
            subject = row.get(self.subject)
            values["learner_id"] = None if subject is None else str(subject)
        values["basis"] = self.privacy.basis
        declared = self.privacy
        for standard, attribute in (
            ("last_activity_at", declared.activity),
            ("contract_end_at", declared.contract_end),
            ("created_at", declared.created),
        ):
            if attribute is not None:
                values[standard] = _aware(row.get(attribute))
        return self.view_class(values)


def row_key(key: object) -> str:
    """The text of a row's key: ``str(key)`` for one column (as tokens have always been
    bound), an unambiguous encoding of the parts for several.

    Each part is written ``<length>:<text>`` and the parts are joined by ``,``: the
    lengths decide where a part ends, so a part holding ``,``, ``:`` or ``/`` cannot be
    read as two parts or merged with its neighbour (``("a,1:b", "c")`` and
    ``("a", "b,1:c")`` have different texts). The same text is computed in SQL by the
    integrations (length, cast and concatenation), for conditions on row states.
    """
    if type(key) is not tuple:
        return str(key)
    return ",".join([f"{len(text)}:{text}" for text in map(str, key)])


def _aware(value: Any) -> Any:
    """Naive datetimes read from a table are UTC (SQLite keeps no offset): made aware."""
    if isinstance(value, dt.datetime) and not is_aware(value):
        return value.replace(tzinfo=dt.UTC)
    return value


def _check_name(kind: str, table: str, name: str) -> None:
    if "/" in name:
        # Binding contexts are "table/key/column": the first and last slash must separate.
        raise ConfigurationError(f"{table}: {kind} names must not contain '/'")


def build_spec(
    model: type[Any],
    *,
    table: str,
    primary_key: Sequence[tuple[str, str]],
    columns: Sequence[tuple[str, str, ColumnPrivacy | None]],
    privacy: object,
) -> ModelSpec:
    """Check the declarations of ``model`` and return its :class:`ModelSpec`.

    ``primary_key`` lists ``(attribute, column)`` of the key's columns (one or several);
    ``columns`` lists ``(attribute, column, declaration or None)`` of every other mapped
    column, blind-index columns excluded. Raises
    :class:`~learnprivacy.errors.ConfigurationError` naming the table and the column for
    an undeclared column, a missing or personal subject, a missing or personal date
    column, a personal primary key.
    """
    if not isinstance(privacy, Privacy):
        raise ConfigurationError(f"{table}: __privacy__ must be a Privacy(...) declaration")
    _check_name("table", table, table)
    if not primary_key:
        raise ConfigurationError(f"{table}: a declared table needs a primary key")
    key_attribute, key_column = primary_key[0]
    key_attributes = tuple(attribute for attribute, _ in primary_key)
    specs: list[ColumnSpec] = []
    by_attribute: dict[str, ColumnPrivacy | None] = dict.fromkeys(key_attributes)
    for attribute, column, declared in columns:
        _check_name("column", table, column)
        by_attribute[attribute] = declared
        if declared is None:
            if attribute == privacy.subject or attribute in key_attributes:
                continue
            raise ConfigurationError(
                f"{table}.{column} is not declared: use personal(...) or not_personal(...)"
            )
        if attribute in key_attributes:
            if declared.personal:
                raise ConfigurationError(f"{table}.{column}: a primary key cannot be encrypted")
            continue
        specs.append(ColumnSpec(attribute=attribute, column=column, privacy=declared))
    if privacy.subject not in by_attribute:
        raise ConfigurationError(f"{table}: the subject column {privacy.subject!r} does not exist")
    subject_declared = by_attribute[privacy.subject]
    if subject_declared is not None and subject_declared.personal:
        raise ConfigurationError(
            f"{table}.{privacy.subject}: the subject column is a key, it cannot be encrypted"
        )
    for role in ("activity", "created", "contract_end"):
        attribute = getattr(privacy, role)
        if attribute is None:
            continue
        if attribute not in by_attribute:
            raise ConfigurationError(f"{table}: the {role} column {attribute!r} does not exist")
        declared = by_attribute[attribute]
        if declared is not None and declared.personal:
            raise ConfigurationError(
                f"{table}.{attribute}: the {role} date is read by retention sweeps in SQL, "
                "it must be declared not_personal"
            )
    for field, named in privacy.consents or ():
        if named is None:
            continue
        if named not in by_attribute:
            raise ConfigurationError(
                f"{table}: the consents column {field} ({named!r}) does not exist"
            )
        declared = by_attribute[named]
        if declared is not None and declared.personal:
            raise ConfigurationError(
                f"{table}.{named}: consent {field} is read by sweeps in SQL, "
                "it must be declared not_personal"
            )
    subject_column = next(
        (column for attribute, column, _ in columns if attribute == privacy.subject),
        next((column for attribute, column in primary_key if attribute == privacy.subject), ""),
    )
    name = model.__name__
    view_class = type(
        name,
        (RecordView,),
        {
            "__module__": __name__,
            "date_field": "created_at",
            "processing_purpose": privacy.purpose,
        },
    )
    return ModelSpec(
        model=model,
        name=name,
        table=table,
        primary_key=key_attribute,
        primary_key_column=key_column,
        subject=privacy.subject,
        subject_column=subject_column,
        privacy=privacy,
        columns=tuple(specs),
        view_class=view_class,
        key_attributes=key_attributes,
        key_columns=tuple(column for _, column in primary_key),
    )
