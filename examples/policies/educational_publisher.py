"""An educational publisher running e-learning platforms (SEJER's published policy).

Source: ``seeds/004_89d7073009e8f16c.txt``, lines 1-19, « Protection de vos données
personnelles ». The policy gives three figures, all expressed here:

- personal data: 18 months after the last activity (line 15);
- invoices: 120 months, personal data on them included (line 16), a legal obligation
  (line 9: « délais légaux de conservation des éléments de facturation (10 ans) »);
- files funded by an OPCO: 72 months (line 17).

It states no period for funding files of other funders (CPF, region...), so the schedule
leaves them to a person: they come out as ``REVIEW``, never erased by guesswork.

Beyond retention the module declares who receives what (line 11: nobody for online
payments; line 12: CPF funders administrative data only; line 13: employers and schools
the learning path too), the hosting (line 19: OVH), and the promises with their tests
(:data:`PROMISES`); :func:`register` generates the Art. 30 register from all of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from examples.policies import _rules
from examples.policies._promise import Disclosure, Gap, Promise, Rights, build_register, reported
from learnprivacy import Controller, DataCategory, Hosting, records
from learnprivacy.basis import LawfulBasis
from learnprivacy.export.reports import ReportProfile
from learnprivacy.providers import Register
from learnprivacy.requests import ProofMethod
from learnprivacy.retention import Action, RetentionMode, Schedule, Trigger

__all__ = [
    "AFTER_LAST_ACTIVITY",
    "CONTROLLER",
    "DISCLOSURES",
    "GAPS",
    "INTERNAL_ONLY",
    "INVOICES",
    "OPCO_FILES",
    "PROMISES",
    "RIGHTS",
    "SCHEDULE",
    "SEED",
    "register",
]

#: The seed file this module implements.
SEED = "004_89d7073009e8f16c.txt"

# Line 15: « Les données personnelles sont conservées 18 mois après la dernière activité. »
# Line 9 adds that the e-mail and the reference of the last contract are kept 18 months
# for commercial communication with whoever paid for the training: the same 18 months.
# An account never used has one activity, its creation: the fallback counts from it.
AFTER_LAST_ACTIVITY = _rules.after_last_activity("P18M", "learning-support", LawfulBasis.CONTRACT)

# Line 16: « Les factures sont conservées 120 mois (incluant les données personnelles
# associées). » Line 9 calls it a legal delay, so it is a legal minimum that no erasure
# request and no override can cut short (COMPLIANCE).
INVOICES = _rules.legal_minimum("P120M", Trigger.ISSUED, "billing", mode=RetentionMode.COMPLIANCE)

# Line 17: « Les données relatives aux OPCO sont conservées 72 mois (dans le cadre des
# dossiers financés par les OPCO). » Counted from the closing of the file; while a file is
# open its clock has not started (KEEP). The funder audits these files, so the period is
# kept as a minimum; GOVERNANCE lets the DPO release a file early with an audited override.
OPCO_FILES = _rules.legal_minimum(
    "P72M",
    Trigger.CLOSED,
    "funding",
    where={"funder": records.Funder.OPCO},
    on_missing_anchor=Action.KEEP,
)

#: The publisher's retention schedule.
SCHEDULE = Schedule(
    {
        records.Learner: AFTER_LAST_ACTIVITY,
        records.Progress: AFTER_LAST_ACTIVITY,
        records.Certificate: AFTER_LAST_ACTIVITY,
        records.AccessEvent: AFTER_LAST_ACTIVITY,
        records.Consent: AFTER_LAST_ACTIVITY,
        records.Invoice: INVOICES,
        records.Funding: OPCO_FILES,
    },
    name="educational-publisher",
)


# Line 2: « la société SEJER informe les utilisateurs [...] » is the controller; the policy
# publishes no contact address and names no DPO, which the register then says.
# Line 19: « stockées sur les serveurs de la société OVH ». The policy does not name the
# country; OVH SAS is established in France (an EEA country: no transfer).
CONTROLLER = Controller(
    name="SEJER",
    contact="not published in the policy",
    hosting=Hosting(provider="OVH", country="FR", details="country not stated in the policy"),
    data_subjects=("learners", "website visitors", "newsletter subscribers"),
)

#: Line 12: CPF-type funders receive data « strictement limitées aux besoins
#: administratifs »: the funding file and the attestation, no score, no contact.
CPF_FUNDER = ReportProfile(
    recipient="cpf-funder",
    fields=reported("Funding", "Certificate"),
    pseudonym_domain="sejer-cpf-funder",
    description="Administrative data of a funded training (line 12)",
)

#: Line 13: an employer or a school that initiated the training plan receives the
#: learning path itself « outre les informations administratives ».
EMPLOYER = ReportProfile(
    recipient="employer",
    fields=reported("Progress", "Certificate", "Funding"),
    pseudonym_domain="sejer-employer",
    description="Learning path and administrative data of a training plan (line 13)",
)

#: Who receives what. Line 11: contracts paid online transmit nothing to third parties,
#: so there is no recipient for them.
DISCLOSURES = {
    "cpf-funder": Disclosure(
        profile=CPF_FUNDER,
        purpose="funding",
        basis=LawfulBasis.LEGAL_OBLIGATION,
        categories=(DataCategory.FUNDING, DataCategory.CERTIFICATION),
    ),
    "employer": Disclosure(
        profile=EMPLOYER,
        purpose="learning-support",
        basis=LawfulBasis.CONTRACT,
        categories=(DataCategory.LEARNING, DataCategory.ASSESSMENT, DataCategory.FUNDING),
    ),
}


#: Line 11: « les données collectées ne font pas l'objet de transmission à des tiers »
#: for contracts paid online: billing data stay with the publisher.
INTERNAL_ONLY = ("billing",)


def register(
    as_of: dt.date | None = None, disclosures: Mapping[str, Disclosure] | None = None
) -> Register:
    """The publisher's Art. 30 register, generated from this module (``disclosures``
    replaces :data:`DISCLOSURES`, to check what another set of recipients would do)."""
    return build_register(
        CONTROLLER,
        SCHEDULE,
        disclosures=DISCLOSURES if disclosures is None else disclosures,
        as_of=as_of,
        internal_only=INTERNAL_ONLY,
    )


#: Line 19: the data are « à disposition des utilisateurs selon les modalités
#: d'authentification établies par la loi »: a learner asks from their authenticated
#: session; an e-mail confirmation alone is refused.
RIGHTS = Rights(identity_proofs=frozenset({ProofMethod.AUTHENTICATED_SESSION}), calendar="FR")


_T = "tests/test_policies.py::"
_C = "tests/test_policy_conformance.py::"
_R = "tests/test_policy_rights.py::"

#: Every promise of the policy, where it is written and which test breaks with it.
PROMISES = (
    Promise(
        promise="Personal data kept 18 months after the last activity",
        seed=SEED,
        line=15,
        quote="conservées 18 mois après la dernière activité",
        enforced_by="AFTER_LAST_ACTIVITY (P18M, LAST_ACTIVITY, else CREATED)",
        test=_T + "test_publisher_keeps_personal_data_18_months_after_last_activity",
    ),
    Promise(
        promise="The last activity counts every record, not only the account",
        seed=SEED,
        line=15,
        quote="après la dernière activité",
        enforced_by="Store.sweep: latest of the account and records with activity_field",
        test=_C + "test_publisher_counts_activity_from_records",
    ),
    Promise(
        promise="Invoices kept 120 months, even when erasure is asked",
        seed=SEED,
        line=16,
        quote="Les factures sont conservées 120 mois",
        enforced_by="INVOICES (P120M, minimum, COMPLIANCE): erase_records restricts",
        test=_C + "test_publisher_invoice_survives_erase_records_and_override",
    ),
    Promise(
        promise="OPCO files kept 72 months",
        seed=SEED,
        line=17,
        quote="OPCO sont conservées 72 mois",
        enforced_by="OPCO_FILES (P72M from closing, minimum)",
        test=_T + "test_publisher_keeps_opco_files_72_months_after_closing",
    ),
    Promise(
        promise="CPF funders receive administrative data only",
        seed=SEED,
        line=12,
        quote="strictement limitées aux besoins administratifs",
        enforced_by="CPF_FUNDER allow-list; ReportProfile.check_within refuses more",
        test=_C + "test_publisher_refuses_a_funder_profile_with_scores_and_contact",
    ),
    Promise(
        promise="Employers and schools receive the learning path and administrative data",
        seed=SEED,
        line=13,
        quote="les données transmises peuvent porter sur le parcours lui-même",
        enforced_by="EMPLOYER allow-list (progress, certificates, funding; no identity)",
        test=_C + "test_publisher_employer_report_carries_no_identity",
    ),
    Promise(
        promise="Contracts paid online: nothing transmitted to third parties",
        seed=SEED,
        line=11,
        quote="ne font pas l’objet de transmission à des tiers",
        enforced_by="INTERNAL_ONLY (billing): an external recipient of billing is a gap",
        test=_C + "test_publisher_billing_is_shared_with_no_third_party",
    ),
    Promise(
        promise="Hosted by OVH",
        seed=SEED,
        line=19,
        quote="serveurs de la société OVH",
        enforced_by="CONTROLLER.hosting",
        test=_C + "test_publisher_register_lists_recipients_and_hosting",
    ),
    Promise(
        promise="Newsletter: unsubscribe at any time",
        seed=SEED,
        line=5,
        quote="cliquant sur le lien de désinscription",
        enforced_by="Consent withdrawal (purpose newsletter) ends the consent at receipt",
        test=_C + "test_publisher_newsletter_withdrawal_is_effective_at_receipt",
    ),
    Promise(
        promise="Users have access to their data",
        seed=SEED,
        line=19,
        quote="sont à disposition des utilisateurs",
        enforced_by="RequestType.ACCESS: export_subject package (manifest checked)",
        test=_R + "test_right_of_access",
    ),
    Promise(
        promise="Access after the authentication the law sets",
        seed=SEED,
        line=19,
        quote="selon les modalités d’authentification établies par la loi",
        enforced_by="RIGHTS.identity_proofs = {AUTHENTICATED_SESSION}; RequestBook.verify_identity",
        test=_R + "test_identity_is_proven_as_the_policy_says",
    ),
)

#: What the policy promises that no code of the library can keep or check. Read line by
#: line (lines 1-19), no promise of SEJER's text was found that code cannot keep.
GAPS: tuple[Gap, ...] = ()
