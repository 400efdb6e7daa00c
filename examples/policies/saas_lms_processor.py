"""A SaaS LMS provider hosting platforms for its clients (Onlineformapro's published policy).

Source: ``seeds/002_71594df2f26e8c39.txt``, lines 1-61. On the client platforms the
provider is a processor (line 40); its promises:

- at the end of the client contract, the platform data are destroyed, whether or not they
  were handed back to the client (line 46);
- other data are not kept beyond two years, unless a legal (e.g. tax) obligation needs
  longer (line 47) — here invoices, kept ten years from the close of their fiscal year as
  the French Commercial Code requires (art. L123-22);
- newsletter data end with the unsubscription (line 44).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from examples.policies import _rules
from examples.policies._promise import Gap, Promise, Rights, build_register
from learnprivacy import Controller, DataCategory, Hosting, records
from learnprivacy.providers import ClientProcessing, ProcessorRegister, Register
from learnprivacy.retention import RetentionMode, Schedule, Trigger

__all__ = [
    "AT_CONTRACT_END",
    "CONTROLLER",
    "GAPS",
    "INTERNAL_ONLY",
    "INVOICES",
    "NEWSLETTER",
    "PLATFORM_PROCESSING",
    "PROMISES",
    "RIGHTS",
    "SCHEDULE",
    "SEED",
    "processor_register",
    "register",
]

# Line 46: « En fin de contrat les données des clients sur les plates-formes LMS sont
# systématiquement détruites de nos serveurs, qu'il y ait ou non restitution au client. »
# Zero period: due the instant the contract ends. A running contract has no end date yet:
# the clock has not started, so the data are kept (KEEP), not flagged for review.
AT_CONTRACT_END = _rules.after_contract("PT0S", "client-platform")

# Line 47: « les données ne sont pas conservées au-delà de deux ans, sauf si une durée de
# conservation plus longue est nécessaire pour [...] honorer des obligations légales ou
# administratives, fiscales par exemple. » French accounting documents: ten years from the
# close of the fiscal year (Code de commerce, art. L123-22), not negotiable (COMPLIANCE).
INVOICES = _rules.legal_minimum(
    "P10Y", Trigger.FISCAL_YEAR_END, "billing", mode=RetentionMode.COMPLIANCE
)

# Line 44: retention « peut dépendre [...] d'une désinscription d'une lettre
# d'information »; line 47 caps other data at two years: the consent record (the proof
# of the past subscription) goes two years after the unsubscription.
NEWSLETTER = _rules.after_withdrawal("P2Y", "newsletter", where={"purpose": "newsletter"})

#: The provider's retention schedule. Everything on a client platform follows the
#: client contract of its learner.
SCHEDULE = Schedule(
    {
        records.Learner: AT_CONTRACT_END,
        records.Progress: AT_CONTRACT_END,
        records.Certificate: AT_CONTRACT_END,
        records.AccessEvent: AT_CONTRACT_END,
        records.Consent: NEWSLETTER,
        records.Invoice: INVOICES,
    },
    name="saas-lms-processor",
)


#: The seed file this module implements.
SEED = "002_71594df2f26e8c39.txt"

# Line 5: « Onlineformapro SA »; line 59: « rgpd@onlineformapro.com »; line 53: the data are
# stored « chez notre hébergeur la société OVH ». Line 40: on the client platforms it acts
# as a processor (« prestataire technique »): its clients are the controllers there.
CONTROLLER = Controller(
    name="Onlineformapro SA",
    contact="rgpd@onlineformapro.com",
    hosting=Hosting(provider="OVH", country="FR", details="country not stated in the policy"),
    data_subjects=("clients", "prospects", "website visitors", "client platform learners"),
    security_measures=(
        "Password policy requiring complex passwords",
        "Encryption and protection of data on the Internet",
        "Authorisation procedures for employees (need to know)",
        "Secured, air-conditioned hosting rooms with backup power and badge access",
    ),
)


#: Line 27: the data « sont accessibles uniquement aux salariés dûment habilités »: no
#: purpose of the provider shares them outside.
INTERNAL_ONLY = ("client-platform", "billing", "newsletter")


def register(as_of: dt.date | None = None) -> Register:
    """The provider's Art. 30 register, generated from this module."""
    return build_register(CONTROLLER, SCHEDULE, as_of=as_of, internal_only=INTERNAL_ONLY)


#: Line 40: on its clients' platforms the provider runs « les traitements automatisés liés
#: au bon fonctionnement des logiciels », nothing else.
PLATFORM_PROCESSING = (
    "Hosting and operating the client's LMS platform (SaaS)",
    "Automated processing needed for the software to work",
    "Destruction of the platform data at the end of the contract (line 46)",
)


def processor_register(
    clients: Sequence[tuple[str, str]], as_of: dt.date | None = None
) -> ProcessorRegister:
    """The record the provider keeps as a processor (GDPR Art. 30(2)): one entry per
    client platform, given as ``(client name, client contact)``."""
    return ProcessorRegister(
        processor=CONTROLLER,
        clients=[
            ClientProcessing(
                controller=name,
                contact=contact,
                processing=PLATFORM_PROCESSING,
                categories=(
                    DataCategory.IDENTITY,
                    DataCategory.CONTACT,
                    DataCategory.ACCOUNT,
                    DataCategory.LEARNING,
                    DataCategory.ASSESSMENT,
                    DataCategory.CERTIFICATION,
                ),
            )
            for name, contact in clients
        ],
        as_of=as_of,
    )


#: Identity proof: the text says nothing of it (line 59 gives rgpd@onlineformapro.com,
#: line 61 the month to answer). Nothing is invented: every proof of identity the library
#: accepts is accepted (``IDENTITY_PROOFS``), never a mandate, and the library's own rule
#: stands (no request runs before one). Requests about the clients' platforms go to the
#: client, the controller (line 40). Line 61's one month runs over French public holidays.
RIGHTS = Rights(calendar="FR")


_T = "tests/test_policies.py::"
_C = "tests/test_policy_conformance.py::"
_R = "tests/test_policy_rights.py::"
_D = "tests/test_requests_deadlines.py::"

PROMISES = (
    Promise(
        promise="A processor on its clients' platforms",
        seed=SEED,
        line=40,
        quote="agit en tant que prestataire technique",
        enforced_by="processor_register(): the Art. 30(2) record, one entry per client",
        test=_C + "test_saas_keeps_a_processor_register",
    ),
    Promise(
        promise="Platform data destroyed at the end of the client contract",
        seed=SEED,
        line=46,
        quote="En fin de contrat les données des clients sur les plates-formes LMS",
        enforced_by="AT_CONTRACT_END (PT0S, CONTRACT_END, KEEP while it runs)",
        test=_T + "test_saas_destroys_platform_data_at_contract_end",
    ),
    Promise(
        promise="Other data not beyond two years, except legal obligations (tax)",
        seed=SEED,
        line=47,
        quote="les données ne sont pas conservées au-delà de deux ans",
        enforced_by="NEWSLETTER (P2Y); INVOICES (P10Y, COMPLIANCE minimum)",
        test=_T + "test_saas_keeps_invoices_for_the_tax_period",
    ),
    Promise(
        promise="Newsletter data end with the unsubscription",
        seed=SEED,
        line=44,
        quote="d’une désinscription d’une lettre d’information",
        enforced_by="NEWSLETTER (WITHDRAWN trigger)",
        test=_T + "test_saas_newsletter_data_go_2_years_after_unsubscription",
    ),
    Promise(
        promise="Data accessible only to authorised employees: shared with no third party",
        seed=SEED,
        line=27,
        quote="accessibles uniquement aux salariés dûment habilités",
        enforced_by="INTERNAL_ONLY (every purpose): an external recipient is a register gap",
        test=_C + "test_saas_shares_nothing_outside",
    ),
    Promise(
        promise="Hosted by OVH",
        seed=SEED,
        line=53,
        quote="chez notre hébergeur la société OVH",
        enforced_by="CONTROLLER.hosting",
        test=_C + "test_saas_register_names_the_provider_and_its_host",
    ),
    Promise(
        promise="Requests answered within one month of receipt",
        seed=SEED,
        line=61,
        quote="ne saurait dépasser 1 mois à compter de la réception de votre demande",
        enforced_by="learnprivacy.requests deadlines (Art. 12(3))",
        test=_D + "test_first_deadline_is_one_calendar_month",
    ),
    Promise(
        promise="Right to consult (access) one's data",
        seed=SEED,
        line=59,
        quote="droit de consultation, de rectification et de suppression",
        enforced_by="RequestType.ACCESS: export_subject package (manifest checked)",
        test=_R + "test_right_of_access",
    ),
    Promise(
        promise="Right to rectification",
        seed=SEED,
        line=59,
        quote="de rectification et de suppression de leurs données",
        enforced_by="RequestType.RECTIFICATION: Store.update, re-encrypted",
        test=_R + "test_right_to_rectification",
    ),
    Promise(
        promise="Right to erasure",
        seed=SEED,
        line=59,
        quote="de suppression de leurs données",
        enforced_by="RequestType.ERASURE: Store.erase_subject under SCHEDULE, verified",
        test=_R + "test_right_to_erasure",
    ),
    Promise(
        promise="Right to object, answered within the month",
        seed=SEED,
        line=61,
        quote="demande d’accès, de rectification ou d’opposition",
        enforced_by="RequestType.OBJECTION: processing on legitimate interests restricted",
        test=_R + "test_right_to_object",
    ),
    Promise(
        promise="Direct marketing: a way to unsubscribe is offered, and it is final",
        seed=SEED,
        line=33,
        quote="la proposition d’une possibilité de désinscription",
        enforced_by="RequestType.OBJECTION with direct_marketing: no compelling grounds "
        "(Art. 21(3)); RequestBook.is_objected",
        test=_R + "test_objection_to_prospecting_is_absolute",
    ),
)

#: What the policy promises that no code of the library can keep or check: listed in
#: docs/policies.md, for the people running the platform.
GAPS = (
    Gap(
        promise="Navigation on the platforms is followed with Liveperson",
        seed=SEED,
        line=19,
        quote="utilise l’outil Liveperson",
        why="Liveperson is an outside company receiving navigation data of the platforms, "
        "which line 27 and INTERNAL_ONLY say stay inside: the module declares no "
        "component for it, so the register cannot show the contradiction; to be settled "
        "by the provider (declare Liveperson as a sub-processor and recipient)",
    ),
    Gap(
        promise="Google Analytics only on the institutional site",
        seed=SEED,
        line=17,
        quote="uniquement sur son site institutionnel",
        why="which pages load the analytics tag is the website's business",
    ),
    Gap(
        promise="Strong passwords, encryption, authorisation procedures",
        seed=SEED,
        line=51,
        quote="politique de mots de passe suffisamment complexes",
        why="the library encrypts the personal fields it stores; password rules and staff "
        "authorisations belong to the platforms",
    ),
)
