"""The right to erasure: what goes, what stays restricted, and that nothing readable remains."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from learnprivacy import Action
from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    AuditTampered,
    KeyShreddedError,
    RestrictedRecordError,
    RetentionViolation,
)
from learnprivacy.retention import (
    Hold,
    Override,
    RetentionMode,
    RetentionRule,
    Schedule,
    Trigger,
)
from learnprivacy.store import Store
from tests import names, sample
from tests.store_fixtures import (
    NOW,
    assert_not_stored,
    day,
    learner,
    personal_values,
    raw_bytes,
    records_for,
)


def _stored(store: Store, learner_id: str = "L1") -> list[Any]:
    records = [learner(learner_id), *records_for(learner_id)]
    store.add_all(records)
    return records


def test_erasure_erases_and_restricts_with_articles(store: Store) -> None:
    """Without a schedule: legal-obligation records restricted (17(3)(b)), the rest erased."""
    _stored(store)
    _stored(store, "L2")
    report = store.erase_subject("L1", now=NOW)
    assert report.erased == 5
    assert report.restricted == 2
    outcomes = {(o.record_type, o.action.done, o.article) for o in report.outcomes}
    assert outcomes == {
        ("Learner", "erased", "GDPR Art. 17(1)"),
        ("Progress", "erased", "GDPR Art. 17(1)"),
        ("Certificate", "erased", "GDPR Art. 17(1)"),
        ("Consent", "erased", "GDPR Art. 17(1)"),
        ("AccessEvent", "erased", "GDPR Art. 17(1)"),
        ("Invoice", "restricted", "GDPR Art. 17(3)(b)"),
        ("Funding", "restricted", "GDPR Art. 17(3)(b)"),
    }
    assert store.records_of("L1") == []
    kept = store.records_of("L1", include_restricted=True)
    assert {type(r) for r in kept} == {rec.Invoice, rec.Funding}
    # Invoices stay readable to the controller until their own retention ends.
    invoice = store.get(rec.Invoice, "L1-INV1", include_restricted=True)
    assert invoice is not None
    assert invoice.billing_name == "BillingL1Name"
    # Nobody else is touched.
    assert len(store.records_of("L2")) == 7
    assert not names(repr(report), "L1")


def test_erasure_shreds_every_scope_no_remaining_record_uses(store: Store) -> None:
    """contract, consent and security keys are shredded (tombstoned); legal is kept."""
    _stored(store)
    report = store.erase_subject("L1", now=NOW)
    assert set(report.shredded_scopes) == {"contract", "consent", "security"}
    assert report.kept_scopes == ("legal",)
    keyring = store.keyring
    for scope in ("contract", "consent", "security"):
        assert keyring.is_shredded("L1", scope)
    assert not keyring.is_shredded("L1", "legal")
    # A tombstone: new contract data for L1 is refused until explicitly revived.
    with pytest.raises(KeyShreddedError):
        store.add(learner("L1"))


def test_nothing_readable_remains_in_the_database(store: Store, store_url: str) -> None:
    """After erasure no plaintext of erased values is anywhere, and no token of an erased
    scope can be decrypted, whatever table it is found in."""
    records = _stored(store)
    _stored(store, "L2")
    erased = [r for r in records if not isinstance(r, (rec.Invoice, rec.Funding))]
    kept = [r for r in records if isinstance(r, (rec.Invoice, rec.Funding))]
    # Capture L1's tokens before erasure, as a backup or a replica would hold them.
    before = _tokens(store, "L1")
    store.erase_subject("L1", now=NOW)
    secrets = personal_values(erased)
    assert_not_stored(store, store_url, secrets)
    for (kind, record_id, field), token in before.items():
        if kind in ("Invoice", "Funding"):
            continue
        with pytest.raises(KeyShreddedError):
            store.cipher.decrypt(token, subject="L1", context=f"{kind}/{record_id}/{field}")
    # The restricted records remain decryptable, for the controller.
    assert personal_values(kept)[0] in repr(
        [store.get(rec.Invoice, "L1-INV1", include_restricted=True).billing_name]  # type: ignore[union-attr]
    )


def _tokens(store: Store, learner_id: str) -> dict[tuple[str, str, str], str]:
    from sqlalchemy import select

    out = {}
    with store._db.read() as connection:
        for rt in store._record_tables():
            for row in connection.execute(
                select(rt.table).where(rt.table.c[rt.subject_column] == learner_id)
            ):
                for spec in rt.fields:
                    if spec.encrypted and row._mapping[spec.token_column] is not None:
                        out[rt.name, row._mapping["id"], spec.name] = row._mapping[
                            spec.token_column
                        ]
    assert out
    return out


def test_erasure_is_audited_first_and_pseudonymously(store: Store) -> None:
    """The audit log holds the request, each erased and restricted record and the shred."""
    _stored(store)
    before = len(store.audit)
    report = store.erase_subject("L1", now=NOW)
    entries = list(store.audit.entries(after=before))
    actions = [e.action for e in entries]
    assert actions[0] == "erasure_request"
    assert actions[-1] == "shred"
    assert actions.count("erase") == 5
    assert actions.count("restrict") == 2
    assert {e.subject_ref for e in entries} == {report.subject_ref}
    assert not names(repr([dict(e.details) for e in entries if e.record_type == "Learner"]), "L1")
    assert store.audit.verify()


def test_holds_turn_erasure_into_restriction(store: Store) -> None:
    """A legal hold on a record type keeps it, restricted and readable, under Art. 17(3)(e);
    the key scope it uses is kept."""
    _stored(store)
    hold = Hold("case 42", record_type=rec.Certificate)
    report = store.erase_subject("L1", now=NOW, holds=[hold])
    outcome = next(o for o in report.outcomes if o.record_type == "Certificate")
    assert outcome.action is Action.RESTRICT
    assert outcome.article == "GDPR Art. 17(3)(e)"
    certificate = store.get(rec.Certificate, "L1-CERT1", include_restricted=True)
    assert certificate is not None
    assert certificate.verification_code == "VERIFYL1CODE"
    assert "contract" in report.kept_scopes
    assert store.get(rec.Progress, "L1-P1", include_restricted=True) is None


def test_erasure_with_a_schedule_uses_legal_minimums(store: Store) -> None:
    """With a schedule, a running legal minimum restricts (with its end); an ended one erases."""
    old_invoice = sample(
        rec.Invoice,
        id="L1-OLD",
        billing_name="Old Name",
        billing_address="Old Street",
        amount=records_for("L1")[2].amount,
        issued_at=day(2012, 1, 1),
    )
    store.add_all([learner("L1"), *records_for("L1"), old_invoice])
    schedule = Schedule(
        {
            rec.Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
            rec.Progress: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
            rec.Certificate: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
            rec.Consent: RetentionRule("P6M", Trigger.CREATED),
            rec.AccessEvent: RetentionRule("P1Y", Trigger.CREATED),
            rec.Invoice: RetentionRule("P10Y", Trigger.ISSUED, minimum=True),
            rec.Funding: RetentionRule("P6Y", Trigger.CREATED, minimum=True),
        }
    )
    report = store.erase_subject("L1", now=NOW, schedule=schedule)
    by_id = {o.record_id: o for o in report.outcomes}
    assert by_id["L1-OLD"].action is Action.ERASE
    assert by_id["L1-INV1"].action is Action.RESTRICT
    assert by_id["L1-INV1"].article == "GDPR Art. 17(3)(b)"
    assert by_id["L1-INV1"].due_at == day(2033, 3, 1)
    assert store.get(rec.Invoice, "L1-OLD", include_restricted=True) is None


def test_erasing_an_unknown_learner_changes_nothing(store: Store) -> None:
    """Erasing a learner with no data reports nothing erased (and is audited)."""
    _stored(store)
    report = store.erase_subject("L404", now=NOW)
    assert (report.erased, report.restricted) == (0, 0)
    assert len(store.records_of("L1")) == 7


def test_a_restricted_invoice_is_erased_when_its_retention_ends(store: Store) -> None:
    """After erasure, the restricted invoice goes at the sweep after its legal minimum."""
    _stored(store)
    store.erase_subject("L1", now=NOW)
    schedule = Schedule(
        {
            rec.Invoice: RetentionRule("P10Y", Trigger.ISSUED, minimum=True),
            rec.Funding: RetentionRule("P6Y", Trigger.CREATED, minimum=True),
        }
    )
    later = day(2033, 3, 2)
    report = store.sweep(schedule, now=later)
    assert report.by_type["Invoice"]["erase"] == 1
    assert store.records_of("L1", include_restricted=True) == []
    assert all(
        e.state.value == "shredded" for e in store._keys.list_entries(store.keyring.key_ref("L1"))
    )


def test_replay_after_restoring_a_backup(tmp_path: Path) -> None:
    """A backup taken before an erasure, once restored, gets the erasures of the current log
    replayed, so erased learners are not resurrected; the replay is idempotent."""
    master = bytes(range(32))
    current_path = tmp_path / "current.db"
    current = Store(f"sqlite:///{current_path}", keyring=Keyring.from_master_key(master))
    recent = learner("L2", last_activity_at=day(2026, 1, 1))
    current.add_all([learner("L1"), *records_for("L1"), recent, *records_for("L2")])
    current.add_all([learner("L3", last_activity_at=day(2019, 1, 1)), *records_for("L3")])
    backup = tmp_path / "backup.db"
    current.backup(str(backup))
    current.erase_subject("L1", now=NOW)
    schedule = Schedule(
        {
            rec.Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
            rec.AccessEvent: RetentionRule("P1Y", Trigger.CREATED),
        }
    )
    current.sweep(schedule, now=NOW)
    # The backup is restored (to a new place here, so both can be compared).
    restored_path = tmp_path / "restored.db"
    shutil.copyfile(backup, restored_path)
    restored = Store(
        f"sqlite:///{restored_path}",
        keyring=Keyring.from_master_key(master),
        keys=f"sqlite:///{tmp_path / 'current.keys.db'}",
    )
    # The keys live apart from the records: the restored rows of L1 read nothing.
    with pytest.raises(KeyShreddedError):
        restored.get(rec.Learner, "L1")
    assert restored.get(rec.Learner, "L2") == recent
    report = restored.replay_erasures(current.audit, now=NOW)
    assert report.erased >= 7
    # Nothing left to shred: the key database already did it.
    assert report.shredded == 0
    for kind in (rec.Progress, rec.Certificate, rec.Consent, rec.AccessEvent):
        assert restored.query(kind, learner_id="L1", include_restricted=True) == []
    assert restored.get(rec.Learner, "L1") is None
    assert not restored.query(rec.Learner, id="L3")  # erased, or restricted while records stay
    assert restored.get(rec.AccessEvent, "L2-E1") is None
    assert {type(r) for r in restored.records_of("L1", include_restricted=True)} == {
        rec.Invoice,
        rec.Funding,
    }
    assert restored.records_of("L1") == []
    assert restored.keyring.is_shredded("L1", "contract")
    assert restored.get(rec.Learner, "L2") == recent
    # The restored store now holds what the current one holds.
    for rt in restored._record_tables():
        mine = {r.id for r in restored.query(rt.cls, include_restricted=True)}
        theirs = {r.id for r in current.query(rt.cls, include_restricted=True)}
        assert mine == theirs, rt.name
    # No plaintext of L1's erased values in the restored file either.
    erased = [
        r
        for r in [learner("L1"), *records_for("L1")]
        if not isinstance(r, (rec.Invoice, rec.Funding))
    ]
    data = raw_bytes(f"sqlite:///{restored_path}")
    for secret in personal_values(erased):
        assert secret.encode() not in data
    again = restored.replay_erasures(list(current.audit), now=NOW)
    assert (again.erased, again.anonymised, again.restricted, again.shredded) == (0, 0, 0, 0)
    # The anchor in the key database follows the live log: the restored one is reported
    # until it is deliberately made the live one.
    with pytest.raises(AuditTampered, match="anchor"):
        restored.audit.verify()
    restored.audit.reanchor(now=NOW, reason="restore 2026-06 checked")
    assert restored.audit.verify()
    current.close()
    restored.close()


def test_erase_records_erases_exactly_those_records(store: Store) -> None:
    """erase_records deletes the given records only, audited, and shreds a scope's key
    only once no remaining record of the learner uses it."""
    records = _stored(store)
    certificate = next(r for r in records if isinstance(r, rec.Certificate))
    consent = next(r for r in records if isinstance(r, rec.Consent))
    assert store.erase_records([certificate, consent], now=NOW, reason="provider context") == 2
    assert store.get(rec.Certificate, certificate.id) is None
    assert store.get(rec.Consent, consent.id) is None
    assert len(store.records_of("L1")) == 5
    states = {e.scope: e.state.value for e in store._keys.list_entries(store.keyring.key_ref("L1"))}
    assert states["consent"] == "shredded"  # no consent record left
    assert states["contract"] == "active"  # the learner's account still uses it
    assert store.erase_records([certificate], now=NOW) == 0
    entries = list(store.audit.entries(actions=["erase", "shred"]))
    assert [e.action for e in entries] == ["erase", "erase", "shred"]
    assert entries[0].details["reason"] == "provider context"
    assert store.audit.verify()


def test_audit_record_writes_one_entry(store: Store) -> None:
    """audit.record appends one pseudonymous entry in its own transaction."""
    entry = store.audit.record(
        "subject_request", "received", now=NOW, learner_id="L1", details={"request": "R1"}
    )
    assert entry.subject_ref == store.audit.subject_ref("L1")
    assert list(store.audit)[-1] == entry
    assert store.audit.verify()


def _invoice_schedule(mode: Any) -> Schedule:
    return Schedule(
        {rec.Invoice: RetentionRule("P120M", Trigger.ISSUED, minimum=True, mode=mode)},
        name="invoices",
    )


def test_erase_records_restricts_an_invoice_inside_its_legal_minimum(store: Store) -> None:
    """erase_records on an invoice 39 months into its 120: restricted, not erased (Art.
    17(3)(b)), with or without a schedule; the old code deleted it."""
    records = _stored(store)
    invoice = next(r for r in records if isinstance(r, rec.Invoice))
    assert store.erase_records([invoice], now=NOW, reason="provider context") == 0
    with pytest.raises(RestrictedRecordError):  # restricted: not read without asking
        store.get(rec.Invoice, invoice.id)
    assert store.get(rec.Invoice, invoice.id, include_restricted=True) == invoice
    schedule = _invoice_schedule(RetentionMode.COMPLIANCE)
    assert store.erase_records([invoice], now=NOW, schedule=schedule) == 0
    assert store.get(rec.Invoice, invoice.id, include_restricted=True) == invoice
    restricts = list(store.audit.entries(actions=["restrict"]))
    assert restricts
    assert restricts[0].details["record_refs"] == [store.audit.record_ref("Invoice", invoice.id)]
    assert store.audit.verify()


def test_erase_records_compliance_minimum_refuses_an_override(store: Store) -> None:
    """An override cannot shorten a COMPLIANCE minimum: RetentionViolation, nothing erased,
    not even the other records of the same call."""
    records = _stored(store)
    invoice = next(r for r in records if isinstance(r, rec.Invoice))
    certificate = next(r for r in records if isinstance(r, rec.Certificate))
    override = Override(reason="DPO decision 2026-14", actor="dpo")
    with pytest.raises(RetentionViolation):
        store.erase_records(
            [certificate, invoice],
            now=NOW,
            schedule=_invoice_schedule(RetentionMode.COMPLIANCE),
            override=override,
        )
    assert store.get(rec.Invoice, invoice.id) == invoice
    assert store.get(rec.Certificate, certificate.id) == certificate
    assert list(store.audit.entries(actions=["erase", "override"])) == []


def test_erase_records_governance_override_is_audited_first(store: Store) -> None:
    """A GOVERNANCE minimum yields to an Override, whose reason and a reference to its
    actor (never the actor's name) are in the log; a hold still wins over an override."""
    records = _stored(store)
    invoice = next(r for r in records if isinstance(r, rec.Invoice))
    override = Override(reason="DPO decision 2026-14", actor="Jeanne Dpo")
    schedule = _invoice_schedule(RetentionMode.GOVERNANCE)
    hold = Hold("tax audit 2026", record_type=rec.Invoice)
    assert (
        store.erase_records([invoice], now=NOW, schedule=schedule, holds=[hold], override=override)
        == 0
    )
    assert store.get(rec.Invoice, invoice.id, include_restricted=True) == invoice
    assert store.erase_records([invoice], now=NOW, schedule=schedule, override=override) == 1
    assert store.get(rec.Invoice, invoice.id, include_restricted=True) is None
    entries = list(store.audit.entries(actions=["override", "erase"]))
    assert [e.action for e in entries] == ["override", "erase"]
    assert entries[0].details["reason"] == "DPO decision 2026-14"
    assert entries[0].details["counts"] == {"Invoice": 1}
    assert "Jeanne" not in str(entries[0].details)
    assert store.audit.verify()


def test_erase_records_without_schedule_override_releases_basis_not_hold(store: Store) -> None:
    """Without a schedule an override releases a legal-obligation record, never a held one."""
    records = _stored(store)
    invoice = next(r for r in records if isinstance(r, rec.Invoice))
    funding = next(r for r in records if isinstance(r, rec.Funding))
    override = Override(reason="contract annulled", actor="dpo")
    hold = Hold("funder audit", record_type=rec.Funding)
    assert store.erase_records([invoice, funding], now=NOW, holds=[hold], override=override) == 1
    assert store.get(rec.Invoice, invoice.id, include_restricted=True) is None
    assert store.get(rec.Funding, funding.id, include_restricted=True) == funding
