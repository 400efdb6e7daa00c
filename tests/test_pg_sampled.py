"""``_pgstatistics.sampled``: which columns' planner statistics name one of the given ids.

Checked against a reading of ``pg_stats`` done in Python (every sampled value of every
target column, compared with the ids one by one) on a real PostgreSQL: tables matched by
a LIKE pattern, a schema given by name, a column whose statistics have no most common
values or no histogram, ids that need quoting in an array, and a page-sized list of ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine

from learnprivacy._pgstatistics import sampled
from tests.store_fixtures import psql

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

#: Ids that need quoting inside a PostgreSQL array literal.
ODD = ["comma,id", 'quote"id', "brace{id}", "back\\slash", "space id"]
IDS = [f"L{n:07d}" for n in range(6_000)]
TARGETS = [("lp\\_%", "learner_id"), ("Other Schema", "lp\\_y", "learner_id")]


@pytest.fixture
def database(postgres_server: TemporaryPostgres) -> Iterator[str]:
    name = "sampled_query"
    postgres_server.create_database(name)
    psql(
        postgres_server,
        name,
        # Many distinct values (a histogram), few repeated ones (most common values), a
        # column of NULLs (neither), the odd ids, a table the pattern does not match, and
        # a table of the same name in another schema.
        "CREATE TABLE lp_x (learner_id varchar(64));"
        "INSERT INTO lp_x SELECT 'L' || lpad(g::text, 7, '0') FROM generate_series(0, 5999) g;"
        "CREATE TABLE lp_y (learner_id varchar(64));"
        "INSERT INTO lp_y SELECT 'L' || lpad((g % 40)::text, 7, '0') "
        "FROM generate_series(1, 4000) g;"
        "CREATE TABLE lp_z (learner_id varchar(64));"
        "INSERT INTO lp_z SELECT NULL FROM generate_series(1, 500);"
        "CREATE TABLE lp_odd (learner_id varchar(64));"
        f"INSERT INTO lp_odd SELECT unnest({_array(ODD)}) FROM generate_series(1, 50);"
        "CREATE TABLE other_x (learner_id varchar(64));"
        "INSERT INTO other_x SELECT 'L' || lpad(g::text, 7, '0') FROM generate_series(0, 99) g;"
        'CREATE SCHEMA "Other Schema";'
        'CREATE TABLE "Other Schema".lp_y (learner_id varchar(64));'
        "INSERT INTO \"Other Schema\".lp_y SELECT 'L' || lpad((g % 7 + 100)::text, 7, '0') "
        "FROM generate_series(1, 700) g;"
        "ANALYZE",
    )
    yield name
    postgres_server.drop_database(name)


def _array(values: list[str]) -> str:
    inner = ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "'{" + inner + "}'::text[]"


def _expected(server: TemporaryPostgres, database: str, ids: list[str]) -> list[tuple[str, str]]:
    """The target columns with a sampled value among ``ids``, read value by value."""
    rows = psql(
        server,
        database,
        "SELECT schemaname, tablename, attname, "
        "CAST(CAST(most_common_vals AS text) AS text[]), "
        "CAST(CAST(histogram_bounds AS text) AS text[]) FROM pg_stats "
        "WHERE attname = 'learner_id'",
    )
    wanted = set(ids)
    found = set()
    for schema, table, column, common, bounds in rows:
        values = set(common or []) | set(bounds or [])
        if not values & wanted:
            continue
        if schema == "public" and table.startswith("lp_"):
            found.add((table, column))
        if schema == "Other Schema" and table == "lp_y":
            found.add(('"Other Schema"."lp_y"', column))
    return sorted(found)


@pytest.mark.parametrize(
    "ids",
    [
        IDS[:5_000],
        IDS[3_000:],
        ["L0000013"],
        ["L0000103"],
        ["L9999999"],
        ODD[:2],
        [ODD[-1], "L0005999"],
        [],
    ],
    ids=["page", "upper", "common", "other-schema", "none", "odd", "mixed", "empty"],
)
def test_sampled_names_exactly_the_columns_whose_statistics_hold_an_id(
    postgres_server: TemporaryPostgres, database: str, ids: list[str]
) -> None:
    engine = create_engine(postgres_server.url_for(database))
    try:
        with engine.connect() as connection:
            found = sampled(connection, TARGETS, ids)
    finally:
        engine.dispose()
    expected = _expected(postgres_server, database, ids)
    assert found == expected
    if ids == IDS[:5_000]:
        # The case is not empty: the histogram and the common values both answer.
        assert ("lp_x", "learner_id") in found
        assert ("lp_y", "learner_id") in found
