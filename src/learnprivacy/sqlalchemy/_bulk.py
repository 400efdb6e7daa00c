"""The application's bulk statements on declared models: ``session.execute(insert(...))``,
``session.execute(delete(...))`` and ``session.execute(update(...))``.

They bypass the ORM's per-row flush events, so the ``do_orm_execute`` listener
(``_scope``) hands them here before they run:

- a bulk ``DELETE`` is preceded, in the same transaction, by a read of the rows it
  matches (locked on PostgreSQL): a restricted row refuses it (as ``session.delete()``
  does), and so does a restricted row of a declared table that a foreign key's ``ON
  DELETE CASCADE`` / ``SET NULL`` would delete or change with them; once it has run
  the rows are audited as deleted by the application and their learners checked
  against the PostgreSQL planner statistics, exactly as after the flush of
  ``session.delete()``. If the statement deleted other rows than those read
  (a row inserted or deleted meanwhile by another transaction), the session's
  transaction is rolled back and :class:`~learnprivacy.errors.IntegrityError` raised:
  nothing is deleted unaudited;
- a bulk ``INSERT`` given its rows as parameters (``session.execute(insert(User),
  [{...}, ...])``, the ORM's bulk insert) is encrypted as a flush encrypts: each row's
  personal values become tokens under its learner's key, bound to its table, key and
  column, with their blind indexes; the learners' missing keys are made in one batch.
  The caller's dictionaries are left as they were. Whatever cannot be encrypted per row
  is refused before anything is written, naming table and column: a personal value
  or blind index given in ``.values()`` (a literal, a SQL expression, another row's
  token), an ``INSERT ... SELECT`` into a personal column, an upsert (``ON CONFLICT DO
  UPDATE``, ``ON DUPLICATE KEY UPDATE``, SQLite's ``INSERT OR REPLACE``: it could
  overwrite a restricted row), a
  personal value in a row without its key or learner id, a token or a blind index in
  a row's parameters;
- a bulk ``UPDATE`` cannot encrypt per row: setting a personal column to anything but
  ``NULL`` raises :class:`~learnprivacy.errors.PlaintextError` naming table and column
  before anything is written (a SQL expression, a literal, another column's token);
  ``NULL`` is let through and clears the column's blind index with it. Setting the key,
  the subject or a blind index directly is refused, and so is any bulk update touching a
  restricted row.

Statements run on a ``Connection`` directly (Core, outside the session) are the
application's own: they meet the column type's checks only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, Null, select, tuple_
from sqlalchemy.orm import ORMExecuteState, Session

from learnprivacy._inplace import INDEX_SUFFIX, ColumnSpec, ModelSpec
from learnprivacy.errors import (
    IntegrityError,
    PlaintextError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.sqlalchemy._rowkeys import key_columns, key_in
from learnprivacy.sqlalchemy._states import in_state
from learnprivacy.sqlalchemy._tables import RESTRICTED

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["CASCADING", "bulk_statement", "hold_sqlite", "refuse_cascaded"]


def _spec_of(privacy: LearnPrivacy, state: ORMExecuteState) -> ModelSpec | None:
    table = getattr(state.statement, "table", None)
    if table is None:
        return None
    table = table._deannotate() if getattr(table, "_annotations", None) else table
    for spec in privacy.specs:
        if spec.model.__table__ is table:
            return spec
    return None


def bulk_statement(privacy: LearnPrivacy, state: ORMExecuteState) -> Any:
    """Check (and for a ``DELETE``, run and audit) a bulk statement on ``privacy``'s
    models; ``None`` lets the statement run as it is."""
    spec = _spec_of(privacy, state)
    if spec is None:
        return None
    session = state.session
    if state.is_insert:
        _encrypt_insert(privacy, spec, state)
        return None
    if state.is_update:
        _check_update(privacy, spec, state)
        return None
    # What a bulk statement meets includes the objects the session has not flushed yet.
    session._autoflush()
    connection = session.connection(bind_arguments=state.bind_arguments)
    hold_sqlite(connection)
    rows = _matched(privacy, spec, state, connection)
    result = state.invoke_statement()
    count = getattr(result, "rowcount", -1)
    if count != len(rows):
        session.rollback()
        raise IntegrityError(
            f"{spec.table}: the bulk delete removed other rows than it matched a moment "
            "before (another transaction changed the table); the transaction was rolled "
            "back, nothing was deleted: run it again"
        )
    if rows:
        privacy._audit_deleted(session, connection, [(spec, k, s) for k, s in rows.items()])
    return result


#: What a foreign key's ``ON DELETE`` may do to the rows referring to a deleted row.
CASCADING = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})


def refuse_cascaded(
    privacy: LearnPrivacy, connection: Connection, spec: ModelSpec, keys: Sequence[Any]
) -> None:
    """Refuse the deletion of the rows ``keys`` of ``spec`` when the database would carry
    it (a foreign key ``ON DELETE CASCADE``, ``SET NULL`` or ``SET DEFAULT``) to a
    restricted row of a declared table, directly or down a chain of cascades: the
    statement's own check sees only the rows it names. The rows it would reach are
    locked first on PostgreSQL, as the deleted ones are."""
    if not keys:
        return
    seen = {spec.table}
    todo: list[tuple[ModelSpec, Any]] = [(spec, key_in(spec, keys))]
    while todo:
        parent, rows = todo.pop()
        parent_table = parent.model.__table__
        for child in privacy.specs:
            table = child.model.__table__
            for constraint in table.foreign_key_constraints:
                action = (constraint.ondelete or "").upper()
                if constraint.referred_table is not parent_table or action not in CASCADING:
                    continue
                referred = [element.column for element in constraint.elements]
                referring = [element.parent for element in constraint.elements]
                within = select(*referred).where(rows)
                reached = (
                    referring[0].in_(within)
                    if len(referring) == 1
                    else tuple_(*referring).in_(within)
                )
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        select(*key_columns(child)).where(reached).with_for_update(of=table)
                    )
                restricted = in_state(privacy.side.states, privacy.row_refs, child, RESTRICTED)
                found = select(*key_columns(child)).where(reached, restricted).limit(1)
                if connection.execute(found).first() is not None:
                    raise RestrictedRecordError(
                        f"{child.table}: a row the database would change with this deletion "
                        f"(ON DELETE {action}) is restricted (GDPR Art. 18); the deletion is "
                        "refused until the restriction is lifted"
                    )
                if action == "CASCADE" and child.table not in seen:
                    seen.add(child.table)
                    todo.append((child, reached))


def hold_sqlite(connection: Connection) -> None:
    """On SQLite, take the write lock before the rows are read, unless the transaction
    holds one already: the driver begins its transaction only at the first write, so
    another connection could otherwise commit between the read and the statement (a
    matched row swapped for a new one would leave a ``DELETE``'s count unchanged; a row
    restricted meanwhile would be updated). On PostgreSQL the statements lock the rows
    they read (``FOR UPDATE``) instead."""
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.driver_connection
    if getattr(raw, "isolation_level", None) is not None and not getattr(
        raw, "in_transaction", True
    ):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _where(state: ORMExecuteState) -> Any:
    return getattr(state.statement, "whereclause", None)


def _bound(state: ORMExecuteState) -> Any:
    """The statement's own parameters, for its WHERE clause read on its own."""
    parameters = state.parameters
    return dict(parameters) if isinstance(parameters, dict) else None


def _matched(
    privacy: LearnPrivacy, spec: ModelSpec, state: ORMExecuteState, connection: Connection
) -> dict[Any, str]:
    """The rows the ``DELETE`` of ``state`` matches, key -> learner id (locked on
    PostgreSQL); raises if one of them is restricted."""
    table = spec.model.__table__
    keys = key_columns(spec)
    restricted = in_state(privacy.side.states, privacy.row_refs, spec, RESTRICTED)
    query = select(*keys, table.c[spec.subject_column], restricted.label("lp_restricted"))
    where = _where(state)
    if where is not None:
        query = query.where(where)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=table)
    found: dict[Any, str] = {}
    width = len(keys)
    for row in connection.execute(query, _bound(state)):
        if row[width + 1]:
            raise RestrictedRecordError(
                f"{spec.table}: a row this bulk delete matches is restricted (GDPR Art. "
                "18); deletion is refused until the restriction is lifted"
            )
        key = tuple(row[:width]) if spec.composite else row[0]
        found[key] = "" if row[width] is None else str(row[width])
    refuse_cascaded(privacy, connection, spec, list(found))
    return found


def _names(key: Any) -> Iterable[str]:
    """The names a SET key may go by: attribute and column name."""
    if isinstance(key, str):
        return (key,)
    return tuple(name for name in (getattr(key, "key", None), getattr(key, "name", None)) if name)


def _is_null(value: Any) -> bool:
    if value is None or isinstance(value, Null):
        return True
    return isinstance(value, BindParameter) and value.callable is None and value.value is None


def _check_update(privacy: LearnPrivacy, spec: ModelSpec, state: ORMExecuteState) -> None:
    """Refuse a bulk ``UPDATE`` that would write a personal value, a key, a subject or a
    blind index, or touch a restricted row; a personal column set to ``NULL`` takes its
    blind index with it."""
    statement: Any = state.statement
    personal = {}
    for column in spec.personal:
        personal[column.attribute] = personal[column.column] = column
    index_of = {
        name + INDEX_SUFFIX: column
        for column in spec.personal
        if column.privacy.blind_index
        for name in (column.attribute, column.column)
    }
    fixed = {*spec.key_attributes, *spec.key_columns, spec.subject, spec.subject_column}
    given: list[tuple[tuple[str, ...], Any]] = []
    if statement._values:
        given.extend((tuple(_names(k)), v) for k, v in statement._values.items())
    ordered = getattr(statement, "_ordered_values", None) or ()  # SQLAlchemy 2.0
    given.extend((tuple(_names(k)), v) for k, v in ordered)
    ordered = ordered or getattr(statement, "_maintain_values_ordering", False)
    parameters: Any = state.parameters
    by_key = isinstance(parameters, list | tuple) and bool(parameters)
    if by_key:
        # ORM bulk UPDATE by primary key: one dict of attributes per row; its key
        # finds the row, anything else in it (the subject too) is a change.
        keys = {*spec.key_attributes, *spec.key_columns}
        for group in parameters:
            given.extend(((k,), v) for k, v in group.items() if k not in keys)
    elif isinstance(parameters, dict):
        given.extend(((k,), v) for k, v in parameters.items())
    cleared: dict[str, bool] = {}
    for names, value in given:
        for name in names:
            if name in personal:
                column = personal[name]
                if not _is_null(value):
                    raise PlaintextError(
                        f"{spec.table}.{column.column}: a bulk statement cannot encrypt "
                        "per row; write personal values through the ORM session (or clear "
                        "the column with None)",
                        table=spec.table,
                        column=column.column,
                    )
                if column.privacy.blind_index:
                    cleared.setdefault(column.attribute, False)
                break
            if name in index_of:
                if not _is_null(value):
                    raise ValidationError(
                        f"{spec.table}.{name}: a blind index is computed from its column, "
                        "never written directly",
                        field=f"{spec.table}.{name}",
                    )
                cleared[index_of[name].attribute] = True
                break
            if name in fixed and spec.personal:
                raise ValidationError(
                    f"{spec.table}: changing a row's key or subject would orphan its "
                    "tokens; delete the row and insert a new one",
                    field=f"{spec.table}.{spec.subject_column}",
                )
    if not given:
        return
    _refuse_restricted(privacy, spec, state)
    missing = [name for name, done in cleared.items() if not done]
    if not missing:
        return
    if by_key or ordered:
        raise ValidationError(
            f"{spec.table}: a personal column set to NULL in bulk needs its blind index "
            f"set to NULL too ({', '.join(n + INDEX_SUFFIX for n in missing)})",
            field=f"{spec.table}.{missing[0]}",
        )
    state.statement = statement.values({name + INDEX_SUFFIX: None for name in missing})


def _refuse_restricted(privacy: LearnPrivacy, spec: ModelSpec, state: ORMExecuteState) -> None:
    session: Session = state.session
    table = spec.model.__table__
    matches: list[Any] = []
    where = _where(state)
    if where is not None:
        matches.append(where)
    parameters = state.parameters
    if isinstance(parameters, list | tuple) and parameters:
        matches.append(key_in(spec, [spec.key_of(group) for group in parameters]))
    connection = session.connection(bind_arguments=state.bind_arguments)
    hold_sqlite(connection)
    if connection.dialect.name == "postgresql":
        # Lock every row the UPDATE matches before the check: a restriction locks its
        # row too (shared), so none can be committed between the check and the write.
        locking = select(*key_columns(spec)).where(*matches).with_for_update(of=table)
        connection.execute(locking, _bound(state))
    query = select(table.c[spec.subject_column]).where(
        in_state(privacy.side.states, privacy.row_refs, spec, RESTRICTED), *matches
    )
    if connection.execute(query.limit(1), _bound(state)).first() is not None:
        raise RestrictedRecordError(
            f"{spec.table}: a row this bulk update matches is restricted (GDPR Art. 18); "
            "an update is refused until the restriction is lifted"
        )


def _refused_value(spec: ModelSpec, column: ColumnSpec, how: str) -> PlaintextError:
    return PlaintextError(
        f"{spec.table}.{column.column}: {how} cannot be encrypted per row; give the "
        "values as the statement's parameters (one dict per row) or write them through "
        "the ORM session",
        table=spec.table,
        column=column.column,
    )


def _encrypt_insert(privacy: LearnPrivacy, spec: ModelSpec, state: ORMExecuteState) -> None:
    """Encrypt the rows of a bulk ``INSERT`` (see the module's docstring), or refuse it
    before anything is written."""
    statement: Any = state.statement
    personal: dict[str, ColumnSpec] = {}
    index_of: dict[str, ColumnSpec] = {}
    for column in spec.personal:
        for name in (column.attribute, column.column):
            personal[name] = column
            if column.privacy.blind_index:
                index_of[name + INDEX_SUFFIX] = column
    post = getattr(statement, "_post_values_clause", None)
    # SQLite's INSERT OR REPLACE (a prefix) deletes the row it collides with: an upsert
    # too, whether or not the table has personal columns.
    replaces = any("REPLACE" in str(prefix).upper() for prefix, _ in statement._prefixes)
    if replaces or (post is not None and type(post).__name__ != "OnConflictDoNothing"):
        raise ValidationError(
            f"{spec.table}: an upsert could overwrite a restricted row and cannot encrypt "
            "per row; insert new rows, or load the existing ones and change them through "
            "the ORM session",
            field=spec.table,
        )
    if not personal:
        return
    given: list[tuple[tuple[str, ...], Any]] = []
    if statement._values:
        given.extend((tuple(_names(k)), v) for k, v in statement._values.items())
    for rows in getattr(statement, "_multi_values", None) or ():
        for row in rows:
            items = row.items() if isinstance(row, dict) else ()
            given.extend((tuple(_names(k)), v) for k, v in items)
            if not isinstance(row, dict) and any(not _is_null(v) for v in row):
                # Positional VALUES: which column each value lands in is the table's order.
                raise _refused_value(spec, spec.personal[0], "a positional VALUES list")
    selected = getattr(statement, "select", None)
    if selected is not None:
        targets = getattr(statement, "_select_names", None) or ()
        for name in [name for k in targets for name in _names(k)]:
            if name in personal:
                raise _refused_value(spec, personal[name], "an INSERT ... SELECT")
            if name in index_of:
                raise _refused_value(spec, index_of[name], "an INSERT ... SELECT")
    for names, value in given:
        for name in names:
            if name in personal and not _is_null(value):
                raise _refused_value(spec, personal[name], "a value given in .values()")
            if name in index_of and not _is_null(value):
                raise _refused_index(spec, name)
    parameters: Any = state.parameters
    if isinstance(parameters, dict):
        state.parameters = _encrypt_rows(privacy, spec, [parameters], personal, index_of)[0]
    elif isinstance(parameters, list | tuple) and parameters:
        state.parameters = _encrypt_rows(privacy, spec, parameters, personal, index_of)


def _refused_index(spec: ModelSpec, name: str) -> ValidationError:
    return ValidationError(
        f"{spec.table}.{name}: a blind index is computed from its column, never written directly",
        field=f"{spec.table}.{name}",
    )


def _encrypt_rows(
    privacy: LearnPrivacy,
    spec: ModelSpec,
    rows: Iterable[Any],
    personal: dict[str, ColumnSpec],
    index_of: dict[str, ColumnSpec],
) -> list[dict[str, Any]]:
    """New dicts of ``rows`` (given by attribute or column name) with their personal
    values encrypted and blind-indexed; the caller's dicts are not changed."""
    key_names = dict(zip(spec.key_attributes, spec.key_columns, strict=True))
    subject_names = (spec.subject, spec.subject_column)
    plan = (spec.subject, spec.scope, tuple(c.attribute for c in spec.personal))
    # Each row as given, and by attribute: what its key, subject and values are read from.
    prepared: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise _refused_value(spec, spec.personal[0], "a row that is not a dict")
        values: dict[str, Any] = {}
        for name, value in row.items():
            if name in index_of and value is not None:
                raise _refused_index(spec, name)
            column = personal.get(name)
            if column is not None:
                values[column.attribute] = value
        for attribute, column_name in key_names.items():
            values[attribute] = row.get(attribute, row.get(column_name))
        values[spec.subject] = next((row[n] for n in subject_names if row.get(n) is not None), None)
        prepared.append((dict(row), values))
    privacy._make_keys((values, plan) for _, values in prepared)
    out: list[dict[str, Any]] = []
    for row, values in prepared:
        if any(values.get(c.attribute) is not None for c in spec.personal):
            subject = values[spec.subject]
            missing = next(
                (key_names[a] for a in spec.key_attributes if values[a] is None),
                spec.subject_column if subject is None else None,
            )
            if missing is not None:
                raise ValidationError(
                    f"{spec.table}.{missing}: a row added in bulk with personal data needs "
                    "its key and learner id (a key the database generates cannot be bound "
                    "to)",
                    field=f"{spec.table}.{missing}",
                )
            sealed = privacy.rows.encrypt_row(spec, spec.key_of(values), str(subject), values)
            for column in spec.personal:
                # Written back under the name the row gave (attribute or column).
                for name in (column.attribute, column.column):
                    if name in row:
                        row[name] = sealed[column.attribute]
                        if column.privacy.blind_index:
                            row[name + INDEX_SUFFIX] = sealed[column.attribute + INDEX_SUFFIX]
                        break
        out.append(row)
    return out
