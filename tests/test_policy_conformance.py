"""The five policies as complete code: every promise cites its seed line (checked against
the text), is kept by code, and has a test here or in test_policies.py that breaks with it."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from examples.policies import educational_publisher as sejer

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring, Pseudonymiser
from learnprivacy.errors import PolicyError, RetentionViolation
from learnprivacy.export.reports import ReportProfile, build_report
from learnprivacy.retention import Override
from learnprivacy.store import Store
from tests import NOW, sample

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
#: The five policy modules (one a seed policy), named here so that none drops out unseen.
MODULES = (
    "belgian_b2b_lms",
    "educational_publisher",
    "french_engineering_school_moodle",
    "saas_lms_processor",
    "training_preparation_centre",
)
UTC = dt.UTC


def _module(name: str) -> Any:
    return importlib.import_module(f"examples.policies.{name}")


def _promises() -> list[tuple[str, Any]]:
    return [(name, p) for name in MODULES for p in getattr(_module(name), "PROMISES", ())]


@pytest.mark.parametrize(("module", "promise"), _promises(), ids=lambda v: str(v)[:40])
def test_every_promise_quotes_its_seed_line(module: str, promise: Any) -> None:
    """The quote of each promise is on the cited line of the cited seed file."""
    if not SEEDS.is_dir():
        pytest.skip("the seed policies (../shared/seeds) are not beside this checkout")
    lines = (SEEDS / promise.seed).read_text(encoding="utf-8").splitlines()
    assert 1 <= promise.line <= len(lines), (module, promise.line)
    assert promise.quote in lines[promise.line - 1], (module, promise.promise)
    assert promise.seed == _module(module).SEED


@pytest.mark.parametrize(("module", "promise"), _promises(), ids=lambda v: str(v)[:40])
def test_every_promise_names_an_existing_test(module: str, promise: Any) -> None:
    """Each promise names a test function that exists (so deleting it fails here)."""
    path, _, name = promise.test.partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    assert f"def {name}(" in source, (module, promise.test)


def _gaps() -> list[tuple[str, Any]]:
    return [(name, g) for name in MODULES for g in _module(name).GAPS]


@pytest.mark.parametrize(("module", "gap"), _gaps(), ids=lambda v: str(v)[:40])
def test_every_gap_quotes_its_seed_line(module: str, gap: Any) -> None:
    """A promise listed as beyond code is quoted from its seed line, like a kept one,
    and is not also claimed as kept (no line and quote both in PROMISES and GAPS)."""
    assert gap.seed == _module(module).SEED
    if not SEEDS.is_dir():
        pytest.skip("the seed policies (../shared/seeds) are not beside this checkout")
    lines = (SEEDS / gap.seed).read_text(encoding="utf-8").splitlines()
    assert gap.quote in lines[gap.line - 1], (module, gap.promise)
    assert gap.why.strip()
    kept = {(p.line, p.quote) for p in _module(module).PROMISES}
    assert (gap.line, gap.quote) not in kept


def test_every_module_declares_promises_and_a_register() -> None:
    """Each seed module has its seed, promises, a controller and a generated register."""
    for name in MODULES:
        module = _module(name)
        assert module.PROMISES, name
        assert (SEEDS / module.SEED).name == module.SEED
        register = module.register(as_of=dt.date(2026, 6, 15))
        assert register.activities, name
        assert register.controller is module.CONTROLLER


def test_docs_policies_tables_are_generated_from_the_promises() -> None:
    """docs/policies.md is what `python -m examples.policies` writes (no drift)."""
    from examples.policies.__main__ import render

    assert (ROOT / "docs" / "policies.md").read_text(encoding="utf-8") == render()


# -- educational publisher (SEJER) -------------------------------------------------------


def _learner(**changes: Any) -> rec.Learner:
    values = {"family_name": "Martin", "created_at": dt.datetime(2024, 1, 10, tzinfo=UTC)}
    return sample(rec.Learner, **{**values, **changes})


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


def test_publisher_counts_activity_from_records(store: Store) -> None:
    """Line 15 counts from the last activity: progress of May 2026 keeps a 2024 account
    whose own last activity was never set."""
    progress = sample(
        rec.Progress,
        course_id="FLE-B2",
        status=rec.ProgressStatus.IN_PROGRESS,
        recorded_at=dt.datetime(2026, 5, 20, tzinfo=UTC),
    )
    store.add_all([_learner(), progress])
    report = store.sweep(sejer.SCHEDULE, now=NOW)
    assert report.erased == 0
    assert store.get(rec.Learner, "L1") is not None
    assert store.get(rec.Progress, "P1") is not None


def test_publisher_invoice_survives_erase_records_and_override(store: Store) -> None:
    """An invoice 35 months into its 120: erase_records restricts it, and no override can
    shorten the COMPLIANCE minimum (breaks if INVOICES loses minimum or COMPLIANCE)."""
    invoice = sample(
        rec.Invoice,
        billing_name="Ana Martin",
        billing_address="1 rue de Rennes, Paris",
        amount=Decimal("300.00"),
        issued_at=dt.datetime(2023, 7, 15, tzinfo=UTC),
    )
    store.add_all([_learner(), invoice])
    assert store.erase_records([invoice], now=NOW, schedule=sejer.SCHEDULE) == 0
    assert store.get(rec.Invoice, "INV-1", include_restricted=True) == invoice
    with pytest.raises(RetentionViolation):
        store.erase_records(
            [invoice],
            now=NOW,
            schedule=sejer.SCHEDULE,
            override=Override(reason="asked by the learner", actor="support"),
        )
    assert store.get(rec.Invoice, "INV-1", include_restricted=True) == invoice


def test_publisher_refuses_a_funder_profile_with_scores_and_contact() -> None:
    """A "CPF funder" profile with scores, e-mail and surname was accepted; the policy's
    allow-list refuses it, naming the extra fields, and accepts the administrative one."""
    wider = ReportProfile(
        recipient="cpf-funder",
        fields={
            "Funding": ("funder", "dossier_reference"),
            "Progress": ("course_id", "score"),
            "Learner": ("email", "family_name"),
        },
        pseudonym_domain="sejer-cpf-funder",
    )
    with pytest.raises(PolicyError) as caught:
        wider.check_within(sejer.CPF_FUNDER)
    message = str(caught.value)
    assert "Progress.score.scaled" in message
    assert "Learner.email" in message
    assert "Learner.family_name" in message
    narrower = ReportProfile(
        recipient="cpf-funder",
        fields={"Funding": ("funder", "dossier_reference")},
        pseudonym_domain="sejer-cpf-funder",
    )
    assert narrower.check_within(sejer.CPF_FUNDER) is narrower
    assert not {"Progress", "Learner"} & set(sejer.CPF_FUNDER.fields)


def test_publisher_employer_report_carries_no_identity() -> None:
    """The employer's report holds the learning path under the employer's own pseudonym:
    no learner id, no name, no e-mail."""
    learner = _learner(last_activity_at=NOW, organisation_id="ACME")
    records = [
        learner,
        sample(
            rec.Progress,
            course_id="FLE-B2",
            recorded_at=NOW,
            score=rec.Score(raw=15, min=0, max=20),
        ),
        sample(
            rec.Certificate,
            id="C1",
            course_id="FLE-B2",
            issued_at=NOW,
            verification_code="VERIFY-1",
        ),
        sample(
            rec.Funding, funder=rec.Funder.EMPLOYER, dossier_reference="PLAN-2026-1", opened_at=NOW
        ),
    ]
    pseudonyms = Pseudonymiser(bytes(range(32)), domain=sejer.EMPLOYER.pseudonym_domain)
    report = build_report(sejer.EMPLOYER, records, pseudonyms=pseudonyms)
    text = repr(report.to_records())
    for value in ("L1", "Ana", "Martin", "ana@example.org", "VERIFY-1"):
        assert value not in text
    assert "FLE-B2" in text


def test_publisher_register_lists_recipients_and_hosting() -> None:
    """The generated register names OVH, the two recipients and no others (line 11: online
    payments go to no third party), and lists scores among the categories."""
    register = sejer.register(as_of=dt.date(2026, 6, 15))
    recipients = {r for a in register.activities for r in a.recipients}
    assert recipients == {"cpf-funder", "employer"}
    assert register.controller.hosting is not None
    assert register.controller.hosting.provider == "OVH"
    categories = {c.value for a in register.activities for c in a.categories}
    assert "assessment" in categories
    assert register.gaps == ()


def test_publisher_billing_is_shared_with_no_third_party() -> None:
    """Line 11: online payments transmit nothing to third parties. The register says
    "internal only" for billing, and lists no gap; declaring an external recipient of
    billing data (a collection agency) breaks the promise and the register says so in
    its gaps; an internal one (the accounting department) does not."""
    from examples.policies._promise import Disclosure

    from learnprivacy import DataCategory, LawfulBasis

    register = sejer.register()
    billing = next(a for a in register.activities if a.purpose == "billing")
    assert billing.internal_only
    assert billing.recipients == ()
    assert "- Recipients: internal only" in register.to_markdown()
    assert register.gaps == ()

    def billed_to(*, internal: bool) -> Any:
        profile = ReportProfile(
            recipient="collections",
            fields={"Invoice": ("amount", "issued_at")},
            pseudonym_domain="sejer-collections",
        )
        disclosure = Disclosure(
            profile=profile,
            purpose="billing",
            basis=LawfulBasis.LEGAL_OBLIGATION,
            categories=(DataCategory.BILLING,),
            internal=internal,
        )
        return sejer.register(disclosures={**sejer.DISCLOSURES, "collections": disclosure})

    assert billed_to(internal=False).gaps == (
        "billing: promised to be shared internally only, but collections is an external recipient",
    )
    assert billed_to(internal=True).gaps == ()


def test_publisher_newsletter_withdrawal_is_effective_at_receipt() -> None:
    """A consent withdrawn on receipt (March 2) no longer covers March 3, whenever the
    request is executed."""
    received = dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    consent = sample(
        rec.Consent, id="N1", given_at=dt.datetime(2025, 1, 1, tzinfo=UTC), withdrawn_at=received
    )
    assert not consent.is_active(dt.datetime(2026, 3, 3, tzinfo=UTC))
    assert consent.is_active(received - dt.timedelta(seconds=1))
    assert attrs.evolve(consent, withdrawn_at=None).is_active(dt.datetime(2026, 3, 3, tzinfo=UTC))


# -- Belgian B2B LMS (Job Access) --------------------------------------------------------


def test_belgian_lms_register_names_controller_hosting_and_client() -> None:
    """Line 9's controller, line 13's Swiss hosting under adequacy, the Belgian authority,
    line 93's B2B client as the only recipient of reports, and line 47's technical
    providers as the recipients of the other purposes."""
    from examples.policies import belgian_b2b_lms as lms

    from learnprivacy import Safeguard

    register = lms.register()
    assert register.controller.name == "Job Access solutions SRL"
    assert register.controller.authority.short_name == "APD/GBA"
    assert register.controller.hosting is not None
    assert register.controller.hosting.country == "CH"
    assert {t.safeguard for t in register.controller.transfers} == {Safeguard.ADEQUACY_DECISION}
    assert not [g for g in register.gaps if "without a declared transfer" in g]
    recipients = {a.purpose: set(a.recipients) for a in register.activities}
    assert recipients["b2b-reporting"] == {"b2b-client"}
    assert {r for rs in recipients.values() for r in rs} == {
        "b2b-client",
        "Support provider",
        "Video-conferencing provider",
        "Payment provider",
        "E-mailing provider",
        "Analytics provider",
    }


def test_belgian_lms_register_describes_only_the_types_it_keeps() -> None:
    """Line 17 lists the data processed: no funder files. The store's Funding type is
    not in the register (no entry, no gap); the types it keeps are, with their gaps
    (no period without the operator's schedule); a rule for Funding brings it back."""
    from examples.policies import belgian_b2b_lms as lms

    from learnprivacy.retention import RetentionRule, Schedule, Trigger

    register = lms.register()
    kept = {e.item.name for e in register.entries if e.component == "learnprivacy_store"}
    assert kept == set(lms.PURPOSES)
    assert not [g for g in register.gaps if "Funding" in g or "funding" in g]
    assert "learnprivacy_store/Progress: no retention period declared" in register.gaps
    ruled = lms.register(schedule=Schedule({rec.Funding: RetentionRule("P6Y", Trigger.CLOSED)}))
    assert "Funding" in {e.item.name for e in ruled.entries}


def test_belgian_lms_client_profile_refuses_contact_details() -> None:
    """The B2B client gets progress and KPIs, never the learners' e-mail or names."""
    from examples.policies import belgian_b2b_lms as lms

    wider = ReportProfile(
        recipient="b2b-client",
        fields={"Progress": ("course_id", "score"), "Learner": ("email",)},
        pseudonym_domain="job-access-b2b-client",
    )
    with pytest.raises(PolicyError, match=r"Learner\.email"):
        wider.check_within(lms.B2B_CLIENT)


# -- French engineering school on Moodle (JUNIA) -----------------------------------------


def test_school_register_names_the_dpo_and_funders() -> None:
    """Requests go to the DPO address of line 70; funders receive attendance and funding
    documents (line 25), not scores."""
    from examples.policies import french_engineering_school_moodle as school

    register = school.register()
    assert register.controller.reply_to == "junia.dpo@junia.com"
    assert {r for a in register.activities for r in a.recipients} == {"funders"}
    scores = ReportProfile(
        recipient="funders",
        fields={"Progress": ("score",)},
        pseudonym_domain="junia-funders",
    )
    with pytest.raises(PolicyError):
        scores.check_within(school.FUNDERS)


# -- SaaS LMS processor (Onlineformapro) --------------------------------------------------


def test_saas_shares_nothing_outside() -> None:
    """Line 27: the data are accessible only to authorised employees. Every purpose of
    the provider is declared internal only, and the register shows it with no recipient
    gap; a provider component sending newsletter addresses to an outside mailer is a
    gap."""
    from examples.policies import saas_lms_processor as saas
    from examples.policies._promise import build_register

    from learnprivacy.testing._mailer import Mailer

    register = saas.register()
    internal = {a.purpose for a in register.activities if a.internal_only}
    assert internal == set(saas.INTERNAL_ONLY)
    # Funding files, which the schedule does not cover, are not said internal: a gap.
    assert [g.partition(":")[0] for g in register.gaps if "recipient" in g] == [
        "Training funding files (employer, OPCO)"
    ]
    mailer = Mailer(
        internal=False, purpose="newsletter", basis="gdpr_art_6_1_a", recipient="Mailer SAS"
    ).metadata()
    leaking = build_register(
        saas.CONTROLLER, saas.SCHEDULE, extra=[mailer], internal_only=saas.INTERNAL_ONLY
    )
    assert set(leaking.gaps) - set(register.gaps) == {
        "newsletter: promised to be shared internally only, but Mailer SAS is an "
        "external recipient",
    }


def test_saas_register_names_the_provider_and_its_host() -> None:
    """The register names Onlineformapro, its OVH hosting, its security measures, and the
    platform data under the client contract rule."""
    from examples.policies import saas_lms_processor as saas

    register = saas.register()
    assert register.controller.contact == "rgpd@onlineformapro.com"
    assert register.controller.hosting is not None
    assert register.controller.hosting.provider == "OVH"
    assert register.controller.security_measures
    purposes = {a.purpose for a in register.activities}
    assert "client-platform" in purposes


# -- training-preparation centre (Prépa Job's) -------------------------------------------


def test_centre_register_names_the_person_in_charge() -> None:
    """The register names the person in charge of compliance (lines 130-138)."""
    from examples.policies import training_preparation_centre as centre

    register = centre.register()
    assert register.controller.reply_to.endswith("<jmalherbe@prepajobs.fr>")
    assert register.controller.address.startswith("78 quater Boulevard Thiers")


def test_centre_shares_nothing_outside() -> None:
    """Line 98: nothing is shared with anyone outside the centre. Every purpose of its
    register (with or without the periods it chose) is internal only, with no recipient
    gap; a component sending learners' e-mail addresses to an outside mailer, for any
    purpose, is listed as a gap naming the recipient."""
    from examples.policies import training_preparation_centre as centre

    from learnprivacy.testing._mailer import Mailer

    chosen = centre.make_schedule(learner_data="P3Y", statistics="P1Y", security_logs="P6M")
    for register in (centre.register(), centre.register(schedule=chosen)):
        assert register.activities
        assert all(a.internal_only for a in register.activities)
        assert [g for g in register.gaps if "recipient" in g] == []
    for purpose in ("training", "billing"):
        mailer = Mailer(
            internal=False, purpose=purpose, basis="gdpr_art_6_1_a", recipient="Mailer SAS"
        ).metadata()
        leaking = centre.register(schedule=chosen, extra=[mailer])
        assert (
            f"{purpose}: promised to be shared internally only, but Mailer SAS is an "
            "external recipient"
        ) in leaking.gaps


def test_centre_statistics_are_anonymous(tmp_path: Path) -> None:
    """Line 116: past the period only anonymised statistics remain: the progress rows are
    anonymised by the sweep, pass the re-identification check, and a course taken by
    fewer than STATISTICS_K people is not published."""
    from examples.policies import training_preparation_centre as centre

    from learnprivacy.export.reports import k_anonymous_aggregate
    from learnprivacy.testing import assert_not_reidentifiable

    schedule = centre.make_schedule(learner_data="P3Y", statistics="P1Y", security_logs="P6M")
    records: list[Any] = []
    for n in range(8):
        learner = _learner(
            id=f"L{n}",
            email=f"l{n}@example.org",
            last_activity_at=dt.datetime(2024, 2, 1, tzinfo=UTC),
        )
        course = "CACES" if n < 6 else "RARE"
        records += [
            learner,
            sample(
                rec.Progress,
                id=f"L{n}-P",
                learner_id=f"L{n}",
                course_id=course,
                recorded_at=dt.datetime(2024, 1, 3 + n, 10, n, tzinfo=UTC),
            ),
        ]
    with Store(
        f"sqlite:///{tmp_path / 'centre.db'}", keyring=Keyring.generate(), clock=lambda: NOW
    ) as store:
        store.add_all(records)
        assert store.sweep(schedule, now=NOW).anonymised == 8
        rows = list(store.anonymised(rec.Progress))
    common = [r for r in rows if r["course_id"] == "CACES"]
    assert_not_reidentifiable(common, records, record_type=rec.Progress, k=centre.STATISTICS_K)
    stats = k_anonymous_aggregate(rows, by=["course_id"], k=centre.STATISTICS_K)
    assert [(r["course_id"], r["learners"]) for r in stats.rows] == [("CACES", 6)]


def test_saas_keeps_a_processor_register() -> None:
    """Line 40: a processor on its clients' platforms keeps the Art. 30(2) record: its
    name and contact, per client the processing and data, its security measures; without
    a client or a measure the record says so in its gaps."""
    from examples.policies import saas_lms_processor as saas

    from learnprivacy.providers import ProcessorRegister

    record = saas.processor_register(
        [("Lycée Exemple", "dpo@lycee.example"), ("Centre Exemple", "rgpd@centre.example")],
        as_of=dt.date(2026, 6, 15),
    )
    data = record.to_dict()
    assert data["processor"]["name"] == "Onlineformapro SA"
    assert [c["controller"] for c in data["clients"]] == ["Lycée Exemple", "Centre Exemple"]
    assert "assessment" in data["clients"][0]["categories"]
    assert data["security_measures"]
    assert record.gaps == ()
    bare = ProcessorRegister(
        processor=attrs.evolve(saas.CONTROLLER, security_measures=()), clients=()
    )
    assert set(bare.gaps) == {
        "no client controller declared",
        "no security measure declared (Art. 30(2)(d), 32(1))",
    }


def test_register_sheets_carry_the_cnil_fields() -> None:
    """Each activity of a generated register carries the CNIL sheet's fields: categories
    of persons, transfers with safeguards, security measures, creation and update dates;
    and the progress activity lists scores (assessment) among its data."""
    from examples.policies import belgian_b2b_lms as lms

    schedule = lms.make_schedule(
        after_contract="P1Y", invoices="P10Y", security_logs="P1Y", consent_proof="P5Y"
    )
    built = lms.register(as_of=dt.date(2026, 6, 15), schedule=schedule)
    activity = next(a for a in built.activities if a.purpose == "b2b-reporting")
    sheet = activity.to_dict()
    assert "assessment" in sheet["categories"]
    assert sheet["data_subjects"] == list(lms.CONTROLLER.data_subjects)
    assert sheet["transfers"][0]["safeguard"] == "adequacy_decision"
    assert sheet["security_measures"]
    assert sheet["updated_on"] == "2026-06-15"


def test_belgian_register_is_generated_not_hand_written() -> None:
    """The Job Access register example declared ``ip_address`` for the access log while
    the record field is ``ip``, and "Retention: not declared" beside a schedule: it is
    now generated from the policy module, whose components never declare the store's
    tables themselves (those come from the record classes)."""
    from examples.policies import belgian_b2b_lms as lms

    assert not [c for c in lms.component_metadata() if c.component == "learnprivacy_store"]
    schedule = lms.make_schedule(
        after_contract="P3M", invoices="P10Y", security_logs="P1Y", consent_proof="P5Y"
    )
    built = lms.register(schedule=schedule)
    progress = next(e for e in built.entries if e.item.name == "Progress")
    assert progress.item.purpose == "b2b-reporting"
    assert progress.retention_text == "P3M after contract_end"
    assert "score" in progress.item.fields
