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
from learnprivacy.moodle._provider import CONTENT_TYPES
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    ContextLevel,
    MemoryWriter,
    MetadataCollection,
    PrivacyManager,
    UserList,
)
from learnprivacy.providers._results import RequestStatus
from learnprivacy.store import Store
from learnprivacy.testing.moodle import FixtureSummary
from tests import NOW
from tests.conftest import synthetic_site

#: What the provider exports as Moodle's own rows (no learnprivacy record type).
MOODLE_ROWS = frozenset(
    {
        "Enrolment",
        "Grade",
        "PolicyAcceptance",
        "Profile",
        "Preference",
        "LogEntry",
        "DataRequest",
        *CONTENT_TYPES,
    }
)
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, FixtureSummary]]:
    """A small synthetic site on each engine."""
    engine, summary = synthetic_site(new_database(), users=60, courses=6)
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
    # Enrolments, grades, acceptances: Moodle's own rows, no store record type.
    ours = sorted(
        p for p in (tmp_path / "moodle" / "data").rglob("*.json") if p.stem not in MOODLE_ROWS
    )
    theirs = sorted((tmp_path / "store" / "data").rglob("*.json"))
    assert [p.relative_to(tmp_path / "moodle") for p in ours] == [
        p.relative_to(tmp_path / "store") for p in theirs
    ]
    for mine, other in zip(ours, theirs, strict=True):
        a, b = json.loads(mine.read_text()), json.loads(other.read_text())

        def without_basis(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return sorted(({**r, "basis": None} for r in records), key=lambda r: r["id"])

        assert without_basis(a["records"]) == without_basis(b["records"])
        for key in ("schema", "component", "record_type", "typed", "fields"):
            assert a[key] == b[key]
        # The descriptions and the bases come from the site's registry.
        assert a["purpose"] in {p.name for p in provider.registry.purposes}
        assert {r["basis"] for r in a["records"]} <= {
            b.name.lower() for p in provider.registry.purposes for b in p.lawful_bases
        } | {"consent", "contract"}


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


def test_metadata_is_what_the_export_says(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """No declared field left unexported, none exported undeclared, the same basis.

    Before, the metadata declared the last IP, grade feedback and acceptance notes (none
    exported) and legal obligation where the export said contract.
    """
    provider = MoodleProvider(moodle)
    tables = {t.name: t for t in provider.get_metadata(MetadataCollection("moodle"))}
    learner = busy_learner(moodle, site[1])
    writer = MemoryWriter()
    contexts = provider.get_contexts_for_userid(learner)
    provider.export_user_data(ApprovedContextList.approve(learner, contexts), writer)
    assert writer.descriptions
    for (_, record_type), description in writer.descriptions.items():
        declared = [t for t in tables.values() if f" {record_type} " in t.summary]
        assert declared, record_type
        for table in declared:
            assert set(table.fields) == set(description.fields), (table.name, record_type)
            assert table.basis == description.basis, (table.name, record_type)
            assert table.purpose == description.purpose, (table.name, record_type)
        for row in writer.rows[("moodle", record_type)]:
            assert set(row) - {"id", "basis", "schema", "type"} <= set(description.fields)
            if record_type != "Consent" and record_type not in MOODLE_ROWS:
                assert row["basis"] == description.basis.name.lower()  # type: ignore[union-attr]


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
    """A course context lists its enrolled live users; a user context its live account only."""
    provider = MoodleProvider(moodle)
    course = min(site[1].course_ids)
    userlist = UserList(Context.course(course), "moodle")
    provider.get_users_in_context(userlist)
    enrolled = {str(u) for u, c in moodle.enrolments() if c == course}
    live = {str(u.id) for u in moodle.users() if not (u.deleted or u.guest)}
    assert set(userlist.user_ids) >= enrolled & live
    assert not set(userlist.user_ids) - live
    deleted = UserList(Context.user(min(site[1].deleted_user_ids)), "moodle")
    provider.get_users_in_context(deleted)
    assert len(deleted) == 0


def test_export_writes_only_approved_contexts(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """Each approved context exports exactly its own data: a course alone, that course's."""
    learner = busy_learner(moodle, site[1])
    provider = MoodleProvider(moodle)
    contexts = provider.get_contexts_for_userid(learner)
    courses = [c for c in contexts if c.level is ContextLevel.COURSE]
    assert courses
    course = courses[0]
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList(learner, [course]), writer)
    progress = writer.rows.get(("moodle", "Progress"), [])
    assert progress
    assert all(r["course_id"] == course.instance_id for r in progress)
    assert all(r["activity_id"] is None for r in progress)  # activities are their own contexts
    enrolments = writer.rows[("moodle", "Enrolment")]
    assert {r["course_id"] for r in enrolments} == {course.instance_id}
    assert ("moodle", "Learner") not in writer.rows  # the user context was not approved
    assert ("moodle", "AccessEvent") not in writer.rows
    # Everything approved: every record of the learner, each exactly once.
    everything = MemoryWriter()
    provider.export_user_data(ApprovedContextList.approve(learner, contexts), everything)
    written = sum(
        len(v)
        for k, v in everything.rows.items()
        if k[1] in {"Learner", "Progress", "Consent", "AccessEvent", "Certificate"}
    )
    assert written == len(moodle.records_of(learner))


def test_contexts_of_a_learner(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """User, system, courses and activities: every context where the learner has data."""
    learner = busy_learner(moodle, site[1])
    contexts = list(MoodleProvider(moodle).get_contexts_for_userid(learner))
    levels = {c.level for c in contexts}
    assert levels == {
        ContextLevel.USER,
        ContextLevel.SYSTEM,
        ContextLevel.COURSE,
        ContextLevel.MODULE,
    }
    assert contexts[0] == Context.user(learner)
    enrolled = {str(c) for u, c in moodle.enrolments() if str(u) == learner}
    assert enrolled <= {c.instance_id for c in contexts if c.level is ContextLevel.COURSE}
    deleted = str(min(site[1].deleted_user_ids))
    assert list(MoodleProvider(moodle).get_contexts_for_userid(deleted)) == []


def test_users_in_context_and_export_agree(
    moodle: MoodleDatabase, site: tuple[sa.Engine, FixtureSummary]
) -> None:
    """A user is listed in a context exactly when exporting that context writes their data."""
    provider = MoodleProvider(moodle)
    learner = busy_learner(moodle, site[1])
    contexts = list(provider.get_contexts_for_userid(learner))
    course = next(c for c in contexts if c.level is ContextLevel.COURSE)
    module = next(c for c in contexts if c.level is ContextLevel.MODULE)
    candidates = sorted(site[1].learner_ids | site[1].deleted_user_ids | {1, 2})[:40]
    for context in (course, module, Context.system()):
        userlist = UserList(context, "moodle")
        provider.get_users_in_context(userlist)
        listed = set(userlist.user_ids)
        assert learner in listed
        for uid in map(str, candidates):
            writer = MemoryWriter()
            provider.export_user_data(ApprovedContextList(uid, [context]), writer)
            assert (uid in listed) == bool(writer.rows), (context, uid)
