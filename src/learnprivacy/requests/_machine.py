"""The forward-only state machine of a request.

::

    RECEIVED ──► AWAITING_IDENTITY ──► IN_PROGRESS ──► COMPLETED
        │               │                   ├────────► FAILED
        │               │                   └────────► REFUSED
        ├───────────────┴──► REFUSED  (Art. 12(5), or identity not established)
        └───────────────┴──► CANCELLED (the requester withdrew the request)

    RECEIVED ──► IN_PROGRESS when identity is already established (logged-in session).

Terminal states have no way out. A failed request is not reopened: a retry is a new
request that keeps the original receipt date, so its deadline is the same.
"""

from __future__ import annotations

from learnprivacy.errors import RequestStateError
from learnprivacy.requests._vocabulary import RequestState

__all__ = ["TRANSITIONS", "check_transition", "is_allowed"]

_S = RequestState

#: Every allowed move, as (from, to) pairs.
TRANSITIONS: frozenset[tuple[RequestState, RequestState]] = frozenset(
    {
        (_S.RECEIVED, _S.AWAITING_IDENTITY),
        (_S.RECEIVED, _S.IN_PROGRESS),
        (_S.RECEIVED, _S.REFUSED),
        (_S.RECEIVED, _S.CANCELLED),
        (_S.AWAITING_IDENTITY, _S.IN_PROGRESS),
        (_S.AWAITING_IDENTITY, _S.REFUSED),
        (_S.AWAITING_IDENTITY, _S.CANCELLED),
        (_S.IN_PROGRESS, _S.COMPLETED),
        (_S.IN_PROGRESS, _S.FAILED),
        (_S.IN_PROGRESS, _S.REFUSED),
    }
)


def is_allowed(current: RequestState, target: RequestState) -> bool:
    """Whether the machine may move from ``current`` to ``target``."""
    return (current, target) in TRANSITIONS


def check_transition(current: RequestState, target: RequestState) -> None:
    """Raise ``RequestStateError`` unless ``current -> target`` is allowed."""
    if not is_allowed(current, target):
        raise RequestStateError(f"a request cannot move from {current.value} to {target.value}")
