"""Plugin tables the adapter reads, as declared in each plugin's ``db/install.xml``.

Transcribed from Moodle 4.5/5.0: ``admin/tool/log/store/standard/db/install.xml``
(standard log store), ``admin/tool/policy/db/install.xml`` (site policies),
``admin/tool/dataprivacy/db/install.xml`` (data registry); and from the third-party
certificate plugin ``mod_customcert`` (``db/install.xml`` of mdjnelson/moodle-mod_customcert).
"""

from __future__ import annotations

import sqlalchemy as sa

from learnprivacy.moodle._columns import char, index, integer, sequence_id, text

__all__ = ["plugin_tables"]


def _logstore_standard_log(md: sa.MetaData, p: str) -> None:
    t = "logstore_standard_log"
    sa.Table(
        f"{p}{t}",
        md,
        sequence_id(),
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
        index(p, t, "timecreated"),
        index(p, t, "courseid, anonymous, timecreated"),
        index(p, t, "userid, contextlevel, contextinstanceid, crud, edulevel, timecreated"),
        *(index(p, t, n) for n in ("contextid", "userid", "courseid", "realuserid")),
        index(p, t, "relateduserid"),
    )


def _tool_policy(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}tool_policy",
        md,
        sequence_id(),
        integer("sortorder", 5, default=999),
        integer("currentversionid", 10, notnull=False),
        index(p, "tool_policy", "currentversionid"),
    )
    sa.Table(
        f"{p}tool_policy_versions",
        md,
        sequence_id(),
        char("name", 1333),
        integer("type", 3, default=0),
        integer("audience", 3, default=0),
        integer("archived", 3, default=0),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        integer("policyid", 10),
        integer("agreementstyle", 3, default=0),
        integer("optional", 3, default=0),
        char("revision", 1333),
        text("summary", notnull=True),
        integer("summaryformat", 3),
        text("content", notnull=True),
        integer("contentformat", 3),
        index(p, "tool_policy_versions", "usermodified"),
        index(p, "tool_policy_versions", "policyid"),
    )
    sa.Table(
        f"{p}tool_policy_acceptances",
        md,
        sequence_id(),
        integer("policyversionid", 10),
        integer("userid", 10),
        integer("status", 1, notnull=False),
        char("lang", 30),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        text("note"),
        index(p, "tool_policy_acceptances", "policyversionid, userid", unique=True),
        index(p, "tool_policy_acceptances", "userid"),
        index(p, "tool_policy_acceptances", "usermodified"),
    )


def _tool_dataprivacy(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}tool_dataprivacy_purpose",
        md,
        sequence_id(),
        char("name", 100),
        text("description"),
        integer("descriptionformat", 1, notnull=False),
        text("lawfulbases", notnull=True),
        text("sensitivedatareasons"),
        char("retentionperiod", 255),
        integer("protected", 1, notnull=False),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
    )
    sa.Table(
        f"{p}tool_dataprivacy_category",
        md,
        sequence_id(),
        char("name", 100),
        text("description"),
        integer("descriptionformat", 1, notnull=False),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
    )
    sa.Table(
        f"{p}tool_dataprivacy_ctxinstance",
        md,
        sequence_id(),
        integer("contextid", 10),
        integer("purposeid", 10, notnull=False),
        integer("categoryid", 10, notnull=False),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        index(p, "tool_dataprivacy_ctxinstance", "contextid", unique=True),
        index(p, "tool_dataprivacy_ctxinstance", "purposeid"),
        index(p, "tool_dataprivacy_ctxinstance", "categoryid"),
    )
    sa.Table(
        f"{p}tool_dataprivacy_ctxlevel",
        md,
        sequence_id(),
        integer("contextlevel", 3),
        integer("purposeid", 10, notnull=False),
        integer("categoryid", 10, notnull=False),
        integer("usermodified", 10),
        integer("timecreated", 10),
        integer("timemodified", 10),
        index(p, "tool_dataprivacy_ctxlevel", "contextlevel", unique=True),
        index(p, "tool_dataprivacy_ctxlevel", "categoryid"),
        index(p, "tool_dataprivacy_ctxlevel", "purposeid"),
    )
    # admin/tool/dataprivacy/db/install.xml: data requests (export, deletion, other).
    sa.Table(
        f"{p}tool_dataprivacy_request",
        md,
        sequence_id(),
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
        index(p, "tool_dataprivacy_request", "userid"),
        index(p, "tool_dataprivacy_request", "requestedby"),
    )


def _customcert(md: sa.MetaData, p: str) -> None:
    sa.Table(
        f"{p}customcert",
        md,
        sequence_id(),
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
        index(p, "customcert", "templateid"),
    )
    sa.Table(
        f"{p}customcert_issues",
        md,
        sequence_id(),
        integer("userid", 10, default=0),
        integer("customcertid", 10, default=0),
        char("code", 40, notnull=False),
        integer("emailed", 1, default=0),
        integer("timecreated", 10, default=0),
        index(p, "customcert_issues", "userid, customcertid"),
        index(p, "customcert_issues", "code"),
        index(p, "customcert_issues", "userid"),
        index(p, "customcert_issues", "customcertid"),
    )


def plugin_tables(md: sa.MetaData, prefix: str) -> None:
    """Add the plugin tables to ``md`` with ``prefix``."""
    for build in (_logstore_standard_log, _tool_policy, _tool_dataprivacy, _customcert):
        build(md, prefix)
