"""xAPI 1.0.3 statements for progress and certificates, built as plain dicts.

The actor is an ``account`` whose name is a keyed pseudonym: never an e-mail address
(``mbox``), never the internal learner id. Statement ids are UUID version 5 of the
statement's own canonical content, so exporting the same records twice gives the same
statements with the same ids, and an LRS receiving them again stores nothing new.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.records import Certificate, Progress, ProgressStatus, format_duration, subject_of

__all__ = [
    "ACTIVITY_TYPE_CERTIFICATE",
    "ACTIVITY_TYPE_COURSE",
    "ACTIVITY_TYPE_MODULE",
    "STATEMENT_NAMESPACE",
    "VERB_ATTEMPTED",
    "VERB_COMPLETED",
    "VERB_EARNED",
    "VERB_FAILED",
    "VERB_PASSED",
    "Pseudonyms",
    "XapiProfile",
    "check_statement",
    "statement_for",
    "statements_for",
]

VERB_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VERB_PASSED = "http://adlnet.gov/expapi/verbs/passed"
VERB_FAILED = "http://adlnet.gov/expapi/verbs/failed"
VERB_ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"
VERB_EARNED = "http://id.tincanapi.com/verb/earned"

ACTIVITY_TYPE_COURSE = "http://adlnet.gov/expapi/activities/course"
ACTIVITY_TYPE_MODULE = "http://adlnet.gov/expapi/activities/module"
ACTIVITY_TYPE_CERTIFICATE = "https://w3id.org/xapi/cmi5/activitytype/certificate"

#: The UUID namespace of statement ids:
#: ``uuid5(NAMESPACE_URL, "urn:learnprivacy:xapi:statement")`` (a test recomputes it).
STATEMENT_NAMESPACE = uuid.UUID("371d15d0-f09c-5d03-8f90-60b1dce37dee")

# Progress status -> (verb, success, completion). NOT_STARTED says nothing happened, so it
# yields no statement at all.
_PROGRESS_VERBS: dict[ProgressStatus, tuple[str, bool | None, bool]] = {
    ProgressStatus.PASSED: (VERB_PASSED, True, True),
    ProgressStatus.FAILED: (VERB_FAILED, False, True),
    ProgressStatus.COMPLETED: (VERB_COMPLETED, None, True),
    ProgressStatus.IN_PROGRESS: (VERB_ATTEMPTED, None, False),
}
_VERB_NAMES = {
    VERB_PASSED: "passed",
    VERB_FAILED: "failed",
    VERB_COMPLETED: "completed",
    VERB_ATTEMPTED: "attempted",
    VERB_EARNED: "earned",
}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")


class Pseudonyms(Protocol):
    """What gives the actor's account name: a :class:`~learnprivacy.crypto.Pseudonymiser`."""

    def pseudonym(self, identifier: str) -> str:
        """The stable pseudonym of ``identifier``."""
        ...


def _check_url(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"XapiProfile.{attribute.name} must be an http(s) URL")


def _check_language(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ConfigurationError("XapiProfile.language must be an RFC 5646 tag such as en-US")


@attrs.frozen(kw_only=True)
class XapiProfile:
    """Where statements point: the LMS home page, the activity IRIs, the platform name.

    ``home_page`` is the ``account.homePage`` of every actor: set it to your LMS's URL.
    The default, ``https://lms.invalid``, uses the reserved ``.invalid`` domain so that an
    unconfigured export is recognisable as such. Activity ids are
    ``{activity_base}/courses/{course}`` (and ``/activities/{activity}``,
    ``/certificates/{id}``), with ``activity_base`` defaulting to
    ``{home_page}/xapi/activities``. ``pseudonym_domain`` is the pseudonym domain of the
    actor names, distinct from every report recipient's.
    """

    home_page: str = attrs.field(default="https://lms.invalid", validator=_check_url)
    activity_base: str | None = attrs.field(default=None, validator=_check_url)
    platform: str = "learnprivacy"
    language: str = attrs.field(default="en-US", validator=_check_language)
    pseudonym_domain: str = "xapi-actor"

    @property
    def activities(self) -> str:
        """The base IRI of activity ids, without a trailing slash."""
        base = self.activity_base or f"{self.home_page.rstrip('/')}/xapi/activities"
        return base.rstrip("/")

    def actor(self, account_name: str) -> dict[str, Any]:
        """The xAPI agent for a pseudonymous account name."""
        return {
            "objectType": "Agent",
            "account": {"homePage": self.home_page, "name": account_name},
        }

    def course(self, course_id: str) -> dict[str, Any]:
        """The activity object of a course."""
        return self.activity(f"courses/{_iri_segment(course_id)}", ACTIVITY_TYPE_COURSE)

    def activity(self, path: str, activity_type: str) -> dict[str, Any]:
        """The activity object at ``{activities}/{path}`` (``path`` already IRI-escaped)."""
        return {
            "objectType": "Activity",
            "id": f"{self.activities}/{path}",
            "definition": {"type": activity_type},
        }


def _iri_segment(value: str) -> str:
    return quote(value, safe="-._~")


def _number(value: int | float | Decimal) -> int | float:
    # xAPI scores are JSON numbers; a Decimal that holds an integer stays exact.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _timestamp(value: dt.datetime) -> str:
    return require_aware(value, "timestamp").isoformat()


def _finish(statement: dict[str, Any]) -> dict[str, Any]:
    """Add the deterministic id: UUID 5 of the canonical JSON of everything else."""
    canonical = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {"id": str(uuid.uuid5(STATEMENT_NAMESPACE, canonical)), **statement}


def _verb(profile: XapiProfile, verb_id: str) -> dict[str, Any]:
    return {"id": verb_id, "display": {profile.language: _VERB_NAMES[verb_id]}}


def _context(profile: XapiProfile, parent: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {"platform": profile.platform, "language": profile.language}
    if parent is not None:
        context["contextActivities"] = {"parent": [parent]}
    return context


def _progress(progress: Progress, actor_name: str, profile: XapiProfile) -> dict[str, Any] | None:
    mapped = _PROGRESS_VERBS.get(progress.status)
    if mapped is None:
        return None
    verb_id, success, completion = mapped
    course = profile.course(progress.course_id)
    if progress.activity_id is not None:
        target = profile.activity(
            f"courses/{_iri_segment(progress.course_id)}/activities/"
            f"{_iri_segment(progress.activity_id)}",
            ACTIVITY_TYPE_MODULE,
        )
        parent: dict[str, Any] | None = {"objectType": "Activity", "id": course["id"]}
    else:
        target, parent = course, None
    result: dict[str, Any] = {"completion": completion}
    if success is not None:
        result["success"] = success
    if progress.score is not None:
        score = progress.score
        result["score"] = {
            "raw": _number(score.raw),
            "min": _number(score.min),
            "max": _number(score.max),
            "scaled": round(score.scaled, 6),
        }
    if progress.time_spent is not None:
        result["duration"] = format_duration(progress.time_spent)
    return _finish(
        {
            "actor": profile.actor(actor_name),
            "verb": _verb(profile, verb_id),
            "object": target,
            "result": result,
            "context": _context(profile, parent),
            "timestamp": _timestamp(progress.recorded_at),
        }
    )


def _certificate(certificate: Certificate, actor_name: str, profile: XapiProfile) -> dict[str, Any]:
    # The object is the certificate itself (its id is not personal); the verification
    # code is personal and stays out of the statement.
    target = profile.activity(
        f"certificates/{_iri_segment(certificate.id)}", ACTIVITY_TYPE_CERTIFICATE
    )
    course = profile.course(certificate.course_id)
    return _finish(
        {
            "actor": profile.actor(actor_name),
            "verb": _verb(profile, VERB_EARNED),
            "object": target,
            "context": _context(profile, {"objectType": "Activity", "id": course["id"]}),
            "timestamp": _timestamp(certificate.issued_at),
        }
    )


def statement_for(
    record: object, *, actor_name: str, profile: XapiProfile | None = None
) -> dict[str, Any] | None:
    """The xAPI statement of one record, or ``None`` when it has none.

    Progress: ``passed``, ``failed``, ``completed`` map to the ADL verbs of the same name,
    ``in_progress`` to ``attempted``, ``not_started`` to no statement. Certificate:
    ``earned``. Other record types: ``None``. ``actor_name`` must already be a pseudonym.
    """
    profile = profile or XapiProfile()
    if isinstance(record, Progress):
        return _progress(record, actor_name, profile)
    if isinstance(record, Certificate):
        return _certificate(record, actor_name, profile)
    return None


def statements_for(
    records: Iterable[object], *, pseudonyms: Pseudonyms, profile: XapiProfile | None = None
) -> Iterator[dict[str, Any]]:
    """Statements for every record that has one, lazily; actors are ``pseudonyms`` of learners.

    ``pseudonyms`` is typically ``Pseudonymiser(key, domain=profile.pseudonym_domain)``.
    """
    profile = profile or XapiProfile()
    names: dict[str, str] = {}
    for record in records:
        if not isinstance(record, Progress | Certificate):
            continue
        subject = subject_of(record)
        name = names.get(subject)
        if name is None:
            name = names[subject] = pseudonyms.pseudonym(subject)
        statement = statement_for(record, actor_name=name, profile=profile)
        if statement is not None:
            yield statement


def check_statement(statement: Mapping[str, Any]) -> None:
    """Raise ValidationError unless ``statement`` meets the rules learnprivacy promises.

    These complement a schema validator (ralph's ``BaseXapiStatement``) on what it does
    not check: a UUID id, an account actor (no ``mbox``, ``mbox_sha1sum`` or ``openid``),
    a timestamp with a time zone, ``min <= raw <= max`` with ``min < max``, ``scaled`` in
    ``[-1, 1]``, and no ``version`` other than ``1.0.0``.
    """
    try:
        uuid.UUID(str(statement["id"]))
        actor = statement["actor"]
        if set(actor) & {"mbox", "mbox_sha1sum", "openid"} or "account" not in actor:
            raise ValidationError("xAPI actor must be an account only", field="actor")
        timestamp = dt.datetime.fromisoformat(statement["timestamp"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(
            "xAPI statement lacks a valid id, actor or timestamp", field="statement"
        ) from None
    require_aware(timestamp, "timestamp")
    if statement.get("version", "1.0.0") != "1.0.0":
        raise ValidationError("xAPI version must be absent or 1.0.0", field="version")
    score = (statement.get("result") or {}).get("score")
    if score is not None:
        _check_score(score)


def _check_score(score: Mapping[str, Any]) -> None:
    low, high, raw = score.get("min"), score.get("max"), score.get("raw")
    if low is not None and high is not None and not low < high:
        raise ValidationError("xAPI score min must be below max", field="result.score.min")
    if raw is not None and low is not None and raw < low:
        raise ValidationError("xAPI score raw must not be below min", field="result.score.raw")
    if raw is not None and high is not None and raw > high:
        raise ValidationError("xAPI score raw must not exceed max", field="result.score.raw")
    scaled = score.get("scaled")
    if scaled is not None and not -1 <= scaled <= 1:
        raise ValidationError("xAPI scaled score must lie in [-1, 1]", field="result.score.scaled")
