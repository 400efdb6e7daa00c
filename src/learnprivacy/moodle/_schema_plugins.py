"""Plugin tables the adapter reads, as declared in each plugin's ``db/install.xml``.

Transcribed from Moodle 4.5/5.0: ``admin/tool/log/store/standard/db/install.xml``
(standard log store), ``admin/tool/policy/db/install.xml`` (site policies),
``admin/tool/dataprivacy/db/install.xml`` (data registry); and from the third-party
certificate plugin ``mod_customcert`` (``db/install.xml`` of mdjnelson/moodle-mod_customcert).
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, text
from learnprivacy.moodle._table import MoodleTables, persistent_columns

__all__ = ["plugin_tables"]


def _logstore_standard_log(tables: MoodleTables) -> None:
    tables.add(
        "logstore_standard_log",
        char("eventname", 255),
        char("component", 100),
        char("action", 100),
        char("target", 100),
        char("objecttable", 50, notnull=False),
        integer("objectid", 10, notnull=False),
        char("crud", 1),
        integer("edulevel", 1),
        integer("contextid", 10),
        integer("contextlevel", 10),
        integer("contextinstanceid", 10),
        integer("userid", 10),
        integer("courseid", 10, notnull=False),
        integer("relateduserid", 10, notnull=False),
        integer("anonymous", 1, default=0),
        text("other"),
        integer("timecreated", 10),
        char("origin", 10, notnull=False),
        char("ip", 45, notnull=False),
        integer("realuserid", 10, notnull=False),
        indexes=(
            "timecreated",
            "courseid, anonymous, timecreated",
            "userid, contextlevel, contextinstanceid, crud, edulevel, timecreated",
            "contextid",
            "userid",
            "courseid",
            "realuserid",
            "relateduserid",
        ),
    )


def _tool_policy(tables: MoodleTables) -> None:
    tables.add(
        "tool_policy",
        integer("sortorder", 5, default=999),
        integer("currentversionid", 10, notnull=False),
        indexes=("currentversionid",),
    )
    tables.add(
        "tool_policy_versions",
        char("name", 1333),
        integer("type", 3, default=0),
        integer("audience", 3, default=0),
        integer("archived", 3, default=0),
        *persistent_columns(),
        integer("policyid", 10),
        integer("agreementstyle", 3, default=0),
        integer("optional", 3, default=0),
        char("revision", 1333),
        text("summary", notnull=True),
        integer("summaryformat", 3),
        text("content", notnull=True),
        integer("contentformat", 3),
        indexes=("usermodified", "policyid"),
    )
    tables.add(
        "tool_policy_acceptances",
        integer("policyversionid", 10),
        integer("userid", 10),
        integer("status", 1, notnull=False),
        char("lang", 30),
        *persistent_columns(),
        text("note"),
        indexes=("userid", "usermodified"),
        unique=("policyversionid, userid",),
    )


def _tool_dataprivacy(tables: MoodleTables) -> None:
    tables.add(
        "tool_dataprivacy_purpose",
        char("name", 100),
        text("description"),
        integer("descriptionformat", 1, notnull=False),
        text("lawfulbases", notnull=True),
        text("sensitivedatareasons"),
        char("retentionperiod", 255),
        integer("protected", 1, notnull=False),
        *persistent_columns(),
    )
    tables.add(
        "tool_dataprivacy_category",
        char("name", 100),
        text("description"),
        integer("descriptionformat", 1, notnull=False),
        *persistent_columns(),
    )
    # The purpose and category set on one context, or on every context of one level.
    for name, context in (
        ("tool_dataprivacy_ctxinstance", integer("contextid", 10)),
        ("tool_dataprivacy_ctxlevel", integer("contextlevel", 3)),
    ):
        tables.add(
            name,
            context,
            integer("purposeid", 10, notnull=False),
            integer("categoryid", 10, notnull=False),
            *persistent_columns(),
            indexes=("purposeid", "categoryid"),
            unique=(context.name,),
        )
    # admin/tool/dataprivacy/db/install.xml: data requests (export, deletion, other).
    tables.add(
        "tool_dataprivacy_request",
        integer("type", 2, default=0),
        text("comments"),
        integer("commentsformat", 2, default=0),
        integer("userid", 10, default=0),
        integer("requestedby", 10, default=0),
        integer("status", 2, default=0),
        integer("dpo", 10, notnull=False, default=0),
        text("dpocomment"),
        integer("dpocommentformat", 2, default=0),
        integer("systemapproval", 1, default=0),
        integer("usermodified", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("creationmethod", 10, default=0),
        indexes=("userid", "requestedby"),
    )


def _customcert(tables: MoodleTables) -> None:
    tables.add(
        "customcert",
        integer("course", 10, default=0),
        integer("templateid", 10, default=0),
        char("name", 255),
        text("intro"),
        integer("introformat", 4, default=0),
        integer("requiredtime", 10, default=0),
        integer("verifyany", 1, default=0),
        char("deliveryoption", 255, notnull=False),
        integer("usecustomfilename", 1, default=0),
        text("customfilenamepattern"),
        integer("emailstudents", 1, default=0),
        integer("emailteachers", 1, default=0),
        text("emailothers"),
        char("protection", 255),
        char("language", 20, notnull=False),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("templateid",),
    )
    tables.add(
        "customcert_issues",
        integer("userid", 10, default=0),
        integer("customcertid", 10, default=0),
        char("code", 40, notnull=False),
        integer("emailed", 1, default=0),
        integer("timecreated", 10, default=0),
        indexes=("userid, customcertid", "code", "userid", "customcertid"),
    )


def plugin_tables(tables: MoodleTables) -> None:
    """Add the plugin tables to ``tables``."""
    for build in (_logstore_standard_log, _tool_policy, _tool_dataprivacy, _customcert):
        build(tables)
