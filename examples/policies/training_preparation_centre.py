"""A training-preparation centre (Prépa Job's published policy).

Source: ``seeds/001_433e72931355eb3b.txt``, lines 61-241. The policy promises a shape, not
figures:

- data are kept « pendant différentes périodes de temps, en fonction de leur nature et de
  leur utilité » (line 170): one period per kind of data, which the centre must choose;
- once a period ends the personal data are destroyed, and only de-personalised,
  anonymised statistics may be kept longer (line 176);
- collection rests on consent, unless the law permits or requires otherwise (line 86), and
  a new purpose needs a new consent (line 102).

Since no figure is published, :func:`make_schedule` takes each period as a required
argument instead of inventing one. Invoices are the exception: French law fixes them (ten
years from the close of the fiscal year, Code de commerce art. L123-22), which line 86's
« requis par la loi » covers.
"""

from __future__ import annotations

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import AccessEvent, Certificate, Consent, Invoice, Learner, Progress
from learnprivacy.retention import (
    Action,
    Period,
    RetentionMode,
    RetentionRule,
    Schedule,
    Trigger,
)

__all__ = ["INVOICES", "make_schedule"]

# Line 86 (« à moins que cela ne soit permis ou requis par la loi ») and the French
# Commercial Code: a legal minimum nobody can shorten.
INVOICES = RetentionRule(
    "P10Y",
    Trigger.FISCAL_YEAR_END,
    minimum=True,
    mode=RetentionMode.COMPLIANCE,
    purpose="billing",
    basis=LawfulBasis.LEGAL_OBLIGATION,
)


def make_schedule(
    *,
    learner_data: Period | str,
    statistics: Period | str,
    security_logs: Period | str,
) -> Schedule:
    """The centre's schedule, with the periods it chooses for each kind of data (line 170).

    ``learner_data``: accounts, certificates and consents, counted from the learner's last
    activity. ``statistics``: how long progress records stay personal before only their
    anonymised form remains (line 176). ``security_logs``: access logs, from the event.
    """
    # Line 176: « Une fois la période de conservation expirée, les renseignements
    # personnels sont détruits. » Line 86: collected on the basis of consent.
    destroyed = RetentionRule(
        learner_data,
        Trigger.LAST_ACTIVITY,
        fallback=Trigger.CREATED,
        purpose="training",
        basis=LawfulBasis.CONSENT,
    )
    # Line 176: « Seuls les statistiques ou rapports contenant des données dépersonnalisées
    # et anonymisées pourront être conservés pour des périodes de temps prolongées. »
    # Line 90: « nous anonymiserons, pseudonymiserons et/ou agrégerons ces derniers ».
    anonymised = RetentionRule(
        statistics,
        Trigger.LAST_ACTIVITY,
        fallback=Trigger.CREATED,
        action=Action.ANONYMISE,
        purpose="statistics",
        basis=LawfulBasis.CONSENT,
    )
    logs = RetentionRule(
        security_logs,
        Trigger.CREATED,
        purpose="security",
        basis=LawfulBasis.LEGITIMATE_INTERESTS,
    )
    return Schedule(
        {
            Learner: destroyed,
            Certificate: destroyed,
            Consent: destroyed,
            Progress: anonymised,
            AccessEvent: logs,
            Invoice: INVOICES,
        },
        name="training-preparation-centre",
    )
