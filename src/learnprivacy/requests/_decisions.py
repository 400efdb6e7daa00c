"""Decisions on a request before it runs: identity, extension, compelling grounds, refusal.

Mixed into :class:`RequestBook`; each method checks its move, then writes the next version
through the book's ``_move`` (one atomic write with its history entry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import PolicyError, RequestStateError, ValidationError
from learnprivacy.requests._deadlines import Extension
from learnprivacy.requests._model import IdentityCheck, Refusal, SubjectRequest
from learnprivacy.requests._params import ObjectionParams
from learnprivacy.requests._vocabulary import (
    IdentityStatus,
    ProofMethod,
    RefusalGrounds,
    RequestState,
    RequestType,
)

__all__ = ["DecisionsMixin", "RequestRef"]

RequestRef = str | SubjectRequest


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be non-empty text", field=field)
    return value


class DecisionsMixin:
    """Identity checks, the extension, compelling grounds, refusal and cancellation."""

    def get(self, request: RequestRef) -> SubjectRequest:
        raise NotImplementedError

    def _move(
        self,
        current: SubjectRequest,
        *,
        now: dt.datetime,
        event: str,
        target: RequestState | None = None,
        detail: Mapping[str, str] | None = None,
        **changes: Any,
    ) -> SubjectRequest:
        raise NotImplementedError

    def request_identity(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """Ask the requester for proof of identity: RECEIVED -> AWAITING_IDENTITY."""
        current = self.get(request)
        if current.state is RequestState.AWAITING_IDENTITY:
            return current
        identity = IdentityCheck(status=IdentityStatus.REQUESTED, at=now)
        return self._move(
            current,
            now=now,
            event="identity_requested",
            target=RequestState.AWAITING_IDENTITY,
            identity=identity,
        )

    def verify_identity(
        self, request: RequestRef, *, method: ProofMethod, now: dt.datetime
    ) -> SubjectRequest:
        """Record that identity (or authority) is established: -> IN_PROGRESS.

        Only the method is kept; the document shown is not.
        """
        if not isinstance(method, ProofMethod):
            raise ValidationError("method must be a ProofMethod", field="method")
        current = self.get(request)
        if (
            current.state is RequestState.IN_PROGRESS
            and current.identity.status is IdentityStatus.VERIFIED
        ):
            return current
        identity = IdentityCheck(status=IdentityStatus.VERIFIED, method=method, at=now)
        return self._move(
            current,
            now=now,
            event="identity_verified",
            target=RequestState.IN_PROGRESS,
            identity=identity,
            detail={"method": method.value},
        )

    def identity_not_established(
        self, request: RequestRef, *, reason: str, now: dt.datetime
    ) -> SubjectRequest:
        """Identity could not be established: the request is REFUSED (Art. 12(2))."""
        current = self.get(request)
        refusal = Refusal(grounds=RefusalGrounds.IDENTITY_NOT_ESTABLISHED, reason=reason, at=now)
        if current.state is RequestState.REFUSED and current.refusal == refusal:
            return current
        return self._move(
            current,
            now=now,
            event="refused",
            target=RequestState.REFUSED,
            identity=attrs.evolve(current.identity, status=IdentityStatus.FAILED, at=now),
            refusal=refusal,
            detail={"grounds": refusal.grounds.value, "article": refusal.grounds.article},
        )

    def extend(
        self,
        request: RequestRef,
        *,
        months: int,
        reasons: str,
        subject_informed_at: dt.datetime,
        now: dt.datetime,
    ) -> SubjectRequest:
        """Extend the deadline once, by at most two months (Art. 12(3)).

        Allowed only on an open request, strictly before the first deadline, with the
        reasons recorded and the date the subject was told of them (no later than
        ``now`` nor the first deadline). Asking again for the same extension changes
        nothing; any other second extension raises ``RequestStateError``.
        """
        require_aware(now, "now")
        current = self.get(request)
        extension = Extension(
            months=months,
            reasons=reasons,
            decided_at=now,
            subject_informed_at=subject_informed_at,
        )
        if current.extension is not None:
            if (current.extension.months, current.extension.reasons) == (months, reasons):
                return current
            raise RequestStateError("a request's deadline can be extended only once")
        if current.state.terminal:
            raise RequestStateError(f"a {current.state.value} request cannot be extended")
        if now >= current.first_due_at:
            raise PolicyError("an extension must be recorded before the first deadline")
        if not current.received_at <= subject_informed_at <= min(now, current.first_due_at):
            raise PolicyError(
                "the subject must be informed of the extension between receipt and the "
                "first deadline, and not after it is recorded",
            )
        extended = attrs.evolve(current, extension=extension)
        return self._move(
            current,
            now=now,
            event="extended",
            extension=extension,
            detail={"months": str(months), "due_at": extended.due_at.isoformat()},
        )

    def record_compelling_grounds(
        self, request: RequestRef, *, reasons: str, now: dt.datetime
    ) -> SubjectRequest:
        """Record compelling legitimate grounds that override an objection (Art. 21(1)).

        Only for an objection not yet executed, and never for direct marketing, where
        the objection is absolute (Art. 21(3)): that raises ``PolicyError``.
        """
        _text(reasons, "reasons")
        current = self.get(request)
        if current.type is not RequestType.OBJECTION:
            raise RequestStateError("compelling grounds only answer an objection")
        assert isinstance(current.params, ObjectionParams)  # guaranteed by the type
        if current.params.direct_marketing:
            raise PolicyError("an objection to direct marketing cannot be overridden")
        if current.compelling_grounds == reasons:
            return current
        if current.state.terminal or current.steps:
            raise RequestStateError("compelling grounds must be recorded before execution")
        return self._move(
            current, now=now, event="compelling_grounds_recorded", compelling_grounds=reasons
        )

    def refuse(
        self,
        request: RequestRef,
        *,
        grounds: RefusalGrounds,
        reason: str,
        now: dt.datetime,
    ) -> SubjectRequest:
        """Refuse to act (Art. 12(5)): the reason is recorded and goes into the letter.

        A request on which steps were already executed cannot be refused any more.
        """
        if not isinstance(grounds, RefusalGrounds):
            raise ValidationError("grounds must be RefusalGrounds", field="grounds")
        current = self.get(request)
        refusal = Refusal(grounds=grounds, reason=reason, at=now)
        previous = current.refusal
        same = previous is not None and (previous.grounds, previous.reason) == (grounds, reason)
        if current.state is RequestState.REFUSED and same:
            return current
        if current.steps and not current.state.terminal:
            raise RequestStateError("a request partly executed cannot be refused")
        return self._move(
            current,
            now=now,
            event="refused",
            target=RequestState.REFUSED,
            refusal=refusal,
            detail={"grounds": grounds.value, "article": grounds.article},
        )

    def cancel(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """The requester withdrew the request before work started: -> CANCELLED."""
        current = self.get(request)
        if current.state is RequestState.CANCELLED:
            return current
        return self._move(current, now=now, event="cancelled", target=RequestState.CANCELLED)
