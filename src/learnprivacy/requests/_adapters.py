"""The places the request workflow writes into a store, through its public API.

* Erasing or anonymising *some* records of a learner (the data only a withdrawn consent
  justified), where ``Store.erase_subject`` erases them all: :func:`end_records` calls
  ``Store.erase_records`` or ``Store.anonymise_records``, which write the ``erase`` and
  ``anonymise`` audit events ``replay_erasures`` replays, and shred keys no remaining
  record of the learner uses.
* Mirroring request transitions into the store's audit log: :func:`store_audit_sink`
  calls ``AuditLog.record``.

Neither imports the store: ``learnprivacy.requests`` stays free of SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from learnprivacy._vocabulary import Action
from learnprivacy.errors import ValidationError
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

__all__ = ["end_records", "store_audit_sink"]

#: The store audit log's column width for actions and outcomes.
_AUDIT_WORD = 32


def end_records(
    store: Any,
    action: Action,
    records: Sequence[Any],
    *,
    now: dt.datetime,
    reason: str,
    schedule: Any = None,
    holds: Sequence[Any] = (),
) -> int:
    """Erase (``Action.ERASE``) or anonymise (``Action.ANONYMISE``) exactly ``records``
    (all of one learner) through ``Store.erase_records`` or ``Store.anonymise_records``;
    return how many.

    Idempotent: records already gone are skipped. Audited first, in the same
    transaction; what a legal minimum of ``schedule`` or one of ``holds`` protects is
    restricted instead. After an anonymisation the caller still checks the result
    (``Store.verify_anonymised``).
    """
    if action not in (Action.ERASE, Action.ANONYMISE):
        raise ValidationError(f"records are erased or anonymised, not {action.value}")
    if not records:
        return 0
    end = store.erase_records if action is Action.ERASE else store.anonymise_records
    return int(end(records, now=now, reason=reason, schedule=schedule, holds=holds))


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
