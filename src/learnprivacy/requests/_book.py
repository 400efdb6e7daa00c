"""``RequestBook``: receives requests and moves them through their state machine.

Every method loads the current version from the backend, checks the move, writes the next
version with its history entry in one atomic call and returns it. Calling a step again
once it is done returns the stored request unchanged (no new entry), so a worker that
crashed can simply redo what it was doing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import (
    AuditTampered,
    IntegrityError,
    NotFoundError,
    RequestStateError,
    ValidationError,
)
from learnprivacy.requests._backend import Fact, MemoryBackend, RequestBackend
from learnprivacy.requests._decisions import DecisionsMixin, RequestRef
from learnprivacy.requests._facts import FactsMixin
from learnprivacy.requests._history import HistoryEntry, next_entry, verify_history
from learnprivacy.requests._machine import check_transition
from learnprivacy.requests._model import (
    Failure,
    Requester,
    SubjectRequest,
)
from learnprivacy.requests._outcomes import StepResult
from learnprivacy.requests._params import Params
from learnprivacy.requests._vocabulary import (
    Channel,
    IdentityStatus,
    RequestState,
    RequestType,
)

__all__ = ["AuditSink", "RequestBook"]

#: Called with the request and each history entry once stored (to mirror it elsewhere).
AuditSink = Callable[[SubjectRequest, HistoryEntry], None]


class RequestBook(DecisionsMixin, FactsMixin):
    """The register of data-subject requests: receipt, identity, deadlines, closing.

    >>> import datetime as dt
    >>> from learnprivacy.requests import (
    ...     Channel, ProofMethod, RequestBook, Requester, RequestType)
    >>> book = RequestBook()
    >>> received = dt.datetime(2024, 1, 31, 9, 0, tzinfo=dt.UTC)
    >>> request = book.receive(RequestType.ACCESS, learner_id="L1", received_at=received,
    ...                        channel=Channel.EMAIL, requester=Requester.subject("Ana"))
    >>> request.due_at.date()
    datetime.date(2024, 2, 29)
    >>> book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION,
    ...                      now=received).state.value
    'in_progress'
    """

    def __init__(
        self, backend: RequestBackend | None = None, *, audit_sink: AuditSink | None = None
    ) -> None:
        self._backend: RequestBackend = backend if backend is not None else MemoryBackend()
        self._sink = audit_sink

    def __repr__(self) -> str:
        return f"RequestBook({self._backend!r})"

    @property
    def backend(self) -> RequestBackend:
        """Where requests are kept."""
        return self._backend

    # -- reading -----------------------------------------------------------------------

    def find(self, request: RequestRef) -> SubjectRequest | None:
        """The current version of a request, or ``None``."""
        request_id = request.id if isinstance(request, SubjectRequest) else request
        return self._backend.get_request(request_id)

    def get(self, request: RequestRef) -> SubjectRequest:
        """The current version of a request; ``NotFoundError`` when unknown."""
        found = self.find(request)
        if found is None:
            raise NotFoundError("no request with this id")
        return found

    def requests(
        self, *, learner_id: str | None = None, open_only: bool = False
    ) -> tuple[SubjectRequest, ...]:
        """Requests, oldest receipt first, optionally one learner's or only open ones."""
        return self._backend.list_requests(learner_id=learner_id, open_only=open_only)

    def overdue(self, now: dt.datetime) -> tuple[SubjectRequest, ...]:
        """Requests still owed an answer whose deadline has passed at ``now``.

        That is open requests, and failed ones nobody retried: a failure is not an answer.
        """
        require_aware(now, "now")
        owed = []
        unanswered = {s for s in RequestState if not s.terminal} | {RequestState.FAILED}
        for request in self._backend.list_requests(due_before=now, states=unanswered):
            if request.is_open or (
                request.state is RequestState.FAILED and self.find(f"{request.id}-retry") is None
            ):
                owed.append(request)
        return tuple(owed)

    def history(self, request: RequestRef) -> tuple[HistoryEntry, ...]:
        """The request's audit history, oldest first."""
        return self._backend.history(self.get(request).id)

    def verify(self, request: RequestRef) -> bool:
        """Check the request's history chain and that it ends at the stored version.

        Returns ``True`` or raises ``AuditTampered``.
        """
        current = self.get(request)
        entries = self._backend.history(current.id)
        verify_history(entries)
        if not entries or entries[-1].sequence != current.version:
            raise AuditTampered(
                "request history does not reach the stored version", sequence=len(entries)
            )
        if entries[-1].state_after is not current.state:
            raise AuditTampered(
                "request history ends in another state", sequence=entries[-1].sequence
            )
        return True

    # -- writing -----------------------------------------------------------------------

    def receive(
        self,
        type: RequestType,
        *,
        learner_id: str,
        received_at: dt.datetime,
        channel: Channel,
        requester: Requester,
        params: Params | None = None,
        request_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> SubjectRequest:
        """Register a request as received; its deadline runs from ``received_at``.

        Receiving the same request id again with the same content returns the stored
        request (at whatever state it reached); different content raises
        ``IntegrityError``.
        """
        recorded_at = require_aware(now if now is not None else received_at, "now")
        request = SubjectRequest(
            id=request_id if request_id is not None else f"R-{uuid.uuid4().hex}",
            type=type,
            learner_id=learner_id,
            received_at=received_at,
            channel=channel,
            requester=requester,
            params=params,
            updated_at=recorded_at,
        )
        if recorded_at < received_at:
            raise ValidationError("a request cannot be recorded before it is received", field="now")
        existing = self.find(request.id)
        if existing is not None:
            if _same_receipt(existing, request):
                return existing
            raise IntegrityError("a different request with this id already exists")
        entry = next_entry(
            None,
            request_id=request.id,
            at=recorded_at,
            event="received",
            state_before=None,
            state_after=RequestState.RECEIVED,
            detail={
                "type": type.value,
                "channel": channel.value,
                "requester_role": requester.role.value,
                "due_at": request.due_at.isoformat(),
            },
        )
        self._backend.add_request(request, entry)
        self._emit(request, entry)
        return request

    def record_step(
        self, request: RequestRef, step: StepResult, *, now: dt.datetime
    ) -> SubjectRequest:
        """Persist a finished execution step; recording it again changes nothing."""
        current = self.get(request)
        if current.step(step.name) is not None:
            return current
        if current.state is not RequestState.IN_PROGRESS:
            raise RequestStateError(
                f"steps run only on in_progress requests, not {current.state.value}"
            )
        detail: dict[str, str] = {
            "step": step.name,
            "records": str(len(step.records)),
            "notifications": str(len(step.notifications)),
        }
        detail.update({f"fact.{k}": v for k, v in step.facts.items()})
        return self._move(
            current, now=now, event="step_completed", steps=(*current.steps, step), detail=detail
        )

    def complete(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """Close the request as answered: IN_PROGRESS -> COMPLETED."""
        current = self.get(request)
        if current.state is RequestState.COMPLETED:
            return current
        return self._move(
            current,
            now=now,
            event="completed",
            target=RequestState.COMPLETED,
            detail={"steps": str(len(current.steps))},
        )

    def fail(self, request: RequestRef, failure: Failure, *, now: dt.datetime) -> SubjectRequest:
        """Close the request as failed, with the step and component that failed."""
        current = self.get(request)
        if current.state is RequestState.FAILED:
            return current
        detail = {"step": failure.step}
        if failure.component:
            detail["component"] = failure.component
        return self._move(
            current,
            now=now,
            event="failed",
            target=RequestState.FAILED,
            failure=failure,
            detail=detail,
        )

    def retry(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """Open a new request redoing a FAILED one; retrying again returns the same retry.

        The retry keeps the receipt date and any extension, so its deadline is the
        original one; it keeps the identity check and the steps that completed, so only
        what failed runs again.
        """
        current = self.get(request)
        if current.state is not RequestState.FAILED:
            raise RequestStateError("only a failed request can be retried")
        retry_id = f"{current.id}-retry"
        existing = self.find(retry_id)
        if existing is not None:
            return existing
        require_aware(now, "now")
        fresh = attrs.evolve(
            current,
            id=retry_id,
            state=RequestState.RECEIVED,
            version=1,
            updated_at=now,
            failure=None,
            refusal=None,
            closed_at=None,
            retry_of=current.id,
        )
        entry = next_entry(
            None,
            request_id=retry_id,
            at=now,
            event="received",
            state_before=None,
            state_after=RequestState.RECEIVED,
            detail={
                "type": current.type.value,
                "retry_of": current.id,
                "due_at": fresh.due_at.isoformat(),
            },
        )
        self._backend.add_request(fresh, entry)
        self._emit(fresh, entry)
        if current.identity.status is IdentityStatus.VERIFIED:
            return self._move(
                fresh,
                now=now,
                event="identity_verified",
                target=RequestState.IN_PROGRESS,
                detail={"carried_from": current.id},
            )
        return fresh

    # -- internals ---------------------------------------------------------------------

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
        require_aware(now, "now")
        state = current.state if target is None else target
        if target is not None:
            check_transition(current.state, target)
        elif current.state.terminal:
            raise RequestStateError(f"a {current.state.value} request cannot change")
        entries = self._backend.history(current.id)
        previous = entries[-1] if entries else None
        if now < current.received_at or (previous is not None and now < previous.at):
            raise ValidationError(
                "now is earlier than the request's last recorded event", field="now"
            )
        updated = attrs.evolve(
            current,
            state=state,
            version=current.version + 1,
            updated_at=now,
            closed_at=now if state.terminal else None,
            **changes,
        )
        entry = next_entry(
            previous,
            request_id=current.id,
            at=now,
            event=event,
            state_before=current.state,
            state_after=state,
            detail=detail,
        )
        self._backend.replace_request(updated, entry)
        self._emit(updated, entry)
        return updated

    def _emit(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        if self._sink is not None:
            self._sink(request, entry)

    def _put_fact(self, fact: Fact) -> None:
        self._backend.put_fact(fact)

    def _get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        return self._backend.get_fact(learner_id, kind, key)

    def _list_facts(self, kind: str, learner_id: str | None) -> tuple[Fact, ...]:
        return self._backend.list_facts(kind, learner_id=learner_id)


def _same_receipt(a: SubjectRequest, b: SubjectRequest) -> bool:
    return (a.type, a.learner_id, a.received_at, a.channel, a.requester, a.params) == (
        b.type,
        b.learner_id,
        b.received_at,
        b.channel,
        b.requester,
        b.params,
    )
