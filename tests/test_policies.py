"""The seed operators' published promises, checked against their schedules in examples/."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import pytest
from examples.policies import (
    belgian_b2b_lms,
    educational_publisher,
    french_engineering_school_moodle,
    saas_lms_processor,
    training_preparation_centre,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import RetentionViolation, ValidationError
from learnprivacy.retention import Action, Override, Schedule
from learnprivacy.testing._retention_strategies import instants
from learnprivacy.testing.retention import assert_schedule_invariants, learners_with_records
from tests import at, sample

UTC = dt.UTC
MICRO = dt.timedelta(microseconds=1)


def end_of_day(year: int, month: int, day: int) -> dt.datetime:
    """Where a clamped month end lands: the last microsecond of the day."""
    return at(year, month, day, 23, 59, 59, 999_999)


def learner(**changes: Any) -> rec.Learner:
    return sample(rec.Learner, **{"created_at": at(2022, 9, 1), **changes})


def progress(**changes: Any) -> rec.Progress:
    return sample(
        rec.Progress, **{"course_id": "RGPD-101", "recorded_at": at(2023, 5, 2), **changes}
    )


def invoice(issued_at: dt.datetime) -> rec.Invoice:
    return sample(
        rec.Invoice,
        billing_address="1 rue de la Paix, Paris",
        amount=Decimal("450.00"),
        issued_at=issued_at,
    )


OPENED = dt.datetime(2023, 1, 10, tzinfo=UTC)


def funding(
    funder: rec.Funder, closed_at: dt.datetime | None, opened_at: dt.datetime = OPENED
) -> rec.Funding:
    return sample(
        rec.Funding,
        funder=funder,
        dossier_reference="DOSSIER-2024-17",
        opened_at=opened_at,
        closed_at=closed_at,
    )


def consent(purpose: str, given_at: dt.datetime, withdrawn_at: dt.datetime | None) -> rec.Consent:
    return sample(
        rec.Consent, id="C1", purpose=purpose, given_at=given_at, withdrawn_at=withdrawn_at
    )


def access(at_: dt.datetime) -> rec.AccessEvent:
    return sample(rec.AccessEvent, at=at_)


def decide(schedule: Schedule, record: object, now: dt.datetime, **kw: Any) -> Any:
    return schedule.evaluate(record, now=now, **kw)


# -- educational publisher (SEJER) -------------------------------------------------------

PUBLISHER = educational_publisher.SCHEDULE


def test_publisher_keeps_personal_data_18_months_after_last_activity() -> None:
    """Line 256: erased 18 months after the last activity, to the instant, month-end clamped."""
    ana = learner(last_activity_at=at(2024, 8, 31, 9, 30))
    due = end_of_day(2026, 2, 28)  # Aug 31 + 18 months clamps to the end of Feb 28
    assert decide(PUBLISHER, ana, due - MICRO).action is Action.KEEP
    erased = decide(PUBLISHER, ana, due)
    assert (erased.action, erased.due_at) == (Action.ERASE, due)
    assert "P18M after last_activity" in erased.reason


def test_publisher_learning_records_follow_the_learner_activity() -> None:
    """Progress and logs go 18 months after the learner's last activity; activity postpones."""
    ana = learner(last_activity_at=at(2024, 1, 15))
    for record in (progress(), access(at(2023, 12, 1))):
        assert decide(PUBLISHER, record, at(2025, 7, 15), subject=ana).action is Action.ERASE
        active = attrs.evolve(ana, last_activity_at=at(2025, 6, 1))
        later = decide(PUBLISHER, record, at(2025, 7, 15), subject=active)
        assert (later.action, later.due_at) == (Action.KEEP, at(2026, 12, 1))


def test_publisher_keeps_invoices_120_months_even_on_request() -> None:
    """Line 257: 120 months from issue; an erasure request is a restriction, Art. 17(3)(b)."""
    bill = invoice(at(2024, 2, 29))
    request = decide(PUBLISHER, bill, at(2030, 1, 1), erasure_requested=True)
    assert (request.action, request.due_at) == (Action.RESTRICT, end_of_day(2034, 2, 28))
    assert request.article == "GDPR Art. 17(3)(b)"
    with pytest.raises(RetentionViolation):
        decide(
            PUBLISHER,
            bill,
            at(2030, 1, 1),
            erasure_requested=True,
            override=Override("learner insists", actor="support"),
        )
    assert decide(PUBLISHER, bill, end_of_day(2034, 2, 28) - MICRO).action is Action.KEEP
    assert decide(PUBLISHER, bill, end_of_day(2034, 2, 28)).action is Action.ERASE


def test_publisher_keeps_opco_files_72_months_after_closing() -> None:
    """Line 258: OPCO files 72 months after closing; open files wait; other funders: REVIEW."""
    closed = funding(rec.Funder.OPCO, at(2024, 6, 30))
    assert decide(PUBLISHER, closed, at(2030, 6, 30) - MICRO).action is Action.KEEP
    assert decide(PUBLISHER, closed, at(2030, 6, 30)).action is Action.ERASE
    request = decide(PUBLISHER, closed, at(2026, 1, 1), erasure_requested=True)
    assert request.action is Action.RESTRICT
    assert decide(PUBLISHER, funding(rec.Funder.OPCO, None), at(2040, 1, 1)).action is Action.KEEP
    cpf = decide(PUBLISHER, funding(rec.Funder.CPF, at(2024, 6, 30)), at(2040, 1, 1))
    assert (cpf.action, cpf.rule) == (Action.REVIEW, None)


def test_publisher_sweep_over_a_population() -> None:
    """A sweep of one learner's records splits them as the policy says."""
    ana = learner(last_activity_at=at(2024, 1, 15))
    records = [
        ana,
        progress(),
        invoice(at(2023, 3, 1)),
        funding(rec.Funder.OPCO, at(2023, 6, 30)),
        funding(rec.Funder.CPF, None),
    ]
    groups = PUBLISHER.plan(records, now=at(2026, 1, 1), learners=[ana]).grouped()
    ids = {action: sorted(r.id for r in group) for action, group in groups.items()}
    assert ids[Action.ERASE] == ["L1", "P1"]
    assert ids[Action.KEEP] == ["F1", "INV-1"]
    assert groups[Action.REVIEW] == [records[4]]


# -- French engineering school on Moodle (JUNIA) -----------------------------------------

SCHOOL = french_engineering_school_moodle


def test_school_keeps_data_5_years_after_last_connection() -> None:
    """Line 153: at most 5 years after the last connection, stored the Moodle way (P5Y)."""
    assert str(SCHOOL.AFTER_LAST_CONNECTION.period) == SCHOOL.MOODLE_RETENTION_PERIOD == "P5Y"
    ana = learner(created_at=at(2019, 9, 2), last_activity_at=at(2021, 3, 15, 17))
    assert decide(SCHOOL.SCHEDULE, ana, at(2026, 3, 15, 17) - MICRO).action is Action.KEEP
    assert decide(SCHOOL.SCHEDULE, ana, at(2026, 3, 15, 17)).action is Action.ERASE
    # Records dated before the last connection count from it (their own date is older).
    earlier = (
        progress(recorded_at=at(2021, 3, 1)),
        access(at(2021, 3, 15)),
        funding(rec.Funder.OPCO, None, opened_at=at(2020, 10, 1)),
    )
    for record in earlier:
        assert decide(SCHOOL.SCHEDULE, record, at(2026, 3, 15, 17), subject=ana).action is (
            Action.ERASE
        )
    never = learner(last_activity_at=None, created_at=at(2020, 2, 29))
    assert decide(SCHOOL.SCHEDULE, never, end_of_day(2025, 2, 28) - MICRO).action is Action.KEEP
    assert decide(SCHOOL.SCHEDULE, never, end_of_day(2025, 2, 28)).action is Action.ERASE


def test_school_rests_on_consent() -> None:
    """Line 121: every rule states consent as its lawful basis."""
    for rules in SCHOOL.SCHEDULE.entries.values():
        assert {rule.basis for rule in rules} == {LawfulBasis.CONSENT}


def test_school_cookie_consent_is_valid_6_months() -> None:
    """Line 189: valid 6 months, to the instant, month ends clamped (leap years too)."""
    given = at(2023, 8, 31, 10)
    choice = SCHOOL.cookie_consent(
        consent_id="C1",
        learner_id="L1",
        purpose="audience-cookies",
        given_at=given,
        proof="banner v3",
    )
    assert choice.expires_at == end_of_day(2024, 2, 29)
    assert not SCHOOL.consent_needs_renewal(choice, end_of_day(2024, 2, 29) - MICRO)
    assert SCHOOL.consent_needs_renewal(choice, end_of_day(2024, 2, 29))
    assert SCHOOL.CONSENT_VALIDITY.add_to(at(2024, 8, 31)) == end_of_day(2025, 2, 28)
    assert SCHOOL.CONSENT_VALIDITY.add_to(at(2023, 7, 15, 10)) == at(2024, 1, 15, 10)


def test_school_cookie_choices_kept_13_months() -> None:
    """Lines 153, 208, 214: cookie consents go 13 months after they were given."""
    for purpose in SCHOOL.COOKIE_PURPOSES:
        choice = consent(purpose, at(2024, 1, 31), None)
        due = end_of_day(2025, 2, 28)  # Jan 31 + 13 months clamps to the end of Feb 28
        assert decide(SCHOOL.SCHEDULE, choice, due - MICRO).action is Action.KEEP
        assert decide(SCHOOL.SCHEDULE, choice, due).action is Action.ERASE
    other = decide(SCHOOL.SCHEDULE, consent("newsletter", at(2024, 1, 31), None), at(2030, 1, 1))
    assert other.action is Action.REVIEW


# -- SaaS LMS processor (Onlineformapro) --------------------------------------------------

SAAS = saas_lms_processor.SCHEDULE


def test_saas_destroys_platform_data_at_contract_end() -> None:
    """Line 46: destroyed the instant the client contract ends, learner and learning data."""
    end = at(2026, 3, 31, 18)
    ana = learner(contract_end_at=end, last_activity_at=at(2026, 3, 31))
    for record in (ana, progress(), access(at(2026, 1, 5))):
        assert decide(SAAS, record, end - MICRO, subject=ana).action is Action.KEEP
        gone = decide(SAAS, record, end, subject=ana)
        assert (gone.action, gone.due_at) == (Action.ERASE, end)


def test_saas_keeps_data_while_the_contract_runs() -> None:
    """No contract end yet: kept (the clock has not started), not flagged for review."""
    ana = learner(contract_end_at=None)
    for now in (at(2026, 1, 1), at(2099, 1, 1)):
        assert decide(SAAS, ana, now).action is Action.KEEP
        assert decide(SAAS, progress(), now, subject=ana).action is Action.KEEP


def test_saas_keeps_invoices_for_the_tax_period() -> None:
    """Line 47: tax obligations win over the 2-year cap: 10 years from the fiscal-year close."""
    bill = invoice(at(2024, 3, 15))
    request = decide(SAAS, bill, at(2028, 1, 1), erasure_requested=True)
    assert (request.action, request.due_at) == (Action.RESTRICT, at(2035, 1, 1))
    assert decide(SAAS, bill, at(2034, 12, 31, 23, 59, 59)).action is Action.KEEP
    assert decide(SAAS, bill, at(2035, 1, 1)).action is Action.ERASE


def test_saas_newsletter_data_go_2_years_after_unsubscription() -> None:
    """Lines 44 and 47: a newsletter consent goes 2 years after withdrawal; others wait."""
    withdrawn = consent("newsletter", at(2023, 1, 1), at(2025, 5, 10))
    assert decide(SAAS, withdrawn, at(2027, 5, 10) - MICRO).action is Action.KEEP
    assert decide(SAAS, withdrawn, at(2027, 5, 10)).action is Action.ERASE
    standing = consent("newsletter", at(2023, 1, 1), None)
    assert decide(SAAS, standing, at(2040, 1, 1)).action is Action.KEEP
    cookies = consent("analytics-cookies", at(2023, 1, 1), None)
    assert decide(SAAS, cookies, at(2040, 1, 1)).action is Action.REVIEW


# -- training-preparation centre (Prépa Job's) -------------------------------------------


def test_centre_needs_its_own_figures() -> None:
    """Line 170: periods depend on the data; none is published, so each must be given."""
    with pytest.raises(TypeError):
        training_preparation_centre.make_schedule()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        training_preparation_centre.make_schedule(
            learner_data="3 ans", statistics="P5Y", security_logs="P1Y"
        )


CENTRE = training_preparation_centre.make_schedule(
    learner_data="P3Y", statistics="P3Y", security_logs="P6M"
)


def test_centre_destroys_personal_data_and_keeps_only_anonymised_statistics() -> None:
    """Line 176: at the end personal data are destroyed; progress survives anonymised only."""
    ana = learner(last_activity_at=at(2023, 6, 1))
    now = at(2026, 6, 1)
    assert decide(CENTRE, ana, now).action is Action.ERASE
    cert = sample(rec.Certificate, course_id="RGPD-101", issued_at=at(2023, 5, 2))
    assert decide(CENTRE, cert, now, subject=ana).action is Action.ERASE
    assert decide(CENTRE, progress(), now, subject=ana).action is Action.ANONYMISE
    assert decide(CENTRE, progress(), now - MICRO, subject=ana).action is Action.KEEP


def test_centre_collects_on_consent_and_keeps_what_the_law_requires() -> None:
    """Line 86: consent for learner data; invoices kept as the law requires, even on request."""
    assert CENTRE.rules_for(rec.Learner)[0].basis is LawfulBasis.CONSENT
    bill = invoice(at(2024, 3, 15))
    request = decide(CENTRE, bill, at(2026, 1, 1), erasure_requested=True)
    assert (request.action, request.due_at) == (Action.RESTRICT, at(2035, 1, 1))


# -- Belgian B2B LMS (Job Access) --------------------------------------------------------

BELGIAN = belgian_b2b_lms.make_schedule(
    after_contract="P3M", invoices="P10Y", security_logs="P1Y", consent_proof="P5Y"
)


def test_belgian_lms_states_a_basis_per_purpose() -> None:
    """Lines 27-43: contract, legal obligation, legitimate interests and consent."""
    bases = {key.__name__: rules[0].basis for key, rules in BELGIAN.entries.items()}  # type: ignore[union-attr]
    assert bases == {
        "Learner": LawfulBasis.CONTRACT,
        "Certificate": LawfulBasis.CONTRACT,
        "Progress": LawfulBasis.CONTRACT,
        "Invoice": LawfulBasis.LEGAL_OBLIGATION,
        "AccessEvent": LawfulBasis.LEGITIMATE_INTERESTS,
        "Consent": LawfulBasis.CONSENT,
    }


def test_belgian_lms_ends_accounts_with_the_client_contract() -> None:
    """Lines 27, 57, 93: the account goes after the contract; progress stays anonymised."""
    ana = learner(contract_end_at=at(2025, 11, 30))
    due = end_of_day(2026, 2, 28)
    assert decide(BELGIAN, ana, due - MICRO).action is Action.KEEP
    assert decide(BELGIAN, ana, due).action is Action.ERASE
    assert decide(BELGIAN, progress(), due, subject=ana).action is Action.ANONYMISE
    running = learner(contract_end_at=None)
    assert decide(BELGIAN, running, at(2040, 1, 1)).action is Action.KEEP


def test_belgian_lms_bills_under_legal_obligation() -> None:
    """Line 31: invoices survive an erasure request inside their legal period."""
    request = decide(BELGIAN, invoice(at(2024, 3, 15)), at(2026, 1, 1), erasure_requested=True)
    assert (request.action, request.due_at) == (Action.RESTRICT, at(2035, 1, 1))


def test_belgian_lms_security_logs_are_proportionate() -> None:
    """Line 35: logs go after their period, and at once on a justified erasure request."""
    log = access(at(2025, 3, 1, 8))
    assert decide(BELGIAN, log, at(2026, 3, 1, 8) - MICRO).action is Action.KEEP
    assert decide(BELGIAN, log, at(2026, 3, 1, 8)).action is Action.ERASE
    assert decide(BELGIAN, log, at(2025, 4, 1), erasure_requested=True).action is Action.ERASE


def test_belgian_lms_consent_withdrawal_is_not_retroactive() -> None:
    """Lines 39, 43: a withdrawn consent still covered the past; its proof is kept 5 years."""
    given, withdrawn = at(2024, 1, 10), at(2025, 2, 1)
    newsletter = consent("newsletter", given, withdrawn)
    assert newsletter.is_active(at(2024, 6, 1))
    assert not newsletter.is_active(withdrawn)
    assert decide(BELGIAN, newsletter, at(2030, 2, 1) - MICRO).action is Action.KEEP
    assert decide(BELGIAN, newsletter, at(2030, 2, 1)).action is Action.ERASE
    standing = consent("newsletter", given, None)
    assert decide(BELGIAN, standing, at(2040, 1, 1)).action is Action.KEEP


# -- every policy satisfies the retention invariants -------------------------------------

ALL_SCHEDULES = {
    "educational_publisher": PUBLISHER,
    "french_engineering_school_moodle": SCHOOL.SCHEDULE,
    "saas_lms_processor": SAAS,
    "training_preparation_centre": CENTRE,
    "belgian_b2b_lms": BELGIAN,
}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(sorted(ALL_SCHEDULES)), learners_with_records(), instants())
def test_every_policy_satisfies_the_invariants(
    name: str, data: tuple[rec.Learner, list[Any]], now: dt.datetime
) -> None:
    """Holds, legal minimums, missing dates, boundaries, order and sweeps, for each policy."""
    learner_, records = data
    assert_schedule_invariants(
        ALL_SCHEDULES[name], [learner_, *records], now=now, learners={learner_.id: learner_}
    )
