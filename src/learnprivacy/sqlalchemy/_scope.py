"""Which bindings act on which sessions and statements.

A :class:`~sqlalchemy.orm.Session` has no idea which models it will meet, so the
session-wide hooks (the flush hooks, ``do_orm_execute``) are listened to once per
process, here, and hand each event to the live bindings that own what it touches:

- a binding is held by a weak reference: one dropped without ``close()`` stops acting
  as soon as it is garbage collected (its model listeners turn inert, and the next
  binding of the same models removes them);
- a statement is handed to a binding only when it involves one of the binding's tables
  (an entity of its registry among the statement's mappers, or one of its tables
  anywhere in the statement: a join, ``select_from``, a subquery); statements on other
  models, of another application or another test, pass through untouched.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import TableClause

from learnprivacy.sqlalchemy._events import FLUSHING, give_back
from learnprivacy.sqlalchemy._queries import PersonalColumns, decrypt_columns

if TYPE_CHECKING:
    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["attach", "detach", "live_bindings", "owners_of"]

_lock = threading.Lock()
#: The live bindings, in the order they were made: id -> weak reference.
_bindings: dict[int, weakref.ref[LearnPrivacy]] = {}
_listening = False


def live_bindings() -> list[LearnPrivacy]:
    """The bindings still alive and not closed, oldest first."""
    found = []
    # A copy (atomic): another thread may attach, or the collector forget, meanwhile.
    for ref in _bindings.copy().values():
        binding = ref()
        if binding is not None:
            found.append(binding)
    return found


def attach(binding: LearnPrivacy) -> None:
    """Let ``binding`` receive the session-wide events, for as long as it lives."""
    global _listening
    key = id(binding)

    def forget(ref: weakref.ref[LearnPrivacy]) -> None:
        # Run by the garbage collector: only the dictionary changes, never the
        # SQLAlchemy listener lists (which may be being iterated right now).
        if _bindings.get(key) is ref:
            _bindings.pop(key, None)

    with _lock:
        _bindings[key] = weakref.ref(binding, forget)
        if not _listening:
            event.listen(Session, "before_flush", _before_flush)
            event.listen(Session, "after_flush", _after_flush)
            event.listen(Session, "do_orm_execute", _do_orm_execute)
            event.listen(Session, "after_soft_rollback", _after_soft_rollback)
            _listening = True


def detach(binding: LearnPrivacy) -> None:
    """Stop handing events to ``binding`` (its ``close()``)."""
    with _lock:
        ref = _bindings.get(id(binding))
        if ref is not None and ref() is binding:
            del _bindings[id(binding)]


#: Statement shape (its cache key, which the ORM computes and keeps on the statement in
#: any case) -> the tables it involves. Bounded: cleared when full.
_shapes: dict[Any, frozenset[Any]] = {}
_SHAPES = 2_000


def _tables_of(statement: Any) -> frozenset[Any]:
    """Every table a statement involves: its entities, joins, froms, subqueries."""
    found = set()
    for element in visitors.iterate(statement):
        if isinstance(element, TableClause):
            found.add(element._deannotate() if element._annotations else element)
    return frozenset(found)


def owners_of(state: ORMExecuteState, bindings: list[LearnPrivacy]) -> list[LearnPrivacy]:
    """The bindings whose tables the statement of ``state`` involves, in order."""
    # The statement's first entity (cheap to read); the others are found among its
    # tables, whose set is remembered per statement shape.
    subject = state.statement._propagate_attrs.get("plugin_subject")
    registry_of_subject = getattr(getattr(subject, "mapper", None), "registry", None)
    owners: list[LearnPrivacy] = []
    tables: frozenset[Any] | None = None
    for binding in bindings:
        if registry_of_subject is binding._registry:
            owners.append(binding)
            continue
        if tables is None:
            statement = cast(Any, state.statement)
            cache_key = statement._generate_cache_key()
            shape = None if cache_key is None else cache_key.key
            tables = None if shape is None else _shapes.get(shape)
            if tables is None:
                tables = _tables_of(statement)
                if shape is not None:
                    if len(_shapes) >= _SHAPES:
                        _shapes.clear()
                    _shapes[shape] = tables
        if not tables.isdisjoint(binding._table_set):
            owners.append(binding)
    return owners


def _before_flush(session: Session, context: Any, instances: Any) -> None:
    for binding in live_bindings():
        binding._before_flush(session, context, instances)


def _after_flush(session: Session, context: Any) -> None:
    # Written: every new object has its values back (see _events.after_insert).
    session.info.pop(FLUSHING, None)
    for binding in live_bindings():
        binding._after_flush(session, context)


def _after_soft_rollback(session: Session, _previous: Any) -> None:
    objects = session.info.pop(FLUSHING, None)
    if objects:
        give_back(objects)


def _do_orm_execute(state: ORMExecuteState) -> Any:
    if not state.is_select:
        if state.is_insert or state.is_delete or state.is_update:
            return _bulk(state)
        return None
    if state.is_column_load:
        return None
    bindings = live_bindings()
    if not bindings:
        return None
    owners = owners_of(state, bindings)
    # Every owner's conditions, then one rewrite that decrypts the personal columns
    # selected on their own, each by its binding (a join may reach two bindings' models).
    if not owners:
        return None
    for binding in owners:
        binding._query_hooks[0](state)
    if len(owners) == 1:
        return decrypt_columns(state, owners[0]._query_hooks[1])
    personal: PersonalColumns = {}
    for binding in owners:
        personal.update(binding._query_hooks[1])
    return decrypt_columns(state, personal)


def _bulk(state: ORMExecuteState) -> Any:
    """A bulk ``INSERT``, ``DELETE`` or ``UPDATE`` through the session: its binding
    encrypts or checks it (and audits a deletion), see ``_bulk``."""
    from learnprivacy.sqlalchemy._bulk import bulk_statement

    for binding in owners_of(state, live_bindings()):
        result = bulk_statement(binding, state)
        if result is not None:
            return result
    return None
