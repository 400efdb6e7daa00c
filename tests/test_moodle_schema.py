"""The Moodle schema subset: column names and types as Moodle's install.xml files declare them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError, PolicyError, ValidationError
from learnprivacy.moodle import MoodleSchema
from learnprivacy.moodle._readonly import check_read_only
from learnprivacy.moodle._schema import TABLE_NAMES, TableSpec, parse_tables, table_specs
from learnprivacy.moodle._time import from_unix, to_unix
from learnprivacy.testing.moodle import create_schema, drop_schema
from tests.conftest import open_engine

# Test vectors transcribed by hand from Moodle 4.5/5.0 install.xml files (lib/db,
# admin/tool/{log/store/standard,policy,dataprivacy}/db, mod_customcert db): table, field,
# XMLDB type, length (or length,decimals), NOTNULL, DEFAULT. They are checked against the
# SQLAlchemy tables through Moodle's own type mapping, computed independently below.
XMLDB_FIELDS = """
user id int 10 NN -
user deleted int 1 NN 0
user suspended int 1 NN 0
user username char 100 NN -
user email char 100 NN -
user firstaccess int 10 NN 0
user lastaccess int 10 NN 0
user timecreated int 10 NN 0
user description text - null -
user moodlenetprofile char 255 null -
user lang char 30 NN en
user_lastaccess timeaccess int 10 NN 0
course enddate int 10 NN 0
course format char 21 NN topics
course fullname char 254 NN -
course_completions timecompleted int 10 null -
course_completions timeenrolled int 10 NN 0
course_modules_completion completionstate int 1 NN -
course_modules completionexpected int 10 NN 0
grade_items grademax number 10,5 NN 100
grade_items gradepass number 10,5 NN 0
grade_items itemtype char 30 NN -
grade_grades finalgrade number 10,5 null -
grade_grades rawgrademax number 10,5 NN 100
grade_grades aggregationstatus char 10 NN unknown
context path char 255 null -
context depth int 2 NN 0
user_enrolments timeend int 10 NN 2147483647
logstore_standard_log eventname char 255 NN -
logstore_standard_log ip char 45 null -
logstore_standard_log other text - null -
logstore_standard_log edulevel int 1 NN -
tool_policy_acceptances status int 1 null -
tool_policy_versions name char 1333 NN -
tool_policy sortorder int 5 NN 999
tool_dataprivacy_purpose lawfulbases text - NN -
tool_dataprivacy_purpose retentionperiod char 255 NN -
tool_dataprivacy_purpose protected int 1 null -
tool_dataprivacy_ctxlevel contextlevel int 3 NN -
customcert_issues code char 40 null -
customcert_issues timecreated int 10 NN 0
"""

# Full field lists, in install.xml order.
XMLDB_TABLES = {
    "user": (
        "id auth confirmed policyagreed deleted suspended mnethostid username password idnumber "
        "firstname lastname email emailstop phone1 phone2 institution department address city "
        "country lang calendartype theme timezone firstaccess lastaccess lastlogin currentlogin "
        "lastip secret picture description descriptionformat mailformat maildigest maildisplay "
        "autosubscribe trackforums timecreated timemodified trustbitmask imagealt "
        "lastnamephonetic firstnamephonetic middlename alternatename moodlenetprofile"
    ),
    "course_completions": "id userid course timeenrolled timestarted timecompleted reaggregate",
    "grade_grades": (
        "id itemid userid rawgrade rawgrademax rawgrademin rawscaleid usermodified finalgrade "
        "hidden locked locktime exported overridden excluded feedback feedbackformat information "
        "informationformat timecreated timemodified aggregationstatus aggregationweight"
    ),
    "logstore_standard_log": (
        "id eventname component action target objecttable objectid crud edulevel contextid "
        "contextlevel contextinstanceid userid courseid relateduserid anonymous other "
        "timecreated origin ip realuserid"
    ),
    "tool_dataprivacy_purpose": (
        "id name description descriptionformat lawfulbases sensitivedatareasons "
        "retentionperiod protected usermodified timecreated timemodified"
    ),
    "tool_policy_acceptances": (
        "id policyversionid userid status lang usermodified timecreated timemodified note"
    ),
    "customcert_issues": "id userid customcertid code emailed timecreated",
}


def _vectors() -> Iterator[tuple[str, str, str, str, bool, str | None]]:
    for line in XMLDB_FIELDS.strip().splitlines():
        table, field, kind, length, notnull, default = line.split()
        yield table, field, kind, length, notnull == "NN", None if default == "-" else default


def _moodle_int_type(length: int) -> type:
    # lib/ddl/postgres_sql_generator.php: > 9 digits BIGINT, > 4 INTEGER, else SMALLINT.
    return sa.BigInteger if length > 9 else sa.Integer if length > 4 else sa.SmallInteger


@pytest.mark.parametrize(
    ("table", "field", "kind", "length", "notnull", "default"), list(_vectors())
)
def test_column_matches_install_xml(
    table: str, field: str, kind: str, length: str, notnull: bool, default: str | None
) -> None:
    """Each transcribed XMLDB field has Moodle's name, type, length, nullability, default."""
    column = MoodleSchema()[table].c[field]
    assert column.nullable is (not notnull)
    if kind == "int":
        expected = _moodle_int_type(int(length))
        if field == "id":
            assert column.primary_key
            assert isinstance(column.type, sa.BigInteger)
        else:
            assert type(column.type) is expected
    elif kind == "char":
        assert isinstance(column.type, sa.String)
        assert not isinstance(column.type, sa.Text)
        assert column.type.length == int(length)
    elif kind == "number":
        precision, scale = (int(v) for v in length.split(","))
        assert isinstance(column.type, sa.Numeric)
        assert (column.type.precision, column.type.scale) == (precision, scale)
    else:
        assert isinstance(column.type, sa.Text)
    shown = None if column.server_default is None else str(column.server_default.arg)  # type: ignore[attr-defined]
    if default is not None:
        assert shown is not None
        assert shown == default or float(shown) == float(default)
    elif kind == "char" and notnull:
        assert shown == ""  # Moodle's DDL gives NOT NULL chars DEFAULT ''.
    else:
        assert shown is None


@pytest.mark.parametrize("table", sorted(XMLDB_TABLES))
def test_table_has_every_install_xml_field_in_order(table: str) -> None:
    """A table keeps all of Moodle's fields, in install.xml order, not only those read."""
    assert [c.name for c in MoodleSchema()[table].columns] == XMLDB_TABLES[table].split()


def test_tables_are_read_from_their_install_xml_transcription() -> None:
    """Each line of ``tables.txt`` says one XMLDB fact: type, length, nullability, default."""
    source = """
    # a comment
    group core
    table user_lastaccess
      userid int(10) default 0
      note char(20) null
      grade number(10,5) null default 1.0
      info text
      summary text notnull
      index userid
      unique userid, note
    """
    assert parse_tables(source) == (
        TableSpec(
            "core",
            "user_lastaccess",
            (
                ("userid", "int", (10,), True, "0"),
                ("note", "char", (20,), False, None),
                ("grade", "number", (10, 5), False, "1.0"),
                ("info", "text", (), False, None),
                ("summary", "text", (), True, None),
            ),
            ("userid",),
            ("userid, note",),
        ),
    )
    assert len({spec.name for spec in table_specs()}) == len(table_specs()) == len(TABLE_NAMES)


@pytest.mark.parametrize(
    "line",
    [
        "  info text default x",  # Moodle gives text columns no default
        "  info text null",  # text is nullable already: the word says nothing
        "  userid int",  # no length
        "  userid int(10,2)",
        "  grade number(10) null",
        "  name char(20) notnull",  # NOT NULL is the default for char
        "  userid integer(10)",
        "tabel user",
    ],
)
def test_a_line_out_of_form_in_the_table_list_is_refused(line: str) -> None:
    """A transcription mistake is an error naming its line, not a silently different table."""
    with pytest.raises(ConfigurationError, match="line 3"):
        parse_tables(f"group core\ntable user\n{line}\n")
    with pytest.raises(ConfigurationError, match="line 1"):  # a column before any table
        parse_tables("  userid int(10)\n")


def test_prefix_applies_to_tables_and_index_names() -> None:
    """The prefix is Moodle's $CFG->prefix: on every table and index name."""
    schema = MoodleSchema("m45_")
    assert schema["user"].name == "m45_user"
    assert all(t.name.startswith("m45_") for t in schema.tables())
    assert all(i.name.startswith("m45_") for t in schema.tables() for i in t.indexes)  # type: ignore[union-attr]
    assert len(schema.tables()) == len(TABLE_NAMES)


@pytest.mark.parametrize("prefix", ["MDL_", "mdl-", "1mdl_", "a" * 11, "mdl_; drop"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    """Only plain lower-case prefixes are accepted: they end up in SQL identifiers."""
    with pytest.raises(ConfigurationError):
        MoodleSchema(prefix)


def test_unknown_table_is_a_configuration_error() -> None:
    """Asking for a table the schema does not model names the known ones."""
    with pytest.raises(ConfigurationError, match="unknown Moodle table"):
        MoodleSchema()["wiki_pages"]


@pytest.fixture
def engine(new_database: Callable[[], str]) -> Iterator[sa.Engine]:
    """A fresh empty database on each engine."""
    engine = open_engine(new_database())
    yield engine
    engine.dispose()


def test_created_tables_reflect_moodle_types(engine: sa.Engine) -> None:
    """Created for real, the tables have Moodle's column types and unique indexes."""
    create_schema(engine, prefix="mdl_")
    inspector = sa.inspect(engine)
    assert {f"mdl_{t}" for t in TABLE_NAMES} <= set(inspector.get_table_names())
    columns = {c["name"]: c for c in inspector.get_columns("mdl_user")}
    assert isinstance(columns["username"]["type"], sa.String)
    assert columns["username"]["type"].length == 100
    assert columns["deleted"]["nullable"] is False
    grades = {c["name"]: c["type"] for c in inspector.get_columns("mdl_grade_grades")}
    assert isinstance(grades["finalgrade"], sa.Numeric)
    if engine.dialect.name == "postgresql":
        assert isinstance(columns["lastaccess"]["type"], sa.BigInteger)
        assert isinstance(columns["deleted"]["type"], sa.SmallInteger)
        assert (grades["finalgrade"].precision, grades["finalgrade"].scale) == (10, 5)
    unique = {
        tuple(i["column_names"])
        for i in inspector.get_indexes("mdl_course_completions")
        if i["unique"]
    }
    assert ("userid", "course") in unique
    drop_schema(engine)
    assert not [t for t in sa.inspect(engine).get_table_names() if t.startswith("mdl_")]


def test_ids_are_assigned_by_the_database(engine: sa.Engine) -> None:
    """The id columns auto-increment on every engine, as Moodle's BIGSERIAL ids do."""
    schema = create_schema(engine)
    with engine.begin() as connection:
        connection.execute(schema["modules"].insert(), [{"name": "quiz"}, {"name": "page"}])
        ids = connection.execute(sa.select(schema["modules"].c.id)).scalars().all()
    assert sorted(ids) == [1, 2]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT id FROM mdl_user",
        "  select 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT * FROM mdl_logstore_standard_log WHERE eventname = 'user_updated; DELETE'",
        "PRAGMA main.table_info('mdl_user')",
        "EXPLAIN SELECT 1",
        "/* a comment */ SELECT 1",
    ],
)
def test_read_statements_pass_the_guard(statement: str) -> None:
    """Plain reads pass, including words that look like writes inside string literals."""
    check_read_only(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO mdl_user (id) VALUES (1)",
        "update mdl_user set deleted = 1",
        "DELETE FROM mdl_user",
        "DROP TABLE mdl_user",
        "CREATE TABLE x (id int)",
        "TRUNCATE mdl_user",
        "ALTER TABLE mdl_user ADD COLUMN x int",
        "WITH gone AS (DELETE FROM mdl_user RETURNING id) SELECT * FROM gone",
        "SELECT * FROM mdl_user FOR UPDATE",
        "SELECT * INTO copy FROM mdl_user",
        "PRAGMA query_only = OFF",
        "-- SELECT\nDELETE FROM mdl_user",
        "",
        "GRANT ALL ON mdl_user TO someone",
    ],
)
def test_write_statements_are_refused(statement: str) -> None:
    """Anything that writes, locks, creates or changes settings raises PolicyError."""
    with pytest.raises(PolicyError, match="read-only"):
        check_read_only(statement)


def test_unix_times_are_utc_and_zero_means_never() -> None:
    """Moodle's 0 is "never" (None); other values are aware UTC datetimes, both ways."""
    assert from_unix(0) is None
    assert from_unix(None) is None
    moment = from_unix(1_718_452_800)
    assert moment == dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)
    assert moment is not None
    assert moment.utcoffset() == dt.timedelta(0)
    assert to_unix(moment) == 1_718_452_800
    paris = dt.timezone(dt.timedelta(hours=2))
    assert to_unix(dt.datetime(2024, 6, 15, 14, 0, tzinfo=paris)) == 1_718_452_800
    assert to_unix(None) == 0
    with pytest.raises(ValidationError):
        to_unix(dt.datetime(2024, 6, 15, 12, 0))  # a naive datetime, on purpose


def test_importing_learnprivacy_does_not_load_sqlalchemy() -> None:
    """The adapter is opt-in: only ``import learnprivacy.moodle`` loads SQLAlchemy."""
    import subprocess
    import sys

    code = (
        "import sys, learnprivacy; assert 'sqlalchemy' not in sys.modules; "
        "import learnprivacy.moodle; assert 'sqlalchemy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
