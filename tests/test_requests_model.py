"""The request model: parameters per type, validation, masking, JSON form, public surface."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy import Action
from learnprivacy.errors import AuditTampered, RequestStateError, ValidationError
from learnprivacy.requests import (
    Channel,
    DeathAction,
    Executor,
    FieldChange,
    ObjectionParams,
    PostMortemDirective,
    ProofMethod,
    RectificationParams,
    RefusalGrounds,
    Requester,
    RequesterRole,
    RequestState,
    RequestType,
    RestrictionGrounds,
    RestrictionParams,
    SubjectRequest,
    WithdrawConsentParams,
    verify_history,
)
from learnprivacy.requests._codec import request_from_dict, request_to_dict
from learnprivacy.requests._deadlines import Extension
from learnprivacy.requests._history import next_entry
from learnprivacy.requests._machine import TRANSITIONS, check_transition
from learnprivacy.requests._model import Failure, IdentityCheck, Refusal
from learnprivacy.requests._outcomes import (
    NotificationOutcome,
    NotificationStatus,
    RecordOutcome,
    StepResult,
)
from learnprivacy.requests._params import params_from_dict
from learnprivacy.requests._vocabulary import IdentityStatus
from tests import INVOICE_KEPT, erase_store_step

UTC = dt.UTC
T = dt.datetime(2026, 5, 4, 14, 0, tzinfo=UTC)


def make(kind: RequestType, params: object = None, **kw: object) -> SubjectRequest:
    """A request of ``kind`` from Ana."""
    args: dict[str, object] = {
        "id": "R1",
        "type": kind,
        "learner_id": "L1",
        "received_at": T,
        "channel": Channel.EMAIL,
        "requester": Requester.subject("Ana Silva", "ana@example.org"),
        "params": params,
    }
    args.update(kw)
    return SubjectRequest(**args)  # type: ignore[arg-type]


def test_every_type_names_its_article() -> None:
    """Each right points to its legal source; directives to the French law."""
    assert RequestType.ERASURE.article == "GDPR Art. 17"
    assert RequestType.WITHDRAW_CONSENT.article == "GDPR Art. 7(3)"
    assert RequestType.POST_MORTEM_DIRECTIVE.article == "Loi Informatique et Libertés art. 85"
    assert {t.article for t in RequestType} >= {"GDPR Art. 15", "GDPR Art. 20", "GDPR Art. 21"}
    assert RestrictionGrounds.LEGAL_CLAIMS.article == "GDPR Art. 18(1)(c)"
    assert RefusalGrounds.EXCESSIVE.article == "GDPR Art. 12(5)"


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (RequestType.RECTIFICATION, None),
        (RequestType.OBJECTION, None),
        (RequestType.WITHDRAW_CONSENT, None),
        (RequestType.POST_MORTEM_DIRECTIVE, None),
        (RequestType.ACCESS, WithdrawConsentParams(purpose="newsletter")),
        (RequestType.OBJECTION, WithdrawConsentParams(purpose="newsletter")),
    ],
)
def test_parameters_must_match_the_type(kind: RequestType, params: object) -> None:
    """Types that need parameters require them; others refuse them; wrong classes fail."""
    with pytest.raises(ValidationError):
        make(kind, params)


def test_restriction_parameters_are_optional() -> None:
    """A restriction without parameters restricts everything."""
    assert make(RequestType.RESTRICTION).params is None
    params = RestrictionParams(
        grounds=RestrictionGrounds.OBJECTION_PENDING, record_types=["Progress"]
    )
    assert make(RequestType.RESTRICTION, params).params == params
    with pytest.raises(ValidationError):
        RestrictionParams(grounds=RestrictionGrounds.LEGAL_CLAIMS, record_types=["Nope"])


def test_field_changes_are_checked_against_the_record_type() -> None:
    """Unknown types or fields, and identifying fields, cannot be rectified."""
    with pytest.raises(ValidationError):
        FieldChange(record_type="Nope", record_id="x", field="email", value="a@b.c")
    with pytest.raises(ValidationError):
        FieldChange(record_type="Learner", record_id="L1", field="shoe_size", value=42)
    for fixed in ("id", "learner_id", "basis"):
        with pytest.raises(ValidationError):
            FieldChange(record_type="Progress", record_id="P1", field=fixed, value="x")
    with pytest.raises(ValidationError):
        FieldChange(
            record_type="Learner", record_id="L1", field="created_at", value=dt.datetime(2020, 1, 1)
        )
    change = FieldChange(record_type="Learner", record_id="L1", field="last_activity_at", value=T)
    assert change.value == "2026-05-04T14:00:00+00:00"
    with pytest.raises(ValidationError):
        RectificationParams(changes=[change, change])
    with pytest.raises(ValidationError):
        RectificationParams(changes=[])


def test_directive_rules() -> None:
    """keep_for goes with KEEP_THEN_ERASE only; an export needs an executor."""
    with pytest.raises(ValidationError):
        PostMortemDirective(on_death=DeathAction.KEEP_THEN_ERASE)
    with pytest.raises(ValidationError):
        PostMortemDirective(on_death=DeathAction.ERASE, keep_for="P1Y")
    with pytest.raises(ValidationError):
        PostMortemDirective(on_death=DeathAction.KEEP_THEN_ERASE, keep_for="PT0S")
    with pytest.raises(ValidationError):
        PostMortemDirective(on_death=DeathAction.ERASE, communicate_export=True)
    directive = PostMortemDirective(on_death=DeathAction.KEEP_THEN_ERASE, keep_for="P12M")
    assert directive.keep_for == "P12M"


def test_verified_identity_needs_a_method_and_keeps_no_proof() -> None:
    """Only the methods and the date are kept: there is no field for the document."""
    with pytest.raises(ValidationError):
        IdentityCheck(status=IdentityStatus.VERIFIED)
    check = IdentityCheck(
        status=IdentityStatus.VERIFIED, method=ProofMethod.ID_DOCUMENT_SIGHTED, at=T
    )
    assert set(check.to_dict()) == {"status", "method", "at", "also"}


def test_naive_datetimes_are_refused() -> None:
    """received_at and every other date must be timezone-aware."""
    with pytest.raises(ValidationError):
        make(RequestType.ACCESS, received_at=dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        Refusal(grounds=RefusalGrounds.EXCESSIVE, reason="r", at=dt.datetime(2026, 1, 1))


def test_repr_masks_personal_values() -> None:
    """Names, e-mails, the learner id, rectified values and executors never show in repr."""
    request = make(
        RequestType.RECTIFICATION,
        RectificationParams(
            changes=[
                FieldChange(
                    record_type="Learner", record_id="L1", field="email", value="new@example.org"
                )
            ]
        ),
    )
    shown = repr(request)
    for value in ("Ana", "ana@example.org", "new@example.org", "'L1'"):
        assert value not in shown
    directive = PostMortemDirective(
        on_death=DeathAction.ERASE,
        executor=Executor(name="Jean Dupont", email="jean@example.org"),
        instructions="Tell my sister.",
    )
    for value in ("Jean", "jean@", "sister"):
        assert value not in repr(directive)
    objection = ObjectionParams(purpose="analytics", particular_situation="I am a minor.")
    assert "minor" not in repr(objection)


def full_request() -> SubjectRequest:
    """A request with every optional part filled."""
    step = erase_store_step(
        T,
        attrs.evolve(INVOICE_KEPT, reason="legal minimum"),
        facts={"erased": "2"},
        artifact="/tmp/x.zip",  # noqa: S108 - a path stored as text, never opened
    )
    return make(
        RequestType.OBJECTION,
        ObjectionParams(purpose="security-logging", particular_situation="Stalked."),
        requester=Requester(role=RequesterRole.REPRESENTATIVE, name="Me Durand"),
        identity=IdentityCheck(
            status=IdentityStatus.VERIFIED, method=ProofMethod.MANDATE_SIGHTED, at=T
        ),
        state=RequestState.FAILED,
        version=5,
        updated_at=T,
        extension=Extension(months=1, reasons="r", decided_at=T, subject_informed_at=T),
        compelling_grounds="Fraud.",
        refusal=None,
        failure=Failure(step="objection", error="boom", at=T, component="forum"),
        steps=(step,),
        retry_of="R0",
        closed_at=T,
    )


@pytest.mark.parametrize(
    "params",
    [
        None,
        RestrictionParams(grounds=RestrictionGrounds.LEGAL_CLAIMS, record_types=("Invoice",)),
    ],
)
def test_json_form_round_trips(params: RestrictionParams | None) -> None:
    """request_from_dict(request_to_dict(r)) == r, for every part."""
    for request in (full_request(), make(RequestType.RESTRICTION, params)):
        assert request_from_dict(request_to_dict(request)) == request


@settings(max_examples=60)
@given(
    kind=st.sampled_from([RequestType.ACCESS, RequestType.ERASURE, RequestType.PORTABILITY]),
    channel=st.sampled_from(list(Channel)),
    role=st.sampled_from(list(RequesterRole)),
    # Any encodable text: NUL and lone surrogates are refused (tests/test_bad_input.py).
    name=st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=30,
    ).filter(str.strip),
    received=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2090, 1, 1),
        timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=-5))]),
    ),
)
def test_json_form_round_trips_any_receipt(
    kind: RequestType, channel: Channel, role: RequesterRole, name: str, received: dt.datetime
) -> None:
    """Any requester name, channel, role and receipt time survives the JSON form."""
    request = make(
        kind, channel=channel, requester=Requester(role=role, name=name), received_at=received
    )
    again = request_from_dict(request_to_dict(request))
    assert again == request
    assert again.due_at == request.due_at


def test_transition_table_is_forward_only() -> None:
    """No transition leaves a terminal state or goes back to an earlier one."""
    order = list(RequestState)
    for before, after in TRANSITIONS:
        assert not before.terminal
        assert order.index(after) > order.index(before)
    check_transition(RequestState.RECEIVED, RequestState.IN_PROGRESS)
    with pytest.raises(RequestStateError):
        check_transition(RequestState.COMPLETED, RequestState.FAILED)


def test_history_chain_detects_reordering() -> None:
    """Swapping two entries breaks the chain where the first moved one stands."""
    first = next_entry(
        None,
        request_id="R",
        at=T,
        event="received",
        state_before=None,
        state_after=RequestState.RECEIVED,
    )
    second = next_entry(
        first,
        request_id="R",
        at=T,
        event="cancelled",
        state_before=RequestState.RECEIVED,
        state_after=RequestState.CANCELLED,
    )
    assert verify_history([first, second])
    with pytest.raises(AuditTampered) as info:
        verify_history([second, first])
    assert info.value.sequence == 1  # the chain breaks at its first position


def test_parts_read_back_their_json_form_and_refuse_a_malformed_one() -> None:
    """The request's parts keep one JSON form; a stored form with a missing, unknown or
    ill-typed key is refused with a typed error, not read back as something else."""
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    parts = [
        Refusal(grounds=RefusalGrounds.MANIFESTLY_UNFOUNDED, reason="repeated", at=at),
        Failure(step="erase_providers", error="ProviderError", at=at, component="mod_forum"),
        Extension(months=2, reasons="many requests", decided_at=at, subject_informed_at=at),
        RecordOutcome(record_type="Consent", record_id="C1", action=Action.ERASE, article="x"),
        Requester.subject("Ana Silva", "ana@example.org"),
    ]
    for part in parts:
        form = part.to_dict()
        assert type(part).from_dict(form) == part
        for broken in (
            {k: v for k, v in form.items() if k != next(iter(form))},  # a key missing
            {**form, "extra": 1},  # a key the part does not have
        ):
            with pytest.raises(ValidationError):
                type(part).from_dict(broken)
    assert parts[1].to_dict() == {
        "step": "erase_providers",
        "error": "ProviderError",
        "at": "2026-03-02T09:00:00+00:00",
        "component": "mod_forum",
    }
    with pytest.raises(ValidationError):
        RecordOutcome.from_dict({**parts[3].to_dict(), "action": "obliterate"})
    with pytest.raises(ValidationError):
        Failure.from_dict({**parts[1].to_dict(), "at": 1767225600})


def test_nested_parts_keep_their_json_form_and_their_kind() -> None:
    """Parameters, identity checks and step results are written by the one serialiser:
    the stored form is the one earlier versions wrote (lists, objects, ``kind`` first),
    it reads back equal, and a form of another kind or with an ill-typed list is refused."""
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    step = StepResult(
        name="erase_store",
        completed_at=at,
        records=(
            RecordOutcome(record_type="Consent", record_id="C1", action=Action.ERASE, article="x"),
        ),
        notifications=(
            NotificationOutcome(
                location="lrs",
                component="xapi",
                status=NotificationStatus.SENT,
                details={"voided": "2"},
            ),
        ),
        facts={"count": "1"},
    )
    directive = PostMortemDirective(
        on_death=DeathAction.KEEP_THEN_ERASE,
        keep_for="P1Y",
        communicate_export=True,
        executor=Executor(name="Bea Silva"),
    )
    rectification = RectificationParams(
        changes=(FieldChange(record_type="Learner", record_id="L1", field="email", value="a@b.c"),)
    )
    identity = IdentityCheck(
        status=IdentityStatus.VERIFIED,
        method=ProofMethod.ID_DOCUMENT_SIGHTED,
        at=at,
        also=(ProofMethod.SIGNED_LETTER,),
    )
    forms = {
        step: {
            "name": "erase_store",
            "completed_at": "2026-03-02T09:00:00+00:00",
            "records": [
                {
                    "record_type": "Consent",
                    "record_id": "C1",
                    "action": "erase",
                    "article": "x",
                    "reason": None,
                }
            ],
            "notifications": [
                {
                    "location": "lrs",
                    "component": "xapi",
                    "status": "sent",
                    "error": None,
                    "details": {"voided": "2"},
                }
            ],
            "facts": {"count": "1"},
            "artifact": None,
        },
        directive: {
            "kind": "post_mortem_directive",
            "on_death": "keep_then_erase",
            "keep_for": "P1Y",
            "communicate_export": True,
            "notify_executor": True,
            "instructions": None,
            "executor": {"name": "Bea Silva", "email": None},
        },
        rectification: {
            "kind": "rectification",
            "changes": [
                {"record_type": "Learner", "record_id": "L1", "field": "email", "value": "a@b.c"}
            ],
        },
        identity: {
            "status": "verified",
            "method": "id_document_sighted",
            "at": "2026-03-02T09:00:00+00:00",
            "also": ["signed_letter"],
        },
    }
    for part, form in forms.items():
        assert part.to_dict() == form
        assert list(part.to_dict()) == list(form)  # the same key order as before
        assert type(part).from_dict(form) == part
    for params in (directive, rectification):
        assert params_from_dict(params.to_dict()) == params
    with pytest.raises(ValidationError):
        RectificationParams.from_dict({**forms[directive], "kind": "rectification"})
    with pytest.raises(ValidationError):
        PostMortemDirective.from_dict(forms[rectification])
    with pytest.raises(ValidationError):
        params_from_dict({"kind": "obliterate"})
    with pytest.raises(ValidationError):
        StepResult.from_dict({**forms[step], "records": "C1"})
    with pytest.raises(ValidationError):
        StepResult.from_dict({**forms[step], "notifications": [["lrs"]]})
