"""Ready-made schedules, each built from promises that real LMS privacy policies make.

Use one as a starting point and adapt the periods to your own policy; every rule says
where its figure comes from.
"""

from __future__ import annotations

from learnprivacy.retention._rule import RetentionRule
from learnprivacy.retention._schedule import Schedule
from learnprivacy.retention._vocabulary import Action, RetentionMode, Trigger

__all__ = ["french_training_organisation"]


def french_training_organisation() -> Schedule:
    """A French training organisation (organisme de formation) running an LMS.

    - Accounts and learning data: 18 months after the last activity (the figure a French
      educational publisher's policy gives); learners who never connected count from the
      account's creation. Progress is then anonymised, so statistics survive.
    - Certificates: 5 years after issue (the "5 years after last connection" of a French
      engineering school's policy, applied to what proves a training took place).
    - Invoices: 10 years from the close of the fiscal year (French Commercial Code,
      art. L123-22), a COMPLIANCE legal minimum: erasure requests restrict them.
    - Funder files (OPCO, CPF): 72 months after closing, a legal minimum (the publisher's
      policy).
    - Consent records: 5 years after consent was given, as proof (CNIL guidance).
    - Security access logs: one year (CNIL recommendation for logs).
    """
    return Schedule(
        {
            "Learner": RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED),
            "Progress": RetentionRule(
                "P18M", Trigger.LAST_ACTIVITY, action=Action.ANONYMISE, fallback=Trigger.CREATED
            ),
            "Certificate": RetentionRule("P5Y", Trigger.ISSUED),
            "Invoice": RetentionRule(
                "P10Y", Trigger.FISCAL_YEAR_END, minimum=True, mode=RetentionMode.COMPLIANCE
            ),
            "Funding": RetentionRule("P72M", Trigger.CLOSED, minimum=True),
            "Consent": RetentionRule("P5Y", Trigger.CONSENT_GIVEN),
            "AccessEvent": RetentionRule("P1Y", Trigger.CREATED),
        },
        name="french-training-organisation",
    )
