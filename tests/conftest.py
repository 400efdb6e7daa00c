"""Shared fixtures: real servers started once per session, skipped with a reason when absent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

# The store fixtures (a store on SQLite and on PostgreSQL, its URL, keyring, template) live
# in tests/store_fixtures.py with their helpers; importing them here shares them with
# every test module, without star imports.
from tests import NOW, serve_or_skip
from tests.store_fixtures import (  # noqa: F401
    badge_type,
    empty_url,
    file_store,
    keyring,
    module_database,
    pg_workers,
    store,
    store_template,
    store_url,
)

if TYPE_CHECKING:
    from pathlib import Path

    from learnprivacy.store import Store
    from learnprivacy.testing.lrs import TemporaryRalphLRS
    from learnprivacy.testing.mariadb import TemporaryMariaDB
    from learnprivacy.testing.moodle import FixtureSummary
    from learnprivacy.testing.postgres import TemporaryPostgres

UTC = dt.UTC

# Property tests check behaviour, not speed: the suite runs on 2 shared cores, so per-example
# deadlines and the too-slow health check would only make it flaky. Speed is measured by
# benchmarks/ against same-run floors.
settings.register_profile(
    "learnprivacy",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=50,
)
settings.load_profile("learnprivacy")


@pytest.fixture
def now() -> dt.datetime:
    """A fixed, timezone-aware 'now': tests never read the clock."""
    return NOW


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store in a fresh SQLite file (``lms.db`` in ``tmp_path``, a new keyring) whose
    clock says :data:`tests.NOW`."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    with Store(
        f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring.generate(), clock=lambda: NOW
    ) as opened:
        yield opened


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """One real PostgreSQL server for the session; each user creates its own database."""
    from learnprivacy.testing.postgres import PostgresUnavailable, TemporaryPostgres

    yield from serve_or_skip(TemporaryPostgres(), PostgresUnavailable)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[TemporaryMariaDB]:
    """One real MariaDB server for the session; each user creates its own database."""
    from learnprivacy.testing.mariadb import MariaDBUnavailable, TemporaryMariaDB

    yield from serve_or_skip(TemporaryMariaDB(), MariaDBUnavailable)


@pytest.fixture(scope="session")
def ralph_lrs() -> Iterator[TemporaryRalphLRS]:
    """One real Ralph LRS on 127.0.0.1 for the session (filesystem backend)."""
    from learnprivacy.testing.lrs import LRSUnavailable, TemporaryRalphLRS

    yield from serve_or_skip(TemporaryRalphLRS(), LRSUnavailable)


#: The engines every Moodle test runs on: Moodle sites run on all three.
MOODLE_ENGINES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def open_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files without fsync (tests need no durability)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _no_sync(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous = OFF")

    return engine


def in_course_module(
    source: sa.FromClause, instance: sa.ColumnElement[Any], module: str
) -> tuple[sa.Join, sa.Table]:
    """``source`` joined to the course module of the ``module`` activity (``"forum"``,
    ``"quiz"``...) whose instance id is its column ``instance``; and ``course_modules``."""
    from learnprivacy.moodle._schema import MoodleSchema

    schema = MoodleSchema()
    cm, mod = schema["course_modules"], schema["modules"]
    joined = source.join(cm, cm.c.instance == instance).join(
        mod, sa.and_(mod.c.id == cm.c.module, mod.c.name == module)
    )
    return joined, cm


def synthetic_site(url: str, *, users: int, courses: int) -> tuple[sa.Engine, FixtureSummary]:
    """An engine on ``url`` holding Moodle's schema and a site that ``populate`` generated
    at :data:`tests.NOW` (``users`` accounts, ``courses`` courses), and its summary."""
    from learnprivacy.testing.moodle import create_schema, populate

    engine = open_engine(url)
    create_schema(engine)
    return engine, populate(engine, now=NOW, users=users, courses=courses)


@pytest.fixture(scope="module", params=MOODLE_ENGINES)
def moodle_engine_kind(request: pytest.FixtureRequest) -> str:
    """The engine a Moodle test module runs on (each module runs once per engine)."""
    kind: str = request.param
    return kind


@pytest.fixture(scope="module")
def new_database(
    moodle_engine_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[], str]:
    """A factory of fresh, empty databases (URLs) on the module's engine."""
    if moodle_engine_kind == "sqlite":
        return lambda: f"sqlite:///{tmp_path_factory.mktemp('moodle') / 'moodle.db'}"
    server = request.getfixturevalue(f"{moodle_engine_kind}_server")
    return lambda: str(server.create_database())
