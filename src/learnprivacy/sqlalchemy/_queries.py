"""What the application's own ORM queries see: no restricted row, clear values only.

The process-wide ``do_orm_execute`` listener (``_scope``) hands the ORM ``SELECT``
statements that involve a binding's models to that binding, which does two things:

- it adds, with ``with_loader_criteria``, a condition that leaves out the rows whose
  processing is restricted (GDPR Art. 18): an ordinary query, a ``Session.get``, a
  relationship load or a join no longer returns them. A statement (or a session call)
  run with ``execution_options(include_restricted=True)`` sees them, as
  ``LearnPrivacy.find(..., include_restricted=True)`` does;
- a statement that selects personal columns on their own (``select(User.email)``, no
  whole object) would return tokens, since the load event only decrypts objects. The
  listener adds the row's key and subject to the statement, decrypts each personal
  value with them and gives back the columns that were asked for, in their order
  (the learners' cached keys checked against the key database first, as a load does).

Refreshing the attributes of an object already in hand is left alone (the object was
read before, restricted or not); so are statements a listener cannot rewrite safely
(``GROUP BY``, set operations), which return tokens as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, inspect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria

from learnprivacy._inplace import ColumnSpec, ModelSpec
from learnprivacy.sqlalchemy._states import in_state
from learnprivacy.sqlalchemy._tables import RESTRICTED

if TYPE_CHECKING:
    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["INCLUDE_RESTRICTED", "PersonalColumns", "decrypt_columns", "query_listener"]

#: The execution option that lets a statement see restricted rows.
INCLUDE_RESTRICTED = "include_restricted"
#: Rows read (and their learners' cached keys checked) together by a column select.
_CHUNK = 1_000


def _not_restricted(privacy: LearnPrivacy, spec: ModelSpec) -> Any:
    """The condition a row of ``spec``'s table meets unless it is restricted."""
    return ~in_state(privacy.side.states, privacy.row_refs, spec, RESTRICTED)


#: A binding's personal columns, as the column decryption reads them:
#: model -> attribute -> (the binding's row cipher, the model's spec, the column's spec).
PersonalColumns = dict[type[Any], dict[str, tuple[Any, ModelSpec, ColumnSpec]]]


def query_listener(
    privacy: LearnPrivacy,
) -> tuple[Callable[[ORMExecuteState], None], PersonalColumns]:
    """What ``do_orm_execute`` does for ``privacy``'s bound models, for a statement that
    involves them (see ``_scope``): the step that leaves restricted rows out, and the
    personal columns that :func:`decrypt_columns` gives back in clear."""
    # The statement gets every bound model's condition: an entity may be reached
    # through select_from, a join or a subquery without appearing among the columns, and
    # a condition on an entity the statement does not use costs nothing.
    criteria = [
        with_loader_criteria(spec.model, _not_restricted(privacy, spec), include_aliases=True)
        for spec in privacy.specs
    ]
    rows = privacy.rows
    personal: PersonalColumns = {
        spec.model: {c.attribute: (rows, spec, c) for c in spec.personal}
        for spec in privacy.specs
        if spec.personal
    }

    bound = {spec.model for spec in privacy.specs}

    def restrict(state: ORMExecuteState) -> None:
        if not state.execution_options.get(INCLUDE_RESTRICTED, False):
            note_get(state, bound)
            state.statement = state.statement.options(*criteria)

    return restrict, personal


def note_get(state: ORMExecuteState, bound: set[type[Any]]) -> None:
    """Remember in the session the primary key of a ``Session.get`` (the query
    ``Session.merge`` runs too) of a bound model: the row may be hidden because it is
    restricted, and a merge then adds a new object with that key, which the session's
    next flush refuses with ``RestrictedRecordError`` if the row is restricted (see
    :func:`hidden_keys`), instead of the database's unique key failing it. Costs a
    structural comparison of a one-condition statement, and nothing else."""
    mapper = state.bind_mapper
    if mapper is None or not any(issubclass(mapper.class_, model) for model in bound):
        return
    where = state.statement._where_criteria  # type: ignore[attr-defined]
    clause, params = mapper._get_clause
    if len(where) != 1 or not where[0].compare(clause):
        return
    given = state.parameters
    if not isinstance(given, dict):
        return
    try:
        key = tuple(given[params[column].key] for column in mapper.primary_key)
    except KeyError:
        return
    noted = state.session.info.setdefault(_GETS, {})
    if len(noted) >= _GETS_KEPT:
        noted.pop(next(iter(noted)))
    noted[mapper.class_, key] = None


def hidden_keys(session: Any, new: Sequence[Any]) -> list[Any]:
    """The objects of ``new`` (a flush's new objects of bound models) whose primary key a
    ``Session.get`` of this session asked for (see :func:`note_get`): those to check
    for a restricted row before inserting. Forgets the keys it matched."""
    noted = session.info.get(_GETS)
    if not noted:
        return []
    found = []
    for obj in new:
        mapper = inspect(obj).mapper
        key = (mapper.class_, tuple(mapper.primary_key_from_instance(obj)))
        if key in noted:
            del noted[key]
            found.append(obj)
    return found


#: session.info key of the primary keys of the bound models' gets (see note_get).
_GETS = "learnprivacy.gets"
#: At most this many are remembered per session (the oldest go first).
_GETS_KEPT = 1_000


def decrypt_columns(state: ORMExecuteState, personal: PersonalColumns) -> Any:
    """Run a statement selecting personal columns alone and give back clear values
    (``None``: the statement runs as it is). ``personal`` may hold the columns of several
    bindings: each value is decrypted by its own."""
    statement = state.statement
    if state.is_relationship_load or not isinstance(statement, Select) or not personal:
        return None
    wanted: list[tuple[int, Any, ModelSpec, ColumnSpec, Any]] = []
    for position, description in enumerate(statement.column_descriptions):
        entity = description.get("entity")
        expression = description.get("expr")
        if entity is None or expression is entity:
            continue
        found = inspect(entity, raiseerr=False)
        mapper = getattr(found, "mapper", None)
        if mapper is None:
            continue
        columns = personal.get(mapper.class_)
        name = getattr(expression, "key", None)
        if columns is None or name not in columns:
            continue
        cipher, spec, column = columns[name]
        wanted.append((position, cipher, spec, column, entity))
    if not wanted:
        return None
    if statement._group_by_clauses:
        # Adding the row's key would change the groups: the tokens go back as stored.
        return None
    width = len(statement.selected_columns)
    extra: list[Any] = []
    slots: dict[int, tuple[slice, int]] = {}
    entities: dict[int, tuple[slice, int]] = {}
    for position, _cipher, spec, _column, entity in wanted:
        if id(entity) not in entities:
            start = width + len(extra)
            for name in spec.key_attributes:
                extra.append(getattr(entity, name).label(f"lp_key_{len(extra)}"))
            key_at = slice(start, width + len(extra))
            subject_at = width + len(extra)
            extra.append(getattr(entity, spec.subject).label(f"lp_subject_{len(extra)}"))
            entities[id(entity)] = (key_at, subject_at)
        slots[position] = entities[id(entity)]
    result = state.invoke_statement(statement=statement.add_columns(*extra))
    keys = list(result.keys())[:width]
    plan = [
        (position, cipher, spec, column, *slots[position])
        for position, cipher, spec, column, _ in wanted
    ]

    # Per keyring, where the rows' learners are: the cached keys another process shredded
    # since are dropped before any row is opened (one look-up per chunk of rows), so a
    # row restored from an earlier copy is refused as in a new process.
    learners: dict[int, tuple[Any, set[int]]] = {}
    for _position, cipher, _spec, _column, _key_at, subject_at in plan:
        keyring = cipher.cipher.keyring
        learners.setdefault(id(keyring), (keyring, set()))[1].add(subject_at)
    chunk = state.execution_options.get("yield_per") or _CHUNK

    def clear_rows() -> Iterator[Sequence[Any]]:
        try:
            for rows in result.partitions(chunk):
                for keyring, at in learners.values():
                    keyring._drop_stale(
                        {str(row[i]) for row in rows for i in at if row[i] is not None}
                    )
                yield from clear(rows)
        finally:
            result.close()

    def clear(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
        for row in rows:
            values = list(row[:width])
            for position, cipher, spec, column, key_at, subject_at in plan:
                token = values[position]
                if token is None:
                    continue
                subject = row[subject_at]
                parts = row[key_at]
                key = tuple(parts) if spec.composite else parts[0]
                values[position] = cipher.decrypt(
                    spec, column, key, "" if subject is None else str(subject), token
                )
            yield tuple(values)

    return IteratorResult(SimpleResultMetaData(keys), clear_rows())
