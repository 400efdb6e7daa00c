"""Learner accounts and what they do: progress, scores, certificates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from learnprivacy import _validators as v
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import _keyword_only_init, register_record_type
from learnprivacy.records._fields import dated, not_personal, personal, record_id
from learnprivacy.records._kinds import CertificateKind, ProgressStatus

__all__ = ["Certificate", "Learner", "Progress", "Score", "subject_id_field"]

_BASIS = v.instance_of(LawfulBasis)


def subject_id_field(description: str) -> Any:
    # The learner id is a pseudonymous identifier: personal (it singles a person out) but
    # kept in clear because every record joins on it. It is masked in repr all the same.
    return personal(
        category=DataCategory.ACCOUNT,
        description=description,
        encrypted=False,
        identifier=True,
        validator=v.learner_identifier,
    )


@register_record_type
@attrs.frozen(kw_only=True)
class Learner:
    """A learner account: identity, contact and the dates retention counts from.

    ``last_activity_at`` may precede ``created_at``, on purpose: an account migrated from
    an older LMS is created here on the day of the migration but keeps the activity it
    had there, and retention must count from that activity, not from the migration. The
    two dates are therefore not checked against each other.
    """

    processing_purpose: ClassVar[str] = "account"
    key_scope: ClassVar[str] = "contract"
    date_field: ClassVar[str] = "created_at"

    id: str = subject_id_field("Learner identifier")
    username: str = personal(
        category=DataCategory.ACCOUNT,
        description="Login name",
        blind_index=True,
        validator=v.non_empty_text,
    )
    email: str = personal(
        category=DataCategory.CONTACT,
        description="E-mail address",
        blind_index=True,
        validator=v.email_address,
    )
    given_name: str = personal(
        category=DataCategory.IDENTITY, description="Given name", validator=v.non_empty_text
    )
    family_name: str = personal(
        category=DataCategory.IDENTITY, description="Family name", validator=v.non_empty_text
    )
    created_at: dt.datetime = dated(DataCategory.ACCOUNT, "When the account was created")
    last_activity_at: dt.datetime | None = dated(
        DataCategory.ACCOUNT,
        "Last activity on the platform (retention counts from it)",
        optional=True,
    )
    organisation_id: str | None = not_personal(
        quasi_identifier=True,
        category=DataCategory.EMPLOYMENT,
        description="Client organisation (employer) the account belongs to",
        default=None,
        validator=v.optional(v.identifier),
    )
    contract_end_at: dt.datetime | None = dated(
        DataCategory.ACCOUNT, "End of the client contract covering this account", optional=True
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing", default=LawfulBasis.CONTRACT, validator=_BASIS
    )


def _finite(instance: object, attribute: Any, value: object) -> None:
    v.finite_number(instance, attribute, value)


@attrs.frozen(kw_only=True)
class Score:
    """A score within ``[min, max]``; ``scaled`` is its position in that range (0..1)."""

    # attrs' stubs infer ``object`` for a field without default whose validator takes Any.
    raw: int | float | Decimal = attrs.field(validator=_finite)  # type: ignore[assignment]
    min: int | float | Decimal = attrs.field(default=0, validator=_finite)
    max: int | float | Decimal = attrs.field(default=100, validator=_finite)

    def __attrs_post_init__(self) -> None:
        if not self.min < self.max:
            raise ValidationError("Score.min must be lower than Score.max", field="Score.min")
        if not self.min <= self.raw <= self.max:
            raise ValidationError("Score.raw must lie within [min, max]", field="Score.raw")

    @property
    def scaled(self) -> float:
        """``(raw - min) / (max - min)``: 17 out of 0..20 is 0.85."""
        return float((self.raw - self.min) / (self.max - self.min))  # type: ignore[operator]


_keyword_only_init(Score)


def _time_spent(instance: object, attribute: Any, value: object) -> None:
    if value is None:
        return
    v.instance_of(dt.timedelta)(instance, attribute, value)
    assert isinstance(value, dt.timedelta)  # narrows the type for mypy
    if value < dt.timedelta(0):
        raise ValidationError(
            "Progress.time_spent must not be negative", field="Progress.time_spent"
        )


@register_record_type
@attrs.frozen(kw_only=True)
class Progress:
    """A learner's status (and score) in a course or activity at a point in time."""

    processing_purpose: ClassVar[str] = "learning-tracking"
    key_scope: ClassVar[str] = "contract"
    date_field: ClassVar[str] = "recorded_at"
    #: The date that shows the learner was active: their last activity counts from it.
    activity_field: ClassVar[str] = "recorded_at"

    id: str = record_id("Progress record identifier")
    learner_id: str = subject_id_field("Learner the progress belongs to")
    course_id: str = not_personal(
        quasi_identifier=True,
        category=DataCategory.LEARNING,
        description="Course",
        validator=v.identifier,
    )
    status: ProgressStatus = not_personal(
        category=DataCategory.LEARNING,
        description="Status in the course",
        validator=v.instance_of(ProgressStatus),
    )
    recorded_at: dt.datetime = dated(DataCategory.LEARNING, "When the status was recorded")
    score: Score | None = not_personal(
        quasi_identifier=True,
        category=DataCategory.ASSESSMENT,
        description="Score obtained",
        default=None,
        validator=v.optional(v.instance_of(Score)),
    )
    time_spent: dt.timedelta | None = not_personal(
        quasi_identifier=True,
        category=DataCategory.LEARNING,
        description="Time spent in the course",
        default=None,
        validator=_time_spent,
    )
    activity_id: str | None = not_personal(
        quasi_identifier=True,
        category=DataCategory.LEARNING,
        description="Activity within the course, if any",
        default=None,
        validator=v.optional(v.identifier),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing", default=LawfulBasis.CONTRACT, validator=_BASIS
    )


@register_record_type
@attrs.frozen(kw_only=True)
class Certificate:
    """A certificate, attendance sheet, badge or diploma issued to a learner."""

    processing_purpose: ClassVar[str] = "certification"
    key_scope: ClassVar[str] = "contract"
    date_field: ClassVar[str] = "issued_at"
    #: The date that shows the learner was active: their last activity counts from it.
    activity_field: ClassVar[str] = "issued_at"

    id: str = record_id("Certificate identifier")
    learner_id: str = subject_id_field("Learner the certificate was issued to")
    course_id: str = not_personal(
        quasi_identifier=True,
        category=DataCategory.LEARNING,
        description="Course certified",
        validator=v.identifier,
    )
    issued_at: dt.datetime = dated(DataCategory.CERTIFICATION, "Date of issue")
    verification_code: str = personal(
        category=DataCategory.CERTIFICATION,
        description="Code a third party uses to verify the certificate",
        blind_index=True,
        validator=v.non_empty_text,
    )
    kind: CertificateKind = not_personal(
        category=DataCategory.CERTIFICATION,
        description="Kind of certificate",
        default=CertificateKind.CERTIFICATE,
        validator=v.instance_of(CertificateKind),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing", default=LawfulBasis.CONTRACT, validator=_BASIS
    )
