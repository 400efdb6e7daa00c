"""The question engine's tables a quiz attempt's responses live in (core_question).

Transcribed from Moodle 4.5's ``lib/db/install.xml``: ``question`` (the question bank's
questions, for their names), ``question_usages`` (one per quiz attempt:
``quiz_attempts.uniqueid``), ``question_attempts`` (one per slot: the question's summary,
the response summary, the right answer, the marks), ``question_attempt_steps`` (each
state change, with its fraction) and ``question_attempt_step_data`` (the raw submitted
values of each step).
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, number, sequence_id, text

__all__ = ["QUESTION_TABLES", "question_tables"]


def question_tables(md: sa.MetaData, p: str) -> None:
    """Add the question bank and question engine tables to ``md``."""
    sa.Table(
        f"{p}question",
        md,
        sequence_id(),
        integer("parent", 10, default=0),
        char("name", 255),
        text("questiontext", notnull=True),
        integer("questiontextformat", 2, default=0),
        text("generalfeedback", notnull=True),
        integer("generalfeedbackformat", 2, default=0),
        number("defaultmark", 12, 7, default="1"),
        number("penalty", 12, 7, default="0.3333333"),
        char("qtype", 20),
        integer("length", 10, default=1),
        char("stamp", 255),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("createdby", 10, notnull=False),
        integer("modifiedby", 10, notnull=False),
        index(p, "question", "qtype"),
    )
    sa.Table(
        f"{p}question_usages",
        md,
        sequence_id(),
        integer("contextid", 10),
        char("component", 255),
        char("preferredbehaviour", 32),
        index(p, "question_usages", "contextid"),
    )
    sa.Table(
        f"{p}question_attempts",
        md,
        sequence_id(),
        integer("questionusageid", 10),
        integer("slot", 10),
        char("behaviour", 32),
        integer("questionid", 10),
        integer("variant", 10, default=1),
        number("maxmark", 12, 7),
        number("minfraction", 12, 7),
        number("maxfraction", 12, 7, default="1"),
        integer("flagged", 1, default=0),
        text("questionsummary"),
        text("rightanswer"),
        text("responsesummary"),
        integer("timemodified", 10),
        index(p, "question_attempts", "questionusageid, slot", unique=True),
        index(p, "question_attempts", "questionid"),
    )
    sa.Table(
        f"{p}question_attempt_steps",
        md,
        sequence_id(),
        integer("questionattemptid", 10),
        integer("sequencenumber", 10),
        char("state", 13),
        number("fraction", 12, 7, notnull=False),
        integer("timecreated", 10),
        integer("userid", 10, notnull=False),
        index(p, "question_attempt_steps", "questionattemptid, sequencenumber", unique=True),
        index(p, "question_attempt_steps", "userid"),
    )
    sa.Table(
        f"{p}question_attempt_step_data",
        md,
        sequence_id(),
        integer("attemptstepid", 10),
        char("name", 32),
        text("value"),
        index(p, "question_attempt_step_data", "attemptstepid, name", unique=True),
    )


#: Unprefixed names of these tables.
QUESTION_TABLES = frozenset(
    {
        "question",
        "question_usages",
        "question_attempts",
        "question_attempt_steps",
        "question_attempt_step_data",
    }
)
