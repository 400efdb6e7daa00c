"""The places the request workflow writes into a store, through its public API.

* Erasing or anonymising *some* records of a learner (the data only a withdrawn consent
  justified), where ``Store.erase_subject`` erases them all: :func:`erase_records` and
  :func:`anonymise_records` call ``Store.erase_records`` and
  ``Store.anonymise_records``, which write the ``erase`` and ``anonymise`` audit events
  ``replay_erasures`` replays, and shred keys no remaining record of the learner uses.
* Mirroring request transitions into the store's audit log: :func:`store_audit_sink`
  calls ``AuditLog.record``.

Neither imports the store: ``learnprivacy.requests`` stays free of SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

__all__ = ["anonymise_records", "erase_records", "store_audit_sink"]

#: The store audit log's column width for actions and outcomes.
_AUDIT_WORD = 32


def erase_records(
    store: Any,
    records: Sequence[Any],
    *,
    now: dt.datetime,
    reason: str,
    schedule: Any = None,
    holds: Sequence[Any] = (),
) -> int:
    """Erase exactly ``records`` (all of one learner) from ``store``; return how many.

    Idempotent: records already gone are skipped. The erasure is audited first, in the
    same transaction (``Store.erase_records``); what a legal minimum of ``schedule`` or
    one of ``holds`` protects is restricted instead.
    """
    if not records:
        return 0
    return int(store.erase_records(records, now=now, reason=reason, schedule=schedule, holds=holds))


def anonymise_records(
    store: Any,
    records: Sequence[Any],
    *,
    now: dt.datetime,
    reason: str,
    schedule: Any = None,
    holds: Sequence[Any] = (),
) -> int:
    """Anonymise exactly ``records`` (``Store.anonymise_records``); return how many.

    Audited first, protected records restricted, as :func:`erase_records`; the caller
    still checks the result (``Store.verify_anonymised``).
    """
    if not records:
        return 0
    return int(
        store.anonymise_records(records, now=now, reason=reason, schedule=schedule, holds=holds)
    )


def store_audit_sink(store: Any) -> Callable[[SubjectRequest, HistoryEntry], None]:
    """An audit sink writing each request history entry into ``store.audit`` as well.

    The entry is summarised: action ``subject_request``, the event as outcome, the
    learner's pseudonymous reference, and the request id, sequence, states and hash in
    the details. No personal value.
    """

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
        store.audit.record(
            "subject_request",
            entry.event[:_AUDIT_WORD],
            now=entry.at,
            learner_id=request.learner_id,
            details=details,
        )

    return sink
