"""Moodle core tables the adapter reads, as declared in Moodle's ``lib/db/install.xml``.

Transcribed column by column (names, XMLDB types, lengths, nullability, defaults, indexes)
from ``lib/db/install.xml`` of Moodle 4.5/5.0 (XMLDB ``VERSION="20240923"``). Every column
of each table is kept, not only those the adapter reads, so that the fixture has the shape
a real site has.
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, number, text
from learnprivacy.moodle._schema_site import site_tables
from learnprivacy.moodle._table import MoodleTables

__all__ = ["core_tables"]


def _user(tables: MoodleTables) -> None:
    tables.add(
        "user",
        char("auth", 20, default="manual"),
        integer("confirmed", 1, default=0),
        integer("policyagreed", 1, default=0),
        integer("deleted", 1, default=0),
        integer("suspended", 1, default=0),
        integer("mnethostid", 10, default=0),
        char("username", 100),
        char("password", 255),
        char("idnumber", 255),
        char("firstname", 100),
        char("lastname", 100),
        char("email", 100),
        integer("emailstop", 1, default=0),
        char("phone1", 20),
        char("phone2", 20),
        char("institution", 255),
        char("department", 255),
        char("address", 255),
        char("city", 120),
        char("country", 2),
        char("lang", 30, default="en"),
        char("calendartype", 30, default="gregorian"),
        char("theme", 50),
        char("timezone", 100, default="99"),
        integer("firstaccess", 10, default=0),
        integer("lastaccess", 10, default=0),
        integer("lastlogin", 10, default=0),
        integer("currentlogin", 10, default=0),
        char("lastip", 45),
        char("secret", 15),
        integer("picture", 10, default=0),
        text("description"),
        integer("descriptionformat", 2, default=1),
        integer("mailformat", 1, default=1),
        integer("maildigest", 1, default=0),
        integer("maildisplay", 2, default=2),
        integer("autosubscribe", 1, default=1),
        integer("trackforums", 1, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("trustbitmask", 10, default=0),
        char("imagealt", 255, notnull=False),
        char("lastnamephonetic", 255, notnull=False),
        char("firstnamephonetic", 255, notnull=False),
        char("middlename", 255, notnull=False),
        char("alternatename", 255, notnull=False),
        char("moodlenetprofile", 255, notnull=False),
        indexes=(
            "deleted confirmed firstname lastname city country lastaccess email auth "
            "idnumber firstnamephonetic lastnamephonetic middlename alternatename"
        ).split(),
        unique=("mnethostid, username",),
    )


def _user_lastaccess(tables: MoodleTables) -> None:
    tables.add(
        "user_lastaccess",
        integer("userid", 10, default=0),
        integer("courseid", 10, default=0),
        integer("timeaccess", 10, default=0),
        indexes=("userid", "courseid"),
        unique=("userid, courseid",),
    )


def _user_preferences(tables: MoodleTables) -> None:
    tables.add(
        "user_preferences",
        integer("userid", 10, default=0),
        char("name", 255),
        char("value", 1333),
        unique=("userid, name",),
    )


def _course(tables: MoodleTables) -> None:
    tables.add(
        "course",
        integer("category", 10, default=0),
        integer("sortorder", 10, default=0),
        char("fullname", 254),
        char("shortname", 255),
        char("idnumber", 100),
        text("summary"),
        integer("summaryformat", 2, default=0),
        char("format", 21, default="topics"),
        integer("showgrades", 2, default=1),
        integer("newsitems", 5, default=1),
        integer("startdate", 10, default=0),
        integer("enddate", 10, default=0),
        integer("relativedatesmode", 1, default=0),
        integer("marker", 10, default=0),
        integer("maxbytes", 10, default=0),
        integer("legacyfiles", 4, default=0),
        integer("showreports", 4, default=0),
        integer("visible", 1, default=1),
        integer("visibleold", 1, default=1),
        integer("downloadcontent", 1, notnull=False),
        integer("groupmode", 4, default=0),
        integer("groupmodeforce", 4, default=0),
        integer("defaultgroupingid", 10, default=0),
        char("lang", 30),
        char("calendartype", 30),
        char("theme", 50),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("requested", 1, default=0),
        integer("enablecompletion", 1, default=0),
        integer("completionnotify", 1, default=0),
        integer("cacherev", 10, default=0),
        integer("originalcourseid", 10, notnull=False),
        integer("showactivitydates", 1, default=0),
        integer("showcompletionconditions", 1, notnull=False),
        char("pdfexportfont", 50, notnull=False),
        indexes=("category", "idnumber", "shortname", "sortorder", "originalcourseid"),
    )


def _course_completions(tables: MoodleTables) -> None:
    tables.add(
        "course_completions",
        integer("userid", 10, default=0),
        integer("course", 10, default=0),
        integer("timeenrolled", 10, default=0),
        integer("timestarted", 10, default=0),
        integer("timecompleted", 10, notnull=False),
        integer("reaggregate", 10, default=0),
        indexes=("userid", "course", "timecompleted"),
        unique=("userid, course",),
    )


def _modules(tables: MoodleTables) -> None:
    tables.add(
        "modules",
        char("name", 20),
        integer("cron", 10, default=0),
        integer("lastcron", 10, default=0),
        char("search", 255),
        integer("visible", 1, default=1),
        indexes=("name",),
    )


def _course_modules(tables: MoodleTables) -> None:
    tables.add(
        "course_modules",
        integer("course", 10, default=0),
        integer("module", 10, default=0),
        integer("instance", 10, default=0),
        integer("section", 10, default=0),
        char("idnumber", 100, notnull=False),
        integer("added", 10, default=0),
        integer("score", 4, default=0),
        integer("indent", 5, default=0),
        integer("visible", 1, default=1),
        integer("visibleoncoursepage", 1, default=1),
        integer("visibleold", 1, default=1),
        integer("groupmode", 4, default=0),
        integer("groupingid", 10, default=0),
        integer("completion", 1, default=0),
        integer("completiongradeitemnumber", 10, notnull=False),
        integer("completionview", 1, default=0),
        integer("completionexpected", 10, default=0),
        integer("completionpassgrade", 1, default=0),
        integer("showdescription", 1, default=0),
        text("availability"),
        integer("deletioninprogress", 1, default=0),
        integer("downloadcontent", 1, notnull=False, default=1),
        char("lang", 30, notnull=False),
        indexes=("visible", "course", "module", "instance", "idnumber, course", "groupingid"),
    )


def _course_modules_completion(tables: MoodleTables) -> None:
    tables.add(
        "course_modules_completion",
        integer("coursemoduleid", 10),
        integer("userid", 10),
        integer("completionstate", 1),
        integer("overrideby", 10, notnull=False),
        integer("timemodified", 10),
        indexes=("coursemoduleid",),
        unique=("userid, coursemoduleid",),
    )


def _context(tables: MoodleTables) -> None:
    tables.add(
        "context",
        integer("contextlevel", 10, default=0),
        integer("instanceid", 10, default=0),
        char("path", 255, notnull=False),
        integer("depth", 2, default=0),
        integer("locked", 2, default=0),
        indexes=("instanceid", "path"),
        unique=("contextlevel, instanceid",),
    )


def _scale(tables: MoodleTables) -> None:
    # lib/db/install.xml: a scale's items are one comma-separated text, a grade on it is
    # the 1-based position of its item.
    tables.add(
        "scale",
        integer("courseid", 10, default=0),
        integer("userid", 10, default=0),
        char("name", 255),
        text("scale", notnull=True),
        text("description", notnull=True),
        integer("descriptionformat", 2, default=0),
        integer("timemodified", 10, default=0),
        indexes=("courseid",),
    )


def _grade_items(tables: MoodleTables) -> None:
    tables.add(
        "grade_items",
        integer("courseid", 10, notnull=False),
        integer("categoryid", 10, notnull=False),
        char("itemname", 255, notnull=False),
        char("itemtype", 30),
        char("itemmodule", 30, notnull=False),
        integer("iteminstance", 10, notnull=False),
        integer("itemnumber", 10, notnull=False),
        text("iteminfo"),
        char("idnumber", 255, notnull=False),
        text("calculation"),
        integer("gradetype", 4, default=1),
        number("grademax", 10, 5, default="100"),
        number("grademin", 10, 5, default="0"),
        integer("scaleid", 10, notnull=False),
        integer("outcomeid", 10, notnull=False),
        number("gradepass", 10, 5, default="0"),
        number("multfactor", 10, 5, default="1.0"),
        number("plusfactor", 10, 5, default="0"),
        number("aggregationcoef", 10, 5, default="0"),
        number("aggregationcoef2", 10, 5, default="0"),
        integer("sortorder", 10, default=0),
        integer("display", 10, default=0),
        integer("decimals", 1, notnull=False),
        integer("hidden", 10, default=0),
        integer("locked", 10, default=0),
        integer("locktime", 10, default=0),
        integer("needsupdate", 10, default=0),
        integer("weightoverride", 1, default=0),
        integer("timecreated", 10, notnull=False),
        integer("timemodified", 10, notnull=False),
        # Moodle does not declare foreign keys to the database; it indexes their columns.
        indexes=(
            "locked, locktime",
            "itemtype, needsupdate",
            "gradetype",
            "idnumber, courseid",
            "itemtype, itemmodule, iteminstance, courseid",
            "courseid",
            "categoryid",
            "scaleid",
            "outcomeid",
        ),
    )


def _grade_grades(tables: MoodleTables) -> None:
    tables.add(
        "grade_grades",
        integer("itemid", 10),
        integer("userid", 10),
        number("rawgrade", 10, 5, notnull=False),
        number("rawgrademax", 10, 5, default="100"),
        number("rawgrademin", 10, 5, default="0"),
        integer("rawscaleid", 10, notnull=False),
        integer("usermodified", 10, notnull=False),
        number("finalgrade", 10, 5, notnull=False),
        integer("hidden", 10, default=0),
        integer("locked", 10, default=0),
        integer("locktime", 10, default=0),
        integer("exported", 10, default=0),
        integer("overridden", 10, default=0),
        integer("excluded", 10, default=0),
        text("feedback"),
        integer("feedbackformat", 10, default=0),
        text("information"),
        integer("informationformat", 10, default=0),
        integer("timecreated", 10, notnull=False),
        integer("timemodified", 10, notnull=False),
        char("aggregationstatus", 10, default="unknown"),
        number("aggregationweight", 10, 5, notnull=False),
        indexes=("locked, locktime", "itemid", "userid", "rawscaleid", "usermodified"),
        unique=("userid, itemid",),
    )


def core_tables(tables: MoodleTables) -> None:
    """Add the core tables to ``tables``."""
    site_tables(tables)
    for build in (
        _user,
        _user_lastaccess,
        _user_preferences,
        _course,
        _course_completions,
        _modules,
        _course_modules,
        _course_modules_completion,
        _context,
        _scale,
        _grade_items,
        _grade_grades,
    ):
        build(tables)
