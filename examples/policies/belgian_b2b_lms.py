"""A Belgian LMS selling e-learning to employers (Job Access solutions' published policy).

Source: ``seeds/000_1c49f1355f48d45f.txt``, lines 1-101. The policy states a lawful basis
per purpose and a principle, but no period:

- accounts and learning follow-up (progress, scores, certificates) rest on the contract,
  with the learner or, in B2B, with the employer (line 27);
- billing rests on legal and tax obligations (line 31);
- security logs on a proportionate legitimate interest (line 35);
- B2B prospecting on legitimate interest, newsletters to individuals on a consent
  « révocable sans effet rétroactif » (line 39); analytics cookies on consent (line 43);
- once a purpose is achieved, data are « supprimées, anonymisées ou archivées selon le
  cadre légal applicable » (line 57);
- progress reports, KPIs and ratios are shared with the B2B client (line 93).

The periods are the operator's to set under Belgian law, so :func:`make_schedule` takes
them as required arguments rather than inventing figures.
"""

from __future__ import annotations

import datetime as dt

from examples.policies import _rules
from examples.policies._promise import Disclosure, Gap, Promise, Rights, build_register, reported
from learnprivacy import (
    APD_GBA,
    Controller,
    DataCategory,
    Hosting,
    Safeguard,
    SubProcessor,
    Transfer,
    records,
)
from learnprivacy.basis import LawfulBasis
from learnprivacy.export.reports import ReportProfile
from learnprivacy.providers import MetadataCollection, Register
from learnprivacy.retention import Action, Period, Schedule, Trigger

__all__ = [
    "CONTROLLER",
    "DISCLOSURES",
    "GAPS",
    "NULL_COMPONENTS",
    "PROMISES",
    "PURPOSES",
    "RIGHTS",
    "SEED",
    "component_metadata",
    "make_schedule",
    "register",
]


#: The purpose of each record type, as the policy names them: accounts and certificates
#: for the training (line 27), progress for the reports shared with the client (line 93),
#: invoices for billing (line 31), logs for security (line 35), consents as proof (lines
#: 39, 43). :func:`make_schedule` and :func:`register` both read them.
PURPOSES = {
    "Learner": "b2b-training",
    "Certificate": "b2b-training",
    "Progress": "b2b-reporting",
    "Invoice": "billing",
    "AccessEvent": "security",
    "Consent": "consent-proof",
}


def make_schedule(
    *,
    after_contract: Period | str,
    invoices: Period | str,
    security_logs: Period | str,
    consent_proof: Period | str,
) -> Schedule:
    """The LMS's schedule, with the periods the operator sets for each purpose.

    ``after_contract``: how long accounts and learning data outlive the B2B client contract
    (line 27: the contract is the basis, so its end is where the purpose ends).
    ``invoices``: the legal retention of accounting documents (line 31). ``security_logs``:
    from the event (line 35). ``consent_proof``: how long a consent is kept as proof after
    its withdrawal, since withdrawal does not make past processing unlawful (lines 39, 43).
    """
    # Line 27: « exécuter les obligations contractuelles qui nous lient à vous ou à votre
    # employeur en B2B [...] exécution du contrat ». Line 57: « une fois la finalité
    # atteinte, les données sont supprimées ». A running contract has no end date: the
    # clock has not started (KEEP).
    account = _rules.after_contract(after_contract, PURPOSES["Learner"])
    # Line 57 « anonymisées » and line 93 « rapports de progression, d'analyse de datas,
    # kpis et ratios » shared with the client: progress outlives the contract anonymised.
    follow_up = _rules.after_contract(after_contract, PURPOSES["Progress"], action=Action.ANONYMISE)
    # Line 31: « se conformer aux obligations légales et fiscales »; line 57 « archivées
    # selon le cadre légal applicable »: a legal minimum an erasure request cannot shorten.
    billing = _rules.legal_minimum(invoices, Trigger.FISCAL_YEAR_END, PURPOSES["Invoice"])
    # Line 35: « intérêt légitime [...] limité à ce qui est nécessaire et proportionné ».
    security = _rules.logged(security_logs, PURPOSES["AccessEvent"])
    # Line 39: consent « révocable sans effet rétroactif »; line 43: withdrawal « sans
    # porter atteinte à la licéité du traitement antérieur ». The consent record is the
    # proof of that past lawfulness: kept for consent_proof after withdrawal, and kept
    # (KEEP) while the consent stands.
    proof = _rules.after_withdrawal(consent_proof, PURPOSES["Consent"])
    return Schedule(
        {
            records.Learner: account,
            records.Certificate: account,
            records.Progress: follow_up,
            records.Invoice: billing,
            records.AccessEvent: security,
            records.Consent: proof,
        },
        name="belgian-b2b-lms",
    )


#: The seed file this module implements.
SEED = "000_1c49f1355f48d45f.txt"

INFOMANIAK = "Infomaniak Network SA"

# Line 9: « Responsable: Job Access solutions SRL, Clos Chanmurly 13, 4000 Liège,
# Belgique; contact vie privée: info@job-access.be »; no data protection officer is named.
# Line 13: hosting by Infomaniak in Switzerland, covered by an adequacy decision; line 51:
# other third countries only under standard contractual clauses. Line 47: the technical
# providers. Lines 69-85: the security measures. Belgian law: complaints go to the
# Belgian authority.
CONTROLLER = Controller(
    name="Job Access solutions SRL",
    address="Clos Chanmurly 13, 4000 Liège, Belgium",
    contact="info@job-access.be",
    hosting=Hosting(
        provider=INFOMANIAK,
        country="CH",
        details="data centres exclusively in Switzerland; processor under the GDPR and the "
        "Swiss FADP",
    ),
    sub_processors=[
        SubProcessor(name=INFOMANIAK, service="Hosting", country="CH"),
        SubProcessor(name="E-mailing provider", service="E-mailing"),
        SubProcessor(name="Analytics provider", service="Audience measurement"),
        SubProcessor(name="Payment provider", service="Payment"),
        SubProcessor(name="Video-conferencing provider", service="Virtual classrooms"),
        SubProcessor(name="Support provider", service="Customer support"),
    ],
    transfers=[
        Transfer(
            recipient=INFOMANIAK,
            country="CH",
            safeguard=Safeguard.ADEQUACY_DECISION,
            details="Switzerland is covered by an adequacy decision of the European "
            "Commission; other third countries only under SCCs and supplementary measures",
        )
    ],
    data_subjects=["visitors", "learners", "B2B clients' staff", "prospects"],
    security_measures=[
        "Role-based access control with traceable, revocable authorisations",
        "Encryption of data in transit; secure session management",
        "Regular backups with integrity checks and incident recovery procedures",
        "Logging and continuous monitoring of security events",
        "Periodic security tests, including penetration tests",
        "Breach notification to the authority and, when required, to the users",
    ],
    authority=APD_GBA,
)

#: Components declaring they keep no personal data, with the reason.
NULL_COMPONENTS = {"theme_jobaccess": "The theme stores site-wide settings only."}


def component_metadata() -> list[MetadataCollection]:
    """What the LMS's components other than the learnprivacy store declare, under the
    purposes of :func:`make_schedule` and the two the policy adds (prospecting, line 39;
    analytics, line 43), with line 47's providers as recipients. The store's own records
    are not declared here: ``build_register`` reads them from the record classes."""
    contract = LawfulBasis.CONTRACT
    # Line 27: « gérer le service client et l'assistance technique »; line 47: support
    # and video-conferencing providers.
    support = (
        MetadataCollection("tool_helpdesk")
        .add_database_table(
            "tickets",
            {"user_id": "Who asked", "message": "The request and the answers"},
            "Customer service and technical assistance",
            purpose="b2b-training",
            basis=contract,
            categories=[DataCategory.COMMUNICATION],
        )
        .add_external_location_link(
            "support_provider",
            {"user_id": "Who asked", "message": "The request and the answers"},
            "Tickets handled with the support provider",
            purpose="b2b-training",
            basis=contract,
            categories=[DataCategory.COMMUNICATION],
            recipient="Support provider",
        )
        .add_external_location_link(
            "videoconference",
            {"name": "Display name", "email": "E-mail address"},
            "Participants of virtual classrooms",
            purpose="b2b-training",
            basis=contract,
            categories=[DataCategory.IDENTITY, DataCategory.CONTACT],
            recipient="Video-conferencing provider",
        )
    )
    # Line 31 (billing) and line 47: the payment provider.
    payment = MetadataCollection("tool_payment").add_external_location_link(
        "payment",
        {"billing_name": "Name of the payer", "amount": "Amount paid"},
        "Online payments",
        purpose="billing",
        basis=LawfulBasis.LEGAL_OBLIGATION,
        categories=[DataCategory.IDENTITY, DataCategory.BILLING],
        recipient="Payment provider",
    )
    # Line 39: professionals on legitimate interest (objection at any time), individuals
    # on consent; line 47: the e-mailing provider.
    marketing = (
        MetadataCollection("tool_marketing")
        .add_database_table(
            "b2b_contacts",
            {"email": "Professional e-mail", "company": "Company", "optout": "Objection"},
            "Professional contacts and existing clients (objection possible at any time)",
            purpose="prospecting",
            basis=LawfulBasis.LEGITIMATE_INTERESTS,
            categories=[DataCategory.CONTACT],
        )
        .add_database_table(
            "newsletter_subscribers",
            {"email": "E-mail", "consented_at": "When consent was given"},
            "Newsletter to individuals, after explicit prior consent",
            purpose="prospecting",
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONTACT, DataCategory.CONSENT],
        )
        .add_external_location_link(
            "mailing",
            {"email": "E-mail address"},
            "Campaigns sent through the e-mailing provider",
            purpose="prospecting",
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONTACT],
            recipient="E-mailing provider",
        )
    )
    # Line 43: audience measurement only after consent in the banner; line 97: the banner
    # proves the choice; line 47: the analytics provider.
    cookies = (
        MetadataCollection("tool_cookieconsent")
        .add_database_table(
            "cookie_consents",
            {"visitor": "Browser identifier", "categories": "Categories accepted"},
            "Proof of the choices made in the consent banner",
            purpose="analytics",
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONSENT],
        )
        .add_external_location_link(
            "analytics",
            {"visitor": "Pseudonymous identifier", "pages": "Pages visited"},
            "Audience measurement, only after consent",
            purpose="analytics",
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.TECHNICAL_LOG],
            recipient="Analytics provider",
        )
    )
    return [support, payment, marketing, cookies]


#: Line 93: « des rapports de progression, d'analyse de datas, kpis et ratios peuvent être
#: partagés avec ce client »: the B2B client receives progress and certificates under its
#: own pseudonyms, never the learners' contact details.
B2B_CLIENT = ReportProfile(
    recipient="b2b-client",
    fields=reported("Progress", "Certificate"),
    pseudonym_domain="job-access-b2b-client",
    description="Progress reports, KPIs and ratios for the employer (line 93)",
)

DISCLOSURES = {
    "b2b-client": Disclosure(
        profile=B2B_CLIENT,
        purpose="b2b-reporting",
        basis=LawfulBasis.CONTRACT,
        categories=(DataCategory.LEARNING, DataCategory.ASSESSMENT, DataCategory.CERTIFICATION),
    )
}


def register(as_of: dt.date | None = None, schedule: Schedule | None = None) -> Register:
    """The LMS's Art. 30 register, generated from this module.

    The policy states no period (line 57): without the ``schedule`` the operator builds
    with :func:`make_schedule`, the register lists every table under its gaps.
    """
    return build_register(
        CONTROLLER,
        schedule if schedule is not None else Schedule({}),
        disclosures=DISCLOSURES,
        extra=component_metadata(),
        as_of=as_of,
        null_reasons=NULL_COMPONENTS,
        purposes=PURPOSES,
        # Line 17 lists the data it processes: no funder files; the store's Funding
        # type is not described (a rule for it in ``schedule`` would bring it back).
        record_types=tuple(PURPOSES),
    )


#: Line 63: « une vérification d'identité pourra être requise »: no request is carried
#: out before an identity proof; « dans les délais légaux »: the month of Art. 12(3),
#: over Belgian public holidays.
#:
#: Identity proof, exactly as the text says: the learner writes to info@job-access.be
#: « en précisant [...] l'adresse e-mail liée à votre compte », and a verification « pourra
#: être requise ». The text names no kind of proof, so every proof of identity the library
#: accepts is accepted (``IDENTITY_PROOFS``: the platform's session, a confirmation sent to
#: that address, a document, in person); never a mandate, which proves no identity. The
#: library always requires one before a request runs: stricter than « pourra », never
#: weaker. That the e-mail named in the request is the account's is for the person
#: handling it to check: no field of the request book holds it apart from the requester's
#: address (listed as a gap in docs/policies.md).
RIGHTS = Rights(calendar="BE")


_T = "tests/test_policies.py::"
_C = "tests/test_policy_conformance.py::"
_R = "tests/test_policy_rights.py::"

PROMISES = (
    Promise(
        promise="Controller and privacy contact",
        seed=SEED,
        line=9,
        quote="Job Access solutions SRL, Clos Chanmurly 13, 4000 Liège",
        enforced_by="CONTROLLER (authority: APD/GBA)",
        test=_C + "test_belgian_lms_register_names_controller_hosting_and_client",
    ),
    Promise(
        promise="Hosted in Switzerland under an adequacy decision",
        seed=SEED,
        line=13,
        quote="la Suisse bénéficie d’une décision d’adéquation",
        enforced_by="CONTROLLER.hosting and Transfer(safeguard=ADEQUACY_DECISION)",
        test=_C + "test_belgian_lms_register_names_controller_hosting_and_client",
    ),
    Promise(
        promise="Accounts and learning follow-up rest on the contract",
        seed=SEED,
        line=27,
        quote="exécution du contrat",
        enforced_by="make_schedule: account and follow_up rules, CONTRACT",
        test=_T + "test_belgian_lms_states_a_basis_per_purpose",
    ),
    Promise(
        promise="Data destroyed once the client contract's purpose ends",
        seed=SEED,
        line=57,
        quote="une fois la finalité atteinte, les données sont supprimées, anonymisées",
        enforced_by="CONTRACT_END trigger (KEEP while the contract runs)",
        test=_T + "test_belgian_lms_ends_accounts_with_the_client_contract",
    ),
    Promise(
        promise="Billing under legal obligation",
        seed=SEED,
        line=31,
        quote="sur la base du respect d’obligations légales applicables",
        enforced_by="billing rule: LEGAL_OBLIGATION, minimum",
        test=_T + "test_belgian_lms_bills_under_legal_obligation",
    ),
    Promise(
        promise="Security logs on a proportionate legitimate interest",
        seed=SEED,
        line=35,
        quote="limité à ce qui est nécessaire et proportionné",
        enforced_by="security rule: LEGITIMATE_INTERESTS, from the event",
        test=_T + "test_belgian_lms_security_logs_are_proportionate",
    ),
    Promise(
        promise="Consent withdrawal without retroactive effect",
        seed=SEED,
        line=39,
        quote="révocable sans effet rétroactif",
        enforced_by="consent-proof rule: kept after withdrawal (WITHDRAWN trigger)",
        test=_T + "test_belgian_lms_consent_withdrawal_is_not_retroactive",
    ),
    Promise(
        promise="Progress reports and KPIs shared with the B2B client only",
        seed=SEED,
        line=93,
        quote="rapports de progression, d’analyse de datas, kpis et ratios",
        enforced_by="B2B_CLIENT allow-list (no identity, no contact)",
        test=_C + "test_belgian_lms_client_profile_refuses_contact_details",
    ),
    Promise(
        promise="Right of access",
        seed=SEED,
        line=61,
        quote="Vous disposez des droits d’accès",
        enforced_by="RequestType.ACCESS: export_subject package (manifest checked)",
        test=_R + "test_right_of_access",
    ),
    Promise(
        promise="Right to rectification",
        seed=SEED,
        line=61,
        quote="de rectification, d’effacement",
        enforced_by="RequestType.RECTIFICATION: Store.update, re-encrypted",
        test=_R + "test_right_to_rectification",
    ),
    Promise(
        promise="Right to erasure",
        seed=SEED,
        line=61,
        quote="d’effacement, de limitation du traitement",
        enforced_by="RequestType.ERASURE: Store.erase_subject under the schedule, verified",
        test=_R + "test_right_to_erasure",
    ),
    Promise(
        promise="Right to restriction",
        seed=SEED,
        line=61,
        quote="de limitation du traitement",
        enforced_by="RequestType.RESTRICTION: Store.restrict",
        test=_R + "test_right_to_restriction",
    ),
    Promise(
        promise="Right to object",
        seed=SEED,
        line=61,
        quote="d’opposition, ainsi que du droit à la portabilité",
        enforced_by="RequestType.OBJECTION: processing on legitimate interests restricted",
        test=_R + "test_right_to_object",
    ),
    Promise(
        promise="Right to portability",
        seed=SEED,
        line=61,
        quote="du droit à la portabilité des données",
        enforced_by="RequestType.PORTABILITY: JSON and CSV package",
        test=_R + "test_right_to_portability",
    ),
    Promise(
        promise="Identity verified before a request is handled",
        seed=SEED,
        line=63,
        quote="une vérification d’identité pourra être requise",
        enforced_by="RequestBook.verify_identity; RequestExecutor refuses an unverified request",
        test=_R + "test_identity_is_proven_as_the_policy_says",
    ),
    Promise(
        promise="Answer within the legal time (one month)",
        seed=SEED,
        line=63,
        quote="une réponse vous sera apportée dans les délais légaux",
        enforced_by="RequestBook deadlines (Art. 12(3)), Belgian holidays",
        test=_R + "test_answer_within_one_month",
    ),
    Promise(
        promise="Prospecting: a simple objection at any time, always upheld",
        seed=SEED,
        line=39,
        quote="avec possibilité d’opposition simple à tout moment",
        enforced_by="RequestType.OBJECTION with direct_marketing: no compelling grounds "
        "(Art. 21(3)); RequestBook.is_objected",
        test=_R + "test_objection_to_prospecting_is_absolute",
    ),
)

#: What the policy promises that no code of the library can keep or check: listed in
#: docs/policies.md, for the people running the platform.
GAPS = (
    Gap(
        promise="Technical providers reach only the data they need",
        seed=SEED,
        line=47,
        quote="n’accèdent qu’aux données nécessaires",
        why="what a host, mailer or payment provider reads happens on their side, under "
        "their contracts; the register names them, the library cannot see their access",
    ),
    Gap(
        promise="The request names the e-mail address linked to the account",
        seed=SEED,
        line=63,
        quote="liée à votre compte",
        why="the request book keeps the requester's address, not a separate account "
        "address to compare; the person handling the request checks it",
    ),
    Gap(
        promise="Role-based access, encryption in transit, backups, security tests",
        seed=SEED,
        line=69,
        quote="le chiffrement des données en transit",
        why="the platform's operations (TLS, backups, penetration tests); declared in "
        "CONTROLLER.security_measures for the register, not enforced by the library",
    ),
    Gap(
        promise="Personal data breaches notified to the authority and the users",
        seed=SEED,
        line=85,
        quote="une notification sera effectuée auprès de l’autorité compétente",
        why="breach detection and notification are an organisational procedure",
    ),
    Gap(
        promise="No decision with legal effects based solely on automated processing",
        seed=SEED,
        line=89,
        quote="Aucune décision produisant des effets juridiques",
        why="the library takes no decision about learners; what the LMS does with scores "
        "is outside it",
    ),
    Gap(
        promise="The cookie banner proves and withdraws cookie consent",
        seed=SEED,
        line=97,
        quote="Un bandeau de consentement permet de gérer les catégories de cookies",
        why="the banner is the site's front end; its consent table is declared "
        "(tool_cookieconsent) but has no retention period, listed in the register's gaps",
    ),
)
