"""Activity tables the adapter reads: forums, assignments and quizzes.

Transcribed from Moodle 4.5's ``mod/forum/db/install.xml``, ``mod/assign/db/install.xml``
(with its sub-plugins ``assignsubmission_onlinetext`` and ``assignfeedback_comments``) and
``mod/quiz/db/install.xml``: the instance tables (whose ``name`` names the activity in
Moodle's export folders) and the tables holding what learners wrote and scored. Columns
the adapter never reads are kept where the fixture needs the shape a real site has.
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, number, sequence_id, text

__all__ = ["ACTIVITY_TABLES", "activity_tables"]


def _forum(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}forum",
        md,
        sequence_id(),
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
        index(p, "forum", "course"),
    )
    sa.Table(
        f"{p}forum_discussions",
        md,
        sequence_id(),
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
        index(p, "forum_discussions", "userid"),
        index(p, "forum_discussions", "course"),
        index(p, "forum_discussions", "forum"),
    )
    sa.Table(
        f"{p}forum_posts",
        md,
        sequence_id(),
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
        index(p, "forum_posts", "userid"),
        index(p, "forum_posts", "created"),
        index(p, "forum_posts", "mailed"),
        index(p, "forum_posts", "discussion"),
    )


def _assign(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}assign",
        md,
        sequence_id(),
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
        index(p, "assign", "course"),
    )
    sa.Table(
        f"{p}assign_submission",
        md,
        sequence_id(),
        integer("assignment", 10, default=0),
        integer("userid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("timestarted", 10, notnull=False),
        char("status", 10, notnull=False),
        integer("groupid", 10, default=0),
        integer("attemptnumber", 10, default=0),
        integer("latest", 2, default=0),
        index(p, "assign_submission", "userid"),
        index(p, "assign_submission", "attemptnumber"),
        index(p, "assign_submission", "assignment, userid, groupid, attemptnumber", unique=True),
        index(p, "assign_submission", "latest"),
    )
    sa.Table(
        f"{p}assign_grades",
        md,
        sequence_id(),
        integer("assignment", 10, default=0),
        integer("userid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("grader", 10, default=0),
        number("grade", 10, 5, notnull=False, default="0"),
        integer("attemptnumber", 10, default=0),
        index(p, "assign_grades", "userid"),
        index(p, "assign_grades", "attemptnumber"),
        index(p, "assign_grades", "assignment, userid, attemptnumber", unique=True),
    )
    sa.Table(
        f"{p}assignsubmission_onlinetext",
        md,
        sequence_id(),
        integer("assignment", 10, default=0),
        integer("submission", 10, default=0),
        text("onlinetext"),
        integer("onlineformat", 4, default=0),
        index(p, "assignsubmission_onlinetext", "assignment"),
        index(p, "assignsubmission_onlinetext", "submission"),
    )
    sa.Table(
        f"{p}assignfeedback_comments",
        md,
        sequence_id(),
        integer("assignment", 10, default=0),
        integer("grade", 10, default=0),
        text("commenttext"),
        integer("commentformat", 2, default=0),
        index(p, "assignfeedback_comments", "assignment"),
        index(p, "assignfeedback_comments", "grade"),
    )


def _quiz(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}quiz",
        md,
        sequence_id(),
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
        index(p, "quiz", "course"),
    )
    sa.Table(
        f"{p}quiz_attempts",
        md,
        sequence_id(),
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
        index(p, "quiz_attempts", "quiz, userid, attempt", unique=True),
        index(p, "quiz_attempts", "state, timecheckstate"),
        index(p, "quiz_attempts", "userid"),
        index(p, "quiz_attempts", "uniqueid", unique=True),
    )
    sa.Table(
        f"{p}quiz_grades",
        md,
        sequence_id(),
        integer("quiz", 10, default=0),
        integer("userid", 10, default=0),
        number("grade", 10, 5, default="0"),
        integer("timemodified", 10, default=0),
        index(p, "quiz_grades", "userid"),
        index(p, "quiz_grades", "quiz"),
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


def activity_tables(md: sa.MetaData, prefix: str) -> None:
    """Add the forum, assignment and quiz tables to ``md`` with ``prefix``."""
    for build in (_forum, _assign, _quiz):
        build(md, prefix)
