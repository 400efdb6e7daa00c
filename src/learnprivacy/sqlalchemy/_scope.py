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

if TYPE_CHECKING:
    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["attach", "detach", "live_bindings", "touches"]

_lock = threading.Lock()
#: The live bindings, in the order they were made: id -> weak reference.
_bindings: dict[int, weakref.ref[LearnPrivacy]] = {}
_listening = False


def live_bindings() -> list[LearnPrivacy]:
    """The bindings still alive and not closed, oldest first."""
    found = []
    for ref in list(_bindings.values()):
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
            _listening = True


def detach(binding: LearnPrivacy) -> None:
    """Stop handing events to ``binding`` (its ``close()``)."""
    with _lock:
        ref = _bindings.get(id(binding))
        if ref is not None and ref() is binding:
            del _bindings[id(binding)]


def touches(state: ORMExecuteState, registry: Any, tables: frozenset[TableClause]) -> bool:
    """Whether the statement of ``state`` involves one of ``tables`` (of ``registry``)."""
    for mapper in state.all_mappers:
        if mapper.registry is registry:
            return True
    for element in visitors.iterate(cast(Any, state.statement)):
        if isinstance(element, TableClause):
            original = element._deannotate() if element._annotations else element
            if original in tables:
                return True
    return False


def _before_flush(session: Session, context: Any, instances: Any) -> None:
    for binding in live_bindings():
        binding._before_flush(session, context, instances)


def _after_flush(session: Session, context: Any) -> None:
    for binding in live_bindings():
        binding._after_flush(session, context)


def _do_orm_execute(state: ORMExecuteState) -> Any:
    if not state.is_select or state.is_column_load:
        return None
    owners = [
        binding
        for binding in live_bindings()
        if touches(state, binding._registry, binding._table_set)
    ]
    # Every owner's conditions first (a join may reach two bindings' models); then the
    # first owner that rewrites the statement to decrypt columns gives the result.
    for binding in owners:
        binding._query_hooks[0](state)
    for binding in owners:
        result = binding._query_hooks[1](state)
        if result is not None:
            return result
    return None
