"""Moodle's site configuration and enrolment tables, as ``lib/db/install.xml`` declares them.

Transcribed from Moodle 4.5/5.0 (XMLDB ``VERSION="20240923"``): ``config`` (``$CFG``),
``config_plugins`` (``get_config()``), ``enrol`` and ``user_enrolments``.
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, number, sequence_id, text

__all__ = ["site_tables"]


def _config(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}config",
        md,
        sequence_id(),
        char("name", 255),
        text("value", notnull=True),
        index(p, "config", "name", unique=True),
    )


def _config_plugins(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}config_plugins",
        md,
        sequence_id(),
        char("plugin", 100, default="core"),
        char("name", 100),
        text("value", notnull=True),
        index(p, "config_plugins", "plugin, name", unique=True),
    )


def _enrol(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}enrol",
        md,
        sequence_id(),
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
        index(p, "enrol", "enrol"),
        index(p, "enrol", "courseid"),
        index(p, "enrol", "roleid"),
    )
    sa.Table(
        f"{p}user_enrolments",
        md,
        sequence_id(),
        integer("status", 10, default=0),
        integer("enrolid", 10),
        integer("userid", 10),
        integer("timestart", 10, default=0),
        integer("timeend", 10, default=2147483647),
        integer("modifierid", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        index(p, "user_enrolments", "enrolid, userid", unique=True),
        *(index(p, "user_enrolments", n) for n in ("enrolid", "userid", "modifierid")),
    )


def site_tables(md: sa.MetaData, prefix: str) -> None:
    """Add the configuration and enrolment tables to ``md`` with ``prefix``."""
    for build in (_config, _config_plugins, _enrol):
        build(md, prefix)
