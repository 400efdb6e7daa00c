"""The public API contract, as DESIGN.md writes it, executed end to end.

Each test follows one block of the contract with the very spellings it uses (names,
keyword arguments, defaults), so that a rename or a changed default fails here before it
reaches a user's code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

import learnprivacy as lp
from learnprivacy import records as rec
from learnprivacy.crypto import FieldCipher, Keyring, Pseudonymiser
from learnprivacy.records._base import subject_of
from learnprivacy.retention import Action, Hold, Period, RetentionRule, Schedule, Trigger
from tests import NOW, sample

UTC = dt.UTC
EMAIL = "ana.martin@example.org"


def _learner(**changes: object) -> rec.Learner:
    values: dict[str, object] = {
        "id": "L1",
        "username": "ana",
        "email": EMAIL,
        "given_name": "Ana",
        "family_name": "Martin",
        "created_at": dt.datetime(2023, 1, 10, tzinfo=UTC),
        "last_activity_at": dt.datetime(2024, 1, 1, tzinfo=UTC),
    }
    values.update(changes)
    return rec.Learner(**values)  # type: ignore[arg-type]


def test_lawful_basis_speaks_moodle() -> None:
    """LawfulBasis members and Moodle codes, both ways."""
    assert lp.LawfulBasis.CONTRACT.moodle_code == "gdpr_art_6_1_b"
    assert lp.LawfulBasis.from_moodle("gdpr_art_6_1_c") is lp.LawfulBasis.LEGAL_OBLIGATION
    names = {member.name for member in lp.LawfulBasis}
    assert names >= {
        "CONSENT",
        "CONTRACT",
        "LEGAL_OBLIGATION",
        "VITAL_INTERESTS",
        "PUBLIC_TASK",
        "LEGITIMATE_INTERESTS",
    }


def test_error_tree() -> None:
    """The documented error hierarchy."""
    errors = lp.errors
    for name in ("ValidationError", "PolicyError", "CryptoError", "RetentionViolation"):
        assert issubclass(getattr(errors, name), errors.LearnPrivacyError)
    assert issubclass(errors.AuditTampered, errors.LearnPrivacyError)
    assert issubclass(errors.DecryptionError, errors.CryptoError)
    assert issubclass(errors.KeyShreddedError, errors.CryptoError)


def test_records_as_written() -> None:
    """Keyword-only constructors, ids, bases, defaults, subjects, aware datetimes, masked
    repr."""
    learner = _learner(organisation_id="ORG1", contract_end_at=NOW)
    progress = rec.Progress(
        id="P1",
        learner_id="L1",
        course_id="C1",
        status=rec.ProgressStatus.PASSED,
        recorded_at=NOW,
        score=rec.Score(raw=17, min=0, max=20),
        time_spent=None,
    )
    assert progress.score is not None
    assert progress.score.scaled == 0.85
    certificate = rec.Certificate(
        id="CE1", learner_id="L1", course_id="C1", issued_at=NOW, verification_code="X1Y2"
    )
    invoice = rec.Invoice(
        id="I1",
        learner_id="L1",
        billing_name="Ana Martin",
        billing_address="1 rue de la Paix, Paris",
        amount=Decimal("120.00"),
        currency="EUR",
        issued_at=NOW,
    )
    consent = rec.Consent(id="CO1", learner_id="L1", purpose="newsletter", given_at=NOW)
    assert invoice.basis is lp.LawfulBasis.LEGAL_OBLIGATION
    assert learner.basis is lp.LawfulBasis.CONTRACT
    assert consent.withdrawn_at is None
    for record in (learner, progress, certificate, invoice, consent):
        assert isinstance(record.basis, lp.LawfulBasis)
        assert record.id
        assert subject_of(record) == "L1"
    for record in (progress, certificate, invoice, consent):
        assert record.learner_id == "L1"
    for shown in (repr(learner), str(learner), repr(invoice)):
        assert EMAIL not in shown
        assert "Martin" not in shown
    with pytest.raises(lp.errors.ValidationError):
        _learner(created_at=dt.datetime(2023, 1, 10))  # naive
    with pytest.raises((TypeError, lp.errors.ValidationError)):
        rec.Learner("L1", "ana", EMAIL, "Ana", "Martin", NOW)  # type: ignore[misc]
    assert rec.Funding is not None
    assert rec.AccessEvent is not None


def test_fields_of_describes_every_field() -> None:
    """fields_of gives name, category, personal, encrypted and exported per field."""
    infos = {info.name: info for info in rec.fields_of(rec.Learner)}
    assert {"id", "username", "email", "given_name", "family_name", "created_at"} <= set(infos)
    email = infos["email"]
    assert email.personal
    assert email.encrypted
    assert email.exported
    assert email.category is not None
    for info in infos.values():
        for attribute in ("name", "category", "personal", "encrypted", "exported"):
            assert hasattr(info, attribute)


def test_period_is_calendar_correct() -> None:
    """Calendar months with end-of-month clamping; str() is ISO 8601."""
    period = Period.parse("P18M")
    assert str(period) == "P18M"
    later = period.add_to(dt.datetime(2024, 1, 15, 9, tzinfo=UTC))
    assert (later.year, later.month, later.day) == (2025, 7, 15)
    clamped = Period.parse("P1M").add_to(dt.datetime(2024, 1, 31, 9, tzinfo=UTC))
    assert (clamped.month, clamped.day) == (2, 29)


def test_schedule_evaluate_as_written() -> None:
    """schedule.evaluate(record, now=, subject=learner, holds=, erasure_requested=)."""
    learner = _learner()
    invoice = sample(rec.Invoice, id="I1", issued_at=dt.datetime(2024, 1, 1, tzinfo=UTC))
    schedule = Schedule(
        {
            rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            rec.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
        }
    )
    decision = schedule.evaluate(
        learner, now=NOW, subject=learner, holds=(), erasure_requested=False
    )
    assert decision.action is Action.ERASE
    assert decision.due_at is not None
    assert decision.due_at <= NOW
    # Expired iff now >= due_at: one microsecond before, the learner is kept.
    before = schedule.evaluate(learner, now=decision.due_at - dt.timedelta(microseconds=1))
    assert before.action is Action.KEEP
    # A hold blocks erasure.
    held = schedule.evaluate(learner, now=NOW, holds=(Hold(reason="litigation", subject="L1"),))
    assert held.action is not Action.ERASE
    # A legal minimum turns an erasure request into a restriction.
    asked = schedule.evaluate(invoice, now=NOW, subject=learner, erasure_requested=True)
    assert asked.action is Action.RESTRICT
    # No anchor date: REVIEW, never ERASE.
    anchorless = _learner(last_activity_at=None)
    no_anchor = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.CONTRACT_END)})
    assert no_anchor.evaluate(anchorless, now=NOW).action is Action.REVIEW
    assert {a.name for a in Action} >= {"KEEP", "ERASE", "ANONYMISE", "RESTRICT", "REVIEW"}


def test_crypto_as_written() -> None:
    """FieldCipher binds subject and context; shredding and rotation behave as promised."""
    keyring = Keyring.generate()
    cipher = FieldCipher(keyring)
    token = cipher.encrypt(EMAIL, subject="L1", context="Learner/L1/email")
    assert EMAIL not in token
    assert cipher.decrypt(token, subject="L1", context="Learner/L1/email") == EMAIL
    for where in ({"subject": "L2"}, {"context": "Learner/L1/username"}):
        arguments = {"subject": "L1", "context": "Learner/L1/email", **where}
        with pytest.raises(lp.errors.DecryptionError):
            cipher.decrypt(token, **arguments)
    tampered = token[:-6] + ("AAAA" if token[-6:-2] != "AAAA" else "BBBB") + token[-2:]
    for bad in (tampered, "garbage"):
        with pytest.raises(lp.errors.DecryptionError):
            cipher.decrypt(bad, subject="L1", context="Learner/L1/email")
    keyring.rotate()
    assert cipher.decrypt(token, subject="L1", context="Learner/L1/email") == EMAIL
    keyring.shred("L1")
    with pytest.raises(lp.errors.KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="Learner/L1/email")
    key = bytes(range(32))
    first = Pseudonymiser(key, domain="employer-report").pseudonym("L1")
    assert first == Pseudonymiser(key, domain="employer-report").pseudonym("L1")
    assert first != Pseudonymiser(key, domain="funder-report").pseudonym("L1")
    assert "L1" not in first


def test_store_sweep_erase_and_export_as_written(tmp_path: Path) -> None:
    """Store on SQLite: add, get, records_of, sweep, erase_subject, audit, export_subject."""
    from learnprivacy.export import export_subject
    from learnprivacy.store import Store

    keyring = Keyring.generate()
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=keyring)
    learner = _learner(last_activity_at=dt.datetime(2026, 5, 1, tzinfo=UTC))
    stale = _learner(
        id="L2",
        username="bob",
        email="bob@example.org",
        last_activity_at=dt.datetime(2023, 1, 1, tzinfo=UTC),
    )
    store.add(learner)
    store.add_all(
        [
            stale,
            rec.Progress(
                id="P1",
                learner_id="L1",
                course_id="C1",
                status=rec.ProgressStatus.PASSED,
                recorded_at=dt.datetime(2026, 4, 1, tzinfo=UTC),
                score=rec.Score(raw=17, min=0, max=20),
            ),
        ]
    )
    assert store.get(rec.Learner, "L1") == learner
    assert store.get(rec.Learner, "nobody") is None
    assert {record.id for record in store.records_of("L1")} == {"L1", "P1"}

    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    dry = store.sweep(schedule, now=NOW, dry_run=True)
    assert store.get(rec.Learner, "L2") is not None
    report = store.sweep(schedule, now=NOW, dry_run=False)
    assert report.erased >= 1
    assert dry.erased == report.erased
    assert store.get(rec.Learner, "L2") is None
    for attribute in ("erased", "anonymised", "restricted", "review", "kept"):
        assert hasattr(report, attribute)

    out = tmp_path / "out.zip"
    export_subject(store, "L1", str(out))
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        manifest = json.loads(package.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(package.read(entry["path"])).hexdigest() == entry["sha256"]
    assert "index.html" in names
    assert "xapi/statements.json" in names
    assert any(n.startswith("data/") and n.endswith(".json") for n in names)
    assert any(n.startswith("csv/") and n.endswith(".csv") for n in names)

    erasure = store.erase_subject("L1", now=NOW)
    assert erasure.erased
    assert hasattr(erasure, "restricted")
    assert store.get(rec.Learner, "L1") is None
    assert list(store.records_of("L1")) == []
    assert store.audit.verify() is True
    store.close()
