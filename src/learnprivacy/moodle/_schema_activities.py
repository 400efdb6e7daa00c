"""Activity tables the adapter reads: forums, assignments and quizzes.

Transcribed from Moodle 4.5's ``mod/forum/db/install.xml``, ``mod/assign/db/install.xml``
(with its sub-plugins ``assignsubmission_onlinetext`` and ``assignfeedback_comments``) and
``mod/quiz/db/install.xml``: the instance tables (whose ``name`` names the activity in
Moodle's export folders) and the tables holding what learners wrote and scored. Columns
the adapter never reads are kept where the fixture needs the shape a real site has.
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, number, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["ACTIVITY_TABLES", "activity_tables"]


def _forum(tables: MoodleTables) -> None:
    tables.add(
        "forum",
        integer("course", 10, default=0),
        char("type", 20, default="general"),
        char("name", 255),
        text("intro", notnull=True),
        integer("introformat", 4, default=0),
        integer("duedate", 10, default=0),
        integer("cutoffdate", 10, default=0),
        integer("assessed", 10, default=0),
        integer("scale", 10, default=0),
        integer("grade_forum", 10, default=0),
        integer("maxattachments", 10, default=1),
        integer("forcesubscribe", 1, default=0),
        integer("trackingtype", 2, default=1),
        integer("timemodified", 10, default=0),
        indexes=("course",),
    )
    tables.add(
        "forum_discussions",
        integer("course", 10, default=0),
        integer("forum", 10, default=0),
        char("name", 255),
        integer("firstpost", 10, default=0),
        integer("userid", 10, default=0),
        integer("groupid", 10, default=-1),
        integer("assessed", 1, default=1),
        integer("timemodified", 10, default=0),
        integer("usermodified", 10, default=0),
        integer("timestart", 10, default=0),
        integer("timeend", 10, default=0),
        integer("pinned", 1, default=0),
        integer("timelocked", 10, default=0),
        indexes=("userid", "course", "forum"),
    )
    tables.add(
        "forum_posts",
        integer("discussion", 10, default=0),
        integer("parent", 10, default=0),
        integer("userid", 10, default=0),
        integer("created", 10, default=0),
        integer("modified", 10, default=0),
        integer("mailed", 2, default=0),
        char("subject", 255),
        text("message", notnull=True),
        integer("messageformat", 2, default=0),
        integer("messagetrust", 2, default=0),
        char("attachment", 100),
        integer("totalscore", 4, default=0),
        integer("mailnow", 10, default=0),
        integer("deleted", 1, default=0),
        integer("privatereplyto", 10, default=0),
        integer("wordcount", 20, notnull=False),
        integer("charcount", 20, notnull=False),
        indexes=("userid", "created", "mailed", "discussion"),
    )


def _assign(tables: MoodleTables) -> None:
    tables.add(
        "assign",
        integer("course", 10, default=0),
        char("name", 255),
        text("intro", notnull=True),
        integer("introformat", 4, default=0),
        integer("submissiondrafts", 2, default=0),
        integer("duedate", 10, default=0),
        integer("allowsubmissionsfromdate", 10, default=0),
        integer("grade", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("cutoffdate", 10, default=0),
        integer("gradingduedate", 10, default=0),
        integer("teamsubmission", 2, default=0),
        integer("blindmarking", 2, default=0),
        integer("markingworkflow", 2, default=0),
        indexes=("course",),
    )
    tables.add(
        "assign_submission",
        integer("assignment", 10, default=0),
        integer("userid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("timestarted", 10, notnull=False),
        char("status", 10, notnull=False),
        integer("groupid", 10, default=0),
        integer("attemptnumber", 10, default=0),
        integer("latest", 2, default=0),
        indexes=("userid", "attemptnumber", "latest"),
        unique=("assignment, userid, groupid, attemptnumber",),
    )
    tables.add(
        "assign_grades",
        integer("assignment", 10, default=0),
        integer("userid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("grader", 10, default=0),
        number("grade", 10, 5, notnull=False, default="0"),
        integer("attemptnumber", 10, default=0),
        indexes=("userid", "attemptnumber"),
        unique=("assignment, userid, attemptnumber",),
    )
    tables.add(
        "assignsubmission_onlinetext",
        integer("assignment", 10, default=0),
        integer("submission", 10, default=0),
        text("onlinetext"),
        integer("onlineformat", 4, default=0),
        indexes=("assignment", "submission"),
    )
    tables.add(
        "assignfeedback_comments",
        integer("assignment", 10, default=0),
        integer("grade", 10, default=0),
        text("commenttext"),
        integer("commentformat", 2, default=0),
        indexes=("assignment", "grade"),
    )


def _quiz(tables: MoodleTables) -> None:
    tables.add(
        "quiz",
        integer("course", 10, default=0),
        char("name", 255),
        text("intro", notnull=True),
        integer("introformat", 4, default=0),
        integer("timeopen", 10, default=0),
        integer("timeclose", 10, default=0),
        integer("timelimit", 10, default=0),
        integer("attempts", 6, default=0),
        integer("grademethod", 4, default=1),
        number("sumgrades", 10, 5, default="0"),
        number("grade", 10, 5, default="0"),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("course",),
    )
    tables.add(
        "quiz_attempts",
        integer("quiz", 10, default=0),
        integer("userid", 10, default=0),
        integer("attempt", 6, default=0),
        integer("uniqueid", 10, default=0),
        text("layout", notnull=True),
        integer("currentpage", 10, default=0),
        integer("preview", 3, default=0),
        char("state", 16, default="inprogress"),
        integer("timestart", 10, default=0),
        integer("timefinish", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("timemodifiedoffline", 10, default=0),
        integer("timecheckstate", 10, notnull=False, default=0),
        number("sumgrades", 10, 5, notnull=False),
        integer("gradednotificationsenttime", 10, notnull=False),
        indexes=("state, timecheckstate", "userid"),
        unique=("quiz, userid, attempt", "uniqueid"),
    )
    tables.add(
        "quiz_grades",
        integer("quiz", 10, default=0),
        integer("userid", 10, default=0),
        number("grade", 10, 5, default="0"),
        integer("timemodified", 10, default=0),
        indexes=("userid", "quiz"),
    )


#: Unprefixed names of the activity tables, all of standard (uninstallable) plugins.
ACTIVITY_TABLES = frozenset(
    {
        "forum",
        "forum_discussions",
        "forum_posts",
        "assign",
        "assign_submission",
        "assign_grades",
        "assignsubmission_onlinetext",
        "assignfeedback_comments",
        "quiz",
        "quiz_attempts",
        "quiz_grades",
    }
)


def activity_tables(tables: MoodleTables) -> None:
    """Add the forum, assignment and quiz tables to ``tables``."""
    for build in (_forum, _assign, _quiz):
        build(tables)
