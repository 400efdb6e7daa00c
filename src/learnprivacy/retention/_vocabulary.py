"""The closed vocabularies of retention: triggers and lock modes.

:class:`~learnprivacy.Action` (what to do with a record) and the GDPR articles are the
library's shared vocabulary (:mod:`learnprivacy._vocabulary`); retention re-exports
``Action`` because a rule and a decision speak it first.
"""

from __future__ import annotations

import enum

from learnprivacy._vocabulary import Action

__all__ = [
    "Action",
    "RetentionMode",
    "Trigger",
]


class Trigger(enum.Enum):
    """The event a retention period counts from (its *anchor*).

    ``LAST_ACTIVITY`` and ``CONTRACT_END`` are read on the learner: on the record itself
    when it is the learner's own account, otherwise on the ``subject`` passed to
    :meth:`Schedule.evaluate`. The others are read on the record itself.
    """

    #: The record's own date (``date_field``: account creation, issue, event time).
    CREATED = "created"
    #: The learner's ``last_activity_at`` (last connection or activity).
    LAST_ACTIVITY = "last_activity"
    #: The learner's ``contract_end_at`` (end of the client contract covering the account).
    CONTRACT_END = "contract_end"
    #: ``issued_at`` of a certificate or an invoice.
    ISSUED = "issued"
    #: The close of the fiscal year the record's date falls in (accounting documents).
    FISCAL_YEAR_END = "fiscal_year_end"
    #: ``given_at`` of a consent.
    CONSENT_GIVEN = "consent_given"
    #: ``withdrawn_at`` of a consent.
    WITHDRAWN = "withdrawn"
    #: ``closed_at`` of a funding file.
    CLOSED = "closed"

    @property
    def on_subject(self) -> bool:
        """Whether the anchor is read on the learner rather than on the record."""
        return self in (Trigger.LAST_ACTIVITY, Trigger.CONTRACT_END)

    def field_for(self, record_type: type) -> str:
        """The name of the date field this trigger reads for ``record_type``.

        For ``CREATED`` and ``FISCAL_YEAR_END`` it is the class's ``date_field``; for
        ``LAST_ACTIVITY``/``CONTRACT_END`` it is the field of the learner record.
        """
        if self in (Trigger.CREATED, Trigger.FISCAL_YEAR_END):
            return str(getattr(record_type, "date_field", "created_at"))
        return _FIELDS[self]


_FIELDS = {
    Trigger.LAST_ACTIVITY: "last_activity_at",
    Trigger.CONTRACT_END: "contract_end_at",
    Trigger.ISSUED: "issued_at",
    Trigger.CONSENT_GIVEN: "given_at",
    Trigger.WITHDRAWN: "withdrawn_at",
    Trigger.CLOSED: "closed_at",
}


# When several purposes have all ended and their rules ask for different actions, the one
# that keeps the most wins: anonymised statistics satisfy an erasing purpose too, but an
# erasure would break the purpose that asked for anonymised statistics.
PROTECTIVE_ORDER: dict[Action, int] = {
    Action.REVIEW: 0,
    Action.KEEP: 1,
    Action.RESTRICT: 2,
    Action.ANONYMISE: 3,
    Action.ERASE: 4,
}


class RetentionMode(enum.Enum):
    """How firmly a legal minimum holds, after S3 Object Lock's two modes.

    ``GOVERNANCE``: an erasure request may bypass the minimum, but only with an explicit
    :class:`Override` (who and why), which the decision carries so the store can audit it.
    ``COMPLIANCE``: nobody can shorten it; an override raises ``RetentionViolation``.
    """

    GOVERNANCE = "governance"
    COMPLIANCE = "compliance"
