"""What executing a request did: per-record outcomes, notifications and completed steps.

Outcomes name record types, record ids, actions and articles: never a field value. They
go into the response letter (to the subject, about the subject's own records) and into
the request book; the audit history only keeps their counts.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

import attrs

from learnprivacy._validators import aware_datetime
from learnprivacy._vocabulary import Action
from learnprivacy.records._serialise import JsonForm

__all__ = [
    "NotificationOutcome",
    "NotificationStatus",
    "RecordOutcome",
    "StepResult",
]


@attrs.frozen(kw_only=True)
class RecordOutcome(JsonForm):
    """One record's outcome and the article that justifies it.

    ``reason`` is a short code-like explanation (``"legal minimum retention"``) written by
    the library, never a field value.
    """

    record_type: str
    # A Learner's record id is the learner id: kept out of repr, as the store does.
    record_id: str = attrs.field(repr=False)
    action: Action
    article: str
    reason: str | None = None


class NotificationStatus(enum.Enum):
    """Whether a recipient was told of an erasure, rectification or restriction (Art. 19)."""

    SENT = "sent"
    FAILED = "failed"
    #: The location is declared but nobody registered a way to reach it.
    NO_NOTIFIER = "no_notifier"


@attrs.frozen(kw_only=True)
class NotificationOutcome(JsonForm):
    """How notifying one external location went; ``error`` is the exception's type name.

    ``details`` holds the non-personal counts the notifier reported (an LRS: ``found``,
    ``voided``, ``not_voided``, ``still_listed``, ``deleted``).
    """

    location: str
    component: str
    status: NotificationStatus
    error: str | None = None
    details: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class StepResult(JsonForm):
    """A step of the execution that finished; persisted so a rerun skips it.

    ``facts`` holds short non-personal strings (a package's SHA-256, a count); the export
    package location lives in ``artifact``, which stays out of the audit history.
    """

    name: str
    completed_at: dt.datetime = attrs.field(validator=aware_datetime)
    records: tuple[RecordOutcome, ...] = ()
    notifications: tuple[NotificationOutcome, ...] = ()
    facts: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    artifact: str | None = None
