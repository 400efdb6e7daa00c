"""learnprivacy.sqlalchemy on PostgreSQL: the planner statistics of the application's own
tables never keep an erased learner's id.

``ANALYZE`` copies sampled values of ``users.id`` and ``forum_posts.author_id`` (learner
ids) into ``pg_statistic``. An erasure or sweep in the caller's transaction marks the
tables that sample a removed learner before the caller commits; after the commit they are
analysed again and the catalog rewritten; a rollback leaves nothing; a crash between the
commit and the refresh is finished by the next call.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateSchema

import learnprivacy.sqlalchemy as lps
from learnprivacy.crypto import Keyring
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from tests import NOW, count_calls
from tests.inplace_models import declarative_models
from tests.store_fixtures import psql

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

pytestmark = pytest.mark.postgres

MASTER = bytes(range(32))
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=dt.UTC)
#: Few enough learners for ANALYZE to keep every id as a histogram bound, in arrays
#: small enough to be stored uncompressed (so that a byte search finds them).
LEARNERS = [f"pgstat-learner-{n:04d}-Qz" for n in range(40)]
ERASED = LEARNERS[8]
#: The declared subject columns.
SUBJECTS = {"users": "id", "forum_posts": "author_id"}
ROOT = Path(__file__).resolve().parent.parent


def _bind(postgres_server: TemporaryPostgres, schema: str | None) -> SimpleNamespace:
    """Forty learners with a post each (the odd ones inactive since 2023), analysed; the
    tables in ``schema`` when given."""
    app_url = postgres_server.create_database()
    keys_url = postgres_server.create_database()
    models = declarative_models(schema)
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.from_master_key(MASTER), keys=keys_url)
    engine = create_engine(app_url)
    if schema:
        with engine.begin() as c:
            c.execute(CreateSchema(schema))
    models.Base.metadata.create_all(engine)
    with Session(engine) as s:
        for n, lid in enumerate(LEARNERS):
            seen = LONG_AGO if n % 2 else NOW
            s.add(models.User(id=lid, email=f"{lid}@example.org", name="A", last_login_at=seen))
        s.flush()
        for n, lid in enumerate(LEARNERS):
            posted = LONG_AGO if n % 2 else NOW
            s.add(models.Post(author_id=lid, body="hello", posted_at=posted))
        s.commit()
    found = SimpleNamespace(m=models, privacy=privacy, engine=engine, url=app_url)
    found.keys, found.server, found.db = keys_url, postgres_server, app_url.rsplit("/", 1)[1]
    psql(postgres_server, found.db, "ANALYZE")
    return found


@pytest.fixture
def app(postgres_server: TemporaryPostgres) -> Iterator[SimpleNamespace]:
    found = _bind(postgres_server, None)
    yield found
    found.privacy.close()
    found.engine.dispose()


def _sampled(app: SimpleNamespace) -> dict[str, set[str]]:
    """The learner ids ``pg_stats`` shows for each declared subject column."""
    found: dict[str, set[str]] = {}
    for table, column in SUBJECTS.items():
        rows = psql(
            app.server,
            app.db,
            "SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats "
            f"WHERE tablename = '{table}' AND attname = '{column}'",
        )
        seen = " ".join(f"{a} {b}" for a, b in rows)
        found[table] = {lid for lid in LEARNERS if lid in seen}
    return found


def _stale(app: SimpleNamespace) -> dict[str, set[str]]:
    """Per table, the learner ids its statistics sample that it no longer holds."""
    stale = {}
    for table, sampled in _sampled(app).items():
        rows = psql(app.server, app.db, f"SELECT DISTINCT {SUBJECTS[table]} FROM {table}")
        gone = sampled - {row[0] for row in rows}
        if gone:
            stale[table] = gone
    return stale


def _statistic_pages(app: SimpleNamespace) -> bytes:
    """The bytes of ``pg_statistic``'s files and its TOAST table's (dead rows included)."""
    psql(app.server, app.db, "CHECKPOINT")
    paths = psql(
        app.server,
        app.db,
        "SELECT pg_relation_filepath(oid), pg_relation_filepath(reltoastrelid) "
        "FROM pg_class WHERE oid = 'pg_statistic'::regclass",
    )[0]
    return b"".join((app.server.data_dir / path).read_bytes() for path in paths)


def _marks(app: SimpleNamespace) -> list[str]:
    rows = psql(app.server, app.db, "SELECT table_name FROM lp_stale_statistics")
    return sorted(r[0] for r in rows)


def _assert_erased_from_statistics(app: SimpleNamespace) -> None:
    """No learner left to drop from the statistics, no table left marked, and the erased
    learner's id nowhere in ``pg_statistic``'s files (dead rows included)."""
    assert _stale(app) == {}
    assert _marks(app) == []
    assert ERASED.encode() not in _statistic_pages(app)


def _catalog_file(app: SimpleNamespace) -> int:
    return int(psql(app.server, app.db, "SELECT pg_relation_filenode('pg_statistic')")[0][0])


def test_an_erasure_leaves_its_learner_in_no_statistics(app: SimpleNamespace) -> None:
    # The attack's premise: both subject columns sample the learner about to be erased.
    assert all(ERASED in ids for ids in _sampled(app).values())
    assert ERASED.encode() in _statistic_pages(app)
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, ERASED, now=NOW)
        assert report.erased == 2
        s.commit()
    _assert_erased_from_statistics(app)
    # The planner keeps its statistics on the learners still there.
    assert all(LEARNERS[9] in ids for ids in _sampled(app).values())


def test_a_sweep_leaves_no_swept_learner_in_statistics(
    app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 5 rows, committed one by one, mark the tables; they are analysed
    once, after the last batch, not once a batch."""
    from learnprivacy.sqlalchemy import _statistics

    refreshes = count_calls(monkeypatch, _statistics, "refresh_marked")
    m = app.m
    schedule = Schedule(
        {
            m.User: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            m.Post: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        }
    )
    swept_ids = [lid for n, lid in enumerate(LEARNERS) if n % 2]
    assert all(swept_ids[0] in ids for ids in _sampled(app).values())
    with Session(app.engine) as s:
        report = app.privacy.sweep(s, schedule, now=NOW, batch_size=5)
        s.commit()
    assert report.erased == 2 * len(swept_ids)
    assert len(refreshes) == 1
    assert _stale(app) == {}
    assert _marks(app) == []
    pages = _statistic_pages(app)
    assert not [lid for lid in swept_ids if lid.encode() in pages]


def test_a_rollback_leaves_no_mark_and_no_refresh(app: SimpleNamespace) -> None:
    before = _catalog_file(app)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, ERASED, now=NOW)
        s.flush()
        s.rollback()
    assert _marks(app) == []
    # No ANALYZE, no rewrite of pg_statistic: the learner is still there, and sampled.
    assert _catalog_file(app) == before
    assert all(ERASED in ids for ids in _sampled(app).values())
    assert _stale(app) == {}
    # A commit that marked nothing (no sampled learner removed) refreshes nothing either.
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "pgstat-nobody", now=NOW)
        s.commit()
    assert _catalog_file(app) == before


def test_a_crash_before_the_refresh_is_finished_by_the_next_call(app: SimpleNamespace) -> None:
    """The erasure commits, then the process dies before the statistics are refreshed:
    the tables stay marked, and the next call of the binding refreshes them."""
    worker = textwrap.dedent(
        f"""
        import os
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session
        import learnprivacy.sqlalchemy as lps
        from learnprivacy.crypto import Keyring
        from learnprivacy.sqlalchemy import _statistics
        from tests import NOW
        from tests.inplace_models import declarative_models

        models = declarative_models()
        privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.from_master_key({MASTER!r}),
                                   keys={app.keys!r})
        _statistics.refresh = lambda engine, marks: os._exit(9)
        with Session(create_engine({app.url!r})) as s:
            privacy.erase_subject(s, {ERASED!r}, now=NOW)
            s.commit()
        """
    )
    command = [sys.executable, "-c", worker]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False, timeout=120)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    assert _stale(app) == {"users": {ERASED}, "forum_posts": {ERASED}}
    assert _marks(app) == ["forum_posts", "users"]
    with Session(app.engine) as s:
        # A read-only call: its session is closed without a commit.
        app.privacy.kept_by_law(s, LEARNERS[9])
    _assert_erased_from_statistics(app)


def test_a_reader_holding_the_table_delays_the_refresh_but_never_the_commit(
    app: SimpleNamespace,
) -> None:
    """The last post goes: ANALYZE keeps the statistics of an empty table, so they must be
    dropped (a lock on the table), while another transaction is reading it. The caller's
    commit returns without waiting for that reader; the mark stays until a later call
    once the reader is done."""
    import psycopg

    psql(app.server, app.db, f"DELETE FROM forum_posts WHERE author_id <> '{ERASED}'")
    with Session(app.engine) as s:
        s.add(app.m.Post(author_id=ERASED, body="again", posted_at=NOW))
        s.commit()
    psql(app.server, app.db, "ANALYZE forum_posts")
    assert ERASED in _sampled(app)["forum_posts"]
    reader = psycopg.connect(app.server.dsn_for(app.db))
    reader.execute("SELECT count(*) FROM forum_posts").fetchall()  # its lock held until it ends

    def erase() -> None:
        with Session(app.engine) as s:
            app.privacy.erase_subject(s, ERASED, now=NOW)
            s.commit()

    worker = threading.Thread(target=erase, daemon=True)
    worker.start()
    worker.join(timeout=60)
    try:
        assert not worker.is_alive(), "the commit waited for the reader's transaction"
        assert _marks(app) == ["forum_posts"]
        assert _stale(app) == {"forum_posts": {ERASED}}
    finally:
        reader.close()
    with Session(app.engine) as s:
        app.privacy.kept_by_law(s, LEARNERS[9])
        s.commit()
    _assert_erased_from_statistics(app)


def test_the_applications_own_deletions_leave_no_learner_in_statistics(
    app: SimpleNamespace,
) -> None:
    """``session.delete()`` of a learner's last rows, by the application itself: the
    learner's id leaves the statistics of both tables once the application commits."""
    m = app.m
    assert all(ERASED in ids for ids in _sampled(app).values())
    assert ERASED.encode() in _statistic_pages(app)
    with Session(app.engine) as s:
        for post in s.scalars(select(m.Post).where(m.Post.author_id == ERASED)):
            s.delete(post)
        s.flush()
        s.delete(s.get(m.User, ERASED))
        s.commit()
    _assert_erased_from_statistics(app)
    assert all(LEARNERS[9] in ids for ids in _sampled(app).values())
    with Session(app.engine) as s:
        entries = list(app.privacy.audit(s).entries())[-2:]
    assert [(e.record_type, e.details["reason"]) for e in entries] == [
        ("Post", "deleted by the application"),
        ("User", "deleted by the application"),
    ]
    assert {e.subject_ref for e in entries} == {app.privacy.subject_ref(ERASED)}


def test_a_bulk_delete_leaves_no_learner_in_statistics(app: SimpleNamespace) -> None:
    """``session.execute(delete(...))`` of a learner's last rows: audited row by row and
    the learner's id gone from both tables' statistics once committed (the old code did
    neither: the statement bypassed the flush events)."""
    from sqlalchemy import delete

    m = app.m
    assert all(ERASED in ids for ids in _sampled(app).values())
    with Session(app.engine) as s:
        s.execute(delete(m.Post).where(m.Post.author_id == ERASED))
        s.execute(delete(m.User).where(m.User.id == ERASED))
        s.commit()
    _assert_erased_from_statistics(app)
    assert all(LEARNERS[9] in ids for ids in _sampled(app).values())
    with Session(app.engine) as s:
        entries = list(app.privacy.audit(s).entries())[-2:]
    assert [(e.record_type, e.details["reason"], e.details["count"]) for e in entries] == [
        ("Post", "deleted by the application", 1),
        ("User", "deleted by the application", 1),
    ]
    assert {e.subject_ref for e in entries} == {app.privacy.subject_ref(ERASED)}


def test_a_bulk_delete_rolled_back_leaves_no_mark_and_no_entry(app: SimpleNamespace) -> None:
    from sqlalchemy import delete

    m = app.m
    before = _catalog_file(app)
    with Session(app.engine) as s:
        count = len(list(app.privacy.audit(s).entries()))
    with Session(app.engine) as s:
        s.execute(delete(m.Post).where(m.Post.author_id == ERASED))
        assert _marks_in(s) == ["forum_posts"]
        s.rollback()
    assert _marks(app) == []
    assert _catalog_file(app) == before
    assert ERASED in _sampled(app)["forum_posts"]
    with Session(app.engine) as s:
        assert len(list(app.privacy.audit(s).entries())) == count


def test_a_deletion_that_leaves_the_learner_rows_refreshes_nothing(app: SimpleNamespace) -> None:
    """A learner with a post left is still rightly sampled: deleting their other post
    neither marks the table nor rewrites the catalog."""
    m = app.m
    kept = LEARNERS[10]
    with Session(app.engine) as s:
        s.add(m.Post(author_id=kept, body="second", posted_at=NOW))
        s.commit()
    psql(app.server, app.db, "ANALYZE")
    before = _catalog_file(app)
    with Session(app.engine) as s:
        first = s.scalars(
            select(m.Post).where(m.Post.author_id == kept).order_by(m.Post.id)
        ).first()
        s.delete(first)
        s.commit()
    assert _marks(app) == []
    assert _catalog_file(app) == before
    assert kept in _sampled(app)["forum_posts"]


def test_an_application_deletion_rolled_back_leaves_no_mark(app: SimpleNamespace) -> None:
    """The mark of an application's deletion is written in its transaction: a rollback
    takes it back with the deletion, and nothing is analysed or rewritten."""
    m = app.m
    before = _catalog_file(app)
    with Session(app.engine) as s:
        for post in s.scalars(select(m.Post).where(m.Post.author_id == ERASED)):
            s.delete(post)
        s.flush()
        assert _marks_in(s) == ["forum_posts"]
        s.rollback()
    assert _marks(app) == []
    assert _catalog_file(app) == before
    assert ERASED in _sampled(app)["forum_posts"]


def _marks_in(session: Session) -> list[str]:
    """The marks ``session``'s own transaction sees."""
    from sqlalchemy import text

    rows = session.execute(text("SELECT table_name FROM lp_stale_statistics"))
    return sorted(r[0] for r in rows)


#: A schema of the application's own, its name quoted in every statement.
SCHEMA = "Lms Data"


def _in_schema(app: SimpleNamespace, table: str) -> set[str]:
    rows = psql(
        app.server,
        app.db,
        "SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats "
        f"WHERE schemaname = '{SCHEMA}' AND tablename = '{table}' "
        f"AND attname = '{SUBJECTS[table]}'",
    )
    seen = " ".join(f"{a} {b}" for a, b in rows)
    return {lid for lid in LEARNERS if lid in seen}


@pytest.mark.parametrize("how", ["erasure", "delete", "bulk delete", "crash"])
def test_tables_in_a_schema_of_their_own_leave_no_learner_in_statistics(
    postgres_server: TemporaryPostgres, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Models declared with ``__table_args__ = {"schema": ...}``: their statistics are
    read and refreshed in that schema, not the connection's current one. Tables of the
    same names in ``public``, not declared and still holding the learner, are a decoy:
    the old code looked there, found the learner sampled and refreshed the wrong tables.
    ``crash``: the refresh after the commit never happens; the marks name the tables with
    their schema, and the next call of the binding refreshes them."""
    from sqlalchemy import delete

    from learnprivacy.sqlalchemy import _statistics

    app = _bind(postgres_server, SCHEMA)
    try:
        psql(app.server, app.db, "CREATE TABLE public.users (id text PRIMARY KEY)")
        psql(app.server, app.db, "CREATE TABLE public.forum_posts (author_id text)")
        values = ", ".join(f"('{lid}')" for lid in LEARNERS)
        psql(app.server, app.db, f"INSERT INTO public.users VALUES {values}")
        psql(app.server, app.db, f"INSERT INTO public.forum_posts VALUES {values}")
        psql(app.server, app.db, "ANALYZE")
        assert all(ERASED in _in_schema(app, table) for table in SUBJECTS)
        m = app.m
        if how == "crash":
            monkeypatch.setattr(_statistics, "refresh", lambda _engine, _marks: None)
        with Session(app.engine) as s:
            if how in ("erasure", "crash"):
                assert app.privacy.erase_subject(s, ERASED, now=NOW).erased == 2
            elif how == "delete":
                for post in s.scalars(select(m.Post).where(m.Post.author_id == ERASED)):
                    s.delete(post)
                s.flush()
                s.delete(s.get(m.User, ERASED))
            else:
                s.execute(delete(m.Post).where(m.Post.author_id == ERASED))
                s.execute(delete(m.User).where(m.User.id == ERASED))
            s.commit()
        if how == "crash":
            assert _marks(app) == [f'"{SCHEMA}"."forum_posts"', f'"{SCHEMA}"."users"']
            assert all(ERASED in _in_schema(app, table) for table in SUBJECTS)
            monkeypatch.undo()
            with Session(app.engine) as s:
                app.privacy.kept_by_law(s, LEARNERS[9])
        assert all(ERASED not in _in_schema(app, table) for table in SUBJECTS)
        assert all(LEARNERS[9] in _in_schema(app, table) for table in SUBJECTS)
        assert _marks(app) == []
    finally:
        app.privacy.close()
        app.engine.dispose()
