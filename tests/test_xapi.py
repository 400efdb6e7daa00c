"""xAPI statements: valid for ralph's xAPI 1.0.3 models and for our own stricter checks."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.export.xapi import (
    STATEMENT_NAMESPACE,
    VERB_ATTEMPTED,
    VERB_COMPLETED,
    VERB_EARNED,
    VERB_FAILED,
    VERB_PASSED,
    XapiProfile,
    check_statement,
    statement_for,
    statements_for,
)
from learnprivacy.records import Certificate, Learner, Progress, ProgressStatus, Score
from learnprivacy.testing.strategies import certificates, progress

statements_module = pytest.importorskip("ralph.models.xapi.base.statements")
BaseXapiStatement = statements_module.BaseXapiStatement

T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
PROFILE = XapiProfile(home_page="https://lms.example.org")
SECRET_ID = "learner-internal-4242"


class _Pseudonyms:
    """A real keyed pseudonymiser, as export_subject builds it."""

    def __init__(self) -> None:
        from learnprivacy.crypto import Pseudonymiser

        self._inner = Pseudonymiser(bytes(range(32)), domain=PROFILE.pseudonym_domain)

    def pseudonym(self, identifier: str) -> str:
        return self._inner.pseudonym(identifier)


def _validate(statement: dict[str, Any]) -> None:
    """Both validators: ralph's schema model and our own checks."""
    BaseXapiStatement.model_validate(statement)
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
    statements = list(statements_for([record], pseudonyms=_Pseudonyms(), profile=PROFILE))
    if isinstance(record, Progress) and record.status is ProgressStatus.NOT_STARTED:
        assert statements == []
        return
    (statement,) = statements
    _validate(statement)
    stamp = dt.datetime.fromisoformat(statement["timestamp"])
    assert stamp.utcoffset() is not None
    assert stamp == (record.recorded_at if isinstance(record, Progress) else record.issued_at)


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
        {"objectType": "Activity", "id": "https://lms.example.org/xapi/activities/courses/SST-2024"}
    ]
    assert statement["result"]["score"] == {"raw": 17.5, "min": 0, "max": 20, "scaled": 0.875}
    assert statement["result"]["duration"] == "PT1H2M3S"
    assert statement["timestamp"] == "2025-03-14T09:30:00+01:00"
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
    assert statement["verb"]["id"] == VERB_EARNED
    assert (
        statement["object"]["id"] == "https://lms.example.org/xapi/activities/certificates/CERT-9"
    )
    assert "SECRETCODE77" not in json.dumps(statement)
    _validate(statement)


def test_statement_ids_are_deterministic_uuid5() -> None:
    """Same record, same id (idempotent re-export); different content, different id."""
    record = _progress(ProgressStatus.PASSED, score=Score(raw=15, min=0, max=20))
    first = statement_for(record, actor_name="p1_a", profile=PROFILE)
    again = statement_for(copy.deepcopy(record), actor_name="p1_a", profile=PROFILE)
    assert first is not None
    assert again is not None
    assert first == again
    assert uuid.UUID(first["id"]).version == 5
    other_score = statement_for(
        _progress(ProgressStatus.PASSED, score=Score(raw=16, min=0, max=20)),
        actor_name="p1_a",
        profile=PROFILE,
    )
    other_actor = statement_for(record, actor_name="p1_b", profile=PROFILE)
    assert other_score is not None
    assert other_actor is not None
    assert len({first["id"], other_score["id"], other_actor["id"]}) == 3
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:learnprivacy:xapi:statement") == STATEMENT_NAMESPACE


def test_actor_is_a_pseudonym_never_the_learner_id() -> None:
    """statements_for names the actor by pseudonym, one per learner, stable across calls."""
    learner = Learner(
        id=SECRET_ID,
        username="ana",
        email="ana@example.org",
        given_name="Ana",
        family_name="Martin",
        created_at=T0,
    )
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
        lambda s: s.update(version="1.0.3"),
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
