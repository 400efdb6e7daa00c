"""Consents (with expiry and withdrawal) and security access events."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import register_record_type
from learnprivacy.records._fields import dated, not_personal, personal, record_id
from learnprivacy.records._kinds import AccessKind
from learnprivacy.records._learning import subject_id_field

__all__ = ["AccessEvent", "Consent"]

_BASIS = v.instance_of(LawfulBasis)


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
        category=DataCategory.CONSENT,
        description="Purpose consented to (e.g. newsletter, analytics-cookies)",
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
        category=DataCategory.CONSENT,
        description="Evidence of consent (form version, channel, signed text)",
        default=None,
        validator=v.optional(v.non_empty_text),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing", default=LawfulBasis.CONSENT, validator=_BASIS
    )

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
        category=DataCategory.TECHNICAL_LOG,
        description="Kind of event",
        validator=v.instance_of(AccessKind),
    )
    at: dt.datetime = dated(DataCategory.TECHNICAL_LOG, "When it happened")
    ip: str | None = personal(
        category=DataCategory.TECHNICAL_LOG,
        description="IP address",
        default=None,
        validator=v.optional(v.ip_address),
    )
    user_agent: str | None = personal(
        category=DataCategory.TECHNICAL_LOG,
        description="Browser user agent",
        default=None,
        validator=v.optional(v.non_empty_text),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing",
        default=LawfulBasis.LEGITIMATE_INTERESTS,
        validator=_BASIS,
    )
