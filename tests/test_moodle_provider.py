"""MoodleProvider: a Moodle learner exported through the PrivacyManager like a stored one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.errors import NotFoundError
from learnprivacy.export import export_subject, read_package
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    MemoryWriter,
    MetadataCollection,
    PrivacyManager,
    UserList,
)
from learnprivacy.providers._results import RequestStatus
from learnprivacy.store import Store
from learnprivacy.testing.moodle import FixtureSummary, create_schema, populate
from tests import NOW
from tests.conftest import open_engine

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, FixtureSummary]]:
    """A small synthetic site on each engine."""
    engine = open_engine(new_database())
    create_schema(engine)
    summary = populate(engine, now=NOW, users=60, courses=6)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def moodle(site: tuple[sa.Engine, FixtureSummary]) -> Iterator[MoodleDatabase]:
    """The adapter over the site."""
    with MoodleDatabase(site[0]) as db:
        yield db


def busy_learner(moodle: MoodleDatabase, summary: FixtureSummary) -> str:
    """A learner with every kind of record, so that the export has every file."""
    wanted = {"Learner", "Progress", "Consent", "AccessEvent", "Certificate"}
    for uid in sorted(summary.learner_ids - summary.invalid_email_user_ids):
        if {type(r).__name__ for r in moodle.records_of(uid)} == wanted:
            return str(uid)
    raise AssertionError("the fixture has no learner with every kind of record")


def test_export_through_the_manager(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary], tmp_path: Path
) -> None:
    """export_subject over a PrivacyManager writes data/moodle/<RecordType>.json, verified."""
    learner = busy_learner(moodle, site[1])
    manager = PrivacyManager([MoodleProvider(moodle)], discover=False)
    result = export_subject(manager, learner, tmp_path / "out.zip", now=NOW, pseudonym_key=KEY)
    paths = {entry["path"] for entry in result.manifest["files"]}
    for name in ("Learner", "Progress", "Consent", "AccessEvent", "Certificate"):
        assert f"data/moodle/{name}.json" in paths
    package = read_package(tmp_path / "out.zip")
    assert [r.id for r in package.records(record_type="Learner")] == [learner]
    assert {r.learner_id for r in package.records(record_type="Progress")} == {learner}
    header = json.loads(package.read_text("data/moodle/Learner.json"))
    assert header["purpose"] == "Gestion du compte"
    assert header["retention"] == "P18M"


def test_same_records_as_the_store(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary], tmp_path: Path
) -> None:
    """With the store's component name, the data files hold the records the store's would."""
    learner = busy_learner(moodle, site[1])
    provider = MoodleProvider(moodle, component="learnprivacy_store")
    manager = PrivacyManager([provider], discover=False)
    export_subject(manager, learner, tmp_path / "moodle", now=NOW, pseudonym_key=KEY)
    store = Store("sqlite://", keyring=Keyring.generate())
    store.add_all(moodle.records_of(learner))
    export_subject(store, learner, tmp_path / "store", now=NOW, pseudonym_key=KEY)
    ours = sorted((tmp_path / "moodle" / "data").rglob("*.json"))
    theirs = sorted((tmp_path / "store" / "data").rglob("*.json"))
    assert [p.relative_to(tmp_path / "moodle") for p in ours] == [
        p.relative_to(tmp_path / "store") for p in theirs
    ]
    for mine, other in zip(ours, theirs, strict=True):
        a, b = json.loads(mine.read_text()), json.loads(other.read_text())
        assert sorted(a["records"], key=lambda r: r["id"]) == sorted(
            b["records"], key=lambda r: r["id"]
        )
        for key in ("schema", "component", "record_type", "typed", "fields", "lawful_basis"):
            assert a[key] == b[key]
        # Only the descriptions differ: they come from the site's registry.
        assert a["purpose"] in {p.name for p in provider.registry.purposes}


def test_unknown_learner_is_not_found(moodle: MoodleDatabase, tmp_path: Path) -> None:
    """An id Moodle does not hold (or a deleted account) exports nothing."""
    manager = PrivacyManager([MoodleProvider(moodle)], discover=False)
    with pytest.raises(NotFoundError):
        export_subject(manager, "99999", tmp_path / "none", now=NOW)


def test_deletion_is_refused_and_changes_nothing(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """A deletion request fails for the Moodle component, naming why; no row goes."""
    learner = busy_learner(moodle, site[1])
    before = len(moodle.records_of(learner))
    manager = PrivacyManager([MoodleProvider(moodle)], discover=False)
    result = manager.delete_data_for_user(learner)
    assert result.status is RequestStatus.FAILED
    outcome = result.outcome("moodle")
    assert outcome.error is not None
    assert "read-only" in outcome.error
    assert len(moodle.records_of(learner)) == before


def test_metadata_names_moodle_tables_and_registry_purposes(moodle: MoodleDatabase) -> None:
    """The metadata lists the Moodle tables read, with the registry's purposes and periods."""
    collection = MoodleProvider(moodle).get_metadata(MetadataCollection("moodle"))
    items: dict[str, Any] = {item.name: item for item in collection}
    assert set(items) >= {"user", "course_completions", "logstore_standard_log"}
    assert items["user"].purpose == "Gestion du compte"
    assert str(items["user"].retention) == "P18M"
    assert "email" in items["user"].fields


def test_users_in_a_course_context(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """A course context lists its enrolled users; a user context its live account only."""
    provider = MoodleProvider(moodle)
    course = min(site[1].course_ids)
    userlist = UserList(Context.course(course), "moodle")
    provider.get_users_in_context(userlist)
    expected = {str(u) for u, c in moodle.enrolments() if c == course}
    assert set(userlist.user_ids) == expected
    deleted = UserList(Context.user(min(site[1].deleted_user_ids)), "moodle")
    provider.get_users_in_context(deleted)
    assert len(deleted) == 0


def test_export_writes_only_approved_user_context(moodle: MoodleDatabase) -> None:
    """Without the user's own context approved, nothing is written."""
    writer = MemoryWriter()
    provider = MoodleProvider(moodle)
    provider.export_user_data(ApprovedContextList("3", [Context.course(2)]), writer)
    assert writer.rows == {}
