"""PostgreSQL's planner statistics never keep a learner id.

``ANALYZE`` (run by autovacuum whenever a table has changed enough) copies sampled values
into ``pg_statistic``: a column's most common values and its histogram bounds. For the
store's learner-id columns those are learner ids, readable through the ``pg_stats`` view
by anyone who may read the table, and an erasure does not remove them: they stay until
the table is analysed again, then in the catalog's dead rows. The store turns statistics
off for these columns, and drops those an earlier version let PostgreSQL collect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.records import not_personal, personal, register_record_type
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, learner, psql, records_for

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

pytestmark = pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)

#: Few enough learners for ANALYZE to keep every id as a histogram bound, in arrays
#: small enough to be stored uncompressed (so that a byte search finds them).
LEARNERS = [f"stat-learner-{n:04d}-Qz" for n in range(40)]
ERASED = LEARNERS[7]

#: Every learner-id and record-id column of the built-in record tables.
COLUMNS = [("lp_learner", "id")] + [
    (table, column)
    for table in (
        "lp_progress",
        "lp_certificate",
        "lp_invoice",
        "lp_funding",
        "lp_consent",
        "lp_access_event",
    )
    for column in ("id", "learner_id")
]


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
    opened.add_all(r for lid in LEARNERS for r in [learner(lid), *records_for(lid)])
    yield opened
    opened.close()


def _sampled(server: TemporaryPostgres, database: str) -> str:
    """Every value ``pg_stats`` shows for the store's tables, as text."""
    rows = psql(
        server,
        database,
        "SELECT tablename, attname, most_common_vals::text, histogram_bounds::text "
        "FROM pg_stats WHERE tablename LIKE 'lp\\_%'",
    )
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


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


def _collect_as_before(server: TemporaryPostgres, database: str) -> None:
    """Give the learner-id columns back the default statistics target and analyse, as a
    store made by an earlier version (or an administrator) would have let PostgreSQL."""
    for table, column in COLUMNS:
        psql(server, database, f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1")
    psql(server, database, "ANALYZE")


def test_analyze_samples_no_learner_id(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    psql(postgres_server, database, "ANALYZE")
    sampled = _sampled(postgres_server, database)
    assert "lp_progress" in sampled  # the other columns are still sampled
    assert not [lid for lid in LEARNERS if lid in sampled]
    store.erase_subject(ERASED, now=NOW)
    assert ERASED.encode() not in _statistic_pages(postgres_server, database)


def test_every_learner_id_column_has_statistics_off(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    assert len(COLUMNS) == 13
    targets = psql(
        postgres_server,
        database,
        "SELECT c.relname, a.attname, a.attstattarget FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relname LIKE 'lp\\_%' AND c.relkind = 'r' AND a.attnum > 0 "
        "AND a.attstattarget = 0",
    )
    assert sorted((t, c) for t, c, _ in targets) == sorted(COLUMNS)


def test_statistics_collected_before_are_dropped_on_open(
    store: Store, postgres_server: TemporaryPostgres, database: str, empty_url: str, keys: str
) -> None:
    """The attack: the ids sit in pg_stats (the setup proves it), then the erasure of one
    learner; reopening the store must leave none, not even in pg_statistic's pages."""
    store.close()
    _collect_as_before(postgres_server, database)
    assert [lid for lid in LEARNERS if lid in _sampled(postgres_server, database)]
    assert ERASED.encode() in _statistic_pages(postgres_server, database)
    reopened = _open(empty_url, keys)
    try:
        reopened.erase_subject(ERASED, now=NOW)
        assert not [lid for lid in LEARNERS if lid in _sampled(postgres_server, database)]
        assert ERASED.encode() not in _statistic_pages(postgres_server, database)
        psql(postgres_server, database, "ANALYZE")
        assert not [lid for lid in LEARNERS if lid in _sampled(postgres_server, database)]
    finally:
        reopened.close()


def test_a_record_type_registered_later_has_statistics_off(
    store: Store, postgres_server: TemporaryPostgres, database: str
) -> None:
    @register_record_type
    @attrs.frozen(kw_only=True)
    class Trophy:
        processing_purpose: ClassVar[str] = "gamification"
        key_scope: ClassVar[str] = "contract"
        date_field: ClassVar[str] = "earned_at"

        id: str = not_personal(description="Trophy id")
        learner_id: str = personal(
            category=DataCategory.ACCOUNT, description="Learner", encrypted=False, identifier=True
        )
        # not_personal() returns an attrs field spec, not a shared default value.
        earned_at: dt.datetime = not_personal(description="When")  # noqa: RUF009
        basis: LawfulBasis = not_personal(description="Basis", default=LawfulBasis.CONSENT)  # noqa: RUF009

    try:
        store.add_all(Trophy(id=f"{lid}-T", learner_id=lid, earned_at=NOW) for lid in LEARNERS)
        psql(postgres_server, database, "ANALYZE lp_trophy")
        assert "lp_trophy" in _sampled(postgres_server, database)
        assert not [lid for lid in LEARNERS if lid in _sampled(postgres_server, database)]
    finally:
        from learnprivacy.records import _base

        _base._REGISTRY.pop("Trophy", None)
