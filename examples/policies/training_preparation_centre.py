"""A training-preparation centre (Prépa Job's published policy).

Source: ``seeds/003_54738ebdac205dc4.txt``, lines 1-182. The policy promises a shape, not
figures:

- data are kept « pendant différentes périodes de temps, en fonction de leur nature et de
  leur utilité » (line 110): one period per kind of data, which the centre must choose;
- once a period ends the personal data are destroyed, and only de-personalised,
  anonymised statistics may be kept longer (line 116);
- collection rests on consent, unless the law permits or requires otherwise (line 26), and
  a new purpose needs a new consent (line 42).

Since no figure is published, :func:`make_schedule` takes each period as a required
argument instead of inventing one. Invoices are the exception: French law fixes them (ten
years from the close of the fiscal year, Code de commerce art. L123-22), which line 26's
« requis par la loi » covers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from examples.policies import _rules
from examples.policies._promise import Gap, Promise, Rights, build_register
from learnprivacy import Controller
from learnprivacy.basis import LawfulBasis
from learnprivacy.providers import MetadataCollection, Register
from learnprivacy.records import AccessEvent, Certificate, Consent, Invoice, Learner, Progress
from learnprivacy.retention import (
    Action,
    Period,
    RetentionMode,
    Schedule,
    Trigger,
)

__all__ = [
    "CONTROLLER",
    "GAPS",
    "INVOICES",
    "PROMISES",
    "RIGHTS",
    "SEED",
    "STATISTICS_K",
    "make_schedule",
    "register",
]

# Line 26 (« à moins que cela ne soit permis ou requis par la loi ») and the French
# Commercial Code: a legal minimum nobody can shorten.
INVOICES = _rules.legal_minimum(
    "P10Y", Trigger.FISCAL_YEAR_END, "billing", mode=RetentionMode.COMPLIANCE
)


def make_schedule(
    *,
    learner_data: Period | str,
    statistics: Period | str,
    security_logs: Period | str,
) -> Schedule:
    """The centre's schedule, with the periods it chooses for each kind of data (line 110).

    ``learner_data``: accounts, certificates and consents, counted from the learner's last
    activity. ``statistics``: how long progress records stay personal before only their
    anonymised form remains (line 116). ``security_logs``: access logs, from the event.
    """
    # Line 116: « Une fois la période de conservation expirée, les renseignements
    # personnels sont détruits. » Line 26: collected on the basis of consent.
    destroyed = _rules.after_last_activity(learner_data, "training", LawfulBasis.CONSENT)
    # Line 116: « Seuls les statistiques ou rapports contenant des données dépersonnalisées
    # et anonymisées pourront être conservés pour des périodes de temps prolongées. »
    # Line 30: « nous anonymiserons, pseudonymiserons et/ou agrégerons ces derniers ».
    anonymised = _rules.after_last_activity(
        statistics, "statistics", LawfulBasis.CONSENT, action=Action.ANONYMISE
    )
    logs = _rules.logged(security_logs, "security")
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


#: The seed file this module implements.
SEED = "003_54738ebdac205dc4.txt"

# Lines 126-138: the person in charge of compliance, « Malherbe Julie », Prépa Job's,
# 78 quater Boulevard Thiers, 88200 Remiremont, « jmalherbe@prepajobs.fr ».
CONTROLLER = Controller(
    name="Prépa Job's",
    address="78 quater Boulevard Thiers, 88200 Remiremont, France",
    contact="jmalherbe@prepajobs.fr",
    dpo="Julie Malherbe <jmalherbe@prepajobs.fr>",
    data_subjects=("learners", "website visitors", "newsletter recipients"),
)

#: The smallest group published in the anonymised statistics of line 116.
STATISTICS_K = 5


def register(
    as_of: dt.date | None = None,
    schedule: Schedule | None = None,
    extra: Iterable[MetadataCollection] = (),
) -> Register:
    """The centre's Art. 30 register, generated from this module (with the periods the
    centre chose: ``make_schedule(...)``; without them the register lists the gaps).

    Line 98: « Nous ne partageons pas vos renseignements personnels avec des entreprises,
    des organisations, ni des personnes extérieures à Prépa job's »: every purpose of the
    register is shared internally only, so a recipient outside the centre declared for
    any of them (``extra``: the centre's other components) is listed as a gap."""
    chosen = schedule if schedule is not None else Schedule({Invoice: INVOICES})
    components = tuple(extra)
    draft = build_register(CONTROLLER, chosen, as_of=as_of, extra=components)
    every_purpose = sorted({activity.purpose for activity in draft.activities})
    return build_register(
        CONTROLLER, chosen, as_of=as_of, extra=components, internal_only=every_purpose
    )


#: Line 90: « il se peut que nous ayons besoin de vérifier votre identité »: no request
#: is carried out before an identity proof; « en temps opportun »: within the month of
#: Art. 12(3), over French public holidays.
#:
#: Identity proof, exactly as the text says: « il se peut » names no kind of proof, so
#: every proof of identity the library accepts is accepted (``IDENTITY_PROOFS``), never a
#: mandate; the library always asks for one (stricter than « il se peut », never weaker).
#: Line 38 lets an « représentant autorisé » give consent; a request made by one goes
#: through the library's representative rule (a mandate sighted).
RIGHTS = Rights(calendar="FR")


_T = "tests/test_policies.py::"
_C = "tests/test_policy_conformance.py::"
_R = "tests/test_policy_rights.py::"

PROMISES = (
    Promise(
        promise="Collection on consent, unless the law permits or requires otherwise",
        seed=SEED,
        line=26,
        quote="cela ne soit permis ou requis par la loi",
        enforced_by="make_schedule: CONSENT bases; INVOICES under LEGAL_OBLIGATION",
        test=_T + "test_centre_collects_on_consent_and_keeps_what_the_law_requires",
    ),
    Promise(
        promise="One period per kind of data, chosen by the centre",
        seed=SEED,
        line=110,
        quote="leur nature et de leur utilité",
        enforced_by="make_schedule() takes each period as a required argument",
        test=_T + "test_centre_needs_its_own_figures",
    ),
    Promise(
        promise="Destroyed at the end of the period; only anonymised statistics remain",
        seed=SEED,
        line=116,
        quote="les statistiques ou rapports contenant des données dépersonnalisées",
        enforced_by="progress ANONYMISE; k-anonymous aggregates (k = STATISTICS_K)",
        test=_C + "test_centre_statistics_are_anonymous",
    ),
    Promise(
        promise="The person in charge of compliance answers questions and complaints",
        seed=SEED,
        line=138,
        quote="jmalherbe@prepajobs.fr",
        enforced_by="CONTROLLER (contact, dpo)",
        test=_C + "test_centre_register_names_the_person_in_charge",
    ),
    Promise(
        promise="Right to ask for access to one's data",
        seed=SEED,
        line=88,
        quote="Vous avez le droit de demander accès à vos renseignements personnels",
        enforced_by="RequestType.ACCESS: export_subject package (manifest checked)",
        test=_R + "test_right_of_access",
    ),
    Promise(
        promise="Right to have inaccurate data corrected",
        seed=SEED,
        line=88,
        quote="demander une correction si ces derniers sont inexacts",
        enforced_by="RequestType.RECTIFICATION: Store.update, re-encrypted",
        test=_R + "test_right_to_rectification",
    ),
    Promise(
        promise="Identity verified before access",
        seed=SEED,
        line=90,
        quote="il se peut que nous ayons besoin de vérifier votre identité",
        enforced_by="RequestBook.verify_identity; RequestExecutor refuses an unverified request",
        test=_R + "test_identity_is_proven_as_the_policy_says",
    ),
    Promise(
        promise="Access given in good time (within one month)",
        seed=SEED,
        line=90,
        quote="nous vous fournirons un accès en temps opportun",
        enforced_by="RequestBook deadlines (Art. 12(3)), French holidays",
        test=_R + "test_answer_within_one_month",
    ),
    Promise(
        promise="An access refused (another person's data, a legal restriction) is "
        "answered with the reason",
        seed=SEED,
        line=92,
        quote="nous vous aviserons de la raison",
        enforced_by="RequestBook.refuse: reason required (ValidationError), "
        "RefusalGrounds.RIGHTS_OF_OTHERS (Art. 15(4)) and LEGAL_RESTRICTION (Art. 23(1)); "
        "render_letter states grounds, article and reason",
        test=_R + "test_refusal_states_its_reasons",
    ),
    Promise(
        promise="Personal data shared with no company, organisation or person outside the centre",
        seed=SEED,
        line=98,
        quote="personnes extérieures à Prépa job’s",
        enforced_by="register(): every purpose internal only; an external recipient "
        "declared for any of them is a register gap",
        test=_C + "test_centre_shares_nothing_outside",
    ),
)

#: What the policy promises that no code of the library can keep or check: listed in
#: docs/policies.md, for the people running the platform.
GAPS = (
    Gap(
        promise="A new purpose needs a new consent",
        seed=SEED,
        line=42,
        quote="demanderons à nouveau le consentement",
        why="a new purpose is a decision of the centre; the schedule names each purpose "
        "and its basis, and consent records name their purpose, but nothing can tell "
        "that a processing outside the library started",
    ),
    Gap(
        promise="Security to industry standards",
        seed=SEED,
        line=82,
        quote="suivant les normes et standards de l’industrie",
        why="an organisational commitment; the library's own measures are field "
        "encryption, keyed references and the tamper-evident audit log",
    ),
    Gap(
        promise="Data may be stored outside the learner's country",
        seed=SEED,
        line=114,
        quote="peuvent être conservés à l’extérieur du pays",
        why="the policy names no host or country: CONTROLLER declares no hosting and no "
        "transfer, and the register says so",
    ),
    Gap(
        promise="No decrease of rights without explicit consent",
        seed=SEED,
        line=122,
        quote="sans votre consentement explicite",
        why="changes to the policy text are an editorial procedure",
    ),
    Gap(
        promise="Cookies only after prior consent, for statistics only",
        seed=SEED,
        line=170,
        quote="soumis au consentement préalable de l’utilisateur",
        why="cookies are set by the website; this module declares no cookie component",
    ),
    Gap(
        promise="Cookie data not handed to third parties, yet Google Analytics is used",
        seed=SEED,
        line=176,
        quote="L’outil Google Analytics que nous utilisons",
        why="Google receives the browsing data (line 174 says the data are not given to "
        "third parties; line 98 says nothing is shared outside): the module declares no "
        "analytics component, so the register cannot show it; declared with "
        "register(extra=...), Google appears as an external recipient, a gap",
    ),
)
