"""Moodle's data registry: purposes, categories, inheritance, Schedule, and back to rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from learnprivacy import ContextLevel
from learnprivacy.basis import LawfulBasis, SpecialCategoryCondition
from learnprivacy.moodle import (
    DataRegistry,
    MoodleDatabase,
    Purpose,
    ScanIssues,
    insert_registry,
    registry_rows,
)
from learnprivacy.moodle._registry import INHERIT, LevelAssignment
from learnprivacy.moodle._registry_read import parse_config_name
from learnprivacy.records import Certificate, Learner, Progress, ProgressStatus
from learnprivacy.retention import Action, Period, Trigger
from learnprivacy.testing.moodle import create_schema, insert_rows, populate
from tests import NOW, sample
from tests.conftest import open_engine


def new_engine(new_database: Callable[[], str]) -> sa.Engine:
    """An empty Moodle schema in a fresh database on the module's engine."""
    engine = open_engine(new_database())
    create_schema(engine)
    return engine


@pytest.fixture(scope="module")
def source(new_database: Callable[[], str]) -> Iterator[sa.Engine]:
    """A small fixture site (its registry is what matters here), once per engine."""
    engine = new_engine(new_database)
    populate(engine, now=NOW, users=20, courses=4, log_events_per_user=0)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(source: sa.Engine) -> DataRegistry:
    """The fixture site's registry, read through the adapter."""
    with MoodleDatabase(source) as db:
        return db.registry()


def test_purposes_are_parsed(registry: DataRegistry) -> None:
    """Lawful bases, special-category reasons, ISO 8601 periods and protection are typed."""
    assert [p.name for p in registry.purposes] == [
        "Plateforme et sécurité",
        "Gestion du compte",
        "Suivi de formation",
        "Dossiers financeurs (OPCO)",
        "Accompagnement du handicap",
    ]
    training = registry.purpose(3)
    assert training is not None
    assert training.lawful_bases == (LawfulBasis.CONTRACT, LawfulBasis.LEGITIMATE_INTERESTS)
    assert training.retention == Period(years=3)
    funders = registry.purpose(4)
    assert funders is not None
    assert funders.protected
    assert funders.basis is LawfulBasis.LEGAL_OBLIGATION
    health = registry.purpose(5)
    assert health is not None
    assert health.sensitive_reasons == (SpecialCategoryCondition.EXPLICIT_CONSENT,)
    assert [c.name for c in registry.categories][:2] == ["Identité et compte", "Suivi pédagogique"]


def test_effective_purposes_follow_moodle_inheritance(registry: DataRegistry) -> None:
    """Level purposes come from ctxlevel or config defaults; INHERIT climbs to the parent."""
    names = {level: registry.level_purpose(level) for level in ContextLevel}
    assert names[ContextLevel.SYSTEM] == registry.purpose(1)
    assert names[ContextLevel.USER] == registry.purpose(2)
    assert names[ContextLevel.COURSE] == registry.purpose(3)
    # Module defaults are INHERIT: the course level's purpose applies.
    assert names[ContextLevel.MODULE] == registry.purpose(3)
    # Course categories inherit from the system level.
    assert names[ContextLevel.COURSECAT] == registry.purpose(1)
    # The protected course has a purpose of its own; the others use the level's.
    assert registry.instance_purpose(ContextLevel.COURSE, 3) == registry.purpose(4)
    assert registry.instance_purpose(ContextLevel.COURSE, 2) == registry.purpose(3)
    assert set(registry.course_overrides()) == {3}


def test_schedule_from_registry() -> None:
    """The Schedule counts learners from last activity, course records from their date."""
    registry = DataRegistry(
        purposes=(
            Purpose(id=1, name="logs", lawful_bases=(LawfulBasis.LEGITIMATE_INTERESTS,),
                    retention=Period.parse("P1Y")),
            Purpose(id=2, name="account", lawful_bases=(LawfulBasis.CONTRACT,),
                    retention=Period.parse("P18M")),
            Purpose(id=3, name="training", lawful_bases=(LawfulBasis.CONTRACT,),
                    retention=Period.parse("P3Y")),
        ),
        levels=(
            LevelAssignment(level=ContextLevel.SYSTEM, purpose_id=1, category_id=0),
            LevelAssignment(level=ContextLevel.USER, purpose_id=2, category_id=0),
            LevelAssignment(level=ContextLevel.COURSE, purpose_id=3, category_id=0,
                            source="config"),
        ),
    )  # fmt: skip
    schedule = registry.schedule()
    (rule,) = schedule.rules_for(Learner)
    assert (rule.period, rule.trigger, rule.fallback) == (
        Period(months=18),
        Trigger.LAST_ACTIVITY,
        Trigger.CREATED,
    )
    assert rule.purpose == "account"
    assert not rule.minimum
    ana = sample(Learner, id="7", last_activity_at=dt.datetime(2024, 12, 15, 12, 0, tzinfo=dt.UTC))
    assert schedule.evaluate(ana, now=NOW).action is Action.ERASE  # 18 months: 2026-06-15
    early = NOW - dt.timedelta(seconds=1)
    assert schedule.evaluate(ana, now=early).action is Action.KEEP
    (course_rule,) = schedule.rules_for(Progress)
    assert (course_rule.period, course_rule.trigger) == (Period(years=3), Trigger.CREATED)
    assert schedule.rules_for(Certificate)[0].trigger is Trigger.ISSUED


def test_protected_course_purpose_adds_a_legal_minimum(registry: DataRegistry) -> None:
    """A course with a protected purpose of its own keeps its records, even on request."""
    schedule = registry.schedule()
    rules = schedule.rules_for(Progress)
    assert len(rules) == 2
    override = next(r for r in rules if r.where)
    assert override.where == (("course_id", "3"),)
    assert override.minimum
    assert override.period == Period(years=6)
    learner = sample(Learner, id="9", created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    recorded = NOW - dt.timedelta(days=4 * 365)
    completed = {"learner_id": "9", "status": ProgressStatus.COMPLETED, "recorded_at": recorded}
    funded = sample(Progress, id="p1", course_id="3", **completed)
    other = sample(Progress, id="p2", course_id="2", **completed)
    assert schedule.evaluate(other, now=NOW, subject=learner).action is Action.ERASE
    assert schedule.evaluate(funded, now=NOW, subject=learner).action is Action.KEEP
    asked = schedule.evaluate(funded, now=NOW, subject=learner, erasure_requested=True)
    assert asked.action is Action.RESTRICT


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("context_course_purpose", (ContextLevel.COURSE, "purpose")),
        ("core\\context\\course_purpose", (ContextLevel.COURSE, "purpose")),
        ("context_system_category", (ContextLevel.SYSTEM, "category")),
        ("core\\context\\coursecat_category", (ContextLevel.COURSECAT, "category")),
        ("context_module_forum_purpose", None),  # one activity module's default
        ("requireallenddatesforuserdeletion", None),
        ("contactdataprotectionofficer", None),
    ],
)
def test_config_names_of_level_defaults(name: str, expected: object) -> None:
    """Both Moodle namings of level defaults (before and since 4.2) are recognised."""
    assert parse_config_name(name) == expected


def test_round_trip_through_another_database(
    registry: DataRegistry, new_database: Callable[[], str]
) -> None:
    """Rows written into another Moodle database read back as the same registry."""
    target = new_engine(new_database)
    try:
        counts = insert_registry(target, registry, now=NOW, include_instances=True)
        assert counts["tool_dataprivacy_purpose"] == 5
        with MoodleDatabase(target) as db:
            copy = db.registry()
        assert copy.purposes == registry.purposes
        assert copy.categories == registry.categories
        assert copy.levels == registry.levels
        # Context ids were kept; the target has no context rows to say what they are.
        assert [i.context_id for i in copy.instances] == [i.context_id for i in registry.instances]
        # The ids are real: Moodle (or the next import) can go on inserting.
        insert_rows(target, "tool_dataprivacy_purpose", [
            {"name": "new", "lawfulbases": "gdpr_art_6_1_a", "retentionperiod": "P1D",
             "usermodified": 2, "timecreated": 1, "timemodified": 1},
        ])  # fmt: skip
    finally:
        target.dispose()


def test_renumbered_import_keeps_references(
    registry: DataRegistry, new_database: Callable[[], str]
) -> None:
    """keep_ids=False appends after a site's own purposes and rewrites every reference."""
    target = new_engine(new_database)
    insert_rows(target, "tool_dataprivacy_purpose", [
        {"name": f"existing {n}", "lawfulbases": "gdpr_art_6_1_b", "retentionperiod": "P1Y",
         "usermodified": 2, "timecreated": 1, "timemodified": 1}
        for n in range(3)
    ])  # fmt: skip
    insert_registry(target, registry, now=NOW, keep_ids=False)
    with MoodleDatabase(target) as db:
        copy = db.registry()
    assert [p.id for p in copy.purposes] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [p.name for p in copy.purposes][:3] == ["existing 0", "existing 1", "existing 2"]
    assert copy.level_purpose(ContextLevel.USER) is not None
    assert copy.level_purpose(ContextLevel.USER).name == "Gestion du compte"  # type: ignore[union-attr]
    assert copy.level_purpose(ContextLevel.COURSE).name == "Suivi de formation"  # type: ignore[union-attr]
    assert copy.level_purpose(ContextLevel.MODULE) == copy.level_purpose(ContextLevel.COURSE)
    target.dispose()


def test_copy_into_a_site_with_its_own_registry(
    registry: DataRegistry, source: sa.Engine, new_database: Callable[[], str]
) -> None:
    """A site with a registry of its own takes the copy: renumbered, its defaults replaced.

    Copying the fixture's registry into a copy of itself sets every level default and
    setting twice; before, the unique keys of tool_dataprivacy_ctxlevel and config_plugins
    refused that (and the transaction rolled back).
    """
    target = new_engine(new_database)
    try:
        insert_registry(target, registry, now=NOW, keep_ids=False)
        counts = insert_registry(target, registry, now=NOW, keep_ids=False)
        assert counts["tool_dataprivacy_purpose"] == len(registry.purposes)
        with MoodleDatabase(target) as db:
            copy = db.registry()
        n = len(registry.purposes)
        assert [p.id for p in copy.purposes] == list(range(1, 2 * n + 1))
        user = copy.level_purpose(ContextLevel.USER)
        assert user is not None
        assert user.id > n  # the second copy's purpose, not the first's
        assert user.name == "Gestion du compte"
        with target.connect() as connection:
            names = [
                row[0]
                for row in connection.execute(
                    sa.text("SELECT name FROM mdl_config_plugins ORDER BY name")
                )
            ]
        assert len(names) == len(set(names))
    finally:
        target.dispose()


def test_rows_are_in_moodle_format(registry: DataRegistry) -> None:
    """Rows hold Moodle's encodings: comma lists, ISO periods, 0/1 flags, Unix times."""
    rows = registry_rows(registry, now=NOW, modified_by=7)
    purpose = next(r for r in rows["tool_dataprivacy_purpose"] if r["id"] == 3)
    assert purpose["lawfulbases"] == "gdpr_art_6_1_b,gdpr_art_6_1_f"
    assert purpose["sensitivedatareasons"] is None
    assert purpose["retentionperiod"] == "P3Y"
    assert purpose["protected"] == 0
    assert purpose["usermodified"] == 7
    assert isinstance(purpose["timecreated"], int)
    health = next(r for r in rows["tool_dataprivacy_purpose"] if r["id"] == 5)
    assert health["sensitivedatareasons"] == "gdpr_art_9_2_a"
    assert {r["contextlevel"] for r in rows["tool_dataprivacy_ctxlevel"]} == {10, 30}
    config = {r["name"]: r["value"] for r in rows["config_plugins"]}
    # The names Moodle 4.5's data registry reads back (not the namespaced 4.2+ form).
    assert config["context_course_purpose"] == "3"
    assert config["context_module_purpose"] == str(INHERIT)
    assert not any(name.startswith("core\\") for name in config)
    assert rows["tool_dataprivacy_ctxinstance"] == []  # only for the same site


def test_unreadable_registry_values_are_reported(new_database: Callable[[], str]) -> None:
    """Unknown codes are dropped and bad periods leave no rule; both are reported."""
    engine = new_engine(new_database)
    insert_rows(engine, "tool_dataprivacy_purpose", [
        {"id": 1, "name": "odd", "lawfulbases": "gdpr_art_6_1_b,gdpr_art_6_1_z",
         "sensitivedatareasons": "", "retentionperiod": "18 months", "usermodified": 2,
         "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    insert_rows(engine, "tool_dataprivacy_ctxlevel", [
        {"contextlevel": 30, "purposeid": 1, "categoryid": 0, "usermodified": 2,
         "timecreated": 1, "timemodified": 1},
    ])  # fmt: skip
    issues = ScanIssues()
    with MoodleDatabase(engine) as db:
        registry = db.registry(issues=issues)
    (odd,) = registry.purposes
    assert odd.lawful_bases == (LawfulBasis.CONTRACT,)
    assert odd.retention is None
    assert registry.schedule().rules_for(Learner) == ()
    assert issues.counts() == {
        "tool_dataprivacy_purpose: Purpose.lawful_bases: unknown code": 1,
        "tool_dataprivacy_purpose: Purpose.retention: not an ISO 8601 duration": 1,
    }
    engine.dispose()
