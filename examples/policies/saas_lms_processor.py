"""A SaaS LMS provider hosting platforms for its clients (Onlineformapro's published policy).

Source: ``seeds/001_433e72931355eb3b.txt``, lines 1-61. On the client platforms the
provider is a processor (line 40); its promises:

- at the end of the client contract, the platform data are destroyed, whether or not they
  were handed back to the client (line 46);
- other data are not kept beyond two years, unless a legal (e.g. tax) obligation needs
  longer (line 47) — here invoices, kept ten years from the close of their fiscal year as
  the French Commercial Code requires (art. L123-22);
- newsletter data end with the unsubscription (line 44).
"""

from __future__ import annotations

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import (
    AccessEvent,
    Certificate,
    Consent,
    Invoice,
    Learner,
    Progress,
)
from learnprivacy.retention import Action, RetentionMode, RetentionRule, Schedule, Trigger

__all__ = ["AT_CONTRACT_END", "INVOICES", "NEWSLETTER", "SCHEDULE"]

# Line 46: « En fin de contrat les données des clients sur les plates-formes LMS sont
# systématiquement détruites de nos serveurs, qu'il y ait ou non restitution au client. »
# Zero period: due the instant the contract ends. A running contract has no end date yet:
# the clock has not started, so the data are kept (KEEP), not flagged for review.
AT_CONTRACT_END = RetentionRule(
    "PT0S",
    Trigger.CONTRACT_END,
    on_missing_anchor=Action.KEEP,
    purpose="client-platform",
    basis=LawfulBasis.CONTRACT,
)

# Line 47: « les données ne sont pas conservées au-delà de deux ans, sauf si une durée de
# conservation plus longue est nécessaire pour [...] honorer des obligations légales ou
# administratives, fiscales par exemple. » French accounting documents: ten years from the
# close of the fiscal year (Code de commerce, art. L123-22), not negotiable (COMPLIANCE).
INVOICES = RetentionRule(
    "P10Y",
    Trigger.FISCAL_YEAR_END,
    minimum=True,
    mode=RetentionMode.COMPLIANCE,
    purpose="billing",
    basis=LawfulBasis.LEGAL_OBLIGATION,
)

# Line 44: retention « peut dépendre [...] d'une désinscription d'une lettre
# d'information »; line 47 caps other data at two years: the consent record (the proof
# of the past subscription) goes two years after the unsubscription.
NEWSLETTER = RetentionRule(
    "P2Y",
    Trigger.WITHDRAWN,
    where={"purpose": "newsletter"},
    on_missing_anchor=Action.KEEP,
    purpose="newsletter",
    basis=LawfulBasis.CONSENT,
)

#: The provider's retention schedule. Everything on a client platform follows the
#: client contract of its learner.
SCHEDULE = Schedule(
    {
        Learner: AT_CONTRACT_END,
        Progress: AT_CONTRACT_END,
        Certificate: AT_CONTRACT_END,
        AccessEvent: AT_CONTRACT_END,
        Consent: NEWSLETTER,
        Invoice: INVOICES,
    },
    name="saas-lms-processor",
)
