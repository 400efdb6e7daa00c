"""What the mini-LMS's privacy policy promises, written once as code.

The schedule follows the promises of French training organisations' policies: accounts
and learning data 18 months after the last activity, certificates five years, invoices
ten years from the close of their fiscal year whatever the learner asks (French
Commercial Code L123-22, GDPR Art. 17(3)(b)).
"""

from __future__ import annotations

from decimal import Decimal

from learnprivacy import Controller, Hosting
from learnprivacy.retention import Schedule
from learnprivacy.retention.presets import french_training_organisation

__all__ = ["CATALOGUE", "CONTROLLER", "INTERNAL_ONLY", "RECORD_TYPES", "SCHEDULE"]

#: Course ids the LMS sells, with their price in euros.
CATALOGUE: dict[str, Decimal] = {
    "RGPD-101": Decimal("450.00"),
    "EXCEL-ADV": Decimal("690.00"),
    "MANAGEMENT-1": Decimal("1290.00"),
}

#: The store's record types the mini-LMS keeps. Its register describes these only: it
#: keeps no funder files, consents or access logs (were the store to hold a row of one,
#: the register would list it again, with its gaps).
RECORD_TYPES = ("Learner", "Progress", "Certificate", "Invoice")

#: How long each record type is kept, and what happens then: the library's preset for a
#: French training organisation, for the record types the mini-LMS keeps.
SCHEDULE = Schedule(
    {
        record_type: rules
        for record_type, rules in french_training_organisation().entries.items()
        if record_type in RECORD_TYPES
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

#: The mini-LMS sends no learner's data to anyone outside the company (no funder, no
#: employer, no LRS): the purposes of the records it keeps are shared internally only.
INTERNAL_ONLY = (
    "Learner accounts and access to the courses",
    "Training follow-up: progress and scores",
    "Issuing and verifying certificates",
    "Billing and tax obligations",
)
