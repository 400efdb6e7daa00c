"""xAPI statements for progress and certificates, built as plain dicts (docs/xapi.md).

The actor is an ``account`` whose name is a keyed pseudonym: never an e-mail address
(``mbox``), never the internal learner id. A statement's id is UUID version 5 of the
identity of the event it states (the LMS, the record type and id, the verb and the UTC
instant), never of its wording: the same event pushed live and exported later, under
another time-zone offset, language or platform name, is one statement in an LRS.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.records import Certificate, Progress, ProgressStatus
from learnprivacy.records._base import subject_of

__all__ = [
    "ACTIVITY_TYPE_COURSE",
    "ACTIVITY_TYPE_MODULE",
    "STATEMENT_NAMESPACE",
    "VERB_ATTEMPTED",
    "VERB_COMPLETED",
    "VERB_EARNED",
    "VERB_FAILED",
    "VERB_PASSED",
    "VERB_VOIDED",
    "XAPI_VERSIONS",
    "Pseudonyms",
    "XapiProfile",
    "check_statement",
    "format_xapi_duration",
    "statement_for",
    "statement_id",
    "statements_for",
]

# ADL verbs (http://adlnet.gov/expapi/verbs/, the xAPI specification's own vocabulary)
# and the Tin Can registry's "earned" (http://id.tincanapi.com/verb/earned), with the
# display each registry gives: English words, so tagged "en-US" whatever the LMS's language.
VERB_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VERB_PASSED = "http://adlnet.gov/expapi/verbs/passed"
VERB_FAILED = "http://adlnet.gov/expapi/verbs/failed"
VERB_ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"
VERB_EARNED = "http://id.tincanapi.com/verb/earned"
VERB_VOIDED = "http://adlnet.gov/expapi/verbs/voided"

# ADL activity types (http://adlnet.gov/expapi/activities/).
ACTIVITY_TYPE_COURSE = "http://adlnet.gov/expapi/activities/course"
ACTIVITY_TYPE_MODULE = "http://adlnet.gov/expapi/activities/module"

#: The versions :class:`XapiProfile` can target: xAPI 1.0.3 and xAPI 2.0 (IEEE 9274.1.1).
XAPI_VERSIONS = ("1.0.3", "2.0.0")

#: The UUID namespace of statement ids:
#: ``uuid5(NAMESPACE_URL, "urn:learnprivacy:xapi:statement")`` (a test recomputes it).
STATEMENT_NAMESPACE = uuid.UUID("371d15d0-f09c-5d03-8f90-60b1dce37dee")

_VERB_DISPLAY_LANGUAGE = "en-US"
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
    VERB_VOIDED: "voided",
}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_VERSION = re.compile(r"^(1\.0\.\d+|2\.0\.\d+)$")
_UTC = dt.UTC


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
    if value is None:
        return
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ConfigurationError(
            f"XapiProfile.{attribute.name} must be an RFC 5646 tag such as fr-FR"
        )


def _check_version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in XAPI_VERSIONS:
        raise ConfigurationError("XapiProfile.version must be one of " + ", ".join(XAPI_VERSIONS))


def _check_platform(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigurationError("XapiProfile.platform must be a non-empty name or None")


def _names(value: object) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ConfigurationError("XapiProfile.course_names must map course ids to names")
    return dict(value)


@attrs.frozen(kw_only=True)
class XapiProfile:
    """How the LMS speaks xAPI: its home page, activity IRIs, name, course names and version.

    ``home_page`` is the ``account.homePage`` of every actor: set it to your LMS's URL.
    The default, ``https://lms.invalid``, uses the reserved ``.invalid`` domain so that an
    unconfigured export is recognisable as such; sending such statements to an LRS warns
    (:class:`~learnprivacy.errors.ConfigurationWarning`). Activity ids are
    ``{activity_base}/courses/{course}`` (and ``/activities/{activity}``), with
    ``activity_base`` defaulting to ``{home_page}/xapi/activities``.

    ``platform`` is the LMS's name (``context.platform``), from your configuration; none
    when unset. ``language`` is the language the learning happened in, when the LMS knows
    it (``context.language``; left out when ``None``, as xAPI asks). ``course_names``
    maps course ids to their names, which become the activities' ``definition.name``,
    tagged ``names_language`` (``"und"``, undetermined, when unset). ``version`` is the
    xAPI version spoken to an LRS: ``"1.0.3"`` or ``"2.0.0"`` (IEEE 9274.1.1).
    ``pseudonym_domain`` is the pseudonym domain of the actor names, distinct from every
    report recipient's. None of these enter statement ids except ``home_page``, which
    says whose records they are.
    """

    home_page: str = attrs.field(default="https://lms.invalid", validator=_check_url)
    activity_base: str | None = attrs.field(default=None, validator=_check_url)
    platform: str | None = attrs.field(default=None, validator=_check_platform)
    language: str | None = attrs.field(default=None, validator=_check_language)
    course_names: Mapping[str, str] = attrs.field(
        factory=dict, converter=_names, hash=False, repr=False
    )
    names_language: str | None = attrs.field(default=None, validator=_check_language)
    version: str = attrs.field(default="1.0.3", validator=_check_version)
    pseudonym_domain: str = "xapi-actor"
    # Derived once: every statement needs it.
    _activities: str = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        base = self.activity_base or f"{self.home_page.rstrip('/')}/xapi/activities"
        object.__setattr__(self, "_activities", base.rstrip("/"))

    @property
    def activities(self) -> str:
        """The base IRI of activity ids, without a trailing slash."""
        return self._activities

    @property
    def configured(self) -> bool:
        """False while ``home_page`` is the reserved ``.invalid`` placeholder."""
        host = urlsplit(self.home_page).hostname or ""
        return not (host == "invalid" or host.endswith(".invalid"))

    def actor(self, account_name: str) -> dict[str, Any]:
        """The xAPI agent for a pseudonymous account name."""
        return {
            "objectType": "Agent",
            "account": {"homePage": self.home_page, "name": account_name},
        }

    def course(self, course_id: str) -> dict[str, Any]:
        """The activity object of a course, named when ``course_names`` knows it."""
        activity = self.activity(f"courses/{_iri_segment(course_id)}", ACTIVITY_TYPE_COURSE)
        name = self.course_names.get(course_id)
        if name is not None:
            activity["definition"]["name"] = {self.names_language or "und": name}
        return activity

    def activity(self, path: str, activity_type: str) -> dict[str, Any]:
        """The activity object at ``{activities}/{path}`` (``path`` already IRI-escaped)."""
        return {
            "objectType": "Activity",
            "id": f"{self.activities}/{path}",
            "definition": {"type": activity_type},
        }


@functools.lru_cache(maxsize=4096)
def _iri_segment(value: str) -> str:
    # Course and activity ids repeat across statements: each is escaped once.
    return quote(value, safe="-._~")


def _number(value: int | float | Decimal) -> int | float:
    # xAPI scores are JSON numbers; a Decimal that holds an integer stays exact.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _instant(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC, truncated to the millisecond (what an LRS keeps)."""
    # Records hold UTC datetimes: those need neither the awareness check nor a conversion.
    utc = value if value.tzinfo is _UTC else require_aware(value, "timestamp").astimezone(_UTC)
    extra = utc.microsecond % 1000
    return utc.replace(microsecond=utc.microsecond - extra) if extra else utc


def _timestamp(instant: dt.datetime) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_xapi_duration(value: dt.timedelta) -> str:
    """ISO 8601 duration rounded to 0.01 s, as xAPI asks (``PT1H2M3.46S``).

    Hours are not folded into days, so every value reads the same way.
    """
    # value / timedelta(milliseconds=10) without the intermediate objects: the same
    # correctly rounded quotient of whole microseconds.
    centis = round(
        ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) / 10_000
    )
    if centis < 0:
        raise ValidationError("a duration must not be negative", field="duration")
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6_000)
    seconds, hundredths = divmod(rest, 100)
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if hundredths:
        out += f"{seconds}.{hundredths:02d}".rstrip("0") + "S"
    elif seconds or out == "PT":
        out += f"{seconds}S"
    return out


#: :func:`format_xapi_duration` for statements: time spent repeats across records, each
#: distinct duration is formatted once.
_xapi_duration = functools.lru_cache(maxsize=4096)(format_xapi_duration)


def statement_id(
    home_page: str,
    record_type: str,
    record_id: str,
    verb: str,
    at: dt.datetime,
    *,
    object_id: str,
    score: Mapping[str, Any] | None = None,
    duration: str | None = None,
) -> str:
    """The id of the statement saying what ``record`` states, for the LMS at ``home_page``.

    The event's identity: the record (type and id), what it states (the verb, the
    activity ``object_id``, the score's ``raw``/``min``/``max`` and the ``duration`` as
    the statement writes them) and when (``at`` as its UTC instant to the millisecond,
    ``2025-03-14T08:30:00.000Z``). UUID 5 in :data:`STATEMENT_NAMESPACE` of
    ``home_page, record_type, record_id, verb, instant, object_id, "raw/min/max",
    duration`` joined by U+001F (empty strings for no score or duration).

    Independent of the offset ``at`` is written with, of the profile's language,
    platform and course names, and of who builds it (a live push, an export, a
    re-export): the same event is one statement. A rectified score, course or time is
    another statement, so the corrected one can follow the voided one.
    """
    stamp = _timestamp(_instant(at))
    return _id(home_page, record_type, record_id, verb, stamp, object_id, score, duration)


def _id(
    home_page: str,
    record_type: str,
    record_id: str,
    verb: str,
    stamp: str,
    object_id: str,
    score: Mapping[str, Any] | None,
    duration: str | None,
) -> str:
    scored = "" if score is None else f"{score['raw']}/{score['min']}/{score['max']}"
    name = "\x1f".join(
        (
            home_page,
            record_type,
            record_id,
            verb,
            stamp,
            object_id,
            scored,
            duration or "",
        )
    )
    return _uuid5(name)


# SHA-1 already fed the namespace: each id hashes only its name (RFC 4122 section 4.3).
_NAMESPACE_HASH = hashlib.sha1(STATEMENT_NAMESPACE.bytes, usedforsecurity=False)
_VARIANT = "89ab"


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(STATEMENT_NAMESPACE, name))``, without the UUID object."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(name.encode("utf-8"))
    x = digest.hexdigest()
    # Version 5 in the 13th digit; the RFC 4122 variant (10xx) in the 17th.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"


_REGISTRATION: dict[type[Any], bool] = {}


def _has_registration(cls: type[Any]) -> bool:
    # Looking up an attribute a slotted record class lacks raises inside getattr: costly
    # for every statement. Known once per class; instances with a __dict__ may hold one
    # the class does not show, so those are always asked.
    known = _REGISTRATION.get(cls)
    if known is None:
        known = hasattr(cls, "registration") or getattr(cls, "__dictoffset__", 1) != 0
        _REGISTRATION[cls] = known
    return known


def _context(profile: XapiProfile, parent: dict[str, Any] | None, record: object) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if profile.platform is not None:
        context["platform"] = profile.platform
    if profile.language is not None:
        context["language"] = profile.language
    registration = (
        getattr(record, "registration", None) if _has_registration(type(record)) else None
    )
    if registration is not None:
        try:
            context["registration"] = str(uuid.UUID(str(registration)))
        except ValueError:
            raise ValidationError(
                "a record's registration must be a UUID", field="registration"
            ) from None
    if parent is not None:
        context["contextActivities"] = {"parent": [parent]}
    return context


def _check_past(instant: dt.datetime, now: dt.datetime) -> None:
    if instant > now:
        raise ValidationError(
            "an xAPI statement cannot state an event after now", field="timestamp"
        )


def _progress(
    progress: Progress, actor_name: str, profile: XapiProfile, now: dt.datetime
) -> dict[str, Any] | None:
    mapped = _PROGRESS_VERBS.get(progress.status)
    if mapped is None:
        return None
    verb_id, success, completion = mapped
    instant = _instant(progress.recorded_at)
    _check_past(instant, now)
    course = profile.course(progress.course_id)
    if progress.activity_id is not None:
        target = profile.activity(
            f"courses/{_iri_segment(progress.course_id)}/activities/"
            f"{_iri_segment(progress.activity_id)}",
            ACTIVITY_TYPE_MODULE,
        )
        parent: dict[str, Any] | None = course
    else:
        target, parent = course, None
    result: dict[str, Any] = {"completion": completion}
    if success is not None:
        result["success"] = success
    score = progress.score
    if score is not None:
        result["score"] = {
            "raw": _number(score.raw),
            "min": _number(score.min),
            "max": _number(score.max),
            "scaled": round(score.scaled, 6),
        }
    if progress.time_spent is not None:
        result["duration"] = _xapi_duration(progress.time_spent)
    return _statement(profile, progress, verb_id, instant, target, actor_name, result, parent)


def _certificate(
    certificate: Certificate, actor_name: str, profile: XapiProfile, now: dt.datetime
) -> dict[str, Any]:
    # The learner earned the course's certificate: the object is the course (an ADL
    # course activity); the verification code is personal and stays out.
    instant = _instant(certificate.issued_at)
    _check_past(instant, now)
    course = profile.course(certificate.course_id)
    return _statement(
        profile, certificate, VERB_EARNED, instant, course, actor_name, {"completion": True}, None
    )


def _statement(
    profile: XapiProfile,
    record: Progress | Certificate,
    verb_id: str,
    instant: dt.datetime,
    target: dict[str, Any],
    actor_name: str,
    result: dict[str, Any],
    parent: dict[str, Any] | None,
) -> dict[str, Any]:
    """The statement that the actor did ``verb_id`` on ``target`` at ``instant``, with its
    ``result``: its id derived from all of these, its context (``parent`` activity,
    registration) when there is one, its keys in the order the LRS stores them."""
    stamp = _timestamp(instant)
    statement: dict[str, Any] = {
        "id": _id(
            profile.home_page,
            "Progress" if isinstance(record, Progress) else "Certificate",
            record.id,
            verb_id,
            stamp,
            target["id"],
            result.get("score"),
            result.get("duration"),
        ),
        "actor": profile.actor(actor_name),
        "verb": {"id": verb_id, "display": {_VERB_DISPLAY_LANGUAGE: _VERB_NAMES[verb_id]}},
        "object": target,
        "result": result,
    }
    context = _context(profile, parent, record)
    if context:
        statement["context"] = context
    statement["timestamp"] = stamp
    return statement


def _now(now: dt.datetime | None) -> dt.datetime:
    # The API edge: read the clock once when the caller did not pass it.
    if now is None:
        return dt.datetime.now(_UTC)
    return require_aware(now, "now")


#: What builds the statement of a record: the record, the actor's name, the profile and
#: the export's time (aware); ``None`` when a record of its kind states nothing.
StatementBuilder = Callable[[Any, str, XapiProfile, dt.datetime], dict[str, Any] | None]


def statement_builder(cls: type[Any]) -> StatementBuilder | None:
    """The builder of the statements of records of ``cls`` (a subclass of a record type,
    an LMS's own, builds as its base), or ``None`` when they state nothing."""
    if issubclass(cls, Progress):
        return _progress
    if issubclass(cls, Certificate):
        return _certificate
    return None


def statement_for(
    record: object,
    *,
    actor_name: str,
    profile: XapiProfile | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """The xAPI statement of one record, or ``None`` when it has none.

    Progress: ``passed``, ``failed``, ``completed`` map to the ADL verbs of the same name,
    ``in_progress`` to ``attempted``, ``not_started`` to no statement. Certificate:
    ``earned`` (Tin Can registry) with the course as object. Other record types: ``None``.
    ``actor_name`` must already be a pseudonym.

    Raises:
        ValidationError: the record's time is after ``now`` (the clock, read once, when
            ``None``): a statement cannot state an event yet to come.
    """
    profile = profile or XapiProfile()
    moment = _now(now)
    build = statement_builder(type(record))
    return None if build is None else build(record, actor_name, profile, moment)


def statements_for(
    records: Iterable[object],
    *,
    pseudonyms: Pseudonyms,
    profile: XapiProfile | None = None,
    now: dt.datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Statements for every record that has one, lazily; actors are ``pseudonyms`` of learners.

    ``pseudonyms`` is ``store.keyring.pseudonymiser(profile.pseudonym_domain)`` (see
    :func:`~learnprivacy.export.xapi.actor_pseudonyms`): the derivation exports and
    erasure notifications use, so every path names a learner the same way.

    Raises:
        ValidationError: a record's time is after ``now`` (statements already yielded
            stand; nothing is yielded for that record or after it).
    """
    profile = profile or XapiProfile()
    moment = _now(now)
    names: dict[str, str] = {}
    builders: dict[type[Any], StatementBuilder | None] = {}
    for record in records:
        kind = type(record)
        if kind in builders:
            build = builders[kind]
        else:
            build = builders[kind] = statement_builder(kind)
        if build is None:
            continue
        subject = subject_of(record)
        name = names.get(subject)
        if name is None:
            name = names[subject] = pseudonyms.pseudonym(subject)
        statement = build(record, name, profile, moment)
        if statement is not None:
            yield statement


def check_statement(statement: Mapping[str, Any]) -> None:
    """Raise ValidationError unless ``statement`` meets the rules learnprivacy promises.

    These complement a schema validator (ralph's ``BaseXapiStatement``) on what it does
    not check: a UUID id, an account actor (no ``mbox``, ``mbox_sha1sum`` or ``openid``),
    a timestamp with a time zone, ``min <= raw <= max`` with ``min < max``, ``scaled`` in
    ``[-1, 1]``, a ``version`` (when present) of 1.0.x or 2.0.x, and no
    ``context.language`` that is not an RFC 5646 tag.
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
    version = statement.get("version")
    if version is not None and not (isinstance(version, str) and _VERSION.match(version)):
        raise ValidationError("xAPI version must be 1.0.x or 2.0.x", field="version")
    language = (statement.get("context") or {}).get("language")
    if language is not None and not (isinstance(language, str) and _LANGUAGE.match(language)):
        raise ValidationError("xAPI context.language must be an RFC 5646 tag", field="language")
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
