"""Records kept under legal obligation: invoices and funder (OPCO, CPF...) files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

import attrs

from learnprivacy import _validators as v
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import register_record_type
from learnprivacy.records._fields import dated, not_personal, personal, record_id
from learnprivacy.records._kinds import Funder
from learnprivacy.records._learning import subject_id_field

__all__ = ["Funding", "Invoice"]

_BASIS = v.instance_of(LawfulBasis)


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
        category=DataCategory.BILLING, description="Name on the invoice", validator=v.non_empty_text
    )
    billing_address: str = personal(
        category=DataCategory.BILLING,
        description="Postal address on the invoice",
        validator=v.non_empty_text,
    )
    amount: Decimal = not_personal(
        quasi_identifier=True,
        category=DataCategory.BILLING,
        description="Amount including taxes",
        validator=v.finite_decimal,
    )
    issued_at: dt.datetime = dated(DataCategory.BILLING, "Date of issue")
    currency: str = not_personal(
        category=DataCategory.BILLING,
        description="ISO 4217 currency code",
        default="EUR",
        validator=v.currency_code,
    )
    funder: Funder = not_personal(
        category=DataCategory.FUNDING,
        description="Who pays",
        default=Funder.SELF,
        validator=v.instance_of(Funder),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing",
        default=LawfulBasis.LEGAL_OBLIGATION,
        validator=_BASIS,
    )


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
        category=DataCategory.FUNDING, description="Funder", validator=v.instance_of(Funder)
    )
    dossier_reference: str = personal(
        category=DataCategory.FUNDING,
        description="The funder's file reference",
        validator=v.non_empty_text,
    )
    opened_at: dt.datetime = dated(DataCategory.FUNDING, "When the file was opened")
    closed_at: dt.datetime | None = dated(
        DataCategory.FUNDING, "When the file was closed (retention counts from it)", optional=True
    )
    amount: Decimal | None = not_personal(
        quasi_identifier=True,
        category=DataCategory.FUNDING,
        description="Amount funded",
        default=None,
        validator=v.optional(v.finite_decimal),
    )
    basis: LawfulBasis = not_personal(
        description="Lawful basis of the processing",
        default=LawfulBasis.LEGAL_OBLIGATION,
        validator=_BASIS,
    )

    def __attrs_post_init__(self) -> None:
        if self.closed_at is not None and self.closed_at < self.opened_at:
            raise ValidationError(
                "Funding.closed_at must not be before opened_at", field="Funding.closed_at"
            )
