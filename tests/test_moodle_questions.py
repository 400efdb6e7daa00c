"""Each question of a quiz attempt: read from the question engine, exported as mod_quiz does.

``Attempts/<n>/Questions/<slot>/data.json`` with the question's name and summary, the
summary of the learner's response, the mark (latest step's fraction times the maximum)
and the flag; on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.moodle import MoodleDatabase, MoodleProvider
from learnprivacy.moodle._read_questions import QUESTION_SOURCES
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import to_unix
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    MemoryWriter,
    MetadataCollection,
    UserList,
)
from learnprivacy.testing.moodle import create_schema, insert_rows, populate
from tests import NOW
from tests.conftest import in_course_module, open_engine

SOURCE = QUESTION_SOURCES[0]
STAMP = to_unix(NOW)
OTHERS_ANSWER = "Réponse d'une autre apprenante"


def _steps(attempt_id: int, *states: tuple[str, float | None]) -> list[dict[str, Any]]:
    return [
        {"questionattemptid": attempt_id, "sequencenumber": n, "state": state,
         "fraction": fraction, "timecreated": STAMP + n}
        for n, (state, fraction) in enumerate(states)
    ]  # fmt: skip


def _plant(engine: sa.Engine) -> dict[str, Any]:
    """Two questions answered in one learner's attempt, one in another learner's."""
    t = MoodleSchema()["quiz_attempts"]
    joined, cm = in_course_module(t, t.c.quiz, "quiz")
    with engine.begin() as c:
        attempts = c.execute(
            sa.select(t.c.userid, t.c.uniqueid, t.c.attempt, cm.c.id)
            .select_from(joined)
            .order_by(t.c.id)
        ).all()
        mine = attempts[0]
        theirs = next(a for a in attempts if a[0] != mine[0])
        insert_rows(c, "question", [
            {"id": 1, "name": "Capitale", "questiontext": "Capitale de la France ?",
             "generalfeedback": "", "qtype": "shortanswer", "stamp": "q1"},
            {"id": 2, "name": "Calcul", "questiontext": "2 + 2 ?", "generalfeedback": "",
             "qtype": "numerical", "stamp": "q2"},
        ])  # fmt: skip
        insert_rows(c, "question_usages", [
            {"id": a[1], "contextid": 1, "component": "mod_quiz",
             "preferredbehaviour": "deferredfeedback"}
            for a in (mine, theirs)
        ])  # fmt: skip
        base = {"behaviour": "deferredfeedback", "minfraction": 0, "timemodified": STAMP}
        insert_rows(c, "question_attempts", [
            {**base, "id": 1, "questionusageid": mine[1], "slot": 1, "questionid": 1,
             "maxmark": 1, "flagged": 1, "questionsummary": "Capitale de la France ?",
             "responsesummary": "Paris", "rightanswer": "Paris"},
            {**base, "id": 2, "questionusageid": mine[1], "slot": 2, "questionid": 2,
             "maxmark": 2, "flagged": 0, "questionsummary": "2 + 2 ?",
             "responsesummary": "5", "rightanswer": "4"},
            {**base, "id": 3, "questionusageid": theirs[1], "slot": 1, "questionid": 1,
             "maxmark": 1, "flagged": 0, "questionsummary": "Capitale de la France ?",
             "responsesummary": OTHERS_ANSWER, "rightanswer": "Paris"},
        ])  # fmt: skip
        insert_rows(c, "question_attempt_steps", [
            *_steps(1, ("todo", None), ("complete", None), ("gradedright", 1.0)),
            *_steps(2, ("todo", None), ("gradedpartial", 0.25)),
            *_steps(3, ("todo", None), ("gradedwrong", 0.0)),
        ])  # fmt: skip
    return {"learner": int(mine[0]), "attempt": int(mine[2]), "quiz": int(mine[3]),
            "other": int(theirs[0])}  # fmt: skip


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, dict[str, Any]]]:
    """A generated site with quiz attempts, and questions answered in two of them."""
    engine = open_engine(new_database())
    create_schema(engine)
    populate(engine, now=NOW, users=30, courses=3)
    yield engine, _plant(engine)
    engine.dispose()


@pytest.fixture
def moodle(site: tuple[sa.Engine, dict[str, Any]]) -> Iterator[MoodleDatabase]:
    """The adapter over the site."""
    with MoodleDatabase(site[0]) as db:
        yield db


def test_questions_hold_the_response_and_the_latest_mark(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, Any]]
) -> None:
    """The learner's two questions: response summaries, the latest step's state and mark.

    Attack: an earlier step (no fraction) must not be read as the mark, and the other
    learner's answer to the same question is never the learner's.
    """
    ids = site[1]
    rows = moodle.content(SOURCE, ids["learner"])
    assert [(r["slot"], r["name"], r["answer"], r["state"], r["mark"], r["max_mark"],
             r["flagged"]) for r in rows] == [
        (1, "Capitale", "Paris", "gradedright", "1", "1", True),
        (2, "Calcul", "5", "gradedpartial", "0.5", "2", False),
    ]  # fmt: skip
    assert {r["attempt"] for r in rows} == {ids["attempt"]}
    assert [r["answer"] for r in moodle.content(SOURCE, ids["other"])] == [OTHERS_ANSWER]


def test_contexts_metadata_and_layout_agree(
    moodle: MoodleDatabase, site: tuple[sa.Engine, dict[str, Any]], tmp_path: Path
) -> None:
    """The quiz lists the learner; the export writes exactly the declared fields, in
    ``Attempts/<n>/Questions/<slot>/``; another learner's answer never appears."""
    ids = site[1]
    provider = MoodleProvider(moodle)
    learner, quiz = str(ids["learner"]), Context.module(str(ids["quiz"]))
    assert quiz in set(provider.get_contexts_for_userid(learner))
    userlist = UserList(quiz, "moodle")
    provider.get_users_in_context(userlist)
    assert learner in userlist.user_ids
    writer = MemoryWriter()
    provider.export_user_data(ApprovedContextList(learner, [quiz]), writer)
    exported = writer.rows[("moodle", "QuizQuestion")]
    assert len(exported) == 2
    assert all(set(row) == set(SOURCE.fields) for row in exported)
    plan = provider.deletion_plan(ApprovedContextList(learner, [quiz]))
    assert plan["QuizQuestion"] == {"table": "question_attempts", "action": "delete", "rows": 2}
    tables = {i.name: i for i in provider.get_metadata(MetadataCollection("moodle"))}
    assert set(tables["question_attempts"].fields) == set(SOURCE.fields)
    out = provider.export_layout(learner, tmp_path / "layout")
    files = {str(p.relative_to(out)): p for p in out.rglob("*.json")}
    first = next(
        p for p in files if p.endswith(f"/Attempts/{ids['attempt']}/Questions/1/data.json")
    )
    assert json.loads(files[first].read_text())["answer"] == "Paris"
    assert not any(OTHERS_ANSWER in p.read_text(encoding="utf-8") for p in files.values())
