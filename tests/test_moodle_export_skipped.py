"""A Moodle row that cannot become a record must not vanish from a learner's export.

Completions and certificates reach an export only as records (no raw row carries them, as
Grade, LogEntry and PolicyAcceptance rows carry grades, log-ins and acceptances). A row of
theirs that the adapter skips (an unknown completion state, no date) used to be left out
while the export completed: an Art. 15 answer missing part of the learner's data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ProviderError
from learnprivacy.export import export_subject, read_package
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._time import to_unix
from learnprivacy.providers import PrivacyManager
from learnprivacy.testing.moodle import create_schema, insert_rows
from tests import NOW

T0 = dt.datetime(2024, 1, 10, 9, 0, tzinfo=dt.UTC)
KEY = bytes(range(32))


def ts(days: float) -> int:
    return to_unix(T0 + dt.timedelta(days=days))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """Three learners in one course: Ana's and Carla's rows all map, Bruno has rows that
    do not."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'moodle.db'}")
    create_schema(engine)
    insert_rows(engine, "config", [{"name": "siteguest", "value": "1"}])
    people = [
        {"id": 1, "username": "guest", "email": "root@localhost", "firstname": "Guest"},
        {"id": 10, "username": "ana", "email": "ana@example.org", "firstname": "Ana",
         "lastname": "Silva", "timecreated": ts(0)},
        {"id": 11, "username": "bruno", "email": "bruno@example.org", "firstname": "Bruno",
         "lastname": "Costa", "timecreated": ts(0)},
        {"id": 12, "username": "carla", "email": "carla@example.org", "firstname": "Carla",
         "lastname": "Dias", "timecreated": ts(0)},
    ]  # fmt: skip
    insert_rows(engine, "user", people)
    insert_rows(engine, "course", [{"id": 2, "fullname": "GDPR", "shortname": "gdpr"}])
    insert_rows(engine, "modules", [{"id": 5, "name": "quiz"}, {"id": 6, "name": "customcert"}])
    modules = [{"id": 40 + i, "course": 2, "module": 5, "instance": i} for i in range(3)]
    insert_rows(engine, "course_modules", modules)
    insert_rows(engine, "customcert", [{"id": 1, "course": 2, "name": "Certificate"}])
    # Ana's completion maps; Bruno has one that maps, one in a state this adapter does not
    # know and one without a date.
    states = [
        (1, 40, 10, 1, ts(3)),
        (2, 40, 11, 1, ts(3)),
        (3, 41, 11, 7, ts(4)),
        (4, 42, 11, 1, 0),
        (5, 41, 12, 2, ts(5)),
    ]
    columns = ("id", "coursemoduleid", "userid", "completionstate", "timemodified")
    insert_rows(
        engine, "course_modules_completion", [dict(zip(columns, s, strict=True)) for s in states]
    )
    insert_rows(
        engine,
        "customcert_issues",
        [{"id": 1, "userid": 11, "customcertid": 1, "code": "X7Q2", "timecreated": 0}],
    )
    yield engine
    engine.dispose()


def test_a_learner_whose_rows_all_map_is_exported(engine: sa.Engine, tmp_path: Path) -> None:
    with MoodleDatabase(engine) as moodle:
        manager = PrivacyManager([MoodleProvider(moodle)], discover=False)
        export_subject(manager, "10", tmp_path / "ana.zip", now=NOW, pseudonym_key=KEY)
    package = read_package(tmp_path / "ana.zip")
    ids = {row["id"] for row in package.rows(component="moodle", record_type="Progress")}
    assert ids == {"course_modules_completion/1"}


def test_skipped_rows_fail_the_export_and_name_no_value(engine: sa.Engine, tmp_path: Path) -> None:
    out = tmp_path / "bruno.zip"
    with MoodleDatabase(engine) as moodle:
        manager = PrivacyManager([MoodleProvider(moodle)], discover=False)
        with pytest.raises(ProviderError) as caught:
            export_subject(manager, "11", out, now=NOW, pseudonym_key=KEY)
    assert caught.value.component == "moodle"
    message = str(caught.value)
    for part in ("course_modules_completion", "customcert_issues", "3", "4", "1"):
        assert part in message
    for value in ("bruno", "Bruno", "X7Q2", "Costa"):
        assert value not in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bruno.zip")]
