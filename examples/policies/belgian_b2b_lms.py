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

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import (
    AccessEvent,
    Certificate,
    Consent,
    Invoice,
    Learner,
    Progress,
)
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger

__all__ = ["make_schedule"]


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
    account = RetentionRule(
        after_contract,
        Trigger.CONTRACT_END,
        on_missing_anchor=Action.KEEP,
        purpose="b2b-training",
        basis=LawfulBasis.CONTRACT,
    )
    # Line 57 « anonymisées » and line 93 « rapports de progression, d'analyse de datas,
    # kpis et ratios » shared with the client: progress outlives the contract anonymised.
    follow_up = RetentionRule(
        after_contract,
        Trigger.CONTRACT_END,
        on_missing_anchor=Action.KEEP,
        action=Action.ANONYMISE,
        purpose="b2b-reporting",
        basis=LawfulBasis.CONTRACT,
    )
    # Line 31: « se conformer aux obligations légales et fiscales »; line 57 « archivées
    # selon le cadre légal applicable »: a legal minimum an erasure request cannot shorten.
    billing = RetentionRule(
        invoices,
        Trigger.FISCAL_YEAR_END,
        minimum=True,
        purpose="billing",
        basis=LawfulBasis.LEGAL_OBLIGATION,
    )
    # Line 35: « intérêt légitime [...] limité à ce qui est nécessaire et proportionné ».
    security = RetentionRule(
        security_logs,
        Trigger.CREATED,
        purpose="security",
        basis=LawfulBasis.LEGITIMATE_INTERESTS,
    )
    # Line 39: consent « révocable sans effet rétroactif »; line 43: withdrawal « sans
    # porter atteinte à la licéité du traitement antérieur ». The consent record is the
    # proof of that past lawfulness: kept for consent_proof after withdrawal, and kept
    # (KEEP) while the consent stands.
    proof = RetentionRule(
        consent_proof,
        Trigger.WITHDRAWN,
        on_missing_anchor=Action.KEEP,
        purpose="consent-proof",
        basis=LawfulBasis.CONSENT,
    )
    return Schedule(
        {
            Learner: account,
            Certificate: account,
            Progress: follow_up,
            Invoice: billing,
            AccessEvent: security,
            Consent: proof,
        },
        name="belgian-b2b-lms",
    )
