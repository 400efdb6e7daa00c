"""What the request workflow needs from a store that its public API does not (yet) offer.

Two needs, each behind one function so they can switch to a public method the day the
store offers it:

* erasing *some* records of a learner (the data only a withdrawn consent justified),
  where ``Store.erase_subject`` erases them all: :func:`erase_records` uses
  ``store.erase_records(records, now=..., reason=...)`` when the store has it, else the
  store's own destructive primitive inside its write transaction, after writing the same
  ``erase`` audit event an erasure request writes (so ``replay_erasures`` replays it);
* mirroring request transitions into the store's audit log: :func:`store_audit_sink`.

Both import the store lazily: ``learnprivacy.requests`` stays free of SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from learnprivacy.records import subject_of
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

__all__ = ["erase_records", "store_audit_sink"]

#: The store audit log's column width for actions and outcomes.
_AUDIT_WORD = 32


def erase_records(store: Any, records: Sequence[Any], *, now: dt.datetime, reason: str) -> int:
    """Erase exactly ``records`` (all of one learner) from ``store``; return how many.

    Idempotent: records already gone are skipped. The erase is audited first, in the same
    transaction, as the store does for its own erasures.
    """
    if not records:
        return 0
    public = getattr(store, "erase_records", None)
    if callable(public):
        return int(public(records, now=now, reason=reason))
    from learnprivacy.store._actions import erase_rows
    from learnprivacy.store._audit import AuditEvent
    from learnprivacy.store._common import ids_detail

    by_type: dict[type[Any], list[str]] = {}
    subjects = sorted({subject_of(record) for record in records})
    for record in records:
        by_type.setdefault(type(record), []).append(record.id)
    erased = 0
    with store.writing() as connection:
        events = []
        for cls, ids in by_type.items():
            rt = store.table(cls)
            events.append(
                AuditEvent(
                    action="erase",
                    outcome="done",
                    record_type=rt.name,
                    subject_ref=store.audit.subject_ref(subjects[0])
                    if len(subjects) == 1
                    else None,
                    details={
                        **ids_detail(store.audit, rt, ids, subjects),
                        "count": len(ids),
                        "reason": reason,
                    },
                )
            )
        store.audit.append(connection, events, now=now)
        for cls, ids in by_type.items():
            erased += erase_rows(connection, store.table(cls), ids)
    return erased


def store_audit_sink(store: Any) -> Any:
    """An audit sink writing each request history entry into ``store.audit`` as well.

    The entry is summarised: action ``subject_request``, the event as outcome, the
    learner's pseudonymous reference, and the request id, sequence, states and hash in
    the details. No personal value.
    """
    from learnprivacy.store._audit import AuditEvent

    def sink(request: SubjectRequest, entry: HistoryEntry) -> None:
        details: dict[str, Any] = {
            "request_id": entry.request_id,
            "request_type": request.type.value,
            "sequence": entry.sequence,
            "state_before": entry.state_before.value if entry.state_before else None,
            "state_after": entry.state_after.value,
            "history_hash": entry.hash,
        }
        details.update(entry.detail)
        event = AuditEvent(
            action="subject_request",
            outcome=entry.event[:_AUDIT_WORD],
            subject_ref=store.audit.subject_ref(request.learner_id),
            details=details,
        )
        with store.writing() as connection:
            store.audit.append(connection, [event], now=entry.at)

    return sink
