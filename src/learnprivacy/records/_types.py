"""The built-in record types, in the order they register (and registers list them):
learners and what they do (progress, scores, certificates); records kept under legal
obligation (invoices, funder files); consents and security access events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import _keyword_only_init, register_record_type
from learnprivacy.records._fields import (
    dated,
    lawful_basis,
    not_personal,
    personal,
    record_id,
    subject_id_field,
)
from learnprivacy.records._kinds import (
    AccessKind,
    CertificateKind,
    Funder,
    ProgressStatus,
)

__all__ = [
    "AccessEvent",
    "Certificate",
    "Consent",
    "Funding",
    "Invoice",
    "Learner",
    "Progress",
    "Score",
]


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
        DataCategory.ACCOUNT, "Login name", blind_index=True, validator=v.non_empty_text
    )
    email: str = personal(
        DataCategory.CONTACT, "E-mail address", blind_index=True, validator=v.email_address
    )
    given_name: str = personal(DataCategory.IDENTITY, "Given name", validator=v.non_empty_text)
    family_name: str = personal(DataCategory.IDENTITY, "Family name", validator=v.non_empty_text)
    created_at: dt.datetime = dated(DataCategory.ACCOUNT, "When the account was created")
    last_activity_at: dt.datetime | None = dated(
        DataCategory.ACCOUNT,
        "Last activity on the platform (retention counts from it)",
        optional=True,
    )
    organisation_id: str | None = not_personal(
        "Client organisation (employer) the account belongs to",
        category=DataCategory.EMPLOYMENT,
        quasi_identifier=True,
        validator=v.identifier,
        optional=True,
    )
    contract_end_at: dt.datetime | None = dated(
        DataCategory.ACCOUNT, "End of the client contract covering this account", optional=True
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.CONTRACT)


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
        "Course", category=DataCategory.LEARNING, quasi_identifier=True, validator=v.identifier
    )
    status: ProgressStatus = not_personal(
        "Status in the course",
        category=DataCategory.LEARNING,
        validator=v.instance_of(ProgressStatus),
    )
    recorded_at: dt.datetime = dated(DataCategory.LEARNING, "When the status was recorded")
    score: Score | None = not_personal(
        "Score obtained",
        category=DataCategory.ASSESSMENT,
        quasi_identifier=True,
        validator=v.instance_of(Score),
        optional=True,
    )
    time_spent: dt.timedelta | None = not_personal(
        "Time spent in the course",
        category=DataCategory.LEARNING,
        quasi_identifier=True,
        default=None,
        validator=_time_spent,
    )
    activity_id: str | None = not_personal(
        "Activity within the course, if any",
        category=DataCategory.LEARNING,
        quasi_identifier=True,
        validator=v.identifier,
        optional=True,
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.CONTRACT)


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
        "Course certified",
        category=DataCategory.LEARNING,
        quasi_identifier=True,
        validator=v.identifier,
    )
    issued_at: dt.datetime = dated(DataCategory.CERTIFICATION, "Date of issue")
    verification_code: str = personal(
        DataCategory.CERTIFICATION,
        "Code a third party uses to verify the certificate",
        blind_index=True,
        validator=v.non_empty_text,
    )
    kind: CertificateKind = not_personal(
        "Kind of certificate",
        category=DataCategory.CERTIFICATION,
        default=CertificateKind.CERTIFICATE,
        validator=v.instance_of(CertificateKind),
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.CONTRACT)


@register_record_type
@attrs.frozen(kw_only=True)
class Invoice:
    """An invoice: accounting law keeps it (10 years in France) whatever the learner asks."""

    processing_purpose: ClassVar[str] = "billing"
    key_scope: ClassVar[str] = "legal"
    date_field: ClassVar[str] = "issued_at"

    id: str = record_id("Invoice number")
    learner_id: str = subject_id_field("Learner billed or trained")
    billing_name: str = personal(
        DataCategory.BILLING, "Name on the invoice", validator=v.non_empty_text
    )
    billing_address: str = personal(
        DataCategory.BILLING, "Postal address on the invoice", validator=v.non_empty_text
    )
    amount: Decimal = not_personal(
        "Amount including taxes",
        category=DataCategory.BILLING,
        quasi_identifier=True,
        validator=v.finite_decimal,
    )
    issued_at: dt.datetime = dated(DataCategory.BILLING, "Date of issue")
    currency: str = not_personal(
        "ISO 4217 currency code",
        category=DataCategory.BILLING,
        default="EUR",
        validator=v.currency_code,
    )
    funder: Funder = not_personal(
        "Who pays",
        category=DataCategory.FUNDING,
        default=Funder.SELF,
        validator=v.instance_of(Funder),
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.LEGAL_OBLIGATION)


@register_record_type
@attrs.frozen(kw_only=True)
class Funding:
    """A funder's file (OPCO, CPF, region...) for a learner's training."""

    processing_purpose: ClassVar[str] = "funding"
    key_scope: ClassVar[str] = "legal"
    date_field: ClassVar[str] = "opened_at"

    id: str = record_id("Funding file identifier")
    learner_id: str = subject_id_field("Learner whose training is funded")
    funder: Funder = not_personal(
        "Funder", category=DataCategory.FUNDING, validator=v.instance_of(Funder)
    )
    dossier_reference: str = personal(
        DataCategory.FUNDING, "The funder's file reference", validator=v.non_empty_text
    )
    opened_at: dt.datetime = dated(DataCategory.FUNDING, "When the file was opened")
    closed_at: dt.datetime | None = dated(
        DataCategory.FUNDING, "When the file was closed (retention counts from it)", optional=True
    )
    amount: Decimal | None = not_personal(
        "Amount funded",
        category=DataCategory.FUNDING,
        quasi_identifier=True,
        validator=v.finite_decimal,
        optional=True,
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.LEGAL_OBLIGATION)

    def __attrs_post_init__(self) -> None:
        if self.closed_at is not None and self.closed_at < self.opened_at:
            raise ValidationError(
                "Funding.closed_at must not be before opened_at", field="Funding.closed_at"
            )


@register_record_type
@attrs.frozen(kw_only=True)
class Consent:
    """A consent given for one purpose; withdrawal ends it without retroactive effect."""

    processing_purpose: ClassVar[str] = "consent-management"
    key_scope: ClassVar[str] = "consent"
    date_field: ClassVar[str] = "given_at"

    id: str = record_id("Consent identifier")
    learner_id: str = subject_id_field("Learner who consented")
    purpose: str = not_personal(
        "Purpose consented to (e.g. newsletter, analytics-cookies)",
        category=DataCategory.CONSENT,
        validator=v.identifier,
    )
    given_at: dt.datetime = dated(DataCategory.CONSENT, "When consent was given")
    withdrawn_at: dt.datetime | None = dated(
        DataCategory.CONSENT, "When consent was withdrawn", optional=True
    )
    expires_at: dt.datetime | None = dated(
        DataCategory.CONSENT, "When consent lapses unless renewed", optional=True
    )
    proof: str | None = personal(
        DataCategory.CONSENT,
        "Evidence of consent (form version, channel, signed text)",
        validator=v.non_empty_text,
        optional=True,
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.CONSENT)

    def __attrs_post_init__(self) -> None:
        if self.withdrawn_at is not None and self.withdrawn_at < self.given_at:
            raise ValidationError(
                "Consent.withdrawn_at must not be before given_at", field="Consent.withdrawn_at"
            )
        if self.expires_at is not None and self.expires_at <= self.given_at:
            raise ValidationError(
                "Consent.expires_at must be after given_at", field="Consent.expires_at"
            )

    def is_active(self, now: dt.datetime) -> bool:
        """Whether the consent covers processing at ``now`` (given, not withdrawn, not expired)."""
        require_aware(now, "now")
        if now < self.given_at:
            return False
        if self.withdrawn_at is not None and now >= self.withdrawn_at:
            return False
        return self.expires_at is None or now < self.expires_at


@register_record_type
@attrs.frozen(kw_only=True)
class AccessEvent:
    """A login/logout kept for security (legitimate interests)."""

    processing_purpose: ClassVar[str] = "security-logging"
    key_scope: ClassVar[str] = "security"
    date_field: ClassVar[str] = "at"
    #: The date that shows the learner was active: their last activity counts from it.
    activity_field: ClassVar[str] = "at"

    id: str = record_id("Event identifier")
    learner_id: str = subject_id_field("Learner whose account was accessed")
    kind: AccessKind = not_personal(
        "Kind of event", category=DataCategory.TECHNICAL_LOG, validator=v.instance_of(AccessKind)
    )
    at: dt.datetime = dated(DataCategory.TECHNICAL_LOG, "When it happened")
    ip: str | None = personal(
        DataCategory.TECHNICAL_LOG, "IP address", validator=v.ip_address, optional=True
    )
    user_agent: str | None = personal(
        DataCategory.TECHNICAL_LOG, "Browser user agent", validator=v.non_empty_text, optional=True
    )
    basis: LawfulBasis = lawful_basis(LawfulBasis.LEGITIMATE_INTERESTS)
