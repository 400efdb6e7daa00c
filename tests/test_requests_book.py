"""The request book: receipt, identity, transitions, idempotent steps, audit history.

Every test runs on the in-memory backend and on the SQL backend (SQLite, encrypted).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from sqlalchemy import text

from learnprivacy import errors
from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.requests import (
    Channel,
    MemoryBackend,
    ObjectionParams,
    ProofMethod,
    RefusalGrounds,
    RequestBook,
    Requester,
    RequesterRole,
    RequestState,
    RequestType,
    SubjectRequest,
    WithdrawConsentParams,
)
from learnprivacy.requests._model import Failure
from learnprivacy.requests._outcomes import StepResult
from learnprivacy.requests._vocabulary import IdentityStatus
from learnprivacy.requests.sql import SQLBackend
from tests import INVOICE_KEPT, assert_stale_move_refused, erase_store_step, receive_request

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sql"])
def book(request: pytest.FixtureRequest) -> Iterator[RequestBook]:
    """A request book on each backend."""
    if request.param == "memory":
        yield RequestBook(MemoryBackend())
        return
    backend = SQLBackend("sqlite://", cipher=FieldCipher(Keyring.generate()))
    yield RequestBook(backend)
    backend.engine.dispose()


def receive(
    book: RequestBook, kind: RequestType = RequestType.ACCESS, **kw: object
) -> SubjectRequest:
    """Receive a request of ``kind`` from Ana at T0."""
    ana = Requester.subject("Ana Silva", "ana@example.org")
    return receive_request(book, kind, **{"received_at": T0, "requester": ana, **kw})


def worked(book: RequestBook, request: Any, now: dt.datetime = T0) -> Any:
    """The request after one step of work recorded: what completing it requires."""
    return book.record_step(request, StepResult(name="answer_sent", completed_at=now), now=now)


def completed(book: RequestBook, request_id: str) -> SubjectRequest:
    """A request received, verified in person, worked on and completed at T0."""
    verified = book.verify_identity(
        receive(book, request_id=request_id), method=ProofMethod.IN_PERSON, now=T0
    )
    return book.complete(worked(book, verified), now=T0)


def test_receive_starts_received_with_deadline_and_history(book: RequestBook) -> None:
    """A received request is RECEIVED, due one month later, with one history entry."""
    request = receive_request(book, RequestType.ERASURE, received_at=T0, channel=Channel.WEB_FORM)
    assert request.state is RequestState.RECEIVED
    assert request.due_at == dt.datetime(2026, 4, 2, 23, 59, 59, 999_999, tzinfo=UTC)
    assert request.identity.status is IdentityStatus.UNVERIFIED
    history = book.history(request)
    assert [e.event for e in history] == ["received"]
    assert history[0].detail["type"] == "erasure"
    assert book.verify(request)
    assert book.get(request.id) == request


def test_full_path_to_completed(book: RequestBook) -> None:
    """RECEIVED -> AWAITING_IDENTITY -> IN_PROGRESS -> COMPLETED, each step audited."""
    request = receive(book)
    request = book.request_identity(request, now=T0)
    assert request.state is RequestState.AWAITING_IDENTITY
    assert request.identity.status is IdentityStatus.REQUESTED
    request = book.verify_identity(request, method=ProofMethod.ID_DOCUMENT_SIGHTED, now=T0)
    assert request.state is RequestState.IN_PROGRESS
    assert request.identity.method is ProofMethod.ID_DOCUMENT_SIGHTED
    request = book.complete(worked(book, request), now=T0 + dt.timedelta(days=3))
    assert request.state is RequestState.COMPLETED
    assert request.closed_at == T0 + dt.timedelta(days=3)
    assert not request.completed_late
    events = [(e.event, e.state_after) for e in book.history(request)]
    assert events == [
        ("received", RequestState.RECEIVED),
        ("identity_requested", RequestState.AWAITING_IDENTITY),
        ("identity_verified", RequestState.IN_PROGRESS),
        ("step_completed", RequestState.IN_PROGRESS),
        ("completed", RequestState.COMPLETED),
    ]
    assert request.version == 5
    assert book.verify(request)


def test_steps_are_idempotent(book: RequestBook) -> None:
    """Repeating a step once done returns the stored request and adds no entry."""
    request = receive(book)
    first = book.request_identity(request, now=T0)
    assert book.request_identity(request, now=T0) == first
    second = book.verify_identity(first, method=ProofMethod.EMAIL_CONFIRMATION, now=T0)
    assert book.verify_identity(first, method=ProofMethod.EMAIL_CONFIRMATION, now=T0) == second
    second = worked(book, second)
    done = book.complete(second, now=T0)
    assert book.complete(second, now=T0) == done
    assert len(book.history(request)) == 5


def test_receiving_same_id_twice(book: RequestBook) -> None:
    """The same id with the same content returns the stored request; other content fails."""
    first = receive(book, request_id="R1")
    moved = book.request_identity("R1", now=T0)
    assert receive(book, request_id="R1") == moved
    assert first.version == 1
    with pytest.raises(errors.IntegrityError):
        receive(book, request_id="R1", learner_id="L2")


@pytest.mark.parametrize("terminal", ["complete", "refuse", "cancel", "fail"])
def test_terminal_states_stay_terminal(book: RequestBook, terminal: str) -> None:
    """Once closed, no transition is accepted and the request is unchanged."""
    request = receive(book)
    if terminal == "cancel":
        closed = book.cancel(request, now=T0)
    elif terminal == "refuse":
        closed = book.refuse(
            request, grounds=RefusalGrounds.EXCESSIVE, reason="Fifth identical request.", now=T0
        )
    else:
        request = book.verify_identity(request, method=ProofMethod.IN_PERSON, now=T0)
        if terminal == "complete":
            closed = book.complete(worked(book, request), now=T0)
        else:
            closed = book.fail(request, Failure(step="x", error="boom", at=T0), now=T0)
    assert closed.state.terminal
    attempts = [
        lambda: book.request_identity(request, now=T0),
        lambda: book.verify_identity(request, method=ProofMethod.IN_PERSON, now=T0),
        lambda: (
            book.complete(request, now=T0)
            if terminal != "complete"
            else book.cancel(request, now=T0)
        ),
        lambda: book.extend(request, months=1, reasons="complex", subject_informed_at=T0, now=T0),
        lambda: book.record_step(request, StepResult(name="s", completed_at=T0), now=T0),
    ]
    for attempt in attempts:
        with pytest.raises(errors.RequestStateError):
            attempt()
    assert book.get(request) == closed
    assert book.verify(request)


def test_illegal_moves_raise(book: RequestBook) -> None:
    """Completing before work started, or cancelling work under way, is refused."""
    request = receive(book)
    with pytest.raises(errors.RequestStateError):
        book.complete(request, now=T0)
    with pytest.raises(errors.RequestStateError):
        book.fail(request, Failure(step="x", error="e", at=T0), now=T0)
    started = book.verify_identity(request, method=ProofMethod.IN_PERSON, now=T0)
    with pytest.raises(errors.RequestStateError):
        book.cancel(started, now=T0)
    with pytest.raises(errors.RequestStateError):
        book.request_identity(started, now=T0)
    assert book.get(request) == started


def test_refusal_records_reason_and_grounds(book: RequestBook) -> None:
    """A refusal keeps its reason for the letter; the history keeps only the grounds."""
    request = receive(book)
    refused = book.refuse(
        request,
        grounds=RefusalGrounds.MANIFESTLY_UNFOUNDED,
        reason="Le compte n'a jamais existé.",
        now=T0,
    )
    assert refused.refusal is not None
    assert refused.refusal.reason == "Le compte n'a jamais existé."
    last = book.history(request)[-1]
    assert last.detail == {"grounds": "manifestly_unfounded", "article": "GDPR Art. 12(5)"}
    assert "jamais" not in json.dumps(last.to_dict())
    with pytest.raises(errors.ValidationError):
        book.refuse(receive(book), grounds=RefusalGrounds.EXCESSIVE, reason="  ", now=T0)


def test_identity_not_established_refuses(book: RequestBook) -> None:
    """A failed identity check refuses the request under Art. 12(2)."""
    request = book.request_identity(receive(book), now=T0)
    refused = book.identity_not_established(request, reason="No answer.", now=T0)
    assert refused.state is RequestState.REFUSED
    assert refused.identity.status is IdentityStatus.FAILED
    assert refused.refusal is not None
    assert refused.refusal.grounds is RefusalGrounds.IDENTITY_NOT_ESTABLISHED


def test_partly_executed_request_cannot_be_refused(book: RequestBook) -> None:
    """Once a step has run, refusing would hide what was done: refused."""
    request = book.verify_identity(receive(book), method=ProofMethod.IN_PERSON, now=T0)
    request = book.record_step(request, StepResult(name="export", completed_at=T0), now=T0)
    with pytest.raises(errors.RequestStateError):
        book.refuse(request, grounds=RefusalGrounds.EXCESSIVE, reason="r", now=T0)


def test_record_step_is_kept_once(book: RequestBook) -> None:
    """A step recorded twice is kept once; its outcomes round-trip through the backend."""
    request = book.verify_identity(receive(book), method=ProofMethod.IN_PERSON, now=T0)
    step = erase_store_step(T0, INVOICE_KEPT, facts={"erased": "3"})
    once = book.record_step(request, step, now=T0)
    assert book.record_step(request, step, now=T0) == once
    assert book.get(request).steps == (step,)
    assert book.history(request)[-1].detail["fact.erased"] == "3"


def test_retry_keeps_deadline_identity_and_done_steps(book: RequestBook) -> None:
    """A retry of a failed request is due when the original was, and resumes its steps."""
    request = book.verify_identity(receive(book), method=ProofMethod.IN_PERSON, now=T0)
    request = book.extend(
        request, months=2, reasons="Many systems.", subject_informed_at=T0, now=T0
    )
    request = book.record_step(request, StepResult(name="a", completed_at=T0), now=T0)
    failed = book.fail(request, Failure(step="b", error="b failed", at=T0), now=T0)
    later = T0 + dt.timedelta(days=20)
    retry = book.retry(failed, now=later)
    assert retry.retry_of == failed.id
    assert retry.state is RequestState.IN_PROGRESS
    assert retry.due_at == failed.due_at
    assert retry.step("a") is not None
    assert retry.failure is None
    assert book.retry(failed, now=later) == retry
    with pytest.raises(errors.RequestStateError):
        book.retry(retry, now=later)
    assert book.verify(retry)


def test_overdue_lists_open_and_unretried_failures(book: RequestBook) -> None:
    """Overdue: open past the deadline, or failed and never retried; not closed ones."""
    late_open = receive(book, request_id="open")
    done = completed(book, "done")
    failed = book.fail(
        book.verify_identity(
            receive(book, request_id="failed"), method=ProofMethod.IN_PERSON, now=T0
        ),
        Failure(step="s", error="e", at=T0),
        now=T0,
    )
    fresh = receive(book, request_id="fresh", received_at=T0 + dt.timedelta(days=40))
    after = T0 + dt.timedelta(days=45)
    assert {r.id for r in book.overdue(after)} == {late_open.id, failed.id}
    book.retry(failed, now=after)
    assert {r.id for r in book.overdue(after)} == {late_open.id, "failed-retry"}
    assert done.id not in {r.id for r in book.overdue(after)}
    assert book.overdue(T0 + dt.timedelta(days=10)) == ()
    assert fresh.is_overdue(after) is False
    with pytest.raises(errors.ValidationError):
        book.overdue(dt.datetime(2026, 5, 1))


def test_time_cannot_go_backwards(book: RequestBook) -> None:
    """An event dated before the last one (or before receipt) is refused."""
    request = book.request_identity(receive(book), now=T0 + dt.timedelta(days=2))
    with pytest.raises(errors.ValidationError):
        book.verify_identity(request, method=ProofMethod.IN_PERSON, now=T0 + dt.timedelta(days=1))
    with pytest.raises(errors.ValidationError):
        receive(book, request_id="early", now=T0 - dt.timedelta(seconds=1))


def test_tampered_history_is_detected(book: RequestBook) -> None:
    """Editing, dropping or truncating history entries breaks verification."""
    request = completed(book, "R9")
    backend = book.backend
    if isinstance(backend, MemoryBackend):
        entries = backend._history["R9"]
        entries[1] = attrs.evolve(entries[1], detail={"method": "in_person", "x": "y"})
    else:
        assert isinstance(backend, SQLBackend)
        with backend.engine.begin() as connection:
            body = connection.execute(
                text("SELECT body FROM lp_dsr_history WHERE sequence = 2")
            ).scalar_one()
            data = json.loads(body)
            data["state_after"] = "completed"
            connection.execute(
                text("UPDATE lp_dsr_history SET body = :b WHERE sequence = 2"),
                {"b": json.dumps(data)},
            )
    with pytest.raises(errors.AuditTampered) as info:
        book.verify(request)
    assert info.value.sequence == 2


def test_truncated_history_is_detected(book: RequestBook) -> None:
    """Removing the last entry leaves a chain shorter than the stored version."""
    request = completed(book, "R8")
    backend = book.backend
    if isinstance(backend, MemoryBackend):
        backend._history["R8"].pop()
    else:
        assert isinstance(backend, SQLBackend)
        with backend.engine.begin() as connection:
            connection.execute(text("DELETE FROM lp_dsr_history WHERE sequence = 3"))
    with pytest.raises(errors.AuditTampered):
        book.verify(request)


def test_concurrent_writer_is_refused(book: RequestBook) -> None:
    """Two writers moving the same version: the second is refused, nothing written."""
    request = receive(book)
    book.request_identity(request, now=T0)
    last = book.history(request)[-1]
    state = assert_stale_move_refused(book, request, last, event="cancelled", at=T0)
    assert state is RequestState.AWAITING_IDENTITY


def test_unknown_request(book: RequestBook) -> None:
    """get returns None for an unknown id (as Store.get); acting on one raises NotFoundError."""
    assert book.get("nope") is None
    with pytest.raises(errors.NotFoundError):
        book.current("nope")
    with pytest.raises(errors.NotFoundError):
        book.cancel("nope", now=T0)


def test_compelling_grounds_rules(book: RequestBook) -> None:
    """Compelling grounds answer an objection only, never a direct-marketing one."""
    objection = book.verify_identity(
        receive(
            book, kind=RequestType.OBJECTION, params=ObjectionParams(purpose="security-logging")
        ),
        method=ProofMethod.IN_PERSON,
        now=T0,
    )
    grounded = book.record_compelling_grounds(
        objection, reasons="Fraud investigation under way.", now=T0
    )
    assert grounded.compelling_grounds == "Fraud investigation under way."
    marketing = receive(
        book,
        kind=RequestType.OBJECTION,
        params=ObjectionParams(purpose="newsletter", direct_marketing=True),
    )
    with pytest.raises(errors.PolicyError):
        book.record_compelling_grounds(marketing, reasons="We like newsletters.", now=T0)
    other = receive(
        book, kind=RequestType.WITHDRAW_CONSENT, params=WithdrawConsentParams(purpose="n")
    )
    with pytest.raises(errors.RequestStateError):
        book.record_compelling_grounds(other, reasons="r", now=T0)


def test_facts_objections_and_directives(book: RequestBook) -> None:
    """Objection flags are queryable; an overridden objection does not stop processing."""
    assert book.is_objected("L1", "security-logging") is False
    book.record_objection(
        "L1", "security-logging", request_id="R1", direct_marketing=False, overridden=False, now=T0
    )
    book.record_objection(
        "L1", "analytics", request_id="R2", direct_marketing=False, overridden=True, now=T0
    )
    assert book.is_objected("L1", "security-logging") is True
    assert book.is_objected("L1", "analytics") is False
    assert book.is_objected("L2", "security-logging") is False
    assert [o.purpose for o in book.objections("L1")] == ["analytics", "security-logging"]


def test_complete_refuses_a_request_where_nothing_ran(book: RequestBook) -> None:
    """An in-progress request with zero steps run was moved to COMPLETED; now refused, and
    so is one whose executor plan lists a step that did not run."""
    request = book.verify_identity(receive(book), method=ProofMethod.IN_PERSON, now=T0)
    with pytest.raises(errors.RequestStateError, match="no step"):
        book.complete(request, now=T0)
    plan = book.record_step(request, StepResult(name="plan:erase", completed_at=T0), now=T0)
    with pytest.raises(errors.RequestStateError, match="no step"):
        book.complete(plan, now=T0)
    did = worked(book, plan)
    with pytest.raises(errors.RequestStateError, match="erase_store"):
        book.complete(did, now=T0, expected_steps=["answer_sent", "erase_store"])
    assert book.get(request).state is RequestState.IN_PROGRESS
    assert book.complete(did, now=T0, expected_steps=["answer_sent"]).state is (
        RequestState.COMPLETED
    )


def test_late_completion_is_recorded_as_late(book: RequestBook) -> None:
    """Completed 40 days after receipt: marked late, in the request and its history."""
    request = worked(
        book, book.verify_identity(receive(book), method=ProofMethod.IN_PERSON, now=T0)
    )
    done = book.complete(request, now=request.received_at + dt.timedelta(days=40))
    assert done.completed_late
    assert book.history(done)[-1].detail["late"] == "true"


def _by(book: RequestBook, role: RequesterRole, request_id: str) -> Any:
    return receive_request(
        book,
        RequestType.ACCESS,
        received_at=T0,
        requester=Requester(role=role, name="Someone"),
        request_id=request_id,
    )


def test_proof_rules_per_requester(book: RequestBook) -> None:
    """An heir with the dead learner's logged-in session, or a representative with an
    e-mail confirmation and no mandate, was accepted; now refused (the request stays
    where it was); the right proofs pass."""
    heir = _by(book, RequesterRole.HEIR, "R-heir")
    with pytest.raises(errors.PolicyError, match="death_certificate_sighted"):
        book.verify_identity(heir, method=ProofMethod.AUTHENTICATED_SESSION, now=T0)
    with pytest.raises(errors.PolicyError, match="heirship_proof_sighted"):
        book.verify_identity(heir, method=ProofMethod.DEATH_CERTIFICATE_SIGHTED, now=T0)
    assert book.current(heir).state is RequestState.RECEIVED
    verified = book.verify_identity(
        heir,
        method=ProofMethod.DEATH_CERTIFICATE_SIGHTED,
        also=[ProofMethod.HEIRSHIP_PROOF_SIGHTED],
        now=T0,
    )
    assert verified.identity.methods == (
        ProofMethod.DEATH_CERTIFICATE_SIGHTED,
        ProofMethod.HEIRSHIP_PROOF_SIGHTED,
    )
    agent = _by(book, RequesterRole.REPRESENTATIVE, "R-agent")
    with pytest.raises(errors.PolicyError, match="mandate_sighted"):
        book.verify_identity(agent, method=ProofMethod.EMAIL_CONFIRMATION, now=T0)
    assert book.verify_identity(agent, method=ProofMethod.MANDATE_SIGHTED, now=T0).state is (
        RequestState.IN_PROGRESS
    )
    subject = _by(book, RequesterRole.SUBJECT, "R-self")
    with pytest.raises(errors.PolicyError):
        book.verify_identity(subject, method=ProofMethod.DEATH_CERTIFICATE_SIGHTED, now=T0)
    with pytest.raises(errors.PolicyError):
        book.verify_identity(subject, method=ProofMethod.MANDATE_SIGHTED, now=T0)
    assert book.verify(verified)


def test_a_death_is_recorded_only_on_a_death_certificate(book: RequestBook) -> None:
    """put_death (and the executor's record_death) refuse any other proof."""
    with pytest.raises(errors.PolicyError):
        book.put_death("L1", died_at=T0, now=T0, proof=ProofMethod.EMAIL_CONFIRMATION)
    assert book.death_of("L1") is None
    book.put_death("L1", died_at=T0, now=T0, proof=ProofMethod.DEATH_CERTIFICATE_SIGHTED)
    assert book.death_of("L1") is not None


def test_a_book_accepts_only_the_identity_proofs_its_policy_names() -> None:
    """``identity_proofs`` narrows what a subject may prove their identity with (a policy
    asking for an identity document refuses an e-mail confirmation, and the request stays
    RECEIVED); it must be a non-empty set of identity proofs, else ConfigurationError."""
    book = RequestBook(identity_proofs={ProofMethod.ID_DOCUMENT_SIGHTED})
    received = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    request = receive_request(book, RequestType.ACCESS, received_at=received)
    with pytest.raises(errors.PolicyError):
        book.verify_identity(request, method=ProofMethod.EMAIL_CONFIRMATION, now=received)
    assert book.current(request).state is RequestState.RECEIVED
    verified = book.verify_identity(request, method=ProofMethod.ID_DOCUMENT_SIGHTED, now=received)
    assert verified.state is RequestState.IN_PROGRESS
    for bad in (set(), {ProofMethod.MANDATE_SIGHTED}, "id_document_sighted"):
        with pytest.raises(errors.ConfigurationError):
            RequestBook(identity_proofs=bad)  # type: ignore[arg-type]
