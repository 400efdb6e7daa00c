"""``SubjectRequest``: one data-subject request, immutable; every step makes a new version.

A request never changes in place. The request book (:class:`RequestBook`) checks each
transition, builds the next version with :func:`attrs.evolve`, persists it together with
an entry of the request's hash-chained history, and hands it back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import _keyword_only_init
from learnprivacy.records._fields import MASK
from learnprivacy.records._serialise import JsonForm
from learnprivacy.requests._deadlines import (
    Extension,
    HolidayCalendar,
    extended_deadline,
    first_deadline,
)
from learnprivacy.requests._outcomes import NotificationOutcome, RecordOutcome, StepResult
from learnprivacy.requests._params import (
    ObjectionParams,
    Params,
    PostMortemDirective,
    RectificationParams,
    RestrictionParams,
    WithdrawConsentParams,
)
from learnprivacy.requests._vocabulary import (
    Channel,
    IdentityStatus,
    ProofMethod,
    RefusalGrounds,
    RequesterRole,
    RequestState,
    RequestType,
)

__all__ = ["PLAN_PREFIX", "Failure", "IdentityCheck", "Refusal", "Requester", "SubjectRequest"]

#: Steps whose name starts with this only record a plan, not outcomes.
PLAN_PREFIX = "plan:"


def _mask(_value: object) -> str:
    return MASK


@attrs.frozen(kw_only=True)
class Requester(JsonForm):
    """Who sent the request. ``name`` and ``email`` are personal and masked in ``repr``.

    The letter is addressed to this person. For a representative or an heir, the
    authority to act is checked like an identity (``ProofMethod.MANDATE_SIGHTED``,
    ``DEATH_CERTIFICATE_SIGHTED``). Its ``to_dict`` form holds them: persist it as
    personal data.
    """

    role: RequesterRole = attrs.field(validator=v.instance_of(RequesterRole))
    name: str = attrs.field(repr=_mask, validator=v.non_empty_text)
    email: str | None = attrs.field(
        default=None, repr=_mask, validator=v.optional(v.non_empty_text)
    )

    @classmethod
    def subject(cls, name: str, email: str | None = None) -> Requester:
        """The data subject asking for themselves."""
        return cls(role=RequesterRole.SUBJECT, name=name, email=email)


@attrs.frozen(kw_only=True)
class IdentityCheck(JsonForm):
    """The identity check: status, the proof method, when. Never the proof's content."""

    status: IdentityStatus = IdentityStatus.UNVERIFIED
    method: ProofMethod | None = None
    at: dt.datetime | None = attrs.field(default=None, validator=v.optional_aware_datetime)
    #: Further proofs shown with ``method`` (an heir: death certificate and heirship).
    also: tuple[ProofMethod, ...] = ()

    @property
    def methods(self) -> tuple[ProofMethod, ...]:
        """Every proof method recorded, ``method`` first."""
        return (self.method, *self.also) if self.method is not None else self.also

    def __attrs_post_init__(self) -> None:
        if self.status is IdentityStatus.VERIFIED and self.method is None:
            raise ValidationError(
                "a verified identity records its proof method", field="IdentityCheck.method"
            )


@attrs.frozen(kw_only=True)
class Refusal(JsonForm):
    """Why the request is not acted on (Art. 12(5)); the reason goes to the subject."""

    grounds: RefusalGrounds = attrs.field(validator=v.instance_of(RefusalGrounds))
    reason: str = attrs.field(validator=v.non_empty_text)
    at: dt.datetime = attrs.field(validator=v.aware_datetime)


@attrs.frozen(kw_only=True)
class Failure(JsonForm):
    """Why execution stopped: the step, the component that failed, a non-personal error."""

    step: str = attrs.field(validator=v.non_empty_text)
    error: str = attrs.field(validator=v.non_empty_text)
    at: dt.datetime = attrs.field(validator=v.aware_datetime)
    component: str | None = None


# Which parameter class each request type takes; ``None`` means "takes none".
_PARAMS: dict[RequestType, tuple[type[Any], bool]] = {
    RequestType.RECTIFICATION: (RectificationParams, True),
    RequestType.OBJECTION: (ObjectionParams, True),
    RequestType.WITHDRAW_CONSENT: (WithdrawConsentParams, True),
    RequestType.POST_MORTEM_DIRECTIVE: (PostMortemDirective, True),
    RequestType.RESTRICTION: (RestrictionParams, False),
}


@attrs.frozen(kw_only=True)
class SubjectRequest:
    """A data-subject request and everything decided about it so far.

    Build new requests with :meth:`RequestBook.receive`; every later version comes from
    the book. ``version`` counts the entries of the request's audit history.
    ``due_at`` is the end of the day one month after receipt (or later after the one
    extension), moved past weekends and the public holidays of ``calendar``, in the time
    zone of ``received_at`` (Regulation 1182/71 Art. 3). ``completed_late`` tells whether
    the answer came after it.
    """

    id: str = attrs.field(validator=v.identifier)
    type: RequestType = attrs.field(validator=v.instance_of(RequestType))
    learner_id: str = attrs.field(repr=_mask, validator=v.identifier)
    received_at: dt.datetime = attrs.field(validator=v.aware_datetime)
    channel: Channel = attrs.field(validator=v.instance_of(Channel))
    requester: Requester = attrs.field(validator=v.instance_of(Requester))
    identity: IdentityCheck = attrs.field(factory=IdentityCheck)
    params: Params | None = None
    state: RequestState = RequestState.RECEIVED
    version: int = 1
    updated_at: dt.datetime | None = attrs.field(default=None, validator=v.optional_aware_datetime)
    extension: Extension | None = None
    compelling_grounds: str | None = attrs.field(default=None, repr=_mask)
    refusal: Refusal | None = None
    failure: Failure | None = None
    steps: tuple[StepResult, ...] = ()
    retry_of: str | None = None
    closed_at: dt.datetime | None = attrs.field(default=None, validator=v.optional_aware_datetime)
    calendar: HolidayCalendar = attrs.field(
        default=HolidayCalendar.FR, validator=v.instance_of(HolidayCalendar)
    )

    def __attrs_post_init__(self) -> None:
        expected = _PARAMS.get(self.type)
        if expected is None:
            if self.params is not None:
                raise ValidationError(
                    f"a {self.type.value} request takes no parameters", field="params"
                )
            return
        cls, required = expected
        if self.params is None and required:
            raise ValidationError(
                f"a {self.type.value} request needs {cls.__name__}", field="params"
            )
        if self.params is not None and not isinstance(self.params, cls):
            raise ValidationError(
                f"a {self.type.value} request takes {cls.__name__}, got "
                f"{type(self.params).__name__}",
                field="params",
            )

    @property
    def first_due_at(self) -> dt.datetime:
        """The end of the day one month after receipt, on a working day (Art. 12(3))."""
        return first_deadline(self.received_at, self.calendar)

    @property
    def due_at(self) -> dt.datetime:
        """When the answer is due: the first deadline, or the extended one."""
        if self.extension is None:
            return self.first_due_at
        return extended_deadline(self.received_at, self.extension.months, self.calendar)

    @property
    def completed_late(self) -> bool:
        """Whether the request was closed after its deadline (recorded, never hidden)."""
        return self.closed_at is not None and self.closed_at > self.due_at

    @property
    def is_open(self) -> bool:
        """Whether the request still waits for an answer."""
        return not self.state.terminal

    def is_overdue(self, now: dt.datetime) -> bool:
        """Whether the request is open and its deadline has passed at ``now``."""
        require_aware(now, "now")
        return self.is_open and now > self.due_at

    def step(self, name: str) -> StepResult | None:
        """The completed step called ``name``, if any."""
        for step in self.steps:
            if step.name == name:
                return step
        return None

    @property
    def record_outcomes(self) -> tuple[RecordOutcome, ...]:
        """Every record outcome of every completed step, in step order.

        Plan steps (``plan:...``) list what a step is about to touch, so a rerun after a
        crash can still report it; they are not outcomes and are left out.
        """
        return tuple(
            outcome
            for step in self.steps
            if not step.name.startswith(PLAN_PREFIX)
            for outcome in step.records
        )

    @property
    def notifications(self) -> tuple[NotificationOutcome, ...]:
        """Every Art. 19 notification outcome, in step order."""
        return tuple(n for step in self.steps for n in step.notifications)


# Positional, unknown or missing arguments: ArgumentError (a ValidationError and a TypeError).
_keyword_only_init(Requester)
_keyword_only_init(SubjectRequest)
