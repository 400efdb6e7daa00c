"""``RequestBook``: the register of data-subject requests, whole.

Receipt, identity checks, the extension, compelling grounds, refusal, cancellation,
execution steps and closing; and the per-learner facts requests leave behind
(objections, post-mortem directives, deaths, scheduled erasures), which outlive the
request that created them and which the LMS queries.

Every method loads the current version from the backend, checks the move, writes the next
version with its history entry in one atomic call and returns it. Calling a step again
once it is done returns the stored request unchanged (no new entry), so a worker that
crashed can simply redo what it was doing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import attrs

from learnprivacy._validators import require_aware, require_text
from learnprivacy.errors import (
    AuditTampered,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    PolicyError,
    RequestStateError,
    ValidationError,
)
from learnprivacy.records._fields import MASK
from learnprivacy.requests._backend import Fact, MemoryBackend, RequestBackend, RequestQuery
from learnprivacy.requests._deadlines import Extension, HolidayCalendar
from learnprivacy.requests._history import HistoryEntry, next_entry, verify_history
from learnprivacy.requests._machine import check_transition
from learnprivacy.requests._model import (
    PLAN_PREFIX,
    Failure,
    IdentityCheck,
    Refusal,
    Requester,
    SubjectRequest,
)
from learnprivacy.requests._outcomes import NotificationStatus, StepResult
from learnprivacy.requests._params import (
    ObjectionParams,
    Params,
    PostMortemDirective,
    params_from_dict,
)
from learnprivacy.requests._vocabulary import (
    IDENTITY_PROOFS,
    REQUIRED_PROOFS,
    Channel,
    IdentityStatus,
    ProofMethod,
    RefusalGrounds,
    RequesterRole,
    RequestState,
    RequestType,
)

__all__ = [
    "AuditSink",
    "Objection",
    "RecordedDeath",
    "RegisteredDirective",
    "RequestBook",
    "RequestRef",
    "ScheduledErasure",
]

#: Called with the request and each history entry once stored (to mirror it elsewhere).
AuditSink = Callable[[SubjectRequest, HistoryEntry], None]

RequestRef = str | SubjectRequest

OBJECTION = "objection"
DIRECTIVE = "directive"
DEATH = "death"
SCHEDULED_ERASURE = "scheduled_erasure"
EXECUTOR_NOTICE = "executor_notice"


def _mask(_value: object) -> str:
    return MASK


@attrs.frozen(kw_only=True)
class Objection:
    """A recorded objection to one purpose.

    ``overridden`` is true when the controller recorded compelling legitimate grounds
    (Art. 21(1)); the processing may then go on and :meth:`RequestBook.is_objected` is
    false.
    """

    learner_id: str = attrs.field(repr=_mask)
    purpose: str
    request_id: str
    at: dt.datetime
    direct_marketing: bool
    overridden: bool


@attrs.frozen(kw_only=True)
class RegisteredDirective:
    """The post-mortem directive in force for a learner (the latest registered)."""

    learner_id: str = attrs.field(repr=_mask)
    request_id: str
    registered_at: dt.datetime
    directive: PostMortemDirective


@attrs.frozen(kw_only=True)
class RecordedDeath:
    """A learner's death as recorded (date of death, and when it was recorded)."""

    learner_id: str = attrs.field(repr=_mask)
    died_at: dt.datetime
    recorded_at: dt.datetime


@attrs.frozen(kw_only=True)
class ScheduledErasure:
    """An erasure a directive asked for at a later date (keep-then-erase)."""

    learner_id: str = attrs.field(repr=_mask)
    due_at: dt.datetime
    request_id: str
    done_at: dt.datetime | None = None


#: Where each history event takes a request (``None``: the state stays, a fact is added).
_EVENT_TARGETS: Mapping[str, RequestState | None] = {
    "identity_requested": RequestState.AWAITING_IDENTITY,
    "identity_verified": RequestState.IN_PROGRESS,
    "step_completed": None,
    "compelling_grounds_recorded": None,
    "extended": None,
    "completed": RequestState.COMPLETED,
    "failed": RequestState.FAILED,
    "refused": RequestState.REFUSED,
    "cancelled": RequestState.CANCELLED,
}


class RequestBook:
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
        self,
        backend: RequestBackend | None = None,
        *,
        audit_sink: AuditSink | None = None,
        calendar: HolidayCalendar | str = HolidayCalendar.FR,
        identity_proofs: Collection[ProofMethod] = IDENTITY_PROOFS,
    ) -> None:
        self._backend: RequestBackend = backend if backend is not None else MemoryBackend()
        self._sink = audit_sink
        #: The public holidays deadlines roll over (the controller's country).
        self.calendar = HolidayCalendar(calendar)
        proofs = frozenset(identity_proofs)
        if not proofs or not proofs <= IDENTITY_PROOFS:
            raise ConfigurationError(
                "identity_proofs must be a non-empty set of identity proofs "
                "(ProofMethod members of IDENTITY_PROOFS)"
            )
        #: The proofs of identity this controller accepts from a subject asking for
        #: themselves (its policy may ask for more than any proof, e.g. an ID document).
        self.identity_proofs = proofs

    def __repr__(self) -> str:
        return f"RequestBook({self._backend!r})"

    @property
    def backend(self) -> RequestBackend:
        """Where requests are kept."""
        return self._backend

    # -- reading -----------------------------------------------------------------------

    def get(self, request: RequestRef) -> SubjectRequest | None:
        """The current version of a request; ``None`` only when there is none.

        The same rule as :meth:`learnprivacy.store.Store.get`. Every method that acts on
        a request raises ``NotFoundError`` for an unknown one.
        """
        request_id = request.id if isinstance(request, SubjectRequest) else request
        return self._backend.get_request(request_id)

    def current(self, request: RequestRef) -> SubjectRequest:
        """The current version of a request that must exist; ``NotFoundError`` otherwise."""
        found = self.get(request)
        if found is None:
            raise NotFoundError("no request with this id")
        return found

    def requests(
        self, *, learner_id: str | None = None, open_only: bool = False
    ) -> tuple[SubjectRequest, ...]:
        """Requests, oldest receipt first, optionally one learner's or only open ones."""
        return self._backend.list_requests(RequestQuery(learner_id=learner_id, open_only=open_only))

    def overdue(self, now: dt.datetime) -> tuple[SubjectRequest, ...]:
        """Requests still owed an answer whose deadline has passed at ``now``.

        That is open requests, and failed ones nobody retried: a failure is not an answer.
        """
        require_aware(now, "now")
        owed = []
        unanswered = {s for s in RequestState if not s.terminal} | {RequestState.FAILED}
        for request in self._backend.list_requests(RequestQuery(due_before=now, states=unanswered)):
            if request.is_open or (
                request.state is RequestState.FAILED and self.get(f"{request.id}-retry") is None
            ):
                owed.append(request)
        return tuple(owed)

    def history(self, request: RequestRef) -> tuple[HistoryEntry, ...]:
        """The request's audit history, oldest first."""
        return self._backend.history(self.current(request).id)

    def verify(self, request: RequestRef) -> bool:
        """Check the request's history chain and that it ends at the stored version.

        Returns ``True`` or raises ``AuditTampered``.
        """
        current = self.current(request)
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
            calendar=self.calendar,
        )
        if recorded_at < received_at:
            raise ValidationError("a request cannot be recorded before it is received", field="now")
        existing = self.get(request.id)
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
        current = self.current(request)
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

    def complete(
        self,
        request: RequestRef,
        *,
        now: dt.datetime,
        expected_steps: Sequence[str] | None = None,
    ) -> SubjectRequest:
        """Close the request as answered: IN_PROGRESS -> COMPLETED.

        Only when the work was done: at least one step ran, and every one of
        ``expected_steps`` (the executor passes its whole plan) has its result recorded;
        otherwise ``RequestStateError`` names what is missing and the request stays open.
        A request closed after its deadline is recorded as late (the ``completed`` entry
        says ``late``; :attr:`SubjectRequest.completed_late`).
        """
        current = self.current(request)
        if current.state is RequestState.COMPLETED:
            return current
        done = {s.name for s in current.steps}
        if current.state is RequestState.IN_PROGRESS and not done - _plans(done):
            raise RequestStateError("no step of the request ran: it cannot be completed")
        missing = [name for name in expected_steps or () if name not in done]
        if missing:
            raise RequestStateError(
                "step(s) did not run: " + ", ".join(missing) + "; it cannot be completed"
            )
        late = require_aware(now, "now") > current.due_at
        return self._move(
            current,
            now=now,
            event="completed",
            detail={"steps": str(len(current.steps)), "late": "true" if late else "false"},
        )

    def fail(self, request: RequestRef, failure: Failure, *, now: dt.datetime) -> SubjectRequest:
        """Close the request as failed, with the step and component that failed."""
        current = self.current(request)
        if current.state is RequestState.FAILED:
            return current
        detail = {"step": failure.step}
        if failure.component:
            detail["component"] = failure.component
        return self._move(current, now=now, event="failed", failure=failure, detail=detail)

    def retry(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """Open a new request redoing a FAILED one; retrying again returns the same retry.

        The retry keeps the receipt date and any extension, so its deadline is the
        original one; it keeps the identity check and the steps that completed, so only
        what failed runs again.
        """
        current = self.current(request)
        if current.state is not RequestState.FAILED:
            raise RequestStateError("only a failed request can be retried")
        retry_id = f"{current.id}-retry"
        existing = self.get(retry_id)
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
                fresh, now=now, event="identity_verified", detail={"carried_from": current.id}
            )
        return fresh

    # -- internals ---------------------------------------------------------------------

    def request_identity(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """Ask the requester for proof of identity: RECEIVED -> AWAITING_IDENTITY."""
        current = self.current(request)
        if current.state is RequestState.AWAITING_IDENTITY:
            return current
        identity = IdentityCheck(status=IdentityStatus.REQUESTED, at=now)
        return self._move(current, now=now, event="identity_requested", identity=identity)

    def verify_identity(
        self,
        request: RequestRef,
        *,
        method: ProofMethod,
        now: dt.datetime,
        also: Sequence[ProofMethod] = (),
    ) -> SubjectRequest:
        """Record that identity (or authority) is established: -> IN_PROGRESS.

        The proofs must be those the requester's role needs (:data:`REQUIRED_PROOFS`):
        the subject an identity proof the book accepts (``identity_proofs``, all of
        them by default); a representative the mandate; an heir the death
        certificate *and* the proof of heirship (``also=``); the person a directive
        designates, the death certificate. A death certificate stands for the subject
        only once their death is recorded (a directive carried out). Anything else
        raises ``PolicyError`` and the request stays where it was. Only the methods are
        kept; the documents shown are not.
        """
        methods = (method, *also)
        if not all(isinstance(m, ProofMethod) for m in methods):
            raise ValidationError("method must be a ProofMethod", field="method")
        current = self.current(request)
        if (
            current.state is RequestState.IN_PROGRESS
            and current.identity.status is IdentityStatus.VERIFIED
        ):
            return current
        role = current.requester.role
        accepted = REQUIRED_PROOFS[role]
        if role is RequesterRole.SUBJECT:
            accepted = (self.identity_proofs,)
            if self.death_of(current.learner_id) is not None:
                accepted = (self.identity_proofs | {ProofMethod.DEATH_CERTIFICATE_SIGHTED},)
        missing = [group for group in accepted if not group & set(methods)]
        if missing:
            needed = " and ".join(" or ".join(sorted(m.value for m in group)) for group in missing)
            raise PolicyError(f"a request by the {role.value} needs proof: {needed}")
        identity = IdentityCheck(
            status=IdentityStatus.VERIFIED, method=method, at=now, also=tuple(also)
        )
        detail = {"method": method.value}
        if also:
            detail["also"] = ",".join(m.value for m in also)
        return self._move(
            current, now=now, event="identity_verified", identity=identity, detail=detail
        )

    def identity_not_established(
        self, request: RequestRef, *, reason: str, now: dt.datetime
    ) -> SubjectRequest:
        """Identity could not be established: the request is REFUSED (Art. 12(2))."""
        current = self.current(request)
        refusal = Refusal(grounds=RefusalGrounds.IDENTITY_NOT_ESTABLISHED, reason=reason, at=now)
        if current.state is RequestState.REFUSED and current.refusal == refusal:
            return current
        return self._move(
            current,
            now=now,
            event="refused",
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
        current = self.current(request)
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
        require_text(reasons, "reasons")
        current = self.current(request)
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

        ``reason`` is the controller's own explanation for the subject and is required:
        blank text raises ``ValidationError``. ``RefusalGrounds.RIGHTS_OF_OTHERS``
        (Art. 15(4)) answers only a request for a copy (access, portability); any other
        request refused on it raises ``PolicyError``. A request on which steps were
        already executed cannot be refused any more.
        """
        if not isinstance(grounds, RefusalGrounds):
            raise ValidationError("grounds must be RefusalGrounds", field="grounds")
        require_text(reason, "reason")
        current = self.current(request)
        if grounds is RefusalGrounds.RIGHTS_OF_OTHERS and current.type not in (
            RequestType.ACCESS,
            RequestType.PORTABILITY,
        ):
            raise PolicyError(
                "the rights of others (Art. 15(4)) limit only a copy of the data: "
                f"a {current.type.value} request cannot be refused on them"
            )
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
            refusal=refusal,
            detail={"grounds": grounds.value, "article": grounds.article},
        )

    def cancel(self, request: RequestRef, *, now: dt.datetime) -> SubjectRequest:
        """The requester withdrew the request before work started: -> CANCELLED."""
        current = self.current(request)
        if current.state is RequestState.CANCELLED:
            return current
        return self._move(current, now=now, event="cancelled")

    # -- per-learner facts ---------------------------------------------------------------

    # -- objections --------------------------------------------------------------------

    def is_objected(self, learner_id: str, purpose: str) -> bool:
        """Whether ``learner_id`` objected to ``purpose`` and the objection stands.

        The LMS asks this before processing for a legitimate-interest purpose.
        """
        fact = self._get_fact(learner_id, OBJECTION, purpose)
        return fact is not None and not fact.data["overridden"]

    def objections(self, learner_id: str) -> tuple[Objection, ...]:
        """Every objection recorded for ``learner_id``, by purpose."""
        return tuple(_objection(f) for f in self._list_facts(OBJECTION, learner_id))

    def record_objection(
        self,
        learner_id: str,
        purpose: str,
        *,
        request_id: str,
        direct_marketing: bool,
        overridden: bool,
        now: dt.datetime,
    ) -> Objection:
        """Record (or replace) the objection flag for one purpose."""
        fact = Fact(
            learner_id=learner_id,
            kind=OBJECTION,
            key=purpose,
            at=require_aware(now, "now"),
            data={
                "request_id": request_id,
                "direct_marketing": direct_marketing,
                "overridden": overridden,
            },
        )
        self._put_fact(fact)
        return _objection(fact)

    # -- directives --------------------------------------------------------------------

    def directive_of(self, learner_id: str) -> RegisteredDirective | None:
        """The post-mortem directive in force for ``learner_id``, if any."""
        fact = self._get_fact(learner_id, DIRECTIVE, "particular")
        if fact is None:
            return None
        directive = params_from_dict(fact.data["directive"])
        assert isinstance(directive, PostMortemDirective)  # only directives are stored here
        return RegisteredDirective(
            learner_id=learner_id,
            request_id=fact.data["request_id"],
            registered_at=fact.at,
            directive=directive,
        )

    def register_directive(
        self,
        learner_id: str,
        directive: PostMortemDirective,
        *,
        request_id: str,
        now: dt.datetime,
    ) -> RegisteredDirective:
        """Register a directive; it replaces any earlier one (directives can be changed)."""
        self._put_new_fact(
            learner_id,
            DIRECTIVE,
            "particular",
            now,
            {"request_id": request_id, "directive": directive.to_dict()},
        )
        found = self.directive_of(learner_id)
        assert found is not None  # just written
        return found

    # -- deaths and scheduled erasures -------------------------------------------------

    def death_of(self, learner_id: str) -> RecordedDeath | None:
        """The recorded death of ``learner_id``, if any."""
        fact = self._get_fact(learner_id, DEATH, "death")
        if fact is None:
            return None
        return RecordedDeath(
            learner_id=learner_id,
            died_at=dt.datetime.fromisoformat(fact.data["died_at"]),
            recorded_at=fact.at,
        )

    def put_death(
        self,
        learner_id: str,
        *,
        died_at: dt.datetime,
        now: dt.datetime,
        proof: ProofMethod = ProofMethod.DEATH_CERTIFICATE_SIGHTED,
    ) -> None:
        """Store the death fact (the executor's ``record_death`` applies directives).

        A death is recorded only on a death certificate sighted (``proof``); any other
        proof raises ``PolicyError``.
        """
        require_aware(died_at, "at")
        if proof is not ProofMethod.DEATH_CERTIFICATE_SIGHTED:
            raise PolicyError("a death is recorded only on a death certificate sighted")
        self._put_new_fact(
            learner_id, DEATH, "death", now, {"died_at": died_at.isoformat(), "proof": proof.value}
        )

    def schedule_erasure(
        self, learner_id: str, *, due_at: dt.datetime, request_id: str, now: dt.datetime
    ) -> ScheduledErasure:
        """Schedule a directive's erasure; scheduling it again changes nothing."""
        existing = self._get_fact(learner_id, SCHEDULED_ERASURE, request_id)
        if existing is None:
            self._put_new_fact(
                learner_id,
                SCHEDULED_ERASURE,
                request_id,
                now,
                {"due_at": require_aware(due_at, "due_at").isoformat(), "done_at": None},
            )
            existing = self._get_fact(learner_id, SCHEDULED_ERASURE, request_id)
        assert existing is not None  # just written
        return _scheduled(existing)

    def scheduled_erasures(
        self, *, due_by: dt.datetime | None = None
    ) -> tuple[ScheduledErasure, ...]:
        """Scheduled erasures not yet done, optionally only those due by ``due_by``."""
        found = [
            _scheduled(f)
            for f in self._list_facts(SCHEDULED_ERASURE, None)
            if f.data["done_at"] is None
        ]
        if due_by is not None:
            require_aware(due_by, "due_by")
            found = [s for s in found if s.due_at <= due_by]
        return tuple(sorted(found, key=lambda s: (s.due_at, s.request_id)))

    def notice_status(self, learner_id: str, request_id: str) -> NotificationStatus | None:
        """How telling the executor of directive ``request_id`` went, if it was tried."""
        fact = self._get_fact(learner_id, EXECUTOR_NOTICE, request_id)
        return None if fact is None else NotificationStatus(fact.data["status"])

    def record_notice_status(
        self, learner_id: str, request_id: str, *, status: NotificationStatus, now: dt.datetime
    ) -> None:
        """Record how telling the executor went (a failure is retried later)."""
        self._put_new_fact(learner_id, EXECUTOR_NOTICE, request_id, now, {"status": status.value})

    def mark_erasure_done(self, erasure: ScheduledErasure, *, now: dt.datetime) -> None:
        """Mark a scheduled erasure as carried out."""
        fact = self._get_fact(erasure.learner_id, SCHEDULED_ERASURE, erasure.request_id)
        if fact is None or fact.data["done_at"] is not None:
            return
        data: dict[str, Any] = {**fact.data, "done_at": require_aware(now, "now").isoformat()}
        self._put_fact(attrs.evolve(fact, data=data))

    def _move(
        self,
        current: SubjectRequest,
        *,
        now: dt.datetime,
        event: str,
        detail: Mapping[str, str] | None = None,
        **changes: Any,
    ) -> SubjectRequest:
        require_aware(now, "now")
        target = _EVENT_TARGETS[event]
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
        updated, entry = next_version(
            current, previous, now=now, event=event, detail=detail, **changes
        )
        self._backend.replace_request(updated, entry)
        self._emit(updated, entry)
        return updated

    def _emit(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        if self._sink is not None:
            self._sink(request, entry)

    def _put_fact(self, fact: Fact) -> None:
        self._backend.put_fact(fact)

    def _put_new_fact(
        self, learner_id: str, kind: str, key: str, now: dt.datetime, data: Mapping[str, Any]
    ) -> None:
        self._put_fact(
            Fact(learner_id=learner_id, kind=kind, key=key, at=require_aware(now, "now"), data=data)
        )

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


def _objection(fact: Fact) -> Objection:
    return Objection(
        learner_id=fact.learner_id,
        purpose=fact.key,
        request_id=fact.data["request_id"],
        at=fact.at,
        direct_marketing=bool(fact.data["direct_marketing"]),
        overridden=bool(fact.data["overridden"]),
    )


def _scheduled(fact: Fact) -> ScheduledErasure:
    done = fact.data["done_at"]
    return ScheduledErasure(
        learner_id=fact.learner_id,
        due_at=dt.datetime.fromisoformat(fact.data["due_at"]),
        request_id=fact.key,
        done_at=dt.datetime.fromisoformat(done) if done else None,
    )


def _plans(names: set[str]) -> set[str]:
    """The plan steps among ``names``: they record intentions, not work done."""
    return {name for name in names if name.startswith(PLAN_PREFIX)}


def next_version(
    current: SubjectRequest,
    previous: HistoryEntry | None,
    *,
    now: dt.datetime,
    event: str,
    detail: Mapping[str, str] | None = None,
    **changes: Any,
) -> tuple[SubjectRequest, HistoryEntry]:
    """What moving ``current`` by ``event`` at ``now`` writes: the request's next version
    (``changes`` applied) and its history entry, chained after ``previous``.

    Nothing is checked or written here: ``RequestBook`` checks the move first, and the
    backend refuses the write if ``current`` is no longer the stored version.
    """
    target = _EVENT_TARGETS[event]
    state = current.state if target is None else target
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
    return updated, entry
