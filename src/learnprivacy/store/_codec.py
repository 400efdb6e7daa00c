"""Records to rows and back: encryption, blind indexes and typed columns.

A codec is built once per (record type, cipher) and reused: the per-field work is looked
up once, so that converting a row is a loop over precomputed steps.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy import _validators as v
from learnprivacy.basis import LawfulBasis
from learnprivacy.crypto import BlindIndex, FieldCipher
from learnprivacy.crypto._token import Opener
from learnprivacy.errors import LearnPrivacyError, ValidationError
from learnprivacy.records import Score
from learnprivacy.store._schema import FieldSpec, Kind, RecordTable
from learnprivacy.store._types import from_utc, to_utc

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

__all__ = ["Codec", "Convert", "column_value"]

#: A driver conversion of one column's value (see ``_bulk.insert_plan``).
Convert = Callable[[Any], Any]

_EPOCH_MICROS = 1_000_000


def _micros(value: dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * _EPOCH_MICROS + value.microseconds


def _enum_out(member: enum.Enum) -> str:
    if isinstance(member, LawfulBasis):
        return member.name.lower()
    return member.value if isinstance(member.value, str) else member.name


def _enum_in(enum_type: type[enum.Enum]) -> Callable[[str], enum.Enum]:
    # A dict from stored text to member: one lookup per value on the read path.
    table = {_enum_out(member): member for member in enum_type}

    def load(text: str) -> enum.Enum:
        member = table.get(text)
        if member is None:
            member = enum_type[text] if enum_type is not LawfulBasis else LawfulBasis[text.upper()]
        return member

    return load


_NUMBER_KINDS = {int: "i", float: "f", Decimal: "d"}


def _score_out(score: Score) -> tuple[Decimal, Decimal, Decimal, str]:
    parts = (score.raw, score.min, score.max)
    kinds = "".join(_NUMBER_KINDS.get(type(p), "d") for p in parts)
    raw, low, high = (Decimal(repr(p)) if type(p) is float else Decimal(p) for p in parts)
    return raw, low, high, kinds


def _number_in(value: Decimal, kind: str) -> int | float | Decimal:
    if kind == "i":
        return int(value)
    if kind == "f":
        return float(value)
    return value


def _same(value: Any) -> Any:
    return value


def _bool_text(value: bool) -> str:
    return "1" if value else "0"


# How each kind of field converts, one table per direction: Python value -> column value
# (typed clear fields), column value -> Python, Python -> encrypted text, text -> Python.
# ENUM reads need the field's enum type (see _enum_in); unlisted kinds pass through.
_TO_COLUMN: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATETIME: to_utc,
    Kind.TIMEDELTA: _micros,
    Kind.ENUM: _enum_out,
}
_FROM_COLUMN: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATETIME: from_utc,
    Kind.TIMEDELTA: lambda value: dt.timedelta(microseconds=value),
    Kind.FLOAT: float,
    Kind.INT: int,
    Kind.BOOL: bool,
}
_TO_TEXT: dict[Kind, Callable[[Any], str]] = {
    Kind.TEXT: _same,
    Kind.DATETIME: lambda value: value.isoformat(),
    Kind.DATE: lambda value: value.isoformat(),
    Kind.TIMEDELTA: lambda value: str(_micros(value)),
    Kind.ENUM: _enum_out,
    Kind.BOOL: _bool_text,
    Kind.FLOAT: repr,
}
_FROM_TEXT: dict[Kind, Callable[[str], Any]] = {
    Kind.DATETIME: dt.datetime.fromisoformat,
    Kind.DATE: dt.date.fromisoformat,
    Kind.TIMEDELTA: lambda text: dt.timedelta(microseconds=int(text)),
    Kind.BOOL: lambda text: text == "1",
    Kind.FLOAT: float,
    Kind.INT: int,
    Kind.DECIMAL: Decimal,
}


def _to_column(spec: FieldSpec) -> Callable[[Any], Any]:
    """Python value -> column value for a typed (clear) field; None passes through."""
    return _TO_COLUMN.get(spec.kind, _same)


def column_value(spec: FieldSpec, value: Any) -> Any:
    """The column value of ``value`` for a clear (not encrypted, not Score) field."""
    return None if value is None else _to_column(spec)(value)


def _reader(spec: FieldSpec, table: dict[Kind, Callable[[Any], Any]]) -> Callable[[Any], Any]:
    if spec.kind is Kind.ENUM:
        assert spec.enum_type is not None  # set for every ENUM spec
        return _enum_in(spec.enum_type)
    return table.get(spec.kind, _same)


def _from_column(spec: FieldSpec) -> Callable[[Any], Any]:
    return _reader(spec, _FROM_COLUMN)


def _to_text(spec: FieldSpec) -> Callable[[Any], str]:
    """Python value -> the text that is encrypted, for an encrypted field."""
    return _TO_TEXT.get(spec.kind, str)


def _from_text(spec: FieldSpec) -> Callable[[str], Any]:
    return _reader(spec, _FROM_TEXT)


#: Reads one row into a record, given the openers of the page's subjects (see from_row).
RowReader = Callable[[Sequence[Any], dict[str, dict[str, Opener]] | None], Any]


def _processor(
    processors: Sequence[Callable[[Any], Any] | None] | None, at: int
) -> Callable[[Any], Any] | None:
    return None if processors is None else processors[at]


def _processed(processor: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if value is None or processor is None else processor(value)


def _then(
    first: Callable[[Any], Any] | None, then: Callable[[Any], Any] | None
) -> Callable[[Any], Any] | None:
    """``then(first(value))`` in one call, either step optional (``None``: none at all)."""
    if first is None:
        return then
    if then is None:
        return first
    after, before = then, first

    def both(value: Any) -> Any:
        return after(before(value))

    return both


#: What converting a stored clear value may raise when the column holds what this library
#: never writes there (text that is no date, no member of the field's enum, a number where
#: text belongs): the read raises :func:`_unreadable`'s error instead, quoting nothing.
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError)


def _unreadable(type_name: str, field: str) -> ValidationError:
    """The error of a row whose ``field`` cannot be read as its type (the value unsaid)."""
    where = f"{type_name}.{field}"
    return ValidationError(f"{where}: the stored value cannot be read as its type", field=where)


_Check = tuple[Any, str, Callable[[Any, Any, Any], Any]]
#: Validators a converted value needs no more (see _Checks): the read conversion of a
#: DATETIME column (``from_utc``) only ever returns an aware ``datetime``.
_VOUCHED_BY_CONVERSION = {Kind.DATETIME: (v.aware_datetime, v.optional_aware_datetime)}


@attrs.frozen
class _Checks:
    """The validators a record read back still runs (see :func:`_checks`).

    * ``always``: ``(attribute, name, validator)`` run once every field is set;
    * ``when_none``: by field name, ``(attribute, validator)`` run only when the value is
      ``None`` (the column was NULL), as soon as it is read;
    * ``ids``: the validators of the record id and learner id fields, run only when no
      token of the row was opened.
    """

    always: tuple[_Check, ...]
    when_none: dict[str, tuple[Any, Callable[[Any, Any, Any], Any]]]
    ids: tuple[_Check, ...]


def _checks(cls: type[Any], specs: Sequence[FieldSpec], subject_column: str) -> _Checks | None:
    """The validators a record of ``cls`` read back still runs (``specs``: how its fields
    are stored; ``subject_column``: its learner id field); ``None`` for a class that
    must be made by calling it (its construction does more than set fields and run
    validators: converters, ``__attrs_post_init__``, fields outside ``__init__``).

    Every validator of a value that a tampered column could make wrong still runs, with
    the same errors ``cls(**values)`` raises. Three kinds of check are skipped, each
    because something else already guarantees what the validator checks:

    * an encrypted field's validator, when its token was opened: AES-GCM vouches that
      the value is the very text this library encrypted for this record, learner and
      field, from a record whose validators accepted it when it was made. A NULL token
      gives ``None``, which the field's validator still judges;
    * a DATETIME field's ``aware_datetime`` validator, when the column is not NULL: the
      read conversion makes an aware UTC ``datetime`` or raises (``from_utc`` after the
      column type's own parser); a NULL still meets the validator;
    * the record id's and learner id's validators, when at least one token of the row
      was opened: the associated data of every token binds the record id (in its
      context) and the learner id (its subject), so an opened token proves both are the
      ids the record was encrypted with, which its validators accepted. A row whose
      tokens are all NULL has its ids validated.
    """
    fields = attrs.fields(cls)
    plain = (
        getattr(cls, "__attrs_post_init__", None) is None
        and getattr(cls, "__attrs_pre_init__", None) is None
        and all(a.init and a.converter is None and a.alias == a.name for a in fields)
    )
    if not plain:
        return None
    by_name = {spec.name: spec for spec in specs}
    ids = {"id", subject_column} if any(spec.encrypted for spec in specs) else set()
    always: list[_Check] = []
    when_none: dict[str, tuple[Any, Callable[[Any, Any, Any], Any]]] = {}
    id_checks: list[_Check] = []
    for a in fields:
        check = a.validator
        spec = by_name.get(a.name)
        if check is None:
            continue
        if a.name in ids:
            id_checks.append((a, a.name, check))
        elif spec is not None and (
            spec.encrypted or check in _VOUCHED_BY_CONVERSION.get(spec.kind, ())
        ):
            when_none[a.name] = (a, check)
        else:
            always.append((a, a.name, check))
    return _Checks(tuple(always), when_none, tuple(id_checks))


class Codec:
    """Converts between records of one type and rows of its table."""

    __slots__ = (
        "_builders",
        "_cipher",
        "_columns",
        "_facts",
        "_field_columns",
        "_index",
        "_opened",
        "_plain_at",
        "_raw",
        "_read",
        "_skeleton",
        "_to_fields",
        "rt",
    )

    def __init__(self, rt: RecordTable, cipher: FieldCipher, index: BlindIndex) -> None:
        self.rt = rt
        self._cipher = cipher
        self._index = index
        positions = {column.name: i for i, column in enumerate(rt.table.columns)}
        self._columns = positions
        # Personal fields are encrypted and decrypted a record at a time (one key lookup
        # for all of a record's fields); the others convert field by field. to_row gives
        # the columns of the fields, in the fields' order, with no driver conversion.
        self._field_columns = [name for spec in rt.fields for name in spec.columns]
        self._to_fields = self.values_builder(self._field_columns, None)
        self._builders: dict[str, Callable[[Any], tuple[Any, ...]] | None] = {}
        # The text of a TEXT field is its value: no conversion to call (None).
        self._opened = [
            (
                spec.name,
                f"{rt.name}/{{}}/{spec.name}",
                positions[spec.token_column],
                None if _from_text(spec) is _same else _from_text(spec),
            )
            for spec in rt.fields
            if spec.encrypted
        ]
        self._read = self._reader(None)
        # Columns read as they come (ids and tokens); rows whose driver values for them
        # would need processing are read through SQLAlchemy (see raw_reader).
        self._plain_at = [positions["id"], positions[rt.subject_column]]
        self._plain_at += [at for _, _, at, _ in self._opened]
        self._raw: dict[tuple[str, tuple[Any, ...]], RowReader] = {}
        self._skeleton = [
            (spec.name, None if spec.encrypted else self._decoder(spec, positions)[1])
            for spec in rt.fields
        ]
        self._facts = [
            (spec.name, self._decoder(spec, positions)[1])
            for spec in rt.fields
            if not spec.personal
        ]

    def position(self, column: str) -> int:
        """The index of ``column`` in a row selected with ``select(table)``."""
        return self._columns[column]

    # -- record -> row ---------------------------------------------------------------------

    def to_row(self, record: Any) -> dict[str, Any]:
        """The column values of ``record`` (personal fields encrypted), by column name:
        every column of its fields, ``None`` where the value is ``None``."""
        return dict(zip(self._field_columns, self._to_fields(record), strict=True))

    def insert_values(
        self, dialect: str, names: Sequence[str], converters: Sequence[Convert | None]
    ) -> Callable[[Any], tuple[Any, ...]] | None:
        """How a record becomes a row to insert, as ``_bulk.insert_plan`` describes it
        for ``dialect``: the values of the table's columns ``names``, in that order, each
        passed through its ``converters`` entry (the driver's form), ``None`` for a
        column no field sets. Built once per dialect. ``None`` where a token or blind
        index column would be converted (text every driver here takes as it is): such
        rows go through :meth:`to_row`."""
        if dialect not in self._builders:
            at = {name: i for i, name in enumerate(names)}
            texts = [c for spec in self.rt.fields if spec.encrypted for c in spec.columns]
            self._builders[dialect] = (
                None
                if any(converters[at[c]] is not None for c in texts)
                else self.values_builder(names, converters)
            )
        return self._builders[dialect]

    def values_builder(
        self, names: Sequence[str], converters: Sequence[Convert | None] | None
    ) -> Callable[[Any], tuple[Any, ...]]:
        """A function of a record giving the values of the columns ``names`` in that order
        (personal fields encrypted, blind indexes computed), each then passed through
        ``converters[i]`` when it is not ``None``; columns that are no field's are
        ``None``. Every column of the record type's fields must be in ``names``.
        """
        at = {name: i for i, name in enumerate(names)}

        def driver(name: str) -> Convert | None:
            return None if converters is None else converters[at[name]]

        width = len(names)
        rt = self.rt
        # Clear single-column fields: (name, position, conversion or None).
        clear: list[tuple[str, int, Convert | None]] = []
        # Score fields: (name, ((position, conversion) of each of its four columns)).
        scores: list[tuple[str, tuple[tuple[int, Convert | None], ...]]] = []
        # Encrypted fields: (name, token position, blind index position or -1, text
        # conversion or None for the value itself, blind index field name). Each token's
        # context is "<type>/<record id>/<field>" (the reader's, see _reader).
        sealed: list[tuple[str, int, int, Callable[[Any], str] | None, str]] = []
        for spec in rt.fields:
            if spec.encrypted:
                to_text = _to_text(spec)
                sealed.append(
                    (
                        spec.name,
                        at[spec.token_column],
                        at[spec.index_column] if spec.blind_index else -1,
                        None if to_text is _same else to_text,
                        f"{rt.name}.{spec.name}",
                    )
                )
            elif spec.kind is Kind.SCORE:
                scores.append((spec.name, tuple((at[c], driver(c)) for c in spec.columns)))
            else:
                to_column = _to_column(spec)
                first = None if to_column is _same else to_column
                clear.append((spec.name, at[spec.name], _then(first, driver(spec.name))))
        has_learner = rt.has_learner
        scope = rt.scope
        type_name = rt.name
        encrypt_many = self._cipher.encrypt_many
        compute = self._index.compute

        def build(record: Any) -> tuple[Any, ...]:
            values: list[Any] = [None] * width
            for name, i, convert in clear:
                value = getattr(record, name)
                if value is not None:
                    values[i] = value if convert is None else convert(value)
            for name, places in scores:
                value = getattr(record, name)
                if value is not None:
                    for (i, convert), part in zip(places, _score_out(value), strict=True):
                        values[i] = part if convert is None else convert(part)
            if not sealed:
                return tuple(values)
            record_id = record.id
            subject = record.learner_id if has_learner else record_id
            head = f"{type_name}/{record_id}/"
            texts: list[str] = []
            contexts: list[str] = []
            present = []
            for item in sealed:
                value = getattr(record, item[0])
                if value is not None:
                    texts.append(value if item[3] is None else item[3](value))
                    contexts.append(head + item[0])
                    present.append(item)
            tokens = encrypt_many(texts, subject=subject, contexts=contexts, scope=scope)
            for (_, token_at, index_at, _, field), text, token in zip(
                present, texts, tokens, strict=True
            ):
                values[token_at] = token
                if index_at >= 0:
                    values[index_at] = compute(text, field=field)
            return tuple(values)

        return build

    def blind_index(self, field: str, value: str) -> str:
        """The blind index of ``value`` for ``field`` of this record type."""
        return self._index.compute(value, field=f"{self.rt.name}.{field}")

    # -- row -> record ---------------------------------------------------------------------

    def _decoder(
        self,
        spec: FieldSpec,
        positions: dict[str, int],
        processors: Sequence[Callable[[Any], Any] | None] | None = None,
    ) -> tuple[str, Callable[[Sequence[Any], str, str], Any]]:
        name = spec.name
        if spec.kind is Kind.SCORE:
            at = positions[f"{name}_raw"]
            parts = [_processor(processors, at + i) for i in range(4)]

            def decode_score(row: Sequence[Any], _id: str, _subject: str) -> Any:
                kinds = row[at + 3]
                if kinds is None:
                    return None
                if parts[3] is not None:
                    kinds = parts[3](kinds)
                raw, low, high = (
                    _number_in(_processed(parts[i], row[at + i]), kinds[i]) for i in range(3)
                )
                return Score(raw=raw, min=low, max=high)

            return name, decode_score
        at = positions[name]
        convert = _then(_processor(processors, at), _from_column(spec))

        def decode(row: Sequence[Any], _id: str, _subject: str) -> Any:
            return _processed(convert, row[at])

        return name, decode

    def _readers(
        self,
        specs: list[FieldSpec],
        positions: dict[str, int],
        processors: Sequence[Callable[[Any], Any] | None] | None = None,
    ) -> tuple[
        list[tuple[str, int, Callable[[Any], Any] | None]],
        list[tuple[str, Callable[[Sequence[Any], str, str], Any]]],
    ]:
        """How to read the clear fields ``specs`` from rows whose columns sit at
        ``positions``: ``(name, position, conversion)`` steps, read inline on the hot
        paths (position -1: not selected, ``None``; conversion ``None``: the column's
        value as it is), and the decoders of Score fields, spread over several columns.
        ``processors``: see :meth:`_reader`.
        """
        steps: list[tuple[str, int, Callable[[Any], Any] | None]] = []
        composite: list[tuple[str, Callable[[Sequence[Any], str, str], Any]]] = []
        for spec in specs:
            if spec.columns[0] not in positions:
                steps.append((spec.name, -1, None))
            elif spec.kind is Kind.SCORE:
                composite.append((spec.name, self._decoder(spec, positions, processors)[1]))
            else:
                at = positions[spec.name]
                plain = spec.kind in (Kind.TEXT, Kind.DATE, Kind.DECIMAL)
                convert = None if plain else _from_column(spec)
                steps.append((spec.name, at, _then(_processor(processors, at), convert)))
        return steps, composite

    def _ids(self, row: Sequence[Any]) -> tuple[str, str]:
        record_id = row[self._columns["id"]]
        subject = row[self._columns[self.rt.subject_column]]
        return record_id, subject

    def from_row(
        self, row: Sequence[Any], openers: dict[str, dict[str, Opener]] | None = None
    ) -> Any:
        """The record of ``row``, its personal fields decrypted and every field validated.

        ``openers``: the keyring's openers of the subjects of the rows being read (see
        :func:`learnprivacy.store._reads.decode_rows`); without them, or for a subject
        they leave out, the cipher finds the keys itself.
        """
        return self._read(row, openers)

    def raw_reader(self, dialect: Dialect, description: Sequence[Any]) -> RowReader | None:
        """:meth:`from_row` for rows straight from the driver's cursor (``select(table)``
        run by SQLAlchemy, the rows fetched from ``CursorResult.cursor``), whose columns
        are described by ``description``: each column's value goes through the result
        processor SQLAlchemy itself would apply (the same one, from the column's type),
        then the field's own conversion, in one step.

        ``None`` where the row does not have this table's columns, or where an id, learner
        or token column would need processing: read such rows through SQLAlchemy.
        """
        columns = self.rt.table.columns
        if len(description) != len(columns):
            return None
        key = (dialect.name, tuple(item[1] for item in description))
        read = self._raw.get(key)
        if read is None:
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, item[1])
                for column, item in zip(columns, description, strict=True)
            ]
            if any(processors[at] is not None for at in self._plain_at):
                return None
            read = self._raw[key] = self._reader(processors)
        return read

    def _reader(self, processors: Sequence[Callable[[Any], Any] | None] | None) -> RowReader:
        """How a row becomes a record: the body of :meth:`from_row`, its steps compiled
        for rows whose column values go through ``processors`` first (by position;
        ``None``: rows SQLAlchemy processed already).

        For a class that :func:`_checks` allows, the record is made and its fields set
        as they are read, then the remaining validators run; any other class is called
        with the values.
        """
        positions = self._columns
        cls = self.rt.cls
        checks = _checks(cls, self.rt.fields, self.rt.subject_column)
        when_none = {} if checks is None else checks.when_none
        steps, composite = self._readers(
            [spec for spec in self.rt.fields if not spec.encrypted], positions, processors
        )
        # Each step with the check its NULL meets (None: none, or checked later).
        clear = [(name, at, convert, when_none.get(name)) for name, at, convert in steps]
        # Each token's context is "<type>/<record id>/<field>": the part up to the field
        # is made once per row (an f-string, like str.format for any id), then suffixed.
        opened = [
            (name, f"/{name}", at, from_text, when_none.get(name))
            for name, _, at, from_text in self._opened
        ]
        type_name = self.rt.name
        id_at, subject_at = positions["id"], positions[self.rt.subject_column]
        cipher = self._cipher
        if checks is None:
            return self._called_reader(clear, composite, opened, id_at, subject_at)
        always, ids = checks.always, checks.ids
        new, assign = object.__new__, object.__setattr__

        def read(row: Sequence[Any], openers: dict[str, dict[str, Opener]] | None = None) -> Any:
            record_id = row[id_at]
            subject = row[subject_at]
            record = new(cls)
            name = ""
            try:
                for name, at, convert, if_none in clear:
                    value = row[at]
                    if value is None:
                        if if_none is not None:
                            if_none[1](record, if_none[0], None)
                        assign(record, name, None)
                    else:
                        assign(record, name, value if convert is None else convert(value))
                for name, decode in composite:
                    assign(record, name, decode(row, record_id, subject))
                name = ""
            except _UNREADABLE as error:
                if isinstance(error, LearnPrivacyError):  # a validator's
                    raise
            if name:  # the field being read when a conversion failed
                raise _unreadable(type_name, name)
            vouched = False
            if opened:
                mine = cipher._openers_of(subject) if openers is None else openers.get(subject)
                open_text = cipher._open_text
                head = f"{type_name}/{record_id}"
                for name, field, at, from_text, if_none in opened:
                    token = row[at]
                    if token is None:
                        if if_none is not None:
                            if_none[1](record, if_none[0], None)
                        assign(record, name, None)
                        continue
                    text = open_text(mine, token, subject, head + field)
                    vouched = True
                    if mine is None:
                        # The first token of a learner without openers at hand went through
                        # decrypt(), which cached the learner's keys.
                        mine = cipher._openers_of(subject)
                    assign(record, name, text if from_text is None else from_text(text))
            for attribute, name, check in always:
                check(record, attribute, getattr(record, name))
            if not vouched:
                for attribute, name, check in ids:
                    check(record, attribute, getattr(record, name))
            return record

        return read

    def _called_reader(
        self,
        clear: list[tuple[str, int, Callable[[Any], Any] | None, Any]],
        composite: list[tuple[str, Callable[[Sequence[Any], str, str], Any]]],
        opened: list[tuple[str, str, int, Callable[[str], Any] | None, Any]],
        id_at: int,
        subject_at: int,
    ) -> RowReader:
        """:meth:`_reader` for a class made by calling it with the values read."""
        cls = self.rt.cls
        cipher = self._cipher
        type_name = self.rt.name

        def read(row: Sequence[Any], openers: dict[str, dict[str, Opener]] | None = None) -> Any:
            record_id = row[id_at]
            subject = row[subject_at]
            values: dict[str, Any] = {}
            name = ""
            try:
                for name, at, convert, _ in clear:
                    value = row[at]
                    values[name] = value if value is None or convert is None else convert(value)
                for name, decode in composite:
                    values[name] = decode(row, record_id, subject)
                name = ""
            except _UNREADABLE as error:
                if isinstance(error, LearnPrivacyError):
                    raise
            if name:
                raise _unreadable(type_name, name)
            if opened:
                mine = cipher._openers_of(subject) if openers is None else openers.get(subject)
                head = f"{type_name}/{record_id}"
                for name, field, at, from_text, _ in opened:
                    token = row[at]
                    if token is None:
                        values[name] = None
                        continue
                    text = cipher._open_text(mine, token, subject, head + field)
                    if mine is None:
                        mine = cipher._openers_of(subject)
                    values[name] = text if from_text is None else from_text(text)
            return cls(**values)

        return read

    def skeleton(self, row: Sequence[Any]) -> Any:
        """A record of ``row`` without decrypting: encrypted fields are ``None``.

        For the retention engine only, which reads dates, ids and codes, never personal
        values. Built without validation (an encrypted required field is ``None``), so it
        must not leave the store.
        """
        record_id, subject = self._ids(row)
        record = object.__new__(self.rt.cls)
        for name, decode in self._skeleton:
            value = None if decode is None else decode(row, record_id, subject)
            object.__setattr__(record, name, value)
        return record

    def skeleton_reader(self, positions: dict[str, int]) -> Callable[[Sequence[Any]], Any]:
        """Like :meth:`skeleton`, for rows whose columns sit at ``positions``.

        Only the columns a sweep's rules read need to be selected: fields without a
        position are ``None``, and tokens and blind indexes are never read at all.
        """
        # Plain columns are read by position and converted inline (the hot path of sweeps);
        # Score fields, spread over several columns, go through their decoder.
        clear = {spec.name: spec for spec in self.rt.fields if not spec.encrypted}
        steps, composite = self._readers(list(clear.values()), positions)
        steps += [(spec.name, -1, None) for spec in self.rt.fields if spec.encrypted]
        cls = self.rt.cls
        new = object.__new__
        assign = object.__setattr__

        def read(row: Sequence[Any]) -> Any:
            record = new(cls)
            for name, at, convert in steps:
                value = None if at < 0 else row[at]
                if value is not None and convert is not None:
                    value = convert(value)
                assign(record, name, value)
            for name, decode in composite:
                assign(record, name, decode(row, "", ""))
            return record

        return read

    def facts(self, row: Sequence[Any]) -> dict[str, Any]:
        """The non-personal fields of ``row``, typed (what anonymised rows still hold)."""
        return {name: decode(row, "", "") for name, decode in self._facts}
