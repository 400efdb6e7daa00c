"""A sweep page's shreds owed in one outbox row (``store/_keystore.py``, migration 0007).

A page that erases many learners writes one row naming their key references, not one
row per learner. What must still hold: every reference named is destroyed once owed,
by the sweep or by the next open; a writer that settles one learner of such a row
takes that learner out and leaves the others owed (two writers on PostgreSQL without
overwriting each other); an altered row applies nothing and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError
from learnprivacy.records import Learner
from learnprivacy.store import Store, _migrate
from learnprivacy.store._keystore import SqlKeyStore
from tests import account
from tests.store_fixtures import MASTER_KEY, NOW, OWED_SQL, keys_for, owed_refs
from tests.sweep_kill_worker import SCHEDULE

_params = pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)
EXPIRED, KEPT = 12, 3
GONE = [f"GONE{n:02d}" for n in range(EXPIRED)]


def _open(url: str) -> Store:
    return Store(
        url, keys=keys_for(url), keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW
    )


def _outbox(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(OWED_SQL)).all()]
    engine.dispose()
    return rows


def _live(store: Store, learner_id: str) -> list[str]:
    """Key ids of ``learner_id``'s contract keys not shredded."""
    ref = store.keyring.key_ref(learner_id)
    return [e.key_id for e in store._keys.list_entries(ref, "contract") if e.wrapped]


@pytest.fixture
def swept_unapplied(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store whose sweep erased GONE00.. in one page and committed, its process gone
    before any key was destroyed (``apply_sent`` never ran)."""
    old = NOW - dt.timedelta(days=900)
    store = _open(empty_url)
    store.add_all([account(x, last_activity_at=old) for x in GONE])
    store.add_all([account(f"STAY{n}", last_activity_at=NOW) for n in range(KEPT)])

    def never(self: SqlKeyStore, **_options: object) -> int:
        self.discard_sent()
        return 0

    with monkeypatch.context() as patch:
        patch.setattr(SqlKeyStore, "apply_sent", never)
        report = store.sweep(SCHEDULE, now=NOW, batch_size=100, compact=False)
    assert report.erased == EXPIRED
    assert all(_live(store, x) for x in GONE)  # owed, not yet destroyed
    store.close()
    return empty_url


@_params
def test_a_page_owes_its_shreds_in_one_row_and_the_next_open_pays_them(
    swept_unapplied: str,
) -> None:
    url = swept_unapplied
    rows = _outbox(url)
    assert len(rows) == 1
    assert rows[0][0] == ""
    with _open(url) as store:
        assert owed_refs(rows) == {store.keyring.key_ref(x) for x in GONE}
    with _open(url) as store:  # the first open applied the row
        assert _outbox(url) == []
        assert not [x for x in GONE if _live(store, x)]
        assert all(_live(store, f"STAY{n}") for n in range(KEPT))
        assert store.audit.verify()


@_params
def test_a_writer_takes_its_learner_out_of_a_page_row_and_leaves_the_others_owed(
    swept_unapplied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GONE03 comes back (expired data, no tombstone): the writer destroys the doomed
    key, writes under a new one, and the page row owes the eleven others only. Left
    owing GONE03, the next open would destroy the new key too (the record unreadable)."""
    url = swept_unapplied
    with monkeypatch.context() as patch:
        # Opened by a process that leaves the outbox to the writers.
        patch.setattr(SqlKeyStore, "apply_outbox", lambda _self: 0)
        store = _open(url)
    with store:
        ref = store.keyring.key_ref("GONE03")
        doomed = _live(store, "GONE03")
        returning = account("GONE03", last_activity_at=NOW)
        store.add(returning)
        assert not set(doomed) & set(_live(store, "GONE03"))
        owed = owed_refs(_outbox(url))
        assert ref not in owed
        assert owed == {store.keyring.key_ref(x) for x in GONE if x != "GONE03"}
    with _open(url) as store:
        assert _outbox(url) == []
        assert store.get(Learner, "GONE03") == returning
        assert _live(store, "GONE03")
        assert not [x for x in GONE if x != "GONE03" and _live(store, x)]


@_params
@pytest.mark.parametrize(
    "altered",
    ["not json", "[]", '"k1_x"', "[1, 2]", '["k1_a", ""]', "{}"],
)
def test_an_altered_page_row_applies_nothing_and_raises(swept_unapplied: str, altered: str) -> None:
    url = swept_unapplied
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE lp_key_outbox SET subject_refs = :v"), {"v": altered})
    engine.dispose()
    with pytest.raises(IntegrityError, match="key outbox row"):
        _open(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        # Nothing deleted; the row put back as written, the open pays it in full.
        assert connection.execute(sa.text("SELECT count(*) FROM lp_key_outbox")).scalar() == 1
    engine.dispose()


def test_a_row_naming_one_reference_and_a_list_is_refused(empty_url: str) -> None:
    """A row keeps one form: its own reference, or an empty one and a list."""
    with _open(empty_url) as store, store._db.write() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO lp_key_outbox (subject_ref, scope, tombstone, subject_refs) "
                "VALUES ('k1_a', 'contract', false, :refs)"
            ),
            {"refs": json.dumps(["k1_b"])},
        )
    with pytest.raises(IntegrityError, match="key outbox row"):
        _open(empty_url)


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_two_writers_settling_one_page_row_keep_each_others_change(
    swept_unapplied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two transactions take GONE01 and GONE02 out of the same row at once. Without the
    row lock the second would write back the list it read before the first committed,
    and GONE01 would be owed again (its next key destroyed by the next open)."""
    url = swept_unapplied
    with monkeypatch.context() as patch:
        patch.setattr(SqlKeyStore, "apply_outbox", lambda _self: 0)
        store = _open(url)
    with store:
        keys: Any = store._keys
        first, second = (store.keyring.key_ref(x) for x in ("GONE01", "GONE02"))
        started, done = threading.Event(), threading.Event()
        errors: list[BaseException] = []
        engine = store._db.engine

        def later() -> None:
            try:
                with engine.begin() as connection:
                    started.set()
                    keys.settle(connection, [second])
                done.set()
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        with engine.begin() as connection:
            keys.settle(connection, [first])
            thread = threading.Thread(target=later)
            thread.start()
            assert started.wait(30)
            # The second transaction waits on the row this one holds.
            assert not done.wait(1.0)
        thread.join(60)
        assert not errors
        owed = owed_refs(_outbox(url))
        assert first not in owed
        assert second not in owed
        assert owed == {store.keyring.key_ref(x) for x in GONE if x not in ("GONE01", "GONE02")}


@_params
def test_a_downgrade_keeps_every_shred_owed_and_an_upgrade_pays_them(swept_unapplied: str) -> None:
    """Down to revision 0006 the page row becomes one row per reference (the form that
    version reads); opened again, the store upgrades and destroys every key owed."""
    url = swept_unapplied
    owed = owed_refs(_outbox(url))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        _migrate.downgrade(connection, "0006")
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("lp_key_outbox")}
        refs = connection.execute(sa.text("SELECT subject_ref FROM lp_key_outbox")).scalars()
        assert sorted(refs) == sorted(owed)
    engine.dispose()
    assert "subject_refs" not in columns
    with _open(url) as store:
        assert _outbox(url) == []
        assert not [x for x in GONE if _live(store, x)]
        assert all(_live(store, f"STAY{n}") for n in range(KEPT))


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_a_learner_page_holds_its_learners_when_their_keys_are_read(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of learner accounts does not lock its learners a second time before
    reading their keys: the page's own query holds them. Checked from another
    connection at that moment, each of them is locked (a writer would wait)."""
    from learnprivacy.store import _sweep

    old = NOW - dt.timedelta(days=900)
    store = _open(empty_url)
    store.add_all([account(x, last_activity_at=old) for x in GONE])
    original = _sweep.live_keys
    checked: list[list[str]] = []

    def watched(owner: Store, connection: Any, learners: Any, scope: str, **options: Any) -> Any:
        other = sa.create_engine(empty_url)
        with other.connect() as probe:
            probe.execute(sa.text("SET lock_timeout = '50ms'"))
            for learner_id in sorted(learners):
                with pytest.raises(sa.exc.OperationalError, match="lock"):
                    probe.execute(
                        sa.text("SELECT id FROM lp_learner WHERE id = :i FOR UPDATE NOWAIT"),
                        {"i": learner_id},
                    )
                probe.rollback()
                probe.execute(sa.text("SET lock_timeout = '50ms'"))
        other.dispose()
        checked.append(sorted(learners))
        return original(owner, connection, learners, scope, **options)

    monkeypatch.setattr(_sweep, "live_keys", watched)
    report = store.sweep(SCHEDULE, now=NOW, batch_size=5, compact=False)
    store.close()
    assert report.erased == EXPIRED
    assert sorted(x for page in checked for x in page) == GONE


@_params
def test_an_outbox_applied_while_a_writer_settles_keeps_the_writer_s_new_key(
    swept_unapplied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store opening applies the page row while GONE03 comes back through another
    process. Read before and applied after, the row still named GONE03 after the writer
    had settled it and written under a new key: that new key was destroyed, and the
    record written under it with it."""
    url = swept_unapplied
    with monkeypatch.context() as patch:
        patch.setattr(SqlKeyStore, "apply_outbox", lambda _self: 0)
        writer = _open(url)
        opener = _open(url)
    returning = account("GONE03", last_activity_at=NOW)
    done: list[BaseException | None] = []

    def come_back() -> None:
        try:
            writer.add(returning)
            done.append(None)
        except BaseException as error:
            done.append(error)

    real = SqlKeyStore._apply
    thread = threading.Thread(target=come_back)

    def applying(self: SqlKeyStore, rows: Any) -> int:
        if not thread.is_alive() and not done:
            thread.start()
            thread.join(2.0)  # the writer runs now, or waits for this transaction
        return real(self, rows)

    with writer, opener:
        with monkeypatch.context() as patch:
            patch.setattr(SqlKeyStore, "_apply", applying)
            opener._keys.apply_outbox()
        thread.join(60)
        assert done == [None]
        assert _outbox(url) == []
        assert opener.get(Learner, "GONE03") == returning
        assert _live(opener, "GONE03")
        assert not [x for x in GONE if x != "GONE03" and _live(opener, x)]
