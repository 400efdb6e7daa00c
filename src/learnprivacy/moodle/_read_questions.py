"""Each question of the learner's quiz attempts, as mod_quiz's provider exports it.

core_question's ``export_question_usage`` writes, per question of an attempt, its name,
the question's summary, the summary of the learner's response, the mark and whether the
learner flagged it, in ``Attempts/<attempt>/Questions/<number>/``. Read here from the
question engine's tables: ``question_attempts`` of the attempt's usage
(``quiz_attempts.uniqueid``), their latest ``question_attempt_steps`` (state and
fraction: the mark is the fraction times the question's maximum mark), and ``question``
for the name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._read_content import (
    ContentSource,
    _course_module,
    _iso,
    _module_users,
    _number,
)
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["QUESTION_SOURCES"]


def _question_statement(schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
    t, q = schema["quiz_attempts"], schema["quiz"]
    qa, step, question = (
        schema["question_attempts"],
        schema["question_attempt_steps"],
        schema["question"],
    )
    latest = (
        sa.select(step.c.questionattemptid, sa.func.max(step.c.sequencenumber).label("last"))
        .group_by(step.c.questionattemptid)
        .subquery("latest")
    )
    last = step.alias("last_step")
    cm, m, cm_on, m_on = _course_module(schema, "quiz", q.c.id)
    return (
        sa.select(
            cm.c.id, t.c.attempt, qa.c.slot, question.c.name, qa.c.questionsummary,
            qa.c.responsesummary, qa.c.maxmark, qa.c.flagged, qa.c.timemodified, last.c.state,
            last.c.fraction,
        )
        .select_from(
            t.join(q, q.c.id == t.c.quiz)
            .join(cm, cm_on)
            .join(m, m_on)
            .join(qa, qa.c.questionusageid == t.c.uniqueid)
            .outerjoin(question, question.c.id == qa.c.questionid)
            .outerjoin(latest, latest.c.questionattemptid == qa.c.id)
            .outerjoin(
                last,
                sa.and_(
                    last.c.questionattemptid == qa.c.id, last.c.sequencenumber == latest.c.last
                ),
            )
        )
        .where(t.c.userid == user_id)
        .order_by(t.c.quiz, t.c.attempt, qa.c.slot)
    )  # fmt: skip


def _question_row(row: Any, user_id: int) -> dict[str, Any]:
    cmid, attempt, slot, name, summary, response, maxmark, flagged, modified, state, fraction = row
    mark = None
    if fraction is not None and maxmark is not None:
        mark = _number(round(Decimal(fraction) * Decimal(maxmark), 7))
    return {
        "activity_id": str(cmid),
        "attempt": int(attempt),
        "slot": int(slot),
        "name": name,
        "question": summary,
        "answer": response,
        "mark": mark,
        "max_mark": _number(maxmark),
        "state": state,
        "flagged": bool(flagged),
        "modified_at": _iso(modified),
    }


#: The per-question source, appended to the content sources after the quiz attempts.
QUESTION_SOURCES: tuple[ContentSource, ...] = (
    ContentSource(
        name="QuizQuestion",
        table="question_attempts",
        reads=(
            "question_attempts",
            "question_attempt_steps",
            "question",
            "quiz_attempts",
            "quiz",
            "course_modules",
            "modules",
        ),
        statement=_question_statement,
        mapper=_question_row,
        users_in=_module_users("quiz", "quiz_attempts", "quiz", "quiz"),
        fields={
            "activity_id": "Quiz (course module)",
            "attempt": "Attempt number",
            "slot": "Place of the question in the attempt",
            "name": "Name of the question",
            "question": "Summary of the question as it was asked",
            "answer": "Summary of the user's response",
            "mark": "Mark obtained (None until graded)",
            "max_mark": "Marks available",
            "state": "State of the question after its last step (gradedright, gaveup...)",
            "flagged": "Whether the user flagged the question",
            "modified_at": "When it last changed",
        },
        description="Each question of the user's quiz attempts: question, response, mark",
        summary="Moodle's question_attempts, question_attempt_steps and question tables, "
        "exported as QuizQuestion rows",
        level=ContextLevel.MODULE,
        module="quiz",
        optional=True,
    ),
)
