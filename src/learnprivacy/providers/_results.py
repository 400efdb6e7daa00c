"""What a privacy request returns: one outcome per provider and an overall status.

A request is :attr:`RequestStatus.COMPLETED` only when every provider completed. One
provider that raised or ran past its deadline makes it :attr:`RequestStatus.FAILED`, and
its outcome names it. Moodle marks such requests complete; learnprivacy never does.

Outcomes carry no personal data: the error text is the exception's type and, for
learnprivacy's own errors (whose messages name fields, never values), its message.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import attrs

from learnprivacy.errors import ProviderError

__all__ = ["ProviderOutcome", "RequestResult", "RequestStatus"]


class RequestStatus(enum.Enum):
    """Whether a request (or one provider's part of it) finished."""

    COMPLETED = "completed"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class ProviderOutcome:
    """How one provider did: status, time taken, contexts handled and, on failure, why.

    ``step`` is the provider method that failed (``"delete_data_for_user"``); ``error`` a
    message free of personal data. ``exception`` keeps the original exception for
    debugging in the calling process: its message may hold personal values, so it is left
    out of ``repr``, equality and :meth:`to_dict`, and learnprivacy never logs it.
    """

    component: str
    status: RequestStatus
    duration: dt.timedelta
    contexts: int = 0
    step: str | None = None
    error: str | None = None
    timed_out: bool = False
    null_provider: bool = False
    #: What a deletion left of the user beyond what the law keeps: count per kind.
    remaining: Mapping[str, int] = attrs.field(factory=dict)
    #: What a completed deletion left because the law keeps it (the provider's
    #: ``kept_by_law``, restricted): count per kind.
    kept: Mapping[str, int] = attrs.field(factory=dict)
    exception: BaseException | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def completed(self) -> bool:
        """Whether this provider finished its part."""
        return self.status is RequestStatus.COMPLETED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (no exception object, no personal data)."""
        return {
            "component": self.component,
            "status": self.status.value,
            "duration_seconds": self.duration.total_seconds(),
            "contexts": self.contexts,
            "step": self.step,
            "error": self.error,
            "timed_out": self.timed_out,
            "null_provider": self.null_provider,
            "remaining": dict(self.remaining),
            "kept": dict(self.kept),
        }


@attrs.frozen(kw_only=True)
class RequestResult:
    """The result of a request over every provider.

    ``operation`` names the request (``"export_user_data"``, ``"delete_data_for_user"``,
    ...). The subject's id is deliberately not kept: the caller knows it, and the result
    can then be logged or stored as it is.
    """

    operation: str
    outcomes: tuple[ProviderOutcome, ...]

    @property
    def status(self) -> RequestStatus:
        """``COMPLETED`` if every provider completed, else ``FAILED``."""
        if all(outcome.completed for outcome in self.outcomes):
            return RequestStatus.COMPLETED
        return RequestStatus.FAILED

    @property
    def completed(self) -> bool:
        """Whether every provider completed."""
        return self.status is RequestStatus.COMPLETED

    @property
    def failed_components(self) -> tuple[str, ...]:
        """The components whose part failed, in the order they ran."""
        return tuple(o.component for o in self.outcomes if not o.completed)

    @property
    def duration(self) -> dt.timedelta:
        """The time spent in providers, summed."""
        return sum((o.duration for o in self.outcomes), dt.timedelta(0))

    def outcome(self, component: str) -> ProviderOutcome:
        """The outcome of ``component``; ``KeyError`` when it did not take part."""
        for outcome in self.outcomes:
            if outcome.component == component:
                return outcome
        raise KeyError(component)

    def raise_for_status(self) -> RequestResult:
        """Return the result if it completed, else raise ``ProviderError`` naming the failures.

        The error's ``component`` is the first failed component.
        """
        failed = [o for o in self.outcomes if not o.completed]
        if not failed:
            return self
        details = "; ".join(f"{o.component}: {o.error}" for o in failed)
        raise ProviderError(f"{self.operation} failed in {details}", component=failed[0].component)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "operation": self.operation,
            "status": self.status.value,
            "failed_components": list(self.failed_components),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }
