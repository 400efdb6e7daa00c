"""MoodleProvider.export_layout: a learner's Moodle data laid out as Moodle 4.5's own export."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ValidationError
from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._layout import MoodleContextTree
from learnprivacy.moodle._writer import MoodleContentWriter
from learnprivacy.providers import Context, ContextLevel
from learnprivacy.testing.moodle import FixtureSummary
from tests.conftest import synthetic_site

REFERENCE = Path(__file__).parent / "vectors" / "moodle45_export_layout.txt"
# Moodle's names of the activity types the fixture has, which open an activity's folder.
ACTIVITY_LABELS = "Assignment|Forum|Quiz|Page|SCORM package|Custom certificate"


def normalise(path: str) -> str:
    """A path with ids and names replaced, so two sites' exports compare by shape."""
    parts = []
    for part in path.split("/"):
        part = re.sub(r" _\.\d+$", " _.N", part)
        part = re.sub(r"^(Category|Course|User) .+ _\.N$", r"\1 * _.N", part)
        part = re.sub(rf"^({ACTIVITY_LABELS}) .+ _\.N$", r"Activity * _.N", part)
        part = re.sub(r"^\d+-.+$", "*", part)  # Discussions/<id>-<name>
        part = re.sub(r"^Policy .+$", "Policy *", part)
        parts.append(part)
    return "/".join(parts)


def reference_paths() -> set[str]:
    lines = REFERENCE.read_text(encoding="utf-8").splitlines()
    return {normalise(line) for line in lines if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, FixtureSummary]]:
    """A small synthetic site on each engine."""
    engine, summary = synthetic_site(new_database(), users=40, courses=5)
    yield engine, summary
    engine.dispose()


def busy(db: MoodleDatabase, summary: FixtureSummary) -> str:
    """A learner with a policy answer, log-ins, a course and an activity."""
    for uid in sorted(summary.learner_ids - summary.invalid_email_user_ids):
        kinds = {type(r).__name__ for r in db.records_of(uid)}
        if {"Consent", "AccessEvent", "Progress"} <= kinds:
            return str(uid)
    raise AssertionError("no busy learner in the fixture")


def test_layout_matches_moodles_for_the_same_kinds_of_data(
    site: tuple[sa.Engine, FixtureSummary], tmp_path: Path
) -> None:
    """Course, activity, enrolment, grades, logs, user and policy files sit where Moodle's do."""
    with MoodleDatabase(site[0]) as db:
        learner = busy(db, site[1])
        out = MoodleProvider(db).export_layout(learner, tmp_path / "export")
    ours = {str(p.relative_to(out)) for p in out.rglob("*.json")}
    shapes = {normalise(p) for p in ours}
    reference = reference_paths()
    # The kinds of data both exports hold are in the same places, named the same way.
    for expected in (
        "System _.N/data.json",
        "System _.N/Logs/Standard log/data.json",
        "System _.N/User * _.N/data.json",
        "System _.N/User * _.N/Privacy and policies/User agreements/Policy */data.json",
        "System _.N/Category * _.N/Course * _.N/data.json",
        "System _.N/Category * _.N/Course * _.N/Enrolments/manual.json",
        "System _.N/Category * _.N/Course * _.N/Grades/data.json",
        "System _.N/Category * _.N/Course * _.N/Activity * _.N/data.json",
    ):
        assert expected in reference, expected  # the normalisation reads Moodle's names
        assert expected in shapes, expected
    # What the fixture's learner has and Moodle's reference learner had not (or what
    # Moodle has no place for) is in folders named as Moodle's providers name them.
    extra = shapes - reference
    assert all(
        re.search(
            r"/(Completion|Certificates|Consents|Grades|Learner|Access events|Files|Notes)"
            r"/data\.json$",
            s,
        )
        or re.search(r"/Activity \* _\.N/(attempt \d+|Attempts/\d+|Discussions/\*/[^/]+)/", s)
        or re.search(r"/User \* _\.N/(Messages|Badges)/[^/]+/data\.json$", s)
        or re.search(r"/User \* _\.N/(Text input|Drop-down menu)/data\.json$", s)
        # Moodle's writer operations: export_metadata, and the files of an area (whose
        # content a database reader cannot copy: their metadata stands in for them).
        or re.search(r"(^|/)metadata\.json$", s)
        or re.search(r"/_files/[a-z_]+/files\.json$", s)
        for s in extra
    ), sorted(extra)
    # The same top-level keys where Moodle's file and ours hold the same data.
    logs = json.loads(
        (out / next(p for p in ours if p.endswith("Standard log/data.json"))).read_text()
    )
    assert set(logs) == {"logs"}
    grades = next(p for p in ours if re.search(r"Course [^/]+/Grades/data\.json$", p))
    assert set(json.loads((out / grades).read_text())) == {"grades"}
    enrolment = json.loads((out / next(p for p in ours if p.endswith("manual.json"))).read_text())
    assert set(enrolment) == {"0"}


def test_folders_follow_moodles_context_ids_and_paths(
    site: tuple[sa.Engine, FixtureSummary],
) -> None:
    """Each folder ends with its context id and nests along the context's path."""
    engine = site[0]
    with MoodleDatabase(engine) as db:
        tree = MoodleContextTree(MoodleProvider(db))
        ctx = db.schema["context"]
        with db.connect() as connection:
            rows = connection.execute(
                sa.select(ctx.c.id, ctx.c.path).where(ctx.c.contextlevel == 70)
            ).all()
            cmid = connection.execute(
                sa.select(ctx.c.instanceid).where(ctx.c.id == rows[0][0])
            ).scalar()
    folder = tree.folder(Context.module(int(cmid)))
    ids = [int(part.rsplit(" _.", 1)[1]) for part in folder.parts]
    assert ids == [int(p) for p in rows[0][1].split("/") if p]
    assert folder.parts[0].startswith("System ")
    assert folder.parts[1].startswith("Category ")
    assert folder.parts[2].startswith("Course ")


def test_index_links_every_file(site: tuple[sa.Engine, FixtureSummary], tmp_path: Path) -> None:
    """index.html is a navigable tree: every data file is linked from it."""
    with MoodleDatabase(site[0]) as db:
        out = MoodleProvider(db).export_layout(busy(db, site[1]), tmp_path / "e")
    index = (out / "index.html").read_text()
    for path in out.rglob("*.json"):
        href = "/".join(path.relative_to(out).parts)
        assert f'href="{href.replace("&", "&amp;")}"' in index or href in index


def test_writer_operations_match_moodles_files(
    site: tuple[sa.Engine, FixtureSummary], tmp_path: Path
) -> None:
    """Preferences, metadata, related data and file references, as Moodle writes them."""
    with MoodleDatabase(site[0]) as db:
        provider = MoodleProvider(db)
        writer = MoodleContentWriter(MoodleContextTree(provider))
        course = writer.with_context(Context.course(min(site[1].course_ids)))
        course.export_data(["Discussions", "7-Question 1/2"], {"name": "Question 1/2"})
        course.export_metadata([], "purpose", "Formation", "Purpose")
        course.export_related_data(["Enrolments"], "manual", {"0": {"status": "active"}})
        course.export_file_references([], "attachment", [{"filename": "a.pdf"}])
        writer.export_user_preference("mod_forum", "maildigest", "0", "Digest type")
        with pytest.raises(ValidationError):
            course.export_data("Discussions", {})  # a string is not a list of names
        out = writer.finalise(tmp_path / "ops")
    paths = {str(p.relative_to(out)) for p in out.rglob("*.json")}
    folder = next(p for p in paths if p.endswith("metadata.json")).rsplit("/", 1)[0]
    # A "/" in a name never makes a folder of its own.
    assert f"{folder}/Discussions/7-Question 1_2/data.json" in paths
    assert f"{folder}/Enrolments/manual.json" in paths
    assert f"{folder}/_files/attachment/files.json" in paths
    prefs = json.loads((out / "System _.1/User preferences/mod_forum.json").read_text())
    assert prefs == {"maildigest": {"value": "0", "description": "Digest type"}}
    meta = json.loads((out / folder / "metadata.json").read_text())
    assert meta == {"purpose": {"value": "Formation", "description": "Purpose"}}
    assert (out / "index.html").read_text().count("<a href=") == len(paths)


def test_registry_purpose_shown_where_it_applies(
    site: tuple[sa.Engine, FixtureSummary], tmp_path: Path
) -> None:
    """A course with a purpose of its own shows it; the others show the course level's."""
    engine, summary = site
    with MoodleDatabase(engine) as db:
        provider = MoodleProvider(db)
        registry = provider.registry
        protected = summary.protected_course_id
        assert protected is not None
        own = registry.instance_purpose(ContextLevel.COURSE, protected)
        level = registry.level_purpose(ContextLevel.COURSE)
        assert own is not None
        assert level is not None
        assert own != level
        learner = next(
            str(u)
            for u, c in db.enrolments()
            if c == protected and u in summary.learner_ids - summary.invalid_email_user_ids
        )
        out = provider.export_layout(learner, tmp_path / "purposes")
        tree = MoodleContextTree(provider)
    meta = json.loads((out / tree.folder(Context.course(protected)) / "metadata.json").read_text())
    assert meta["purpose"]["value"] == own.name
    assert meta["retention"]["value"] == str(own.retention)
    prefs = list((out / "System _.1" / "User preferences").glob("*.json"))
    for path in prefs:
        assert all(
            set(v) == {"value", "description"} for v in json.loads(path.read_text()).values()
        )
