"""xAPI statements: valid for ralph's xAPI models, Rustici's TinCan library and our checks."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.export._xapi import (
    ACTIVITY_TYPE_COURSE,
    ACTIVITY_TYPE_MODULE,
    STATEMENT_NAMESPACE,
    VERB_ATTEMPTED,
    VERB_COMPLETED,
    VERB_EARNED,
    VERB_FAILED,
    VERB_PASSED,
    check_statement,
    format_xapi_duration,
    statement_for,
    statement_id,
)
from learnprivacy.export.xapi import XapiProfile, statements_for
from learnprivacy.records import Certificate, Learner, Progress, ProgressStatus, Score
from learnprivacy.testing.strategies import certificates, progress
from tests import sample

statements_module = pytest.importorskip("ralph.models.xapi.base.statements")
BaseXapiStatement = statements_module.BaseXapiStatement
tincan = pytest.importorskip("tincan")

T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
PROFILE = XapiProfile(home_page="https://lms.example.org")
#: A French campus: its language, platform and course names.
CAMPUS = attrs.evolve(
    PROFILE,
    language="fr-FR",
    platform="Campus Formation",
    course_names={"SST-2024": "Sauveteur secouriste du travail"},
    names_language="fr-FR",
)
SECRET_ID = "learner-internal-4242"


class _Pseudonyms:
    """A real keyed pseudonymiser, as export_subject builds it."""

    def __init__(self) -> None:
        from learnprivacy.crypto import Pseudonymiser

        self._inner = Pseudonymiser(bytes(range(32)), domain=PROFILE.pseudonym_domain)

    def pseudonym(self, identifier: str) -> str:
        return self._inner.pseudonym(identifier)


LATER = dt.datetime(2300, 1, 1, tzinfo=dt.UTC)


def _validate(statement: dict[str, Any]) -> None:
    """Three validators: ralph's schema model, Rustici's TinCan library, our own checks."""
    BaseXapiStatement.model_validate(statement)
    tincan.Statement(copy.deepcopy(statement))
    check_statement(statement)
    text = json.dumps(statement)
    assert SECRET_ID not in text
    assert "mbox" not in text
    assert "version" not in statement


def _progress(status: ProgressStatus, **overrides: Any) -> Progress:
    values: dict[str, Any] = {
        "id": "P1",
        "learner_id": SECRET_ID,
        "course_id": "SST-2024",
        "status": status,
        "recorded_at": T0,
    }
    values.update(overrides)
    return Progress(**values)


@settings(max_examples=60, deadline=None)
@given(st.one_of(progress(SECRET_ID), certificates(SECRET_ID)))
def test_every_generated_statement_is_valid(record: Progress | Certificate) -> None:
    """Any progress or certificate gives a statement both validators accept (or none)."""
    statements = list(
        statements_for([record], pseudonyms=_Pseudonyms(), profile=PROFILE, now=LATER)
    )
    if isinstance(record, Progress) and record.status is ProgressStatus.NOT_STARTED:
        assert statements == []
        return
    (statement,) = statements
    _validate(statement)
    stamp = dt.datetime.fromisoformat(statement["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)
    when = record.recorded_at if isinstance(record, Progress) else record.issued_at
    assert dt.timedelta(0) <= when - stamp < dt.timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("status", "verb", "success", "completion"),
    [
        (ProgressStatus.PASSED, VERB_PASSED, True, True),
        (ProgressStatus.FAILED, VERB_FAILED, False, True),
        (ProgressStatus.COMPLETED, VERB_COMPLETED, None, True),
        (ProgressStatus.IN_PROGRESS, VERB_ATTEMPTED, None, False),
    ],
)
def test_progress_status_maps_to_verb_success_and_completion(
    status: ProgressStatus, verb: str, success: bool | None, completion: bool
) -> None:
    """passed/failed/completed keep their ADL verb, in progress is 'attempted'."""
    statement = statement_for(_progress(status), actor_name="p1_x", profile=PROFILE)
    assert statement is not None
    assert statement["verb"]["id"] == verb
    assert statement["result"].get("success") == success
    assert statement["result"]["completion"] is completion
    _validate(statement)


def test_not_started_gives_no_statement() -> None:
    """Nothing happened yet, so nothing is stated."""
    assert statement_for(_progress(ProgressStatus.NOT_STARTED), actor_name="p1_x") is None


def test_progress_statement_content() -> None:
    """Actor account, activity IRIs under the profile, score, duration and timestamp."""
    record = _progress(
        ProgressStatus.PASSED,
        score=Score(raw=Decimal("17.5"), min=0, max=20),
        time_spent=dt.timedelta(hours=1, minutes=2, seconds=3),
        activity_id="quiz 3/b",
    )
    statement = statement_for(record, actor_name="p1_abc", profile=PROFILE)
    assert statement is not None
    assert statement["actor"] == {
        "objectType": "Agent",
        "account": {"homePage": "https://lms.example.org", "name": "p1_abc"},
    }
    assert statement["object"]["id"] == (
        "https://lms.example.org/xapi/activities/courses/SST-2024/activities/quiz%203%2Fb"
    )
    assert statement["context"]["contextActivities"]["parent"] == [
        {
            "objectType": "Activity",
            "id": "https://lms.example.org/xapi/activities/courses/SST-2024",
            "definition": {"type": ACTIVITY_TYPE_COURSE},
        }
    ]
    assert statement["object"]["definition"]["type"] == ACTIVITY_TYPE_MODULE
    assert statement["result"]["score"] == {"raw": 17.5, "min": 0, "max": 20, "scaled": 0.875}
    assert statement["result"]["duration"] == "PT1H2M3S"
    assert statement["timestamp"] == "2025-03-14T08:30:00.000Z"
    # Nothing the LMS did not configure: no platform, no language.
    assert set(statement["context"]) == {"contextActivities"}
    _validate(statement)


def test_certificate_statement_uses_earned_and_hides_the_code() -> None:
    """Certificates are 'earned'; the personal verification code is not in the statement."""
    certificate = Certificate(
        id="CERT-9",
        learner_id=SECRET_ID,
        course_id="SST-2024",
        issued_at=T0,
        verification_code="SECRETCODE77",
    )
    statement = statement_for(certificate, actor_name="p1_abc", profile=PROFILE)
    assert statement is not None
    assert statement["verb"] == {"id": VERB_EARNED, "display": {"en-US": "earned"}}
    assert statement["object"]["id"] == "https://lms.example.org/xapi/activities/courses/SST-2024"
    assert statement["object"]["definition"]["type"] == ACTIVITY_TYPE_COURSE
    assert "SECRETCODE77" not in json.dumps(statement)
    _validate(statement)


def test_statement_ids_are_deterministic_uuid5() -> None:
    """Same record, same id (idempotent re-export); UUID 5 in the documented namespace."""
    record = _progress(ProgressStatus.PASSED, score=Score(raw=15, min=0, max=20))
    first = statement_for(record, actor_name="p1_a", profile=PROFILE)
    again = statement_for(copy.deepcopy(record), actor_name="p1_a", profile=PROFILE)
    assert first is not None
    assert again is not None
    assert first == again
    assert uuid.UUID(first["id"]).version == 5
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:learnprivacy:xapi:statement") == STATEMENT_NAMESPACE
    # The vector, recomputed independently of the library: the parts joined by U+001F.
    course = "https://lms.example.org/xapi/activities/courses/SST-2024"
    name = "\x1f".join(
        [
            "https://lms.example.org",
            "Progress",
            "P1",
            VERB_PASSED,
            "2025-03-14T08:30:00.000Z",
            course,
            "15/0/20",
            "",
        ]
    )
    assert first["id"] == str(uuid.uuid5(STATEMENT_NAMESPACE, name))
    assert first["id"] == statement_id(
        "https://lms.example.org",
        "Progress",
        "P1",
        VERB_PASSED,
        record.recorded_at,
        object_id=course,
        score={"raw": 15, "min": 0, "max": 20},
    )


@settings(max_examples=300, deadline=None)
@given(record_id=st.text(min_size=1, max_size=40), course=st.text(min_size=1, max_size=20))
def test_statement_ids_are_those_of_the_uuid_module(record_id: str, course: str) -> None:
    """The id, hashed without a UUID object, is ``uuid.uuid5`` of the same name: version 5,
    the RFC 4122 variant, any text (non-ASCII, separators) hashed as UTF-8."""
    stamp = "2025-01-01T00:00:00.000Z"
    name = "\x1f".join(
        ["https://lms.example.org", "Progress", record_id, VERB_PASSED, stamp, course, "", ""]
    )
    made = statement_id(
        "https://lms.example.org",
        "Progress",
        record_id,
        VERB_PASSED,
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        object_id=course,
    )
    assert made == str(uuid.uuid5(STATEMENT_NAMESPACE, name))
    parsed = uuid.UUID(made)
    assert parsed.version == 5
    assert parsed.variant == uuid.RFC_4122


def test_statement_ids_follow_the_event_not_its_wording() -> None:
    """The same event under another offset, language, platform, course name or version has
    the same id; another record, verb, instant, or a rectified score, course or time spent
    has another (the old ids hashed the whole statement, offset included, so a live push
    and an export were two statements)."""
    record = _progress(ProgressStatus.PASSED, score=Score(raw=15, min=0, max=20))
    base = statement_for(record, actor_name="p1_a", profile=PROFILE)
    assert base is not None
    utc = attrs.evolve(record, recorded_at=record.recorded_at.astimezone(dt.UTC))
    tokyo = attrs.evolve(
        record, recorded_at=record.recorded_at.astimezone(dt.timezone(dt.timedelta(hours=9)))
    )
    reworded = attrs.evolve(
        CAMPUS,
        platform="Moodle 4.3",
        course_names={"SST-2024": "Sauveteur secouriste"},
        version="2.0.0",
    )
    same = [
        statement_for(utc, actor_name="p1_a", profile=PROFILE),
        statement_for(tokyo, actor_name="p1_a", profile=PROFILE),
        statement_for(record, actor_name="p1_a", profile=reworded),
    ]
    for statement in same:
        assert statement is not None
        assert statement["id"] == base["id"]
        _validate(statement)
    assert same[0] == same[1] == base  # identical statements, not only identical ids
    different = [
        statement_for(attrs.evolve(record, id="P2"), actor_name="p1_a", profile=PROFILE),
        statement_for(
            attrs.evolve(record, status=ProgressStatus.FAILED), actor_name="p1_a", profile=PROFILE
        ),
        statement_for(
            attrs.evolve(record, recorded_at=T0 + dt.timedelta(milliseconds=1)),
            actor_name="p1_a",
            profile=PROFILE,
        ),
        statement_for(
            record, actor_name="p1_a", profile=XapiProfile(home_page="https://other.example.org")
        ),
        statement_for(
            attrs.evolve(record, score=Score(raw=16, min=0, max=20)),
            actor_name="p1_a",
            profile=PROFILE,
        ),
        statement_for(
            attrs.evolve(record, course_id="SST-2025"), actor_name="p1_a", profile=PROFILE
        ),
        statement_for(
            attrs.evolve(record, time_spent=dt.timedelta(minutes=5)),
            actor_name="p1_a",
            profile=PROFILE,
        ),
    ]
    ids = {s["id"] for s in different if s is not None} | {base["id"]}
    assert len(ids) == 8
    # The actor is not part of the event: another pseudonym, same id (an LRS then
    # refuses the second one as a conflict instead of storing the event twice).
    other_actor = statement_for(record, actor_name="p1_b", profile=PROFILE)
    assert other_actor is not None
    assert other_actor["id"] == base["id"]


def test_profile_vocabulary() -> None:
    """Verbs keep their English display whatever the language; context.language only when
    known; platform and course names from the configuration; registration when present."""
    profile = CAMPUS
    statement = statement_for(_progress(ProgressStatus.PASSED), actor_name="p", profile=profile)
    assert statement is not None
    assert statement["verb"]["display"] == {"en-US": "passed"}
    assert statement["context"]["language"] == "fr-FR"
    assert statement["context"]["platform"] == "Campus Formation"
    assert statement["object"]["definition"]["name"] == {"fr-FR": "Sauveteur secouriste du travail"}
    _validate(statement)
    unnamed = statement_for(_progress(ProgressStatus.PASSED), actor_name="p", profile=PROFILE)
    assert unnamed is not None
    assert "context" not in unnamed
    assert "name" not in unnamed["object"]["definition"]

    registration = uuid.UUID("0b5c3f7e-1c1e-4c5e-9d9b-2f4f1f6a9e11")
    record = _progress(ProgressStatus.COMPLETED)
    # A record type of the LMS that carries a registration (an attempt of a cmi5 course).
    extended = type("RegisteredProgress", (Progress,), {"registration": str(registration)})
    registered = extended(**{f.name: getattr(record, f.name) for f in attrs.fields(Progress)})
    statement = statement_for(registered, actor_name="p", profile=PROFILE)
    assert statement is not None
    assert statement["context"]["registration"] == str(registration)
    _validate(statement)


@pytest.mark.parametrize(
    ("spent", "text"),
    [
        (dt.timedelta(seconds=1.256), "PT1.26S"),
        (dt.timedelta(seconds=1.254), "PT1.25S"),
        (dt.timedelta(microseconds=4999), "PT0S"),
        (dt.timedelta(hours=26, seconds=0.5), "PT26H0.5S"),
        (dt.timedelta(minutes=1, seconds=59.999), "PT2M"),
        (dt.timedelta(0), "PT0S"),
    ],
)
def test_durations_are_rounded_to_hundredths(spent: dt.timedelta, text: str) -> None:
    """xAPI asks for durations at 0.01 s precision: no microseconds reach the LRS."""
    assert format_xapi_duration(spent) == text
    # Twice: the second statement takes the duration already formatted for the first.
    for _ in range(2):
        statement = statement_for(
            _progress(ProgressStatus.COMPLETED, time_spent=spent), actor_name="p", profile=PROFILE
        )
        assert statement is not None
        assert statement["result"]["duration"] == text
        _validate(statement)


def test_future_timestamps_are_refused() -> None:
    """A statement cannot state what has not happened yet: ValidationError, no statement."""
    now = T0
    later = _progress(ProgressStatus.PASSED, recorded_at=T0 + dt.timedelta(seconds=1))
    with pytest.raises(ValidationError) as caught:
        statement_for(later, actor_name="p", profile=PROFILE, now=now)
    assert caught.value.field == "timestamp"
    with pytest.raises(ValidationError):
        list(statements_for([later], pseudonyms=_Pseudonyms(), profile=PROFILE, now=now))
    assert statement_for(_progress(ProgressStatus.PASSED), actor_name="p", now=now) is not None
    with pytest.raises(ValidationError):
        statement_for(_progress(ProgressStatus.PASSED), actor_name="p", now=T0.replace(tzinfo=None))


def test_profile_options_are_checked() -> None:
    """Unknown versions, bad language tags and empty platforms are configuration errors."""
    for bad in (
        {"version": "1.1"},
        {"language": "en US"},
        {"platform": " "},
        {"course_names": {"C1": 3}},
    ):
        with pytest.raises(ConfigurationError):
            XapiProfile(**bad)
    assert XapiProfile(version="2.0.0").version == "2.0.0"
    assert not XapiProfile().configured
    assert PROFILE.configured


def test_actor_is_a_pseudonym_never_the_learner_id() -> None:
    """statements_for names the actor by pseudonym, one per learner, stable across calls."""
    learner = sample(Learner, id=SECRET_ID, family_name="Martin", created_at=T0)
    records = [learner, _progress(ProgressStatus.PASSED), _progress(ProgressStatus.FAILED)]
    statements = list(statements_for(records, pseudonyms=_Pseudonyms(), profile=PROFILE))
    assert len(statements) == 2  # the learner record itself has no statement
    names = {s["actor"]["account"]["name"] for s in statements}
    assert len(names) == 1
    assert names == {_Pseudonyms().pseudonym(SECRET_ID)}
    for statement in statements:
        _validate(statement)


def _valid() -> dict[str, Any]:
    statement = statement_for(
        _progress(ProgressStatus.PASSED, score=Score(raw=5, min=0, max=10)),
        actor_name="p1_a",
        profile=PROFILE,
    )
    assert statement is not None
    return statement


def test_our_checks_catch_what_ralph_misses() -> None:
    """ralph accepts raw below a zero min and a naive timestamp; check_statement does not."""
    below_min = _valid()
    below_min["result"]["score"] = {"raw": -1, "min": 0, "max": 10}
    BaseXapiStatement.model_validate(below_min)  # ralph skips the check when min is 0
    with pytest.raises(ValidationError):
        check_statement(below_min)

    naive = _valid()
    naive["timestamp"] = "2025-03-14T09:30:00"
    BaseXapiStatement.model_validate(naive)  # ralph takes a time without a zone
    with pytest.raises(ValidationError):
        check_statement(naive)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["result"]["score"].update(scaled=1.5),
        lambda s: s["result"]["score"].update(raw=11),
        lambda s: s["result"]["score"].update(min=10),
        lambda s: s["actor"].update(mbox="mailto:ana@example.org"),
        lambda s: s.update(version="1.1.0"),
        lambda s: s.update(context={"language": "en US"}),
        lambda s: s.update(id="not-a-uuid"),
        lambda s: s.pop("timestamp"),
    ],
)
def test_check_statement_rejects(change: Any) -> None:
    """Each broken rule raises ValidationError."""
    statement = _valid()
    check_statement(statement)
    change(statement)
    with pytest.raises(ValidationError):
        check_statement(statement)


@pytest.mark.parametrize("home_page", ["ftp://lms.example.org", "lms.example.org", ""])
def test_profile_needs_an_http_home_page(home_page: str) -> None:
    """The actor's homePage must be an http(s) URL."""
    with pytest.raises(ConfigurationError):
        XapiProfile(home_page=home_page)


def test_activity_base_is_configurable() -> None:
    """Activity ids live under the configured base IRI."""
    profile = XapiProfile(
        home_page="https://lms.example.org", activity_base="https://id.example.org/act/"
    )
    statement = statement_for(_progress(ProgressStatus.COMPLETED), actor_name="p", profile=profile)
    assert statement is not None
    assert statement["object"]["id"] == "https://id.example.org/act/courses/SST-2024"
    _validate(statement)


def test_voiding_statements_are_valid_and_stable() -> None:
    """The statement voiding another: valid for ralph and TinCan, the LMS as actor (never
    the learner), the same id for the same target, a StatementRef object."""
    from learnprivacy.export._lrs_recipient import voiding_statement
    from learnprivacy.export._xapi import VERB_VOIDED

    target = str(uuid.uuid4())
    voiding = voiding_statement(target, PROFILE)
    assert voiding == voiding_statement(target.upper(), PROFILE)
    assert voiding["verb"]["id"] == VERB_VOIDED
    assert voiding["object"] == {"objectType": "StatementRef", "id": target}
    assert voiding["actor"]["account"] == {"homePage": "https://lms.example.org", "name": "lms"}
    assert voiding["id"] != voiding_statement(str(uuid.uuid4()), PROFILE)["id"]
    BaseXapiStatement.model_validate(voiding)
    tincan.Statement(copy.deepcopy(voiding))


@settings(max_examples=60, deadline=None)
@given(
    progress(SECRET_ID),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.sampled_from(["fr-FR", "en-GB", None]),
    st.sampled_from(["Moodle", "Campus", None]),
)
def test_ids_survive_any_offset_language_and_platform(
    record: Progress, minutes: int, language: str | None, platform: str | None
) -> None:
    """Property: the same record under any UTC offset, language and platform gives the
    same statement id, and the same statement apart from context."""
    shifted = attrs.evolve(
        record,
        recorded_at=record.recorded_at.astimezone(dt.timezone(dt.timedelta(minutes=minutes))),
    )
    profile = XapiProfile(home_page="https://lms.example.org", language=language, platform=platform)
    first = statement_for(record, actor_name="p", profile=PROFILE, now=LATER)
    second = statement_for(shifted, actor_name="p", profile=profile, now=LATER)
    if first is None:
        assert second is None
        return
    assert second is not None
    assert first["id"] == second["id"]
    assert first["timestamp"] == second["timestamp"]
    assert {k: v for k, v in first.items() if k != "context"} == {
        k: v for k, v in second.items() if k != "context"
    }
