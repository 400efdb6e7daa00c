"""The Art. 30 register implied by Job Access solutions' privacy policy (a Belgian B2B LMS).

Source: the policy published by Job Access solutions SRL (Liège) for its site and LMS,
kept as ``seeds/000_1c49f1355f48d45f.txt``. Every fact below is taken from it:

- controller: Job Access solutions SRL, Clos Chanmurly 13, 4000 Liège; contact
  info@job-access.be; no data protection officer is named;
- hosting: Infomaniak Network SA, data centres exclusively in Switzerland, covered by the
  European Commission's adequacy decision;
- purposes and bases: services, accounts and support (contract); billing and tax
  (legal obligation); security, fraud prevention and improvement (legitimate interest);
  B2B prospecting (legitimate interest) and newsletter to individuals (consent);
  analytics and non-essential cookies (consent);
- data: identification and contact, account, LMS data (progress, scores, certificates),
  billing, communications, technical and security logs, cookies;
- recipients: hosting, e-mailing, analytics, payment, video-conferencing and support
  providers; progress reports, KPIs and ratios shared with the B2B client (employer);
- security: role-based access, encryption in transit, backups, security event logging,
  periodic tests, breach notification.

The policy states no retention period ("only as long as strictly necessary"), so the
register lists every table under "Gaps in the declarations": that is what the policy
leaves to be decided, not an omission of this example.

In an LMS the collections come from the providers (``manager.register(CONTROLLER)``);
here they are declared directly. Run ``python -m examples.registers.job_access [DIR]`` to
write the register in Markdown, HTML, CSV and JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

from learnprivacy import (
    Controller,
    DataCategory,
    Hosting,
    LawfulBasis,
    Safeguard,
    SubProcessor,
    Transfer,
)
from learnprivacy.providers import MetadataCollection, Register

SERVICES = "Provision of the services, account management and support"
BILLING = "Billing and tax obligations"
SECURITY = "Security, fraud prevention and service improvement"
PROSPECTING = "B2B prospecting and newsletter"
ANALYTICS = "Analytics and non-essential cookies"

INFOMANIAK = "Infomaniak Network SA"

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
)


def metadata() -> list[MetadataCollection]:
    """What each component of the LMS declares, as the policy describes it."""
    contract = LawfulBasis.CONTRACT
    users = MetadataCollection("core_user").add_database_table(
        "user",
        {
            "username": "Login name",
            "email": "E-mail address",
            "firstname": "Given name",
            "lastname": "Family name",
            "organisation": "Employer or B2B client providing the account",
        },
        "Learner accounts, created by the user or provided by the B2B client",
        purpose=SERVICES,
        basis=contract,
        categories=[DataCategory.IDENTITY, DataCategory.CONTACT, DataCategory.ACCOUNT],
    )
    tracking = (
        MetadataCollection("learnprivacy_store")
        .add_database_table(
            "Progress",
            {"learner_id": "The learner", "course_id": "The module", "score": "Score"},
            "Progress and scores in the e-learning modules (SCORM, Genially)",
            purpose=SERVICES,
            basis=contract,
            categories=[DataCategory.LEARNING, DataCategory.ASSESSMENT],
        )
        .add_database_table(
            "Certificate",
            {"learner_id": "The learner", "verification_code": "Code to verify it"},
            "Certificates of completion",
            purpose=SERVICES,
            basis=contract,
            categories=[DataCategory.CERTIFICATION],
        )
        .add_database_table(
            "Invoice",
            {"billing_name": "Name on the invoice", "billing_address": "Billing address"},
            "Invoices and accounting documents",
            purpose=BILLING,
            basis=LawfulBasis.LEGAL_OBLIGATION,
            categories=[DataCategory.IDENTITY, DataCategory.BILLING],
        )
        .add_database_table(
            "AccessEvent",
            {"learner_id": "The user", "ip": "IP address", "kind": "Event"},
            "Technical and security logs, usage metadata",
            purpose=SECURITY,
            basis=LawfulBasis.LEGITIMATE_INTERESTS,
            categories=[DataCategory.TECHNICAL_LOG],
        )
    )
    support = MetadataCollection("tool_helpdesk").add_database_table(
        "tickets",
        {"user_id": "Who asked", "message": "The request and the answers"},
        "Customer service and technical assistance",
        purpose=SERVICES,
        basis=contract,
        categories=[DataCategory.COMMUNICATION],
    )
    reports = (
        MetadataCollection("report_b2b")
        .add_external_location_link(
            "employer_reports",
            {"learner": "The learner", "progress": "Progress", "kpis": "KPIs and ratios"},
            "Progress reports, data analysis, KPIs and ratios shared with the B2B client",
            purpose=SERVICES,
            basis=contract,
            categories=[DataCategory.LEARNING, DataCategory.EMPLOYMENT],
            recipient="B2B client (employer), joint or separate controller under a DPA",
        )
        .add_external_location_link(
            "videoconference",
            {"name": "Display name", "email": "E-mail address"},
            "Participants of virtual classrooms",
            purpose=SERVICES,
            basis=contract,
            categories=[DataCategory.IDENTITY, DataCategory.CONTACT],
            recipient="Video-conferencing provider",
        )
    )
    marketing = (
        MetadataCollection("tool_marketing")
        .add_database_table(
            "b2b_contacts",
            {"email": "Professional e-mail", "company": "Company", "optout": "Objection"},
            "Professional contacts and existing clients (objection possible at any time)",
            purpose=PROSPECTING,
            basis=LawfulBasis.LEGITIMATE_INTERESTS,
            categories=[DataCategory.CONTACT],
        )
        .add_database_table(
            "newsletter_subscribers",
            {"email": "E-mail", "consented_at": "When consent was given"},
            "Newsletter to individuals, after explicit prior consent",
            purpose=PROSPECTING,
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONTACT, DataCategory.CONSENT],
        )
        .add_external_location_link(
            "mailing",
            {"email": "E-mail address"},
            "Campaigns sent through the e-mailing provider",
            purpose=PROSPECTING,
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONTACT],
            recipient="E-mailing provider",
        )
    )
    cookies = (
        MetadataCollection("tool_cookieconsent")
        .add_database_table(
            "cookie_consents",
            {"visitor": "Browser identifier", "categories": "Categories accepted"},
            "Proof of the choices made in the consent banner",
            purpose=ANALYTICS,
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.CONSENT],
        )
        .add_external_location_link(
            "analytics",
            {"visitor": "Pseudonymous identifier", "pages": "Pages visited"},
            "Audience measurement, only after consent",
            purpose=ANALYTICS,
            basis=LawfulBasis.CONSENT,
            categories=[DataCategory.TECHNICAL_LOG],
            recipient="Analytics provider",
        )
    )
    return [users, tracking, support, reports, marketing, cookies]


NULL_COMPONENTS = {"theme_jobaccess": "The theme stores site-wide settings only."}


def register() -> Register:
    """The register of Job Access solutions' LMS."""
    return Register.build(CONTROLLER, metadata(), null_reasons=NULL_COMPONENTS)


def main(argv: list[str]) -> None:
    """Write the register in the four formats into the directory given (default: here)."""
    out = Path(argv[0]) if argv else Path(__file__).parent
    built = register()
    (out / "job_access.md").write_text(built.to_markdown(), encoding="utf-8")
    (out / "job_access.html").write_text(built.to_html(), encoding="utf-8")
    (out / "job_access.csv").write_text(built.to_csv(), encoding="utf-8", newline="")
    (out / "job_access.json").write_text(built.to_json(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
