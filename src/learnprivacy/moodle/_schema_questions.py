"""The question engine's tables a quiz attempt's responses live in (core_question).

Transcribed from Moodle 4.5's ``lib/db/install.xml``: ``question`` (the question bank's
questions, for their names), ``question_usages`` (one per quiz attempt:
``quiz_attempts.uniqueid``), ``question_attempts`` (one per slot: the question's summary,
the response summary, the right answer, the marks), ``question_attempt_steps`` (each
state change, with its fraction) and ``question_attempt_step_data`` (the raw submitted
values of each step).
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, number, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["QUESTION_TABLES", "question_tables"]


def question_tables(tables: MoodleTables) -> None:
    """Add the question bank and question engine tables to ``tables``."""
    tables.add(
        "question",
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
        indexes=("qtype",),
    )
    tables.add(
        "question_usages",
        integer("contextid", 10),
        char("component", 255),
        char("preferredbehaviour", 32),
        indexes=("contextid",),
    )
    tables.add(
        "question_attempts",
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
        indexes=("questionid",),
        unique=("questionusageid, slot",),
    )
    tables.add(
        "question_attempt_steps",
        integer("questionattemptid", 10),
        integer("sequencenumber", 10),
        char("state", 13),
        number("fraction", 12, 7, notnull=False),
        integer("timecreated", 10),
        integer("userid", 10, notnull=False),
        indexes=("userid",),
        unique=("questionattemptid, sequencenumber",),
    )
    tables.add(
        "question_attempt_step_data",
        integer("attemptstepid", 10),
        char("name", 32),
        text("value"),
        unique=("attemptstepid, name",),
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
