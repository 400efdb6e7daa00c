"""``Store.verify_anonymised(since=...)`` reads the rows on the driver's cursor with a
statement compiled once per table: the same rows and the same verdicts as a read through
SQLAlchemy, on SQLite and PostgreSQL, and every defect still found."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError
from learnprivacy.store import Store
from tests import record_of, sample
from tests.store_fixtures import keys_for

UTC = dt.UTC
EARLIER = dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
T = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
# A learner id that a stored date spells ("2026-02-..."): only a check that reads the
# date column as a date, as the store's column type makes it, tells them apart.
LEARNER = "2026"


def _records(learner: str) -> list[Any]:
    return [
        sample(rec.Learner, id=learner, username=f"user-{learner}", family_name="Silvestre"),
        *(
            record_of(
                learner,
                rec.Progress,
                f"P{n}",
                course_id=f"C{n}",
                recorded_at=dt.datetime(2026, 2, 3 + n, 10, 17, 41, tzinfo=UTC),
            )
            for n in range(3)
        ),
        record_of(learner, rec.AccessEvent, "A1", at=T - dt.timedelta(days=2), ip="192.0.2.44"),
    ]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """Learner 2026 anonymised at T (3 progress rows, 1 access event), learner L0002's
    progress a year earlier."""
    with Store(
        store_url, keyring=Keyring.generate(), keys=keys_for(store_url), clock=lambda: T
    ) as opened:
        now, old = _records(LEARNER), _records("L0002")
        opened.add_all(now + old, now=EARLIER)
        opened.anonymise_records(
            [r for r in old if isinstance(r, rec.Progress)], now=EARLIER, reason="test"
        )
        opened.anonymise_records(
            [r for r in now if isinstance(r, rec.Progress | rec.AccessEvent)],
            now=T,
            reason="test",
        )
        yield opened


def test_the_recheck_since_reads_exactly_the_rows_anonymised_since(store: Store) -> None:
    """Rows anonymised at T are read, of every record type of ``known``; the earlier
    ones only when ``since`` reaches back to them; none identifies anyone."""
    known = _records(LEARNER)
    assert store.verify_anonymised(known, since=T) == 4
    assert store.verify_anonymised(known, since=T + dt.timedelta(microseconds=1)) == 0
    assert store.verify_anonymised(known, since=EARLIER) == 7
    # Through SQLAlchemy (no ``since``): the same verdict over every anonymised row.
    assert store.verify_anonymised(known) == 7
    # The plan compiled for this dialect is reused: same answer a second time.
    assert store.verify_anonymised(known, since=T) == 4


@pytest.mark.parametrize(
    ("tamper", "defect"),
    [
        ("UPDATE lp_progress SET course_id = 'course of 2026'", "Progress.course_id names"),
        ("UPDATE lp_progress SET learner_id = '2026'", "Progress.learner_id names"),
        ("UPDATE lp_progress SET id = '2026-P1'", "Progress.id names"),
        ("UPDATE lp_progress SET recorded_at = :at", "Progress.recorded_at keeps an exact date"),
    ],
)
def test_a_row_marked_anonymised_that_still_names_the_learner_is_reported(
    store: Store, tamper: str, defect: str
) -> None:
    """Attack: one row anonymised at T is given back its learner id, its record id, the
    learner id inside another column, or its exact time; the fast re-check raises
    IntegrityError naming field and defect, not the value, and counts the one row."""
    known = _records(LEARNER)
    at = dt.datetime(2026, 2, 4, 10, 17, 41)
    with store.engine.begin() as connection:
        victim = connection.execute(
            text("SELECT id FROM lp_progress WHERE lp_anonymised_at >= :t ORDER BY id LIMIT 1"),
            {"t": T.replace(tzinfo=None)},
        ).scalar_one()
        connection.execute(text(tamper + " WHERE id = :victim"), {"victim": victim, "at": at})
    with pytest.raises(IntegrityError, match=defect) as caught:
        store.verify_anonymised(known, since=T)
    assert "(1 row(s))" in str(caught.value)
    assert "2026" not in str(caught.value).replace("2026-", "")
    # Rows anonymised before ``since`` are not read: the earlier rows pass.
    assert store.verify_anonymised(_records("L0002"), since=T + dt.timedelta(days=1)) == 0


def test_a_ciphertext_left_in_an_anonymised_account_is_reported(store: Store) -> None:
    """Attack: an account marked anonymised at T keeps its name's ciphertext."""
    [account] = [r for r in _records(LEARNER) if isinstance(r, rec.Learner)]
    with store.engine.begin() as connection:
        token = connection.execute(
            text("SELECT family_name_token FROM lp_learner WHERE id = :id"), {"id": LEARNER}
        ).scalar_one()
    store.anonymise_records([account], now=T, reason="test")
    assert store.verify_anonymised([account], since=T) == 1
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE lp_learner SET family_name_token = :token "
                "WHERE lp_anonymised_at IS NOT NULL"
            ),
            {"token": token},
        )
    with pytest.raises(IntegrityError, match=r"Learner\.family_name keeps its ciphertext"):
        store.verify_anonymised([account], since=T)


def test_a_learner_id_spelled_inside_a_value_is_found_among_many_learners(store: Store) -> None:
    """Attack: with thousands of learners to look for (an anonymisation of a whole
    cohort), a value that spells one of them inside other text is still reported, for
    each length of id; nothing is reported while no value spells one."""
    known = _records(LEARNER)
    many = [f"A{n:03d}" for n in range(2_000)] + [f"B{n:05d}" for n in range(2_000)]
    assert store.verify_anonymised(known, since=T, learner_ids=many) == 4
    for spelled in ("A1717", "course B01999 (2nd)"):
        with store.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lp_progress SET course_id = :value WHERE id = "
                    "(SELECT min(id) FROM lp_progress WHERE lp_anonymised_at >= :t)"
                ),
                {"value": f"course {spelled}", "t": T.replace(tzinfo=None)},
            )
        with pytest.raises(IntegrityError, match=r"Progress\.course_id names .* \(1 row\(s\)\)"):
            store.verify_anonymised(known, since=T, learner_ids=many)


@pytest.mark.parametrize(
    ("tamper", "defect"),
    [
        ("SET course_id = 'course of 2026'", "Progress.course_id names"),
        ("SET recorded_at = :at", "Progress.recorded_at keeps an exact date"),
        # A field of several columns: a learner id in the last of them (three
        # characters: the column's width on PostgreSQL).
        ("SET score_kinds = 'Z26'", "Progress.score names"),
    ],
)
def test_the_same_defect_in_every_row_is_counted_in_every_row(
    store: Store, tamper: str, defect: str
) -> None:
    """Attack: every row anonymised at T gets the same identifying value. A re-check
    remembers its answer for a value it has seen (rows repeat their values); each row
    must still be counted, and a later re-check of clean rows must not reuse it."""
    known = _records(LEARNER)
    at = dt.datetime(2026, 2, 4, 10, 17, 41)
    with store.engine.begin() as connection:
        connection.execute(
            text(f"UPDATE lp_progress {tamper} WHERE lp_anonymised_at >= :t"),
            {"t": T.replace(tzinfo=None), "at": at},
        )
    if "date" not in defect:
        # A re-check for someone else first: nothing in these values names them, and
        # that answer must not carry over to the next re-check.
        assert store.verify_anonymised(_records("L0002"), since=T) == 4
    with pytest.raises(IntegrityError, match=defect) as caught:
        store.verify_anonymised(known, since=T, learner_ids=["Z26"])
    assert "(3 row(s))" in str(caught.value)


def _tamper_first_row(store: Store, value: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE lp_progress SET course_id = :value WHERE id = "
                "(SELECT min(id) FROM lp_progress WHERE lp_anonymised_at >= :t)"
            ),
            {"value": value, "t": T.replace(tzinfo=None)},
        )


def test_a_re_check_on_the_kept_connection_sees_what_was_written_since_the_last_one(
    store: Store,
) -> None:
    """Attack: a re-check passes, then a row is given back its learner id by another
    connection; the next re-check on the same thread (on SQLite, the connection kept
    between re-checks) reads the database as it is now and reports it. The kept
    connection holds no read transaction: the log is still truncated by a checkpoint."""
    from learnprivacy.store import _anonymisation

    known = _records(LEARNER)
    assert store.verify_anonymised(known, since=T) == 4
    held = _anonymisation._HELD.get(store.engine)
    if store._db.is_sqlite:
        assert held is not None
        assert held.raw is not None
        store._db.checkpoint()
        wal = Path(str(store.engine.url.database) + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
    else:
        assert held is None  # PostgreSQL connections keep the pool's pre-ping
    _tamper_first_row(store, "course of 2026")
    with pytest.raises(IntegrityError, match=r"Progress\.course_id names .* \(1 row\(s\)\)"):
        store.verify_anonymised(known, since=T)


def test_a_re_check_while_another_holds_the_kept_connection_uses_the_pool(
    store: Store,
) -> None:
    """Attack: the kept connection is busy (another thread's re-check); this one reads
    through the pool instead, with the same verdicts."""
    from learnprivacy.store import _anonymisation

    known = _records(LEARNER)
    assert store.verify_anonymised(known, since=T) == 4
    held = _anonymisation._HELD.get(store.engine)
    if held is None:
        pytest.skip("no connection is kept for PostgreSQL")
    with held.lock:
        assert store.verify_anonymised(known, since=T) == 4
        _tamper_first_row(store, "course of 2026")
        with pytest.raises(IntegrityError, match=r"Progress\.course_id names"):
            store.verify_anonymised(known, since=T)


def test_a_kept_connection_that_failed_is_dropped_and_closing_the_store_closes_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-check failing half-way drops the kept connection (the next one opens
    another and reads correctly); ``Store.close`` closes the kept connection; a store over
    an application's engine keeps none."""
    from learnprivacy.store import _anonymisation

    if not store_url.startswith("sqlite"):
        pytest.skip("no connection is kept for PostgreSQL")
    keyring = Keyring.generate()
    opened = Store(store_url, keyring=keyring, keys=keys_for(store_url))
    records = _records(LEARNER)
    opened.add_all(records, now=EARLIER)
    progress = [r for r in records if isinstance(r, rec.Progress)]
    opened.anonymise_records(progress, now=T, reason="test")
    assert opened.verify_anonymised(records, since=T) == 3
    held = _anonymisation._HELD[opened.engine]
    first = held.raw
    original = _anonymisation._Plan.decode

    def broken(*_args: Any) -> Any:
        raise RuntimeError("decoder failed")

    monkeypatch.setattr(_anonymisation._Plan, "decode", broken)
    with pytest.raises(RuntimeError, match="decoder failed"):
        opened.verify_anonymised(records, since=T)
    assert held.raw is None
    monkeypatch.setattr(_anonymisation._Plan, "decode", original)
    assert opened.verify_anonymised(records, since=T) == 3
    assert held.raw is not None
    assert held.raw is not first
    kept = held.raw.dbapi_connection
    opened.close()
    assert held.raw is None
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")
    engine = create_engine(store_url)
    try:
        with Store(engine, keyring=keyring, keys=keys_for(store_url)) as theirs:
            assert theirs.verify_anonymised(records, since=T) == 3
            assert theirs.engine not in _anonymisation._HELD
    finally:
        engine.dispose()


def test_a_random_id_that_spells_a_learner_id_by_chance_names_nobody(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anonymisation's own random ids (32 hex digits) spell a numeric learner id such
    as ``2026`` once in about 2,300 draws: such an id names nobody, and the anonymisation
    it ends is not refused (it was: one CI run in a few hundred). An id of another form
    that spells the learner is still reported."""
    from learnprivacy.store import _actions

    drawn = iter(range(1, 1_000))
    monkeypatch.setattr(_actions, "random_subject", lambda: f"anon-2026{next(drawn):028x}")
    with Store(
        store_url, keyring=Keyring.generate(), keys=keys_for(store_url), clock=lambda: T
    ) as opened:
        known = _records(LEARNER)
        opened.add_all(known, now=EARLIER)
        ended = [r for r in known if isinstance(r, rec.Progress | rec.AccessEvent)]
        opened.anonymise_records(ended, now=T, reason="test")
        assert opened.verify_anonymised(known, since=T) == len(ended)
        with opened.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lp_progress SET id = :id WHERE id = (SELECT min(id) FROM lp_progress)"
                ),
                {"id": "anon-2026"},
            )
        with pytest.raises(IntegrityError, match=r"Progress\.id names"):
            opened.verify_anonymised(known, since=T)


#: A learner id of 32 hex digits (``uuid4().hex``), as many LMSs use.
HEX_LEARNER = "9f86d081884c7d659a2feaa0c55ad015"


@pytest.mark.parametrize("column", ["learner_id", "course_id"])
def test_a_value_of_the_random_form_that_holds_a_whole_learner_id_names_the_learner(
    store_url: str, column: str
) -> None:
    """``anon-`` and the learner's own 32-hex id has the random ids' form, but no draw
    makes it by chance (one in 2**128): the row still names the learner. Only an id
    short enough for chance to spell it is excused inside a random id."""
    with Store(
        store_url, keyring=Keyring.generate(), keys=keys_for(store_url), clock=lambda: T
    ) as opened:
        known = _records(HEX_LEARNER)
        opened.add_all(known, now=EARLIER)
        ended = [r for r in known if isinstance(r, rec.Progress)]
        opened.anonymise_records(ended, now=T, reason="test")
        assert opened.verify_anonymised(known, since=T) == len(ended)
        with opened.engine.begin() as connection:
            connection.execute(
                text(
                    f"UPDATE lp_progress SET {column} = :value "
                    "WHERE id = (SELECT min(id) FROM lp_progress)"
                ),
                {"value": f"anon-{HEX_LEARNER}"},
            )
        with pytest.raises(IntegrityError, match=rf"Progress\.{column} names"):
            opened.verify_anonymised(known, since=T)
