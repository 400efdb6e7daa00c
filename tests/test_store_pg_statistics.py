"""PostgreSQL's planner statistics never keep an erased learner's id.

``ANALYZE`` (run by autovacuum whenever a table has changed enough) copies sampled values
into ``pg_statistic``: a column's most common values and its histogram bounds, readable
through the ``pg_stats`` view by anyone who may read the table. An erasure does not remove
them: they stay until the table is analysed again, then in the catalog's dead rows. Record
ids get no statistics; a write that removes a sampled learner id has the table analysed
again and the catalog rewritten, and a crash in between is finished by the next open.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.records import (
    Funding,
    Invoice,
    Progress,
)
from learnprivacy.store import Store
from tests import count_calls
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    day,
    learner,
    psql,
    records_for,
    retention_schedule,
)

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

pytestmark = pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)

#: Few enough learners for ANALYZE to keep every id as a histogram bound, in arrays
#: small enough to be stored uncompressed (so that a byte search finds them).
LEARNERS = [f"stat-learner-{n:04d}-Qz" for n in range(40)]
ERASED = LEARNERS[7]

#: The record tables with a learner_id column.
RECORD_TABLES = (
    "lp_progress",
    "lp_certificate",
    "lp_invoice",
    "lp_funding",
    "lp_consent",
    "lp_access_event",
)


#: Record types an erasure request keeps (legal obligation).
KEPT_BY_LAW = (Invoice, Funding)


@pytest.fixture
def database(empty_url: str) -> str:
    return empty_url.rsplit("/", 1)[1]


@pytest.fixture
def keys(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}"


def _open(url: str, keys: str) -> Store:
    return Store(url, keyring=Keyring.from_master_key(MASTER_KEY), keys=keys, clock=lambda: NOW)


@pytest.fixture
def store(empty_url: str, keys: str) -> Iterator[Store]:
    opened = _open(empty_url, keys)
    # Half the learners inactive since 2023: the retention schedule sweeps them.
    # ERASED has no invoice nor funding file, which the law would keep: an erasure removes
    # every row of theirs.
    opened.add_all(
        r
        for n, lid in enumerate(LEARNERS)
        for r in [
            learner(lid, last_activity_at=day(2023, 1, 31) if n % 2 else day(2026, 5, 1)),
            *(r for r in records_for(lid) if lid != ERASED or type(r) not in KEPT_BY_LAW),
        ]
    )
    yield opened
    opened.close()


def _sampled(server: TemporaryPostgres, database: str, column: str) -> dict[str, set[str]]:
    """The learner ids ``pg_stats`` shows for ``column`` of each store table."""
    rows = psql(
        server,
        database,
        "SELECT tablename, most_common_vals::text, histogram_bounds::text FROM pg_stats "
        f"WHERE tablename LIKE 'lp\\_%' AND attname = '{column}'",
    )
    found: dict[str, set[str]] = {}
    for table, common, bounds in rows:
        text = f"{common} {bounds}"
        found.setdefault(table, set()).update(lid for lid in LEARNERS if lid in text)
    return found


def _stale(server: TemporaryPostgres, database: str) -> dict[str, set[str]]:
    """Per table, the learner ids its statistics sample that it no longer holds."""
    stale = {}
    for table, sampled in _sampled(server, database, "learner_id").items():
        rows = psql(server, database, f"SELECT DISTINCT learner_id FROM {table}")
        gone = sampled - {row[0] for row in rows}
        if gone:
            stale[table] = gone
    return stale


def _statistic_pages(server: TemporaryPostgres, database: str) -> bytes:
    """The bytes of ``pg_statistic``'s relation files, its TOAST table's included (dead
    rows included)."""
    psql(server, database, "CHECKPOINT")
    paths = psql(
        server,
        database,
        "SELECT pg_relation_filepath(oid), pg_relation_filepath(reltoastrelid) "
        "FROM pg_class WHERE oid = 'pg_statistic'::regclass",
    )[0]
    return b"".join((server.data_dir / path).read_bytes() for path in paths)


def _marks(server: TemporaryPostgres, database: str) -> list[str]:
    return [r[0] for r in psql(server, database, "SELECT key FROM lp_meta WHERE key LIKE 'stat%'")]


def test_record_ids_are_never_sampled(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    psql(postgres_server, database, "ANALYZE")
    assert not any(_sampled(postgres_server, database, "id").values())
    targets = psql(
        postgres_server,
        database,
        "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relname LIKE 'lp\\_%' AND c.relkind = 'r' AND a.attname = 'id' "
        "AND a.attstattarget = 0",
    )
    assert sorted(r[0] for r in targets) == sorted(("lp_learner", *RECORD_TABLES))


def test_an_erasure_leaves_its_learner_in_no_statistics(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    psql(postgres_server, database, "ANALYZE")
    # The attack's premise: every table samples the learner about to be erased.
    sampled = _sampled(postgres_server, database, "learner_id")
    assert sorted(t for t, ids in sampled.items() if ERASED in ids) == sorted(
        t for t in RECORD_TABLES if t not in ("lp_invoice", "lp_funding")
    )
    assert ERASED.encode() in _statistic_pages(postgres_server, database)
    store.erase_subject(ERASED, now=NOW)
    assert _stale(postgres_server, database) == {}
    assert ERASED.encode() not in _statistic_pages(postgres_server, database)
    assert _marks(postgres_server, database) == []
    # The planner keeps its statistics on the learners still there.
    assert LEARNERS[8] in _sampled(postgres_server, database, "learner_id")["lp_progress"]


def test_a_sweep_leaves_no_swept_learner_in_statistics(
    store: Store,
    postgres_server: TemporaryPostgres,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages of 7 rows, most of them removing sampled learners: the tables are marked
    page after page and analysed once, when the sweep ends (not once a page)."""
    from learnprivacy.store import _statistics

    refreshes = count_calls(monkeypatch, _statistics, "refresh_marked")
    psql(postgres_server, database, "ANALYZE")
    report = store.sweep(retention_schedule(), now=NOW, batch_size=7)
    assert report.erased
    assert report.anonymised
    assert _stale(postgres_server, database) == {}
    assert _marks(postgres_server, database) == []
    assert len(refreshes) == 1


def test_anonymised_records_leave_their_learner_in_no_statistics(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    psql(postgres_server, database, "ANALYZE")
    progress = store.get(Progress, f"{ERASED}-P1")
    assert store.anonymise_records([progress], now=NOW, reason="statistics") == 1
    assert _stale(postgres_server, database) == {}


def test_a_crash_before_the_refresh_is_finished_by_the_next_open(
    store: Store, postgres_server: TemporaryPostgres, database: str, empty_url: str, keys: str
) -> None:
    """The erasure commits, then the process dies before the statistics are refreshed:
    the table stays marked, and the next open of the store refreshes it."""
    store.close()
    psql(postgres_server, database, "ANALYZE")
    worker = textwrap.dedent(
        f"""
        import os
        from learnprivacy.crypto import Keyring
        from learnprivacy.store import Store, _statistics
        from tests.store_fixtures import MASTER_KEY, NOW

        store = Store({empty_url!r}, keyring=Keyring.from_master_key(MASTER_KEY),
                      keys={keys!r}, clock=lambda: NOW)
        _statistics.refresh_if_marked = lambda db: os._exit(9)
        store.erase_subject({ERASED!r}, now=NOW)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", worker],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    assert ERASED in _stale(postgres_server, database)["lp_progress"]
    assert sorted(_marks(postgres_server, database)) == sorted(
        f"statistics:{t}" for t in RECORD_TABLES if t not in ("lp_invoice", "lp_funding")
    )
    _open(empty_url, keys).close()
    assert _stale(postgres_server, database) == {}
    assert _marks(postgres_server, database) == []
    assert ERASED.encode() not in _statistic_pages(postgres_server, database)


def test_statistics_collected_before_on_record_ids_are_dropped_on_open(
    store: Store, postgres_server: TemporaryPostgres, database: str, empty_url: str, keys: str
) -> None:
    """A store made by an earlier version let PostgreSQL sample its record ids (here,
    built from learner ids, as an application may): opening it drops them."""
    store.close()
    for table in ("lp_learner", *RECORD_TABLES):
        psql(postgres_server, database, f"ALTER TABLE {table} ALTER COLUMN id SET STATISTICS -1")
    psql(postgres_server, database, "ANALYZE")
    assert ERASED in _sampled(postgres_server, database, "id")["lp_learner"]
    _open(empty_url, keys).close()
    assert not any(_sampled(postgres_server, database, "id").values())
    psql(postgres_server, database, "ANALYZE")
    assert not any(_sampled(postgres_server, database, "id").values())


def test_a_record_type_registered_later_has_no_statistics_on_its_ids(
    store: Store, postgres_server: TemporaryPostgres, database: str, badge_type: Any
) -> None:
    store.add_all(
        badge_type(id=f"{lid}-B", learner_id=lid, title="Badge", earned_at=NOW) for lid in LEARNERS
    )
    psql(postgres_server, database, "ANALYZE lp_badge")
    assert not _sampled(postgres_server, database, "id").get("lp_badge")
    assert ERASED in _sampled(postgres_server, database, "learner_id")["lp_badge"]
    store.erase_subject(ERASED, now=NOW)
    assert _stale(postgres_server, database) == {}
