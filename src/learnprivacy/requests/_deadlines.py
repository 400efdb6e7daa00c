"""Response deadlines (GDPR Art. 12(3)): one calendar month, extensible once by two more.

The month is a calendar month counted from receipt, with the day clamped to the end of a
shorter month (received 31 January, due 28 or 29 February), as
:meth:`learnprivacy.retention.Period.add_to` computes it. An extension is counted from the
first deadline, never from receipt: on clamped dates that is the earlier, safer end
(31 January + 1 month = 29 February 2024, + 2 months = 29 April, not 30 April).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError
from learnprivacy.retention import Period

__all__ = [
    "MAX_EXTENSION_MONTHS",
    "RESPONSE_PERIOD",
    "Extension",
    "extended_deadline",
    "first_deadline",
]

#: The time the controller has to answer (Art. 12(3), first sentence).
RESPONSE_PERIOD = Period(months=1)

#: The longest extension Art. 12(3) allows, in months.
MAX_EXTENSION_MONTHS = 2


def first_deadline(received_at: dt.datetime) -> dt.datetime:
    """One calendar month after ``received_at``, in its time zone."""
    return RESPONSE_PERIOD.add_to(require_aware(received_at, "received_at"))


def extended_deadline(received_at: dt.datetime, months: int) -> dt.datetime:
    """The deadline after an extension of ``months`` (1 or 2) beyond the first one."""
    return Period(months=months).add_to(first_deadline(received_at))


def _months(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Extension.months must be a whole number", field="Extension.months")
    if not 1 <= value <= MAX_EXTENSION_MONTHS:
        raise ValidationError(
            f"Extension.months must be from 1 to {MAX_EXTENSION_MONTHS} (Art. 12(3))",
            field="Extension.months",
        )


def _reasons(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            "an extension needs its reasons recorded (Art. 12(3))", field="Extension.reasons"
        )


@attrs.frozen(kw_only=True)
class Extension:
    """The one extension a request may get: how long, why, and when the subject was told.

    ``reasons`` are written by the controller for the subject (the complexity or the
    number of requests, Art. 12(3)); they appear in the response letter, not in the audit
    history.
    """

    months: int = attrs.field(validator=_months)
    reasons: str = attrs.field(validator=_reasons)
    decided_at: dt.datetime = attrs.field(validator=v.aware_datetime)
    subject_informed_at: dt.datetime = attrs.field(validator=v.aware_datetime)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "months": self.months,
            "reasons": self.reasons,
            "decided_at": self.decided_at.isoformat(),
            "subject_informed_at": self.subject_informed_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Extension:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            months=data["months"],
            reasons=data["reasons"],
            decided_at=dt.datetime.fromisoformat(data["decided_at"]),
            subject_informed_at=dt.datetime.fromisoformat(data["subject_informed_at"]),
        )
