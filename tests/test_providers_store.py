"""StoreProvider: learnprivacy's own store behind the privacy manager, on a real SQLite file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from examples.toy_lms import ForumProvider, ToyLMS

from learnprivacy import Controller, LawfulBasis
from learnprivacy import records as rec
from learnprivacy.errors import ValidationError
from learnprivacy.providers import MemoryWriter, PrivacyManager, Register, StoreProvider
from learnprivacy.providers._store import STORE_COMPONENT
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from learnprivacy.testing import assert_provider_compliant
from tests import NOW, sample

T0 = dt.datetime(2025, 9, 1, 9, 0, tzinfo=dt.UTC)

SCHEDULE = Schedule(
    {
        rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY, purpose="Accounts"),
        rec.Progress: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        rec.Certificate: RetentionRule(Period.parse("P5Y"), Trigger.ISSUED),
        rec.Consent: RetentionRule(Period.parse("P6M"), Trigger.WITHDRAWN),
        rec.AccessEvent: RetentionRule(Period.parse("P1Y"), Trigger.CREATED),
        rec.Funding: RetentionRule(Period.parse("P72M"), Trigger.CLOSED, minimum=True),
        rec.Invoice: RetentionRule(
            Period.parse("P120M"),
            Trigger.ISSUED,
            minimum=True,
            basis=LawfulBasis.LEGAL_OBLIGATION,
            purpose="Billing and tax obligations",
        ),
    }
)


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    """A real SQLite store with a fixed clock."""
    return sqlite_store


def learner_records(user_id: str) -> list[object]:
    """An account, a progress, a certificate and a consent: all erasable on request."""
    return [
        sample(
            rec.Learner,
            id=user_id,
            username=f"user-{user_id}",
            email=f"{user_id}@example.org",
            created_at=T0,
            last_activity_at=T0,
        ),
        sample(
            rec.Progress,
            id=f"{user_id}-p1",
            learner_id=user_id,
            recorded_at=T0,
            score=rec.Score(raw=17, min=0, max=20),
        ),
        sample(
            rec.Certificate,
            id=f"{user_id}-c1",
            learner_id=user_id,
            issued_at=T0,
            verification_code=f"V-{user_id}",
        ),
        sample(rec.Consent, id=f"{user_id}-k1", learner_id=user_id, given_at=T0),
    ]


def invoice(user_id: str) -> rec.Invoice:
    """An invoice: kept under legal obligation even when erasure is asked."""
    return sample(
        rec.Invoice, id=f"INV-{user_id}", learner_id=user_id, amount=Decimal("120.00"), issued_at=T0
    )


def test_store_provider_is_compliant(store: Store) -> None:
    """With a schedule covering every record type, the store's provider passes the kit."""
    provider = StoreProvider(store, schedule=SCHEDULE)

    def make_user_data(user_id: str) -> dict[str, int]:
        store.add_all(learner_records(user_id))
        return {"Learner": 1, "Progress": 1, "Certificate": 1, "Consent": 1}

    assert_provider_compliant(provider, make_user_data, max_examples=4)


def test_metadata_comes_from_the_records_and_the_schedule(store: Store) -> None:
    """Tables are record types, fields their personal fields, retention the schedule's."""
    collection = PrivacyManager(store=store, discover=False).get_metadata()[STORE_COMPONENT]
    tables = {t.name: t for t in collection.database_tables}
    assert "email" in tables["Learner"].fields
    assert tables["Invoice"].basis is LawfulBasis.LEGAL_OBLIGATION
    assert tables["Learner"].retention is None

    scheduled = StoreProvider(store, schedule=SCHEDULE).get_metadata(
        type(collection)(STORE_COMPONENT)
    )
    invoices = [t for t in scheduled.database_tables if t.name == "Invoice"]
    assert [(str(t.retention), t.purpose) for t in invoices] == [
        ("P120M", "Billing and tax obligations")
    ]
    learner = next(t for t in scheduled.database_tables if t.name == "Learner")
    assert learner.retention_from is Trigger.LAST_ACTIVITY
    assert learner.purpose == "Accounts"


def test_manager_with_store_and_lms_providers(store: Store, tmp_path: Path) -> None:
    """store= registers the store's provider beside the LMS's own; both erase the learner."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    forum = ForumProvider(lms)
    for user in ("ana", "ben"):
        store.add_all(learner_records(user))
        forum.make_user_data(user)
    manager = PrivacyManager([forum], store=store, discover=False)
    assert manager.components == ("toy_forum", STORE_COMPONENT)
    assert manager.component(STORE_COMPONENT).source == "store"

    writer = MemoryWriter()
    assert manager.export_user_data("ana", writer).completed
    exported = {
        record_type for (component, record_type) in writer.rows if component == STORE_COMPONENT
    }
    assert exported == {"Learner", "Progress", "Certificate", "Consent"}
    assert writer.descriptions[(STORE_COMPONENT, "Learner")].purpose.startswith("Learner")

    assert manager.delete_data_for_user("ana").completed
    assert store.records_of("ana") == []
    assert len(store.records_of("ben")) == 4
    assert StoreProvider(store).raw_scan("ana") == {}
    assert manager.delete_data_for_user("ana").completed


def test_invoices_are_restricted_not_erased_and_still_exported(store: Store) -> None:
    """A legal minimum turns erasure into restriction; access still shows the invoice."""
    store.add_all([*learner_records("ana"), invoice("ana")])
    manager = PrivacyManager([StoreProvider(store, schedule=SCHEDULE)], discover=False)
    first = manager.delete_data_for_user("ana")
    assert first.completed
    assert store.records_of("ana") == []
    assert [type(r) for r in store.records_of("ana", include_restricted=True)] == [rec.Invoice]
    # The invoice is still held: the context stays listed and the export includes it.
    assert STORE_COMPONENT in manager.get_contexts_for_userid("ana")
    writer = MemoryWriter()
    assert manager.export_user_data("ana", writer).completed
    assert [r["id"] for r in writer.rows[(STORE_COMPONENT, "Invoice")]] == ["INV-ana"]
    # The invoice row and the data key that still decrypts it.
    assert StoreProvider(store).raw_scan("ana") == {"lp_invoice": 1, "lpk_keys": 1}

    # A retry changes nothing: the invoice stays restricted and no audit entry is added.
    entries = len(store.audit)
    assert manager.delete_data_for_user("ana").completed
    assert [type(r) for r in store.records_of("ana", include_restricted=True)] == [rec.Invoice]
    assert len(store.audit) == entries
    assert store.audit.verify()


USED_SCHEDULE = Schedule(
    {
        rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        rec.Progress: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
    }
)


def _register_of(provider: StoreProvider, internal: tuple[str, ...] = ()) -> Register:
    controller = Controller(name="Formations SA", address="1 rue de Paris", contact="dpo@x.org")
    return PrivacyManager([provider], discover=False).register(controller, internal_only=internal)


def test_record_types_leave_unused_types_out_of_the_register(store: Store) -> None:
    """``StoreProvider(record_types=...)``: a record type the controller does not keep
    (funder files here) is not in the register, and shows no gap; without the argument
    it is listed, with its "no recipient declared" and "no retention" gaps."""
    everything = _register_of(StoreProvider(store, schedule=USED_SCHEDULE))
    assert "Funding" in [e.item.name for e in everything.entries]
    assert any("Funding" in g for g in everything.gaps)
    assert any(g.startswith("Training funding files") for g in everything.gaps)

    used = StoreProvider(store, schedule=USED_SCHEDULE, record_types=["Learner", rec.Progress])
    register = _register_of(used)
    assert sorted({e.item.name for e in register.entries}) == ["Learner", "Progress"]
    assert not any("Funding" in g or "funding" in g for g in register.gaps)


def test_record_types_never_hide_a_used_type(store: Store) -> None:
    """A type left out of ``record_types`` but held in the store is described anyway,
    with its gaps; so is one the schedule has a rule for; a declared type without
    recipients is still a "no recipient declared" gap."""
    used = StoreProvider(store, schedule=USED_SCHEDULE, record_types=["Learner", "Progress"])
    register = _register_of(used)
    # A used type without recipients and no internal-only promise: still a gap.
    assert any(
        g.startswith("Training follow-up: progress and scores: no recipient declared")
        for g in register.gaps
    )
    store.add(learner_records("L1")[0])
    store.add(
        sample(
            rec.Funding,
            id="L1-F1",
            dossier_reference="OPCO-L1-DOSSIER",
            opened_at=T0,
            amount=Decimal("900.00"),
        )
    )
    held = _register_of(used)
    assert "Funding" in [e.item.name for e in held.entries]
    assert any(g == "learnprivacy_store/Funding: no retention period declared" for g in held.gaps)
    assert any(g.startswith("Training funding files") for g in held.gaps)
    # Restricted rows are still held.
    store.restrict(rec.Funding, "L1-F1", reason="legal claim", now=NOW)
    assert "Funding" in [e.item.name for e in _register_of(used).entries]

    ruled = Schedule(
        {
            **{cls: USED_SCHEDULE.rules_for(cls)[0] for cls in (rec.Learner, rec.Progress)},
            rec.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
        }
    )
    with_rule = StoreProvider(store, schedule=ruled, record_types=["Learner"])
    assert "Invoice" in [e.item.name for e in _register_of(with_rule).entries]


def test_record_types_refuses_unknown_names(store: Store) -> None:
    """A name that is no record type, or a bare string, is a typed error."""
    with pytest.raises(ValidationError):
        StoreProvider(store, record_types=["Fundings"])
    with pytest.raises(ValidationError):
        StoreProvider(store, record_types="Funding")
    with pytest.raises(ValidationError):
        StoreProvider(store, record_types=[dict])
