"""A French engineering school running Moodle (JUNIA's published platform policies).

Source: ``seeds/001_433e72931355eb3b.txt``, lines 1-117: the data protection policy and
the cookie policy of the school's Moodle platform.

- Everything is kept at most 5 years after the last connection (line 53), written as
  Moodle's data registry writes it: ``P5Y``.
- Cookies live at most 13 months (lines 53, 108, 114); the cookie consent is valid
  6 months (line 89).
- The lawful basis the school states is consent (line 21).
"""

from __future__ import annotations

import datetime as dt

from examples.policies import _rules
from examples.policies._promise import Disclosure, Gap, Promise, Rights, build_register, reported
from learnprivacy import Controller, DataCategory, records
from learnprivacy.basis import LawfulBasis
from learnprivacy.export.reports import ReportProfile
from learnprivacy.providers import Register
from learnprivacy.requests import ProofMethod
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger

__all__ = [
    "AFTER_LAST_CONNECTION",
    "CONSENT_VALIDITY",
    "CONTROLLER",
    "COOKIE_LIFETIME",
    "COOKIE_PURPOSES",
    "DISCLOSURES",
    "GAPS",
    "MOODLE_RETENTION_PERIOD",
    "PROMISES",
    "RIGHTS",
    "SCHEDULE",
    "SEED",
    "consent_needs_renewal",
    "cookie_consent",
    "register",
]

# Line 53: « cette durée n'excédant pas 5 ans après la fin de la dernière connexion à la
# plateforme ». Moodle stores the period as an ISO 8601 duration in its data registry.
MOODLE_RETENTION_PERIOD = "P5Y"

# Line 89: « Ce consentement aura une durée de validité de 6 mois ».
CONSENT_VALIDITY = Period.parse("P6M")

# Line 53: « (sauf les cookies pour lesquels la durée de conservation est de 13 mois) »;
# lines 108 and 114: « Ces cookies ont une durée de vie maximale de 13 mois ».
COOKIE_LIFETIME = Period.parse("P13M")

#: The consent purposes of the cookie banner: service/personalisation (line 99) and
#: audience measurement (line 110). Technical cookies need no consent (line 97).
COOKIE_PURPOSES = ("service-cookies", "audience-cookies")

# Line 21: the school collects data « sur la base légale de votre consentement ».
# Moodle records a user who never logged in with lastaccess = 0, which the Moodle adapter
# reads as "no last activity": such an account counts from its creation.
AFTER_LAST_CONNECTION = _rules.after_last_activity(
    Period.parse(MOODLE_RETENTION_PERIOD), "training", LawfulBasis.CONSENT
)


def _cookie_rule(purpose: str) -> RetentionRule:
    # The record of a cookie choice lives as long as the cookie it governs.
    return RetentionRule(
        COOKIE_LIFETIME,
        Trigger.CONSENT_GIVEN,
        where={"purpose": purpose},
        purpose=purpose,
        basis=LawfulBasis.CONSENT,
    )


#: The school's retention schedule. Line 25 (attendance and funding documents sent to
#: OPCO, region, employer) and line 35 (logins) fall under the same 5-year ceiling.
SCHEDULE = Schedule(
    {
        records.Learner: AFTER_LAST_CONNECTION,
        records.Progress: AFTER_LAST_CONNECTION,
        records.Certificate: AFTER_LAST_CONNECTION,
        records.AccessEvent: AFTER_LAST_CONNECTION,
        records.Funding: AFTER_LAST_CONNECTION,
        records.Consent: [_cookie_rule(purpose) for purpose in COOKIE_PURPOSES],
    },
    name="engineering-school-moodle",
)


def cookie_consent(
    *, consent_id: str, learner_id: str, purpose: str, given_at: dt.datetime, proof: str
) -> records.Consent:
    """A cookie consent as the banner records it: valid 6 months from ``given_at``."""
    return records.Consent(
        id=consent_id,
        learner_id=learner_id,
        purpose=purpose,
        given_at=given_at,
        expires_at=CONSENT_VALIDITY.add_to(given_at),
        proof=proof,
    )


def consent_needs_renewal(consent: records.Consent, now: dt.datetime) -> bool:
    """Whether the banner must ask again: the consent lapsed, or was withdrawn."""
    return not consent.is_active(now)


#: The seed file this module implements.
SEED = "001_433e72931355eb3b.txt"

# Line 19: « JUNIA, association [...] 2 rue Norbert Ségard 59046 Lille [...] responsable de
# traitement »; line 70: requests go to « junia.dpo@junia.com »; line 64: the CNIL.
CONTROLLER = Controller(
    name="JUNIA",
    address="2 rue Norbert Ségard, 59046 Lille, France",
    contact="junia.dpo@junia.com",
    dpo="junia.dpo@junia.com",
    data_subjects=("learners", "platform users"),
)

#: Line 25: documents needed to manage the training (enrolment, funding) go to « OPCO,
#: Région, établissement employeur, service public de l'emploi »: administrative data,
#: attendance included, no scores.
FUNDERS = ReportProfile(
    recipient="funders",
    fields=reported("Funding", "Certificate"),
    pseudonym_domain="junia-funders",
    description="Attendance and funding documents (line 25)",
)

DISCLOSURES = {
    "funders": Disclosure(
        profile=FUNDERS,
        purpose="training",
        basis=LawfulBasis.CONSENT,
        categories=(DataCategory.FUNDING, DataCategory.CERTIFICATION),
    )
}


def register(as_of: dt.date | None = None) -> Register:
    """The school's Art. 30 register, generated from this module."""
    return build_register(CONTROLLER, SCHEDULE, disclosures=DISCLOSURES, as_of=as_of)


#: Line 72: a request is handled once the person proves their identity « par la
#: production d'un scan de votre titre d'identité valide ou d'une photocopie signée »:
#: an identity document, nothing weaker (an e-mail confirmation is refused). Line 76:
#: one month from receipt, over French public holidays.
RIGHTS = Rights(identity_proofs=frozenset({ProofMethod.ID_DOCUMENT_SIGHTED}), calendar="FR")


_T = "tests/test_policies.py::"
_C = "tests/test_policy_conformance.py::"
_R = "tests/test_policy_rights.py::"

PROMISES = (
    Promise(
        promise="The school is the controller; requests go to its DPO address",
        seed=SEED,
        line=70,
        quote="junia.dpo@junia.com",
        enforced_by="CONTROLLER (dpo, reply_to)",
        test=_C + "test_school_register_names_the_dpo_and_funders",
    ),
    Promise(
        promise="Collection rests on consent",
        seed=SEED,
        line=21,
        quote="sur la base légale de votre consentement",
        enforced_by="AFTER_LAST_CONNECTION.basis = CONSENT",
        test=_T + "test_school_rests_on_consent",
    ),
    Promise(
        promise="Kept at most 5 years after the last connection",
        seed=SEED,
        line=53,
        quote="n’excédant pas 5 ans après la fin de la dernière connexion",
        enforced_by="AFTER_LAST_CONNECTION (P5Y, LAST_ACTIVITY, else CREATED)",
        test=_T + "test_school_keeps_data_5_years_after_last_connection",
    ),
    Promise(
        promise="Cookies kept 13 months",
        seed=SEED,
        line=108,
        quote="durée de vie maximale de 13 mois",
        enforced_by="COOKIE_LIFETIME (P13M) on each cookie consent",
        test=_T + "test_school_cookie_choices_kept_13_months",
    ),
    Promise(
        promise="Cookie consent valid 6 months",
        seed=SEED,
        line=89,
        quote="Ce consentement aura une durée de validité de 6 mois",
        enforced_by="cookie_consent(): expires_at = given_at + P6M; Consent.is_active",
        test=_T + "test_school_cookie_consent_is_valid_6_months",
    ),
    Promise(
        promise="Funders and employers receive administrative documents only",
        seed=SEED,
        line=25,
        quote="OPCO, Région, établissement employeur, service public de l’emploi",
        enforced_by="FUNDERS allow-list; ReportProfile.check_within",
        test=_C + "test_school_register_names_the_dpo_and_funders",
    ),
    Promise(
        promise="Right of access",
        seed=SEED,
        line=57,
        quote="la faculté d’accéder aux données personnelles vous concernant",
        enforced_by="RequestType.ACCESS: export_subject package (manifest checked)",
        test=_R + "test_right_of_access",
    ),
    Promise(
        promise="Right to rectification",
        seed=SEED,
        line=58,
        quote="vous pouvez demander la rectification, la mise à jour",
        enforced_by="RequestType.RECTIFICATION: Store.update, re-encrypted",
        test=_R + "test_right_to_rectification",
    ),
    Promise(
        promise="Right to erasure",
        seed=SEED,
        line=59,
        quote="vous pouvez demander l’effacement des données personnelles",
        enforced_by="RequestType.ERASURE: Store.erase_subject under SCHEDULE, verified",
        test=_R + "test_right_to_erasure",
    ),
    Promise(
        promise="Right to restriction",
        seed=SEED,
        line=60,
        quote="vous pouvez demander la limitation des données personnelles",
        enforced_by="RequestType.RESTRICTION: Store.restrict",
        test=_R + "test_right_to_restriction",
    ),
    Promise(
        promise="Right to portability, in a machine-readable format",
        seed=SEED,
        line=62,
        quote="dans un format structuré, couramment utilisé et lisible par machine",
        enforced_by="RequestType.PORTABILITY: JSON and CSV package",
        test=_R + "test_right_to_portability",
    ),
    Promise(
        promise="Right to object",
        seed=SEED,
        line=63,
        quote="vous opposer au traitement des Données personnelles vous concernant",
        enforced_by="RequestType.OBJECTION: processing on legitimate interests restricted",
        test=_R + "test_right_to_object",
    ),
    Promise(
        promise="Identity proven by an identity document before a request is handled",
        seed=SEED,
        line=72,
        quote="sous réserve que vous apportiez la preuve de votre identité",
        enforced_by="RIGHTS.identity_proofs = {ID_DOCUMENT_SIGHTED}; RequestBook.verify_identity",
        test=_R + "test_identity_is_proven_as_the_policy_says",
    ),
    Promise(
        promise="Answer within one month of receipt",
        seed=SEED,
        line=76,
        quote="ne saurait dépasser 1 mois à compter de la réception de votre demande",
        enforced_by="RequestBook deadlines (Art. 12(3)), French holidays",
        test=_R + "test_answer_within_one_month",
    ),
    Promise(
        promise="Consent may be withdrawn; what it alone allowed is erased",
        seed=SEED,
        line=61,
        quote="Droit de retirer votre consentement",
        enforced_by="RequestType.WITHDRAW_CONSENT: SCHEDULE.on_consent_end, verified",
        test="tests/test_consent_withdrawal.py::test_withdrawing_junias_training_consent_erases",
    ),
    Promise(
        promise="Right to complain to the CNIL, named in every answer",
        seed=SEED,
        line=64,
        quote="la CNIL pour la France",
        enforced_by="render_letter: the controller's supervisory authority (CNIL)",
        test=_R + "test_every_answer_names_the_supervisory_authority",
    ),
    Promise(
        promise="Heirs may have the death taken into account",
        seed=SEED,
        line=66,
        quote="les héritiers d’une personne décédée peuvent exiger",
        enforced_by="REQUIRED_PROOFS[HEIR]: death certificate and proof of heirship",
        test=_R + "test_heirs_have_the_death_taken_into_account",
    ),
    Promise(
        promise="Manifestly abusive requests may be refused, with reasons",
        seed=SEED,
        line=74,
        quote="demandes manifestement abusives",
        enforced_by="RequestBook.refuse(EXCESSIVE / MANIFESTLY_UNFOUNDED): reason required",
        test=_R + "test_abusive_requests_are_refused_with_reasons",
    ),
)

#: What the policy promises that no code of the library can keep or check: listed in
#: docs/policies.md, for the people running the platform.
GAPS = (
    Gap(
        promise="Only the data needed are collected",
        seed=SEED,
        line=38,
        quote="ne récolter que les données personnelles et suffisantes",
        why="data minimisation is decided by the forms of the platform; the register "
        "lists every field kept, for the DPO to judge",
    ),
    Gap(
        promise="Sub-processors are located in the European Union",
        seed=SEED,
        line=43,
        quote="Ces prestataires sont situés dans l’Union Européenne",
        why="where a sub-processor works is a contract fact; the register lists the "
        "declared hosting and transfers, and flags a declared country outside the EEA",
    ),
    Gap(
        promise="Personal data never sold to third parties for commercial purposes",
        seed=SEED,
        line=45,
        quote="en aucun cas cédées à un tiers à des fins commerciales",
        why="the funders' allow-lists (DISCLOSURES) bound what the library sends; a sale "
        "by other means is outside it",
    ),
    Gap(
        promise="Audience cookies measure visits completely anonymously",
        seed=SEED,
        line=112,
        quote="de manière totalement anonyme",
        why="the audience tool runs in the browser, outside the library",
    ),
)
