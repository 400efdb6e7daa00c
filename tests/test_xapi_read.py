"""Reading xAPI back: paged LRS queries, statement files, and Progress records from them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import ValidationError
from learnprivacy.export._lrs_recipient import voiding_statement
from learnprivacy.export.xapi import (
    XapiProfile,
    progress_from_statements,
    read_statements,
    send_statements,
    statements_for,
)
from learnprivacy.records import Certificate, Progress, ProgressStatus, Score
from learnprivacy.testing.lrs import TemporaryRalphLRS
from tests.test_xapi_delivery import Server, forward
from tests.test_xapi_delivery import servers as servers  # the fixture

T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PROFILE = XapiProfile(home_page="https://lms.example.org")


def _progress(learner: str, count: int) -> list[Progress]:
    run = uuid.uuid4().hex[:8]
    return [
        Progress(
            id=f"P{i}-{run}",
            learner_id=learner,
            course_id="SST 2024",
            activity_id="quiz/3" if i % 2 else None,
            status=(ProgressStatus.PASSED, ProgressStatus.IN_PROGRESS)[i % 2],
            recorded_at=T0 + dt.timedelta(hours=i),
            score=Score(raw=Decimal("12.5"), min=0, max=20),
            time_spent=dt.timedelta(minutes=3, seconds=2.5),
        )
        for i in range(count)
    ]


NAMES = Pseudonymiser(b"n" * 32, domain=PROFILE.pseudonym_domain)


@pytest.mark.lrs
def test_an_lrs_query_follows_more_links_page_by_page(
    ralph_lrs: TemporaryRalphLRS, servers: list[Server]
) -> None:
    """7 statements of one actor, pages of 3: three GETs (Ralph's relative ``more`` links
    resolved against the endpoint), every statement once."""
    learner = f"L-{uuid.uuid4().hex[:8]}"
    sent = list(statements_for(_progress(learner, 7), pseudonyms=NAMES, profile=PROFILE, now=NOW))
    send_statements(sent, ralph_lrs.endpoint, ralph_lrs.auth)
    servers.append(Server(lambda m, p, h, b: forward(ralph_lrs, m, p, h, b)))
    got = list(
        read_statements(
            servers[0].url(),
            ralph_lrs.auth,
            agent=PROFILE.actor(NAMES.pseudonym(learner)),
            page_size=3,
        )
    )
    assert sorted(s["id"] for s in got) == sorted(s["id"] for s in sent)
    assert [r[0] for r in servers[0].requests] == ["GET", "GET", "GET"]
    assert "search_after" in servers[0].requests[1][1]


def test_statement_files_in_every_form(tmp_path: Path) -> None:
    """A JSON list, a StatementResult, JSON Lines, an export directory and zip all read."""
    statements = list(
        statements_for(_progress("L1", 3), pseudonyms=NAMES, profile=PROFILE, now=NOW)
    )
    forms = {
        "list.json": json.dumps(statements),
        "result.json": json.dumps({"statements": statements, "more": ""}),
        "lines.jsonl": "\n".join(json.dumps(s) for s in statements) + "\n",
    }
    for name, text in forms.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert list(read_statements(tmp_path / name)) == statements
    package = tmp_path / "package"
    (package / "xapi").mkdir(parents=True)
    (package / "xapi" / "statements.json").write_text(json.dumps(statements), encoding="utf-8")
    assert list(read_statements(package)) == statements
    archive = tmp_path / "package.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("xapi/statements.json", json.dumps(statements))
    assert list(read_statements(archive)) == statements
    (tmp_path / "bad.json").write_text('{"statements": [1, 2]}', encoding="utf-8")
    with pytest.raises(ValidationError):
        list(read_statements(tmp_path / "bad.json"))
    (tmp_path / "text.json").write_text("not json at all", encoding="utf-8")
    with pytest.raises(ValidationError):
        list(read_statements(tmp_path / "text.json"))


def test_statements_become_the_progress_they_state() -> None:
    """Each progress statement gives back its course, activity, status, score, time spent
    and instant; ids are ``xapi-<statement id>`` so a second import is the same."""
    records = _progress("L1", 4)
    statements = list(statements_for(records, pseudonyms=NAMES, profile=PROFILE, now=NOW))
    imported = progress_from_statements(
        statements, learner_of={NAMES.pseudonym("L1"): "L1"}, profile=PROFILE
    )
    assert imported.skipped == {}
    assert len(imported.records) == 4
    for original, back, statement in zip(records, imported.records, statements, strict=True):
        assert back.id == f"xapi-{statement['id']}"
        assert back.learner_id == "L1"
        assert (back.course_id, back.activity_id) == (original.course_id, original.activity_id)
        assert back.status is original.status
        assert back.recorded_at == original.recorded_at
        assert back.score == original.score
        assert back.time_spent == dt.timedelta(minutes=3, seconds=2.5)
    again = progress_from_statements(
        statements, learner_of={NAMES.pseudonym("L1"): "L1"}, profile=PROFILE
    )
    assert again.records == imported.records


def test_what_the_profile_does_not_understand_is_skipped_and_counted() -> None:
    """Voided statements, voiding statements, certificates, unknown learners, foreign
    activities and foreign home pages are skipped, each counted under its reason."""
    records: list[Any] = _progress("L1", 3) + _progress("L2", 1)
    records.append(
        Certificate(id="C1", learner_id="L1", course_id="SST", issued_at=T0, verification_code="x")
    )
    statements = list(statements_for(records, pseudonyms=NAMES, profile=PROFILE, now=NOW))
    voiding = voiding_statement(statements[0]["id"], PROFILE)
    foreign = dict(statements[1], id=str(uuid.uuid4()))
    foreign["object"] = {"objectType": "Activity", "id": "https://elsewhere.example/course/1"}
    other_lms = dict(statements[2], id=str(uuid.uuid4()))
    other_lms["actor"] = {
        "objectType": "Agent",
        "account": {"homePage": "https://other.example", "name": NAMES.pseudonym("L1")},
    }
    imported = progress_from_statements(
        [*statements, voiding, foreign, other_lms],
        learner_of={NAMES.pseudonym("L1"): "L1"}.get,
        profile=PROFILE,
    )
    assert imported.skipped == {
        "voided": 1,
        "voiding statement": 1,
        "not this profile's verb": 1,
        "unknown learner": 1,
        "activity outside the profile": 1,
        "actor outside the profile": 1,
    }
    assert len(imported.records) == 2


def test_a_statement_voided_under_an_id_in_capitals_stays_out() -> None:
    """UUIDs compare without case: a voiding statement naming its target in capitals (as
    another LMS or an LRS may write it) still voids it. Before, the voided statement, a
    learner's withdrawn or rectified result, came back as a Progress record."""
    statements = list(
        statements_for(_progress("L1", 2), pseudonyms=NAMES, profile=PROFILE, now=NOW)
    )
    voiding = voiding_statement(statements[0]["id"], PROFILE)
    voiding["object"] = dict(voiding["object"], id=statements[0]["id"].upper())
    imported = progress_from_statements(
        [*statements, voiding], learner_of={NAMES.pseudonym("L1"): "L1"}, profile=PROFILE
    )
    assert imported.skipped == {"voided": 1, "voiding statement": 1}
    assert [r.id for r in imported.records] == [f"xapi-{statements[1]['id']}"]
