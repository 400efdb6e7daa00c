"""Security logs, policy acceptances and certificates.

- ``logstore_standard_log``: log-in, log-out and failed log-in events become AccessEvents
  (with the IP address Moodle logged); other events are not access events.
- ``tool_policy_acceptances``: an acceptance becomes a Consent for the policy
  (``purpose = "tool_policy/<policy id>"``). An optional policy is consent (Art. 6(1)(a));
  accepting a compulsory one is part of the contract (Art. 6(1)(b)). Status 0 after an
  acceptance is a withdrawal at ``timemodified``; a policy declined when first asked
  (status 0, never modified) was never consented to and yields nothing.
- ``customcert_issues`` (mod_customcert): an issued certificate with its verification code.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa

from learnprivacy.basis import LawfulBasis
from learnprivacy.moodle._content import iso
from learnprivacy.moodle._issues import ScanIssues, reporting
from learnprivacy.moodle._query import by_user, in_id_order, restrict_to_users
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import from_unix, required_date
from learnprivacy.records import AccessEvent, AccessKind, Certificate, Consent

__all__ = [
    "ACCESS_EVENTS",
    "acceptance_row",
    "acceptance_rows_statement",
    "access_statement",
    "certificate_statement",
    "consent_statement",
    "map_access",
    "map_certificate",
    "map_consent",
]

#: Moodle event classes that are access events, as stored in ``eventname``.
ACCESS_EVENTS = {
    "\\core\\event\\user_loggedin": AccessKind.LOGIN,
    "\\core\\event\\user_loggedout": AccessKind.LOGOUT,
    "\\core\\event\\user_login_failed": AccessKind.LOGIN_FAILED,
}


def access_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Log-in/log-out events of known users (a failed log-in for no account has userid 0)."""
    log = schema["logstore_standard_log"]
    statement = by_user(log, log.c.eventname, log.c.timecreated, log.c.ip).where(
        log.c.eventname.in_(list(ACCESS_EVENTS)), log.c.userid > 0
    )
    return in_id_order(statement, log, schema, user_ids, include_deleted)


@reporting("logstore_standard_log", "AccessEvent")
def map_access(row: Any, issues: ScanIssues) -> AccessEvent | None:
    """A log row as an AccessEvent; an unreadable IP is dropped (and reported), not the event."""
    rid, uid, eventname, created, ip = row
    at = required_date(created, "AccessEvent.at")
    address = ip.strip() if ip else None
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            issues.report(
                "logstore_standard_log", rid, "AccessEvent.ip", "not an IP address", skipped=False
            )
            address = None
    return AccessEvent(
        id=f"logstore_standard_log/{rid}",
        learner_id=str(uid),
        kind=ACCESS_EVENTS[eventname],
        at=at,
        ip=address or None,
    )


def consent_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Policy acceptances with the policy they are for and whether it is optional."""
    a, v = schema["tool_policy_acceptances"], schema["tool_policy_versions"]
    statement = (
        by_user(
            a,
            v.c.policyid,
            a.c.policyversionid,
            a.c.status,
            a.c.timecreated,
            a.c.timemodified,
            v.c.optional,
        )
        .join(v, v.c.id == a.c.policyversionid)
        .where(a.c.status.is_not(None))
    )
    return in_id_order(statement, a, schema, user_ids, include_deleted)


@reporting("tool_policy_acceptances", "Consent")
def map_consent(row: Any, issues: ScanIssues) -> Consent | None:
    """An acceptance as a Consent; a policy declined outright gives None (no issue)."""
    rid, uid, policyid, versionid, status, created, modified, optional = row
    given_at = required_date(created, "Consent.given_at")
    withdrawn_at = None
    if not status:
        if not modified or modified <= created:
            return None
        withdrawn_at = from_unix(modified)
    return Consent(
        id=f"tool_policy_acceptances/{rid}",
        learner_id=str(uid),
        purpose=f"tool_policy/{policyid}",
        given_at=given_at,
        withdrawn_at=withdrawn_at,
        proof=f"tool_policy_versions/{versionid}",
        basis=LawfulBasis.CONSENT if optional else LawfulBasis.CONTRACT,
    )


def acceptance_rows_statement(schema: MoodleSchema, user_ids: list[int] | None) -> sa.Select[Any]:
    """Every policy acceptance row of live accounts: agreed, declined or not answered."""
    a, v = schema["tool_policy_acceptances"], schema["tool_policy_versions"]
    statement = (
        sa.select(
            a.c.userid,
            v.c.name,
            v.c.revision,
            v.c.optional,
            a.c.status,
            a.c.usermodified,
            a.c.note,
            a.c.timecreated,
            a.c.timemodified,
        )
        .select_from(a)
        .join(v, v.c.id == a.c.policyversionid)
        .order_by(a.c.userid, a.c.id)
    )
    return restrict_to_users(statement, a.c.userid, schema, user_ids, False)


def acceptance_row(row: Any) -> tuple[int, dict[str, Any]]:
    """``(user id, row)``: one policy acceptance as Moodle's tool_policy export shows it.

    A declined policy is there, as not agreed: an export must not drop it. ``status`` is
    ``agreed``, ``declined`` (never accepted), ``withdrawn`` (accepted, then declined) or
    ``unanswered``; ``on_behalf`` says someone else (a parent, a manager) answered.
    """
    uid, name, revision, optional, status, modifier, note, created, modified = row
    if status is None:
        state = "unanswered"
    elif status:
        state = "agreed"
    elif modified and created and modified > created:
        state = "withdrawn"
    else:
        state = "declined"
    return int(uid), {
        "policy": name,
        "version": revision,
        "optional": bool(optional),
        "status": state,
        "on_behalf": bool(modifier) and modifier != uid,
        "note": note or None,
        "created_at": iso(created),
        "modified_at": iso(modified),
    }


def certificate_statement(
    schema: MoodleSchema, user_ids: list[int] | None, include_deleted: bool
) -> sa.Select[Any]:
    """Issued custom certificates with the course of the certificate activity."""
    issue, cert = schema["customcert_issues"], schema["customcert"]
    statement = by_user(issue, cert.c.course, issue.c.timecreated, issue.c.code).join(
        cert, cert.c.id == issue.c.customcertid
    )
    return in_id_order(statement, issue, schema, user_ids, include_deleted)


@reporting("customcert_issues", "Certificate")
def map_certificate(row: Any, issues: ScanIssues) -> Certificate | None:
    """An issued certificate as a Certificate (None, with an issue, without code or date)."""
    rid, uid, course, created, code = row
    at = required_date(created, "Certificate.issued_at")
    return Certificate(
        id=f"customcert_issues/{rid}",
        learner_id=str(uid),
        course_id=str(course),
        issued_at=at,
        verification_code=code,
    )
