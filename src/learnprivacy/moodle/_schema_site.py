"""Moodle's site configuration and enrolment tables, as ``lib/db/install.xml`` declares them.

Transcribed from Moodle 4.5/5.0 (XMLDB ``VERSION="20240923"``): ``config`` (``$CFG``),
``config_plugins`` (``get_config()``), ``enrol`` and ``user_enrolments``.
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, number, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["site_tables"]


def _config(tables: MoodleTables) -> None:
    tables.add(
        "config",
        char("name", 255),
        text("value", notnull=True),
        unique=("name",),
    )


def _config_plugins(tables: MoodleTables) -> None:
    tables.add(
        "config_plugins",
        char("plugin", 100, default="core"),
        char("name", 100),
        text("value", notnull=True),
        unique=("plugin, name",),
    )


def _enrol(tables: MoodleTables) -> None:
    tables.add(
        "enrol",
        char("enrol", 20),
        integer("status", 10, default=0),
        integer("courseid", 10),
        integer("sortorder", 10, default=0),
        char("name", 255, notnull=False),
        integer("enrolperiod", 10, notnull=False, default=0),
        integer("enrolstartdate", 10, notnull=False, default=0),
        integer("enrolenddate", 10, notnull=False, default=0),
        integer("expirynotify", 1, notnull=False, default=0),
        integer("expirythreshold", 10, notnull=False, default=0),
        integer("notifyall", 1, notnull=False, default=0),
        char("password", 50, notnull=False),
        char("cost", 20, notnull=False),
        char("currency", 3, notnull=False),
        integer("roleid", 10, notnull=False, default=0),
        *(integer(f"customint{n}", 10, notnull=False) for n in range(1, 9)),
        char("customchar1", 255, notnull=False),
        char("customchar2", 255, notnull=False),
        char("customchar3", 1333, notnull=False),
        number("customdec1", 12, 7, notnull=False),
        number("customdec2", 12, 7, notnull=False),
        *(text(f"customtext{n}") for n in range(1, 5)),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("enrol", "courseid", "roleid"),
    )
    tables.add(
        "user_enrolments",
        integer("status", 10, default=0),
        integer("enrolid", 10),
        integer("userid", 10),
        integer("timestart", 10, default=0),
        integer("timeend", 10, default=2147483647),
        integer("modifierid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("enrolid", "userid", "modifierid"),
        unique=("enrolid, userid",),
    )


def site_tables(tables: MoodleTables) -> None:
    """Add the configuration and enrolment tables to ``tables``."""
    for build in (_config, _config_plugins, _enrol):
        build(tables)
