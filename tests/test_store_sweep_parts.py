"""A sweep split between workers by learner range: same outcome, disjoint work, one chain."""

from __future__ import annotations

import threading
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select, update

from learnprivacy.crypto import Keyring
from learnprivacy.errors import AuditTampered, ValidationError
from learnprivacy.records import Learner
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store, SweepPart
from learnprivacy.store._tables import AUDIT
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    day,
    keys_for,
    learner,
    population,
    retention_schedule,
)
from tests.test_store_sweep import _state

ACTIVITY = Schedule({Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})


def _learners(count: int) -> list[Learner]:
    """``count`` learners, every other one expired at NOW."""
    return [
        learner(
            f"W{i:04d}",
            last_activity_at=day(2020, 1, 1) if i % 2 == 0 else day(2026, 3, 1),
        )
        for i in range(count)
    ]


def _live_ids(store: Store) -> set[str]:
    return {r.id for r in store.query(Learner, include_restricted=True)}


def test_parts_cover_every_learner_once(store: Store) -> None:
    store.add_all(_learners(30))
    parts = store.sweep_parts(3)
    assert len(parts) == 3
    assert parts[0].start is None
    assert parts[-1].stop is None
    for before, after in pairwise(parts):
        assert before.stop == after.start
    for learner_id in [*_live_ids(store), "", "A", "zzzz", "W9999", "W0000-later"]:
        assert sum(learner_id in part for part in parts) == 1
    sizes = [sum(i in part for i in _live_ids(store)) for part in parts]
    assert sizes == [10, 10, 10]
    assert store.sweep_parts(1) == (SweepPart(),)


def test_sweeping_every_part_equals_one_sweep(tmp_path: Any) -> None:
    """Every record type and action (anonymise, restrict, review, the account guard): the
    parts swept one after the other leave the store as one whole sweep does."""
    keyring = Keyring.from_master_key(MASTER_KEY)
    records = population(40)
    states = []
    for name, parts in (("whole", 1), ("split", 3)):
        store = Store(f"sqlite:///{tmp_path / name}.db", keyring=keyring, clock=lambda: NOW)
        store.add_all(records)
        erased = 0
        for part in store.sweep_parts(parts):
            erased += store.sweep(retention_schedule(), now=NOW, part=part, batch_size=7).erased
        states.append((erased, _state(store)))
        assert store.audit.verify()
        store.close()
    assert states[0][0] > 0
    assert states[0] == states[1]


def test_a_part_sweeps_its_learners_only(store: Store) -> None:
    people = _learners(20)
    store.add_all(people)
    first, second = store.sweep_parts(2)
    report = store.sweep(ACTIVITY, now=NOW, part=first, compact=False)
    expired = {p.id for p in people if p.last_activity_at == day(2020, 1, 1)}
    mine = {i for i in expired if i in first}
    assert report.erased == len(mine) == 5
    assert _live_ids(store) == {p.id for p in people} - mine
    assert store.sweep(ACTIVITY, now=NOW, part=second, compact=False).erased == 5
    assert _live_ids(store) == {p.id for p in people} - expired


def test_learners_written_after_the_split_are_swept(store: Store) -> None:
    """The parts cover ids that did not exist when they were computed: nothing falls
    between two workers."""
    store.add_all(_learners(10))
    parts = store.sweep_parts(2)
    late = [learner(i, last_activity_at=day(2020, 1, 1)) for i in ("A-first", "W0003x", "Z-last")]
    store.add_all(late)
    erased = sum(store.sweep(ACTIVITY, now=NOW, part=p, compact=False).erased for p in parts)
    assert erased == 5 + 3
    assert not {r.id for r in late} & _live_ids(store)


def test_bad_parts_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        SweepPart(start="b", stop="a")
    with pytest.raises(ValidationError):
        SweepPart(start=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.sweep(ACTIVITY, now=NOW, part=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.sweep_parts(0)
    with pytest.raises(ValidationError):
        SweepPart.from_json({"start": "a"})
    part = SweepPart(start="W0001", stop="W0009")
    assert "W000" not in repr(part)
    assert SweepPart.from_json(part.to_json()) == part


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_workers_on_parts_share_one_verifiable_chain(store: Store, store_url: str) -> None:
    """PostgreSQL: two workers sweep their parts at the same time. Every expired learner
    is erased once (checked in the database afterwards), the one audit chain holds both
    workers' entries and verifies, and an entry altered in either worker's share of the
    chain is found."""
    people = _learners(400)
    store.add_all(people)
    parts = store.sweep_parts(2)
    workers = [
        Store(
            store_url,
            keyring=Keyring.from_master_key(MASTER_KEY),
            keys=keys_for(store_url),
            actor=f"sweep-{n}",
        )
        for n in range(2)
    ]
    reports: list[Any] = [None, None]
    start = threading.Barrier(2)

    def run(n: int) -> None:
        start.wait(30)
        reports[n] = workers[n].sweep(
            ACTIVITY, now=NOW, part=parts[n], batch_size=25, compact=False
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for worker in workers:
        worker.close()
    assert [r.erased for r in reports] == [100, 100]
    expired = {p.id for p in people if p.last_activity_at == day(2020, 1, 1)}
    assert _live_ids(store) == {p.id for p in people} - expired
    assert store.audit.verify()
    with store._db.read() as connection:
        by_actor = {
            actor: sequence
            for sequence, actor in connection.execute(
                select(AUDIT.c.sequence, AUDIT.c.actor).where(AUDIT.c.action == "erase")
            )
        }
    assert set(by_actor) == {"sweep-0", "sweep-1"}
    for actor, sequence in sorted(by_actor.items()):
        with store._db.write() as connection:
            (original,) = connection.execute(
                select(AUDIT.c.outcome).where(AUDIT.c.sequence == sequence)
            ).one()
            connection.execute(
                update(AUDIT).where(AUDIT.c.sequence == sequence).values(outcome="forged")
            )
        with pytest.raises(AuditTampered) as caught:
            store.audit.verify()
        assert caught.value.sequence == sequence, actor
        with store._db.write() as connection:
            connection.execute(
                update(AUDIT).where(AUDIT.c.sequence == sequence).values(outcome=original)
            )
        assert store.audit.verify()


def test_a_sweep_applies_only_the_shreds_it_sent(store: Store) -> None:
    """A shred another process committed to the outbox and has yet to apply is left to it
    (or to the next store opening): a sweep destroys the keys it sent, so two workers
    never update the same key rows at once (they deadlocked on PostgreSQL when each
    applied the whole outbox)."""
    from learnprivacy.store._tables import KEY_OUTBOX

    people = _learners(10)
    store.add_all(people)
    other = store.keyring.key_ref("W0001")
    with store._db.write() as connection:
        connection.execute(
            KEY_OUTBOX.insert().values(subject_ref=other, scope="contract", tombstone=False)
        )
    report = store.sweep(ACTIVITY, now=NOW, compact=False)
    assert report.erased == report.shredded == 5
    with store._db.read() as connection:
        left = connection.execute(select(KEY_OUTBOX.c.subject_ref)).scalars().all()
    assert left == [other]
    # The key it names is still alive until that shred is applied, then destroyed.
    assert store._key_db.live([other], "contract")
    assert store._keys.apply_outbox() == 1
    assert not store._key_db.live([other], "contract")


def test_the_first_part_takes_null_ids_only_where_a_column_can_hold_them() -> None:
    """``OR id IS NULL`` on a column that cannot be NULL keeps the database from bounding
    the page's index scan at the part's end: the first part's last page then read every
    later part's rows (PostgreSQL). Where NULL can be stored it still belongs to part one."""
    import sqlalchemy as sa

    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("learner_id", sa.String, nullable=False),
        sa.Column("owner", sa.String, nullable=True),
    )
    first, last = SweepPart(stop="M"), SweepPart(start="M")
    assert str(first.condition(table.c.id)) == "t.id < :id_1"
    assert str(first.condition(table.c.learner_id)) == "t.learner_id < :learner_id_1"
    assert str(first.condition(table.c.owner)) == "t.owner < :owner_1 OR t.owner IS NULL"
    assert "NULL" not in str(last.condition(table.c.owner))
    engine = sa.create_engine("sqlite://")
    table.metadata.create_all(engine)
    # A row without an owner is swept by the first part, and by no other.
    rows = [
        {"id": "A", "learner_id": "A", "owner": None},
        {"id": "Z", "learner_id": "Z", "owner": "Z"},
    ]
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
        found = {
            part: set(
                connection.execute(
                    sa.select(table.c.id).where(part.condition(table.c.owner))
                ).scalars()
            )
            for part in (first, last)
        }
    assert found == {first: {"A"}, last: {"Z"}}
