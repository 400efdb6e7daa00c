"""Retention sweeps: SQL selects candidates, the engine decides, the store acts, exactly."""

from __future__ import annotations

import collections
import datetime as dt
import threading
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from learnprivacy import records as rec
from learnprivacy.crypto._keystore import KeyState
from learnprivacy.errors import RestrictedRecordError
from learnprivacy.retention import Action, Hold, Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests import sample
from tests.store_fixtures import (
    NOW,
    anonymised_facts,
    day,
    expected_actions,
    learner,
    owed_refs,
    population,
    records_for,
    retention_schedule,
    table_text,
)

_VERB = {
    Action.ERASE: "erased",
    Action.ANONYMISE: "anonymised",
    Action.RESTRICT: "restricted",
    Action.REVIEW: "review",
    Action.KEEP: "kept",
}


def _state(store: Store) -> dict[str, Any]:
    """Everything a sweep can change, independent of random anonymisation ids."""
    visible = {
        (type(r).__name__, r.id)
        for rt in store._record_tables()
        for r in store.query(rt.cls, include_restricted=True)
    }
    restricted = {
        (rt.name, r.id)
        for rt in store._record_tables()
        for r in store.query(rt.cls, include_restricted=True)
        if not store.query(rt.cls, id=r.id)
    }
    anonymised = {rt.name: anonymised_facts(store, rt.cls) for rt in store._record_tables()}
    # The key database names subjects by key reference: map them back to learner ids.
    names = {store.keyring.key_ref(f"L{i:05d}"): f"L{i:05d}" for i in range(1_000)}
    keys = sorted(
        (names.get(e.subject, e.subject), e.scope, e.state.value)
        for e in store._keys.list_entries()
        if not e.subject.startswith("learnprivacy:")
    )
    return {"visible": visible, "restricted": restricted, "anonymised": anonymised, "keys": keys}


def test_sweep_matches_the_engine_on_every_record(store: Store) -> None:
    """Each row ends as Schedule.evaluate decides for the original record; counts agree."""
    records = population(40)
    store.add_all(records)
    schedule = retention_schedule()
    expected = expected_actions(records, schedule, NOW)
    report = store.sweep(schedule, now=NOW, batch_size=7)
    counts = collections.Counter(_VERB[a] for a in expected.values())
    assert report.erased == counts["erased"]
    assert report.anonymised == counts["anonymised"]
    assert report.restricted == counts["restricted"]
    assert report.review == counts["review"]
    assert report.kept == counts["kept"]
    assert min(report.erased, report.anonymised, report.restricted, report.review) > 0
    for (kind, record_id), action in expected.items():
        cls = store._table(kind).cls
        present = store.get(cls, record_id, include_restricted=True)
        if action in (Action.ERASE, Action.ANONYMISE):
            assert present is None, (kind, record_id)
        elif action is Action.RESTRICT:
            assert present is not None
            assert not store.query(cls, id=record_id)
        else:
            assert store.get(cls, record_id) is not None, (kind, record_id)
    assert report.review_items
    assert {(i.record_type, i.record_id) for i in report.review_items} == {
        key for key, action in expected.items() if action is Action.REVIEW
    }
    assert store.audit.verify()


def test_dry_run_reports_the_same_and_changes_nothing(store: Store) -> None:
    """dry_run=True gives the counts of the real run and leaves every table as it was."""
    store.add_all(population(25))
    schedule = retention_schedule()
    before = table_text(store)
    dry = store.sweep(schedule, now=NOW, dry_run=True, batch_size=5)
    assert table_text(store) == before
    real = store.sweep(schedule, now=NOW, batch_size=5)
    assert dry.dry_run
    assert not real.dry_run
    for name in ("erased", "anonymised", "restricted", "review", "kept"):
        assert getattr(dry, name) == getattr(real, name), name
    assert dry.by_type == real.by_type


def test_second_sweep_changes_nothing(store: Store) -> None:
    """A sweep is idempotent: the second run changes no row and no key."""
    store.add_all(population(25))
    schedule = retention_schedule()
    first = store.sweep(schedule, now=NOW)
    assert first.changed > 0
    after_first = _state(store)
    second = store.sweep(schedule, now=NOW)
    assert second.changed == 0
    assert second.shredded == 0
    assert _state(store) == after_first


def test_batch_size_does_not_change_the_outcome(tmp_path: Any) -> None:
    """Sweeping in pages of 3 or in one page ends in the same state (two SQLite files)."""
    from learnprivacy.crypto import Keyring

    states = []
    for size, name in ((3, "a.db"), (10_000, "b.db")):
        store = Store(f"sqlite:///{tmp_path / name}", keyring=Keyring.generate())
        store.add_all(population(20))
        report = store.sweep(retention_schedule(), now=NOW, batch_size=size)
        states.append((report.by_type, _state(store)["visible"]))
        store.close()
    assert states[0] == states[1]


def test_learner_level_trigger_reads_the_learner_row(store: Store) -> None:
    """A progress rule on LAST_ACTIVITY reads the learner's date through the join."""
    store.add_all([learner("L1", last_activity_at=day(2020, 1, 1)), *records_for("L1")])
    store.add_all([learner("L2", last_activity_at=day(2026, 1, 1)), *records_for("L2")])
    schedule = Schedule(
        {
            rec.Progress: RetentionRule(
                Period.parse("P18M"), Trigger.LAST_ACTIVITY, action=Action.ANONYMISE
            )
        }
    )
    report = store.sweep(schedule, now=NOW)
    assert report.by_type["Progress"] == {
        "review": 0,
        "erase": 0,
        "anonymise": 1,
        "restrict": 0,
        "keep": 1,
    }
    assert store.get(rec.Progress, "L1-P1") is None
    assert store.get(rec.Progress, "L2-P1") is not None
    [facts] = list(store.anonymised(rec.Progress))
    # A fresh random id: nothing links the anonymised row to L1 or to its old id.
    assert facts["id"].startswith("anon-")
    assert "L1" not in facts["id"]


def test_anonymised_rows_lose_every_personal_value(store: Store) -> None:
    """A learner anonymised by a sweep keeps dates and codes, loses identity and contacts."""
    old = learner("L1", last_activity_at=day(2020, 1, 1), organisation_id="ORG1")
    # The account alone: with records left it would be kept (restricted) for them.
    store.add(old)
    schedule = Schedule(
        {
            rec.Learner: RetentionRule(
                Period.parse("P18M"), Trigger.LAST_ACTIVITY, action=Action.ANONYMISE
            )
        }
    )
    assert store.sweep(schedule, now=NOW).anonymised == 1
    assert store.get(rec.Learner, "L1") is None
    assert store.find_learner(email=old.email) is None
    [facts] = list(store.anonymised(rec.Learner))
    assert facts["created_at"] == day(2020, 1, 1)  # generalised to its month
    assert facts["organisation_id"] == "ORG1"
    assert "email" not in facts
    assert facts["id"].startswith("anon-")
    table = store._table(rec.Learner).table
    with store._db.read() as connection:
        row = connection.execute(select(table)).first()
    assert row is not None
    values = row._mapping
    assert values["id"] != "L1"
    assert values["id"].startswith("anon-")
    assert values["email_token"] is None
    assert values["email_bidx"] is None
    assert values["given_name_token"] is None


def test_progress_anonymisation_keeps_statistics(store: Store) -> None:
    """Anonymised progress rows still give course, status and score for statistics."""
    store.add_all([learner("L1", last_activity_at=day(2020, 1, 1)), *records_for("L1")])
    store.add_all([learner("L2", last_activity_at=day(2020, 1, 1)), *records_for("L2")])
    schedule = Schedule(
        {rec.Progress: RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.ANONYMISE)}
    )
    assert store.sweep(schedule, now=NOW).anonymised == 2
    facts = list(store.anonymised(rec.Progress))
    assert len(facts) == 2
    assert {f["status"] for f in facts} == {rec.ProgressStatus.PASSED}
    assert {f["course_id"] for f in facts} == {"C1"}
    assert all(f["score"].scaled == 0.85 for f in facts)
    assert {f["learner_id"] for f in facts}.isdisjoint({"L1", "L2"})
    assert store.query(rec.Progress) == []
    table = store._table(rec.Progress).table
    with store._db.read() as connection:
        owners = set(connection.execute(select(table.c.learner_id)).scalars())
    assert not owners & {"L1", "L2"}
    assert len(owners) == 2


def test_keys_are_shredded_once_no_row_uses_the_scope(store: Store) -> None:
    """Erasing a learner's last consent-scope row shreds that key; other scopes stay."""
    records = records_for("L1")
    kept = [r for r in records if isinstance(r, rec.Certificate | rec.Consent)]
    store.add_all([learner("L1", last_activity_at=day(2020, 1, 1)), *kept])
    store.add_all([learner("L2", last_activity_at=day(2026, 1, 1))])
    schedule = Schedule(
        {
            rec.Consent: RetentionRule(Period.parse("P1Y"), Trigger.CREATED),
            rec.Certificate: RetentionRule(Period.parse("P1Y"), Trigger.CREATED),
            rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        }
    )
    report = store.sweep(schedule, now=NOW)
    assert report.erased == 3  # L1's consent, certificate, then their account
    assert report.shredded == 2
    names = {store.keyring.key_ref(s): s for s in ("L1", "L2")}
    states = {
        (names.get(e.subject, e.subject), e.scope): e.state for e in store._keys.list_entries()
    }
    assert states["L1", "consent"] is KeyState.SHREDDED
    assert states["L1", "contract"] is KeyState.SHREDDED
    assert states["L2", "contract"] is KeyState.ACTIVE
    # Shredding by a sweep leaves no tombstone: the learner may sign up again.
    store.add(learner("L1"))
    assert store.get(rec.Learner, "L1") == learner("L1")


def test_keys_stay_while_another_row_uses_the_scope(store: Store) -> None:
    """Erasing the certificate alone keeps the contract key: the account still needs it."""
    certificate = next(r for r in records_for("L1") if isinstance(r, rec.Certificate))
    store.add_all([learner("L1", last_activity_at=day(2026, 1, 1)), certificate])
    schedule = Schedule({rec.Certificate: RetentionRule(Period.parse("P1Y"), Trigger.CREATED)})
    report = store.sweep(schedule, now=NOW)
    assert report.erased == 1
    assert report.shredded == 0
    assert store.get(rec.Learner, "L1") is not None


def test_an_account_is_never_erased_while_its_records_stay(store: Store) -> None:
    """The account of a learner whose invoice stays (legal minimum) is restricted, not
    erased: erasing it would leave the invoice with a learner id and no account. Once the
    records are gone, the next sweep erases it."""
    invoice = next(r for r in records_for("L1") if isinstance(r, rec.Invoice))
    store.add_all([learner("L1", last_activity_at=day(2020, 1, 1)), invoice])
    schedule = Schedule(
        {
            rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            rec.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
        }
    )
    dry = store.sweep(schedule, now=NOW, dry_run=True)
    assert dry.by_type["Learner"]["restrict"] == 1
    assert dry.decided_by["Learner"] == {"restrict: dependent records kept": 1}
    report = store.sweep(schedule, now=NOW)
    assert report.erased == 0
    with pytest.raises(RestrictedRecordError):
        store.get(rec.Learner, "L1")
    assert store.get(rec.Learner, "L1", include_restricted=True) is not None
    later = day(2034, 1, 1)
    assert store.sweep(schedule, now=later).erased == 2
    assert store.records_of("L1", include_restricted=True) == []


def test_activity_counts_from_every_record(store: Store) -> None:
    """A learner created in 2024 whose account shows no activity but whose progress is of
    May 2026 is kept on 2026-06-15 (the old sweep erased the account and left the
    progress); the dry run says the decision came from the records."""
    account = learner("L1", created_at=day(2024, 1, 10), last_activity_at=None)
    progress = attrs.evolve(
        next(r for r in records_for("L1") if isinstance(r, rec.Progress)),
        recorded_at=day(2026, 5, 20),
    )
    other = learner("L2", created_at=day(2024, 1, 10), last_activity_at=None)
    store.add_all([account, progress, other])
    rule = RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED)
    schedule = Schedule({rec.Learner: rule, rec.Progress: rule})
    dry = store.sweep(schedule, now=NOW, dry_run=True)
    assert dry.decided_by["Learner"] == {"erase: created (fallback)": 1}
    report = store.sweep(schedule, now=NOW)
    assert report.erased == 1
    assert store.get(rec.Learner, "L1") == account
    assert store.get(rec.Progress, progress.id) == progress
    assert store.get(rec.Learner, "L2") is None
    later = store.sweep(schedule, now=day(2027, 12, 1), dry_run=True)
    assert later.decided_by["Progress"] == {"erase: last_activity (records)": 1}
    assert later.decided_by["Learner"] == {"erase: last_activity (records)": 1}


def test_holds_block_erasure(store: Store) -> None:
    """A legal hold on a learner keeps their expired rows; others are erased."""
    store.add_all([learner("L1", last_activity_at=day(2020, 1, 1))])
    store.add_all([learner("L2", last_activity_at=day(2020, 1, 1))])
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    report = store.sweep(schedule, now=NOW, holds=[Hold("litigation 2026-04", subject="L1")])
    assert report.erased == 1
    assert store.get(rec.Learner, "L1") is not None
    assert store.get(rec.Learner, "L2") is None


def test_types_without_rule_are_listed_for_review(store: Store) -> None:
    """Rows no rule covers are counted and listed for review, never erased."""
    store.add_all([learner("L1", last_activity_at=day(2026, 1, 1)), *records_for("L1")])
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    report = store.sweep(schedule, now=NOW, review_limit=3)
    assert report.review == 6
    assert len(report.review_items) == 3
    assert report.review_truncated
    assert "no retention rule" in report.review_items[0].reason
    assert len(store.records_of("L1")) == 7


def test_audit_lists_every_erased_row(store: Store) -> None:
    """Every row a sweep erases is named in an erase entry (by id, or by pseudonym)."""
    records = population(15)
    store.add_all(records)
    schedule = retention_schedule()
    expected = expected_actions(records, schedule, NOW)
    store.sweep(schedule, now=NOW, batch_size=4)
    logged: set[tuple[str, str]] = set()
    refs: set[str] = set()
    for entry in store.audit.entries(actions=["erase"]):
        logged.update((entry.record_type, i) for i in entry.details.get("record_refs", ()))
        refs.update(entry.details.get("subject_refs", ()))
    erased = {k for k, a in expected.items() if a is Action.ERASE}
    assert {
        (k[0], store.audit.record_ref(k[0], k[1])) for k in erased if k[0] != "Learner"
    } == logged
    assert {store.audit.subject_ref(i) for k, i in erased if k == "Learner"} == refs


def _wipe(store: Store) -> None:
    """Delete every record and data key (not the keyring's own), for a fresh example."""
    from sqlalchemy import delete, text

    with store._db.write() as connection:
        for rt in store._record_tables():
            connection.execute(delete(rt.table))
    with store._key_db.database.write() as connection:
        connection.execute(text("DELETE FROM lpk_keys WHERE subject_ref NOT LIKE 'learnprivacy:%'"))
        connection.execute(text("DELETE FROM lpk_tombstones"))
    store.keyring.clear_cache()


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    now=st.datetimes(min_value=dt.datetime(2016, 1, 1), max_value=dt.datetime(2032, 1, 1)),
    size=st.integers(1, 12),
)
def test_sweep_agrees_with_evaluate_for_any_now(
    store: Store, seed: int, now: dt.datetime, size: int
) -> None:
    """For random populations and instants, the sweep does exactly what evaluate decides."""
    _wipe(store)
    records = population(size, seed=seed)
    store.add_all(records)
    schedule = retention_schedule()
    when = now.replace(tzinfo=dt.UTC)
    expected = collections.Counter(
        _VERB[a] for a in expected_actions(records, schedule, when).values()
    )
    dry = store.sweep(schedule, now=when, dry_run=True, batch_size=5)
    real = store.sweep(schedule, now=when, batch_size=5)
    for report in (dry, real):
        assert {name: getattr(report, name) for name in _VERB.values()} == {
            name: expected[name] for name in _VERB.values()
        }


def test_candidates_are_selected_in_sql(store: Store) -> None:
    """The SQL condition leaves out rows the engine keeps: sweeps do not read every row."""
    from sqlalchemy import func

    from learnprivacy.store._selection import Selection

    records = population(30)
    store.add_all(records)
    schedule = retention_schedule()
    expected = expected_actions(records, schedule, NOW)
    for rt in store._record_tables():
        selection = Selection(store, rt, schedule.rules_for(rt.cls), NOW)
        columns, _, _ = selection.columns()
        query = selection.query(columns, selection.candidates()).subquery()
        with store._db.read() as connection:
            selected = connection.execute(select(func.count()).select_from(query)).scalar_one()
        not_kept = sum(
            1 for (kind, _), a in expected.items() if kind == rt.name and a is not Action.KEEP
        )
        total = sum(1 for kind, _ in expected if kind == rt.name)
        assert not_kept <= selected, rt.name
        if rt.name in ("Invoice", "AccessEvent"):
            # Exact cutoffs: the candidates are exactly the rows not kept. (Learners are a
            # superset: SQL reads the account's activity, their records may be later.)
            assert selected == not_kept, rt.name
        assert selected < total or not_kept == total, rt.name


def test_a_lapsed_consent_ends_the_processing_it_held(store: Store) -> None:
    """Progress kept on consent for "analytics" (retention: 5 years) is erased once the
    learner's consent, valid six months, has expired; a learner whose consent stands, and
    progress another basis holds, are kept. The dry run says so first."""
    from learnprivacy.basis import LawfulBasis

    store.add_all([learner("L1", last_activity_at=day(2026, 6, 1))])
    store.add_all([learner("L2", last_activity_at=day(2026, 6, 1))])
    for owner, consented in (("L1", day(2025, 6, 1)), ("L2", day(2026, 3, 1))):
        store.add(
            rec.Consent(
                id=f"{owner}-AN",
                learner_id=owner,
                purpose="analytics",
                given_at=consented,
                expires_at=Period.parse("P6M").add_to(consented),
            )
        )
        store.add(
            sample(rec.Progress, id=f"{owner}-P", learner_id=owner, recorded_at=day(2026, 1, 5))
        )
    schedule = Schedule(
        {
            rec.Progress: RetentionRule(
                "P5Y", Trigger.CREATED, purpose="analytics", basis=LawfulBasis.CONSENT
            ),
            rec.Learner: RetentionRule("P5Y", Trigger.LAST_ACTIVITY, purpose="account"),
        }
    )
    dry = store.sweep(schedule, now=NOW, dry_run=True)
    assert dry.decided_by["Progress"] == {"erase: consent ended": 1}
    assert store.get(rec.Progress, "L1-P") is not None
    report = store.sweep(schedule, now=NOW)
    assert report.erased == dry.erased == 1
    assert store.get(rec.Progress, "L1-P", include_restricted=True) is None
    assert store.get(rec.Progress, "L2-P") is not None
    assert store.get(rec.Consent, "L1-AN") is not None  # the proof of the past consent stays
    assert store.sweep(schedule, now=NOW).erased == 0
    contract = Schedule({rec.Progress: RetentionRule("P5Y", Trigger.CREATED, purpose="training")})
    store.add(sample(rec.Progress, id="L1-Q", course_id="C2", recorded_at=day(2026, 1, 5)))
    assert store.sweep(contract, now=NOW).erased == 0


def test_a_sweep_counts_and_destroys_exactly_the_keys_no_row_uses(store: Store) -> None:
    """Many learners in one page: the shred count is the keys actually destroyed, those of
    learners whose other rows keep a scope stay, and the outbox is empty afterwards."""
    from learnprivacy.store._tables import KEY_OUTBOX

    old, recent = day(2020, 1, 1), day(2026, 1, 1)
    expired = [learner(f"E{i:02d}", last_activity_at=old) for i in range(12)]
    kept = [learner(f"K{i:02d}", last_activity_at=recent) for i in range(5)]
    store.add_all([*expired, *kept])
    # Four expired learners keep a certificate that no rule reaches: their account stays
    # (restricted) with its key.
    certificates = [
        r for e in expired[:4] for r in records_for(e.id) if isinstance(r, rec.Certificate)
    ]
    store.add_all(certificates)
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    before = {
        (e.subject, e.scope, e.key_id)
        for e in store._keys.list_entries()
        if e.state is not KeyState.SHREDDED
    }
    report = store.sweep(schedule, now=NOW, batch_size=100)
    after = {
        (e.subject, e.scope, e.key_id)
        for e in store._keys.list_entries()
        if e.state is not KeyState.SHREDDED
    }
    refs = {store.keyring.key_ref(x.id): x.id for x in (*expired, *kept)}
    destroyed = {refs.get(s, s) for s, _scope, _key in before - after}
    assert report.erased == 8
    assert destroyed == {e.id for e in expired[4:]}
    assert report.shredded == len(before - after) == 8
    with store._db.read() as connection:
        assert connection.execute(select(KEY_OUTBOX.c.id)).first() is None


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_sweep_page_does_not_hold_the_audit_head_while_it_deletes(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: while a sweep deletes a page, another writer of the audit log (a second
    sweep worker, a request) goes ahead; the sweep locks the head row only to append its
    entries, just before it commits. The chain stays whole and verifiable."""
    import threading

    from learnprivacy.crypto import Keyring
    from learnprivacy.store import _sweep as sweep_module
    from tests.store_fixtures import MASTER_KEY, keys_for

    store.add_all([learner(f"E{i:02d}", last_activity_at=day(2020, 1, 1)) for i in range(20)])
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    deleting, release = threading.Event(), threading.Event()
    real_erase = sweep_module.erase_rows

    def paused_erase(*args: Any, **kwargs: Any) -> int:
        deleting.set()
        release.wait(60)
        return real_erase(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "erase_rows", paused_erase)
    reports: list[Any] = []
    sweeper = threading.Thread(target=lambda: reports.append(store.sweep(schedule, now=NOW)))
    sweeper.start()
    other = Store(store_url, keyring=Keyring.from_master_key(MASTER_KEY), keys=keys_for(store_url))
    try:
        assert deleting.wait(60)
        writer = threading.Thread(target=lambda: other.audit.record("note", "done", now=NOW))
        writer.start()
        writer.join(20)
        blocked = writer.is_alive()
        release.set()
        sweeper.join(60)
        writer.join(60)
    finally:
        release.set()
        other.close()
    assert not blocked, "the audit head was held while the sweep deleted its page"
    assert reports[0].erased == 20
    assert store.audit.verify()
    actions = [e.action for e in store.audit.entries()]
    assert actions.index("note") < actions.index("erase")


def test_a_shred_settled_before_the_sweep_applies_it_spares_the_new_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a sweep page's commit and the destruction of the keys it sent to the
    outbox, a writer in another thread signs one erased learner up again: it settles that
    learner's shred and creates a fresh key. The sweep then destroys the others' keys, not
    the fresh one, and leaves the outbox empty (the sent rows are read back, not
    replayed from memory)."""
    from learnprivacy.store._tables import KEY_OUTBOX

    old = day(2020, 1, 1)
    expired = [learner(f"E{i:02d}", last_activity_at=old) for i in range(6)]
    store.add_all(expired)
    back = learner("E03", last_activity_at=day(2026, 6, 1))
    keys_type = type(store._keys)
    original = keys_type.apply_sent
    seen: list[int] = []

    def interfering(self: Any, **options: Any) -> int:
        monkeypatch.setattr(keys_type, "apply_sent", original)
        with store._db.read() as connection:
            columns = select(KEY_OUTBOX.c.subject_ref, KEY_OUTBOX.c.subject_refs)
            seen.append(len(owed_refs(connection.execute(columns).all())))
        worker = threading.Thread(target=store.add, args=(back,))
        worker.start()
        worker.join()
        return original(self, **options)

    monkeypatch.setattr(keys_type, "apply_sent", interfering)
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    report = store.sweep(schedule, now=NOW, compact=False)
    assert seen == [6]  # the page committed six shreds, not yet applied
    assert report.erased == 6
    assert store.get(rec.Learner, "E03") == back
    refs = {store.keyring.key_ref(e.id): e.id for e in expired}
    alive = {
        refs[e.subject]
        for e in store._keys.list_entries()
        if e.subject in refs and e.state is not KeyState.SHREDDED
    }
    assert alive == {"E03"}
    with store._db.read() as connection:
        assert connection.execute(select(KEY_OUTBOX.c.id)).first() is None


@pytest.mark.parametrize(
    ("enabled", "frozen_before"), [(True, False), (False, False), (True, True)]
)
def test_a_sweep_gives_the_garbage_collector_back_as_it_found_it(
    store: Store, monkeypatch: pytest.MonkeyPatch, enabled: bool, frozen_before: bool
) -> None:
    """The collector is never switched off by a sweep (other threads keep collecting):
    while the page's rows are deleted it is on exactly when it was on before, and the
    heap older than the sweep is frozen out of its walks. Afterwards, and after a page
    that failed, the collector and the frozen heap are as they were; a heap the
    application froze itself stays frozen, no more and no less."""
    import gc

    from learnprivacy.store import _sweep

    old = day(2020, 1, 1)
    store.add_all([learner(f"G{i:02d}", last_activity_at=old) for i in range(4)])
    schedule = Schedule({rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    during: list[tuple[bool, bool]] = []
    original = _sweep.erase_rows

    def watching(*args: Any, **kwargs: Any) -> int:
        during.append((gc.isenabled(), gc.get_freeze_count() > 0))
        return original(*args, **kwargs)

    def failing(*_args: Any, **_kwargs: Any) -> None:
        during.append((gc.isenabled(), gc.get_freeze_count() > 0))
        raise RuntimeError("page failed")

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        if frozen_before:
            gc.freeze()
        monkeypatch.setattr(_sweep, "erase_rows", failing)
        with pytest.raises(RuntimeError):
            store.sweep(schedule, now=NOW, compact=False)
        assert gc.isenabled() is enabled
        # (A frozen object may still be freed by reference counting: not a count.)
        assert (gc.get_freeze_count() > 0) is frozen_before
        assert store.count(rec.Learner) == 4  # the failed page rolled back
        monkeypatch.setattr(_sweep, "erase_rows", watching)
        report = store.sweep(schedule, now=NOW, compact=False)
        assert gc.isenabled() is enabled
        assert (gc.get_freeze_count() > 0) is frozen_before
    finally:
        gc.unfreeze()
        gc.enable() if was else gc.disable()
    assert during == [(enabled, True), (enabled, True)]
    assert report.erased == 4
