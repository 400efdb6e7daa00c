"""What the mini-LMS's privacy policy promises, written once as code.

The schedule follows the promises of French training organisations' policies: accounts
and learning data 18 months after the last activity, certificates five years, invoices
ten years from the close of their fiscal year whatever the learner asks (French
Commercial Code L123-22, GDPR Art. 17(3)(b)).
"""

from __future__ import annotations

from decimal import Decimal

from learnprivacy import Controller, Hosting
from learnprivacy.retention import Action, RetentionMode, RetentionRule, Schedule, Trigger

__all__ = ["CATALOGUE", "CONTROLLER", "INTERNAL_ONLY", "RECORD_TYPES", "SCHEDULE"]

#: Course ids the LMS sells, with their price in euros.
CATALOGUE: dict[str, Decimal] = {
    "RGPD-101": Decimal("450.00"),
    "EXCEL-ADV": Decimal("690.00"),
    "MANAGEMENT-1": Decimal("1290.00"),
}

#: How long each record type is kept, and what happens then.
SCHEDULE = Schedule(
    {
        "Learner": RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED),
        # Learning records outlive the account as anonymised statistics only.
        "Progress": RetentionRule(
            "P18M", Trigger.LAST_ACTIVITY, action=Action.ANONYMISE, fallback=Trigger.CREATED
        ),
        "Certificate": RetentionRule("P5Y", Trigger.ISSUED),
        "Invoice": RetentionRule(
            "P10Y", Trigger.FISCAL_YEAR_END, minimum=True, mode=RetentionMode.COMPLIANCE
        ),
    },
    name="mini-lms",
)

#: The controller's part of the GDPR Art. 30 register.
CONTROLLER = Controller(
    name="Mini LMS Formation SAS",
    address="1 rue de l'Exemple, 75011 Paris, France",
    contact="privacy@mini-lms.example",
    dpo="dpo@mini-lms.example",
    hosting=Hosting(provider="Example Cloud", country="FR"),
    security_measures=(
        "personal fields encrypted with per-learner keys",
        "administration behind a bearer token",
        "tamper-evident audit log",
    ),
)

#: The store's record types the mini-LMS keeps. Its register describes these only: it
#: keeps no funder files, consents or access logs (were the store to hold a row of one,
#: the register would list it again, with its gaps).
RECORD_TYPES = ("Learner", "Progress", "Certificate", "Invoice")

#: The mini-LMS sends no learner's data to anyone outside the company (no funder, no
#: employer, no LRS): the purposes of the records it keeps are shared internally only.
INTERNAL_ONLY = (
    "Learner accounts and access to the courses",
    "Training follow-up: progress and scores",
    "Issuing and verifying certificates",
    "Billing and tax obligations",
)
