"""An educational publisher running e-learning platforms (SEJER's published policy).

Source: ``seeds/001_433e72931355eb3b.txt``, lines 242-260, « Protection de vos données
personnelles ». The policy gives three figures, all expressed here:

- personal data: 18 months after the last activity (line 256);
- invoices: 120 months, personal data on them included (line 257), a legal obligation
  (line 250: « délais légaux de conservation des éléments de facturation (10 ans) »);
- files funded by an OPCO: 72 months (line 258).

It states no period for funding files of other funders (CPF, region...), so the schedule
leaves them to a person: they come out as ``REVIEW``, never erased by guesswork.
"""

from __future__ import annotations

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import (
    AccessEvent,
    Certificate,
    Consent,
    Funder,
    Funding,
    Invoice,
    Learner,
    Progress,
)
from learnprivacy.retention import Action, RetentionMode, RetentionRule, Schedule, Trigger

__all__ = ["AFTER_LAST_ACTIVITY", "INVOICES", "OPCO_FILES", "SCHEDULE"]

# Line 256: « Les données personnelles sont conservées 18 mois après la dernière activité. »
# Line 250 adds that the e-mail and the reference of the last contract are kept 18 months
# for commercial communication with whoever paid for the training: the same 18 months.
# An account never used has one activity, its creation: the fallback counts from it.
AFTER_LAST_ACTIVITY = RetentionRule(
    "P18M",
    Trigger.LAST_ACTIVITY,
    fallback=Trigger.CREATED,
    purpose="learning-support",
    basis=LawfulBasis.CONTRACT,
)

# Line 257: « Les factures sont conservées 120 mois (incluant les données personnelles
# associées). » Line 250 calls it a legal delay, so it is a legal minimum that no erasure
# request and no override can cut short (COMPLIANCE).
INVOICES = RetentionRule(
    "P120M",
    Trigger.ISSUED,
    minimum=True,
    mode=RetentionMode.COMPLIANCE,
    purpose="billing",
    basis=LawfulBasis.LEGAL_OBLIGATION,
)

# Line 258: « Les données relatives aux OPCO sont conservées 72 mois (dans le cadre des
# dossiers financés par les OPCO). » Counted from the closing of the file; while a file is
# open its clock has not started (KEEP). The funder audits these files, so the period is
# kept as a minimum; GOVERNANCE lets the DPO release a file early with an audited override.
OPCO_FILES = RetentionRule(
    "P72M",
    Trigger.CLOSED,
    where={"funder": Funder.OPCO},
    minimum=True,
    on_missing_anchor=Action.KEEP,
    purpose="funding",
    basis=LawfulBasis.LEGAL_OBLIGATION,
)

#: The publisher's retention schedule.
SCHEDULE = Schedule(
    {
        Learner: AFTER_LAST_ACTIVITY,
        Progress: AFTER_LAST_ACTIVITY,
        Certificate: AFTER_LAST_ACTIVITY,
        AccessEvent: AFTER_LAST_ACTIVITY,
        Consent: AFTER_LAST_ACTIVITY,
        Invoice: INVOICES,
        Funding: OPCO_FILES,
    },
    name="educational-publisher",
)
