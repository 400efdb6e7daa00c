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

from learnprivacy.moodle._content import (
    ACTIVITY,
    ContentSource,
    Field,
    activity_rows,
    activity_source,
    decimal_text,
    flag,
    ident,
    module_users,
    number,
    read,
    same,
    when,
    whole,
)
from learnprivacy.moodle._schema import MoodleSchema

__all__ = ["QUESTION_SOURCES"]


def _questions(schema: MoodleSchema, user_id: int) -> Any:
    joined, t, _, cm = activity_rows(schema, "quiz", "quiz_attempts", "quiz")
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
    is_latest = sa.and_(last.c.questionattemptid == qa.c.id, last.c.sequencenumber == latest.c.last)
    return {"cm": cm, "t": t, "qa": qa, "question": question, "last": last}, (
        sa.select()
        .select_from(
            joined.join(qa, qa.c.questionusageid == t.c.uniqueid)
            .outerjoin(question, question.c.id == qa.c.questionid)
            .outerjoin(latest, latest.c.questionattemptid == qa.c.id)
            .outerjoin(last, is_latest)
        )
        .where(t.c.userid == user_id)
        .order_by(t.c.quiz, t.c.attempt, qa.c.slot)
    )


def _mark(fraction: Any, maxmark: Any) -> str | None:
    """The latest step's fraction times the question's maximum mark."""
    if fraction is None or maxmark is None:
        return None
    return decimal_text(round(Decimal(fraction) * Decimal(maxmark), 7))


_QUESTION: tuple[Field, ...] = (
    ("activity_id", ident("cm.id"), "Quiz (course module)"),
    ("attempt", whole("t.attempt"), "Attempt number"),
    ("slot", whole("qa.slot"), "Place of the question in the attempt"),
    ("name", same("question.name"), "Name of the question"),
    ("question", same("qa.questionsummary"), "Summary of the question as it was asked"),
    ("answer", same("qa.responsesummary"), "Summary of the user's response"),
    ("mark", read(_mark, "last.fraction", "qa.maxmark"), "Mark obtained (None until graded)"),
    ("max_mark", number("qa.maxmark"), "Marks available"),
    (
        "state",
        same("last.state"),
        "State of the question after its last step (gradedright, gaveup...)",
    ),
    ("flagged", flag("qa.flagged"), "Whether the user flagged the question"),
    ("modified_at", when("qa.timemodified"), "When it last changed"),
)

#: The per-question source, appended to the content sources after the quiz attempts.
QUESTION_SOURCES: tuple[ContentSource, ...] = (
    activity_source(
        "QuizQuestion",
        "quiz",
        reads=(
            "question_attempts",
            "question_attempt_steps",
            "question",
            "quiz_attempts",
            "quiz",
            *ACTIVITY,
        ),
        frame=_questions,
        columns=_QUESTION,
        users_in=module_users("quiz", "quiz_attempts", "quiz"),
        description="Each question of the user's quiz attempts: question, response, mark",
        summary="Moodle's question_attempts, question_attempt_steps and question tables, "
        "exported as QuizQuestion rows",
    ),
)
