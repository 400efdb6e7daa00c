"""Reading xAPI back: statements from an LRS or a file, and Progress records from them.

:func:`read_statements` fetches a learner's (or any query's) statements from an LRS,
following its ``more`` links page by page, or loads them from a file: a JSON list, a
``StatementResult`` object, JSON Lines, or an export package (directory or ``.zip``)
whose ``xapi/statements.json`` it reads. :func:`progress_from_statements` turns the
statements this library's profile writes (ADL ``passed``, ``failed``, ``completed``,
``attempted`` on a course or course activity under the profile's activity IRIs) back
into :class:`~learnprivacy.records.Progress` records, and says why it skipped the others.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import attrs

from learnprivacy._validators import is_aware, require_aware
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.export._lrs_http import Auth, LrsConnection
from learnprivacy.export._xapi import (
    VERB_ATTEMPTED,
    VERB_COMPLETED,
    VERB_FAILED,
    VERB_PASSED,
    VERB_VOIDED,
    XapiProfile,
)
from learnprivacy.records import Progress, ProgressStatus, Score
from learnprivacy.records._serialise import parse_duration

__all__ = ["ImportedProgress", "progress_from_statements", "read_statements"]

_STATUSES = {
    VERB_PASSED: ProgressStatus.PASSED,
    VERB_FAILED: ProgressStatus.FAILED,
    VERB_COMPLETED: ProgressStatus.COMPLETED,
    VERB_ATTEMPTED: ProgressStatus.IN_PROGRESS,
}
_PACKAGE_ENTRY = "xapi/statements.json"


def read_statements(
    source: str | os.PathLike[str],
    auth: Auth = None,
    *,
    agent: Mapping[str, Any] | None = None,
    verb: str | None = None,
    activity: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page_size: int | None = None,
    version: str = "1.0.3",
    retries: int = 3,
    timeout: float = 30.0,
    transport: Any = None,
) -> Iterator[dict[str, Any]]:
    """Statements from an LRS (``source`` an http(s) Statements resource) or a file.

    From an LRS, the query parameters are xAPI's (``agent`` as an Agent object, ``verb``
    and ``activity`` IRIs, ``since``/``until`` aware datetimes, ``page_size`` as
    ``limit``); every page's ``more`` link is followed until there is none, within the
    endpoint's origin only (credentials go nowhere else; another origin raises
    :class:`~learnprivacy.errors.DeliveryError`). A page that is not a StatementResult
    raises ``DeliveryError`` too. An LRS hides voided statements from such queries.

    From a file (``auth`` and the query parameters must then be unset): a JSON list of
    statements, one StatementResult object, JSON Lines, or an export package (its
    directory or ``.zip``). Statements come lazily, in the order given.

    Raises:
        ValidationError: the file is not one of these forms, or holds a non-object.
        DeliveryError: the LRS refused, failed or answered something else.
    """
    text = os.fspath(source)
    if text.startswith(("http://", "https://")):
        return _from_lrs(
            text,
            auth,
            _query(agent, verb, activity, since, until, page_size),
            version=version,
            retries=retries,
            timeout=timeout,
            transport=transport,
        )
    if auth is not None or any(v is not None for v in (agent, verb, activity, since, until)):
        raise ConfigurationError("auth and query parameters apply to an LRS, not to a file")
    return _from_file(Path(text))


def _query(
    agent: Mapping[str, Any] | None,
    verb: str | None,
    activity: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    page_size: int | None,
) -> dict[str, str]:
    params: dict[str, str] = {}
    if agent is not None:
        params["agent"] = json.dumps(dict(agent), separators=(",", ":"), ensure_ascii=False)
    if verb is not None:
        params["verb"] = verb
    if activity is not None:
        params["activity"] = activity
    for name, moment in (("since", since), ("until", until)):
        if moment is not None:
            params[name] = require_aware(moment, name).isoformat()
    if page_size is not None:
        if page_size < 1:
            raise ConfigurationError("page_size must be >= 1")
        params["limit"] = str(page_size)
    return params


#: Empty pages in a row (each with a new more link) after which a listing is refused.
_EMPTY_PAGES = 100


def _from_lrs(
    endpoint: str,
    auth: Auth,
    params: dict[str, str],
    *,
    version: str,
    retries: int,
    timeout: float,
    transport: Any,
) -> Iterator[dict[str, Any]]:
    with LrsConnection(
        endpoint, auth, version=version, retries=retries, timeout=timeout, transport=transport
    ) as lrs:
        url: str | None = endpoint
        # No params: the endpoint's own query string (``?voidedStatementId=...``) stands.
        query: dict[str, str] | None = params or None
        seen_links: set[str] = set()
        empty = 0
        while url is not None:
            response = lrs.request("GET", url, params=query)
            if response.status_code != 200:
                raise lrs.refusal(response, "query")
            try:
                page = response.json()
            except ValueError:
                raise lrs.malformed("a StatementResult", 200) from None
            statements = page.get("statements") if isinstance(page, dict) else None
            more = page.get("more") if isinstance(page, dict) else None
            if not isinstance(statements, list) or not isinstance(more, str | None):
                raise lrs.malformed("a StatementResult", 200)
            for statement in statements:
                if not isinstance(statement, dict):
                    raise lrs.malformed("a list of statements", 200)
                yield statement
            if not more:
                return
            # An empty page with a more link does not end the walk: an LRS that filters
            # pages after paging (voided or hidden statements) may answer one before
            # the rest (Ralph's last, empty, page has no more link). A link seen before
            # would loop, and so would an endless run of empty pages.
            empty = 0 if statements else empty + 1
            if more in seen_links or empty > _EMPTY_PAGES:
                raise lrs.malformed("a more link that moves on", 200)
            seen_links.add(more)
            url, query = lrs.resolve(more), None


def _from_file(path: Path) -> Iterator[dict[str, Any]]:
    if path.is_dir():
        path = path / _PACKAGE_ENTRY
    if not path.is_file():
        raise ValidationError("no statements file at this path", field="file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            try:
                raw = archive.read(_PACKAGE_ENTRY)
            except KeyError:
                raise ValidationError(
                    f"the archive holds no {_PACKAGE_ENTRY}", field="file"
                ) from None
    else:
        raw = path.read_bytes()
    return iter(_parse(raw))


def _parse(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("a statements file must be UTF-8", field="file") from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        document = None
        try:
            document = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise ValidationError(
                "a statements file must be JSON or JSON Lines", field="file"
            ) from None
    if isinstance(document, dict):
        document = document.get("statements") if "statements" in document else [document]
    if not isinstance(document, list) or not all(isinstance(s, dict) for s in document):
        raise ValidationError("a statements file must hold statement objects", field="file")
    return document


@attrs.frozen(kw_only=True)
class ImportedProgress:
    """What :func:`progress_from_statements` made: the records, and what it skipped why.

    ``skipped`` counts statements by reason (``"voided"``, ``"unknown learner"``,
    ``"not this profile's verb"``, ``"activity outside the profile"``...).
    """

    records: tuple[Progress, ...]
    skipped: Mapping[str, int]


def progress_from_statements(
    statements: Iterable[Mapping[str, Any]],
    *,
    learner_of: Callable[[str], str | None] | Mapping[str, str],
    profile: XapiProfile | None = None,
    basis: LawfulBasis = LawfulBasis.CONTRACT,
) -> ImportedProgress:
    """Progress records for the statements this profile understands; the others skipped.

    The mapping (docs/xapi.md): the actor's ``account`` under ``profile.home_page`` names
    the learner through ``learner_of`` (a mapping or a function from account names to
    learner ids, e.g. :func:`learners_by_actor` of a store); the verb gives the status
    (ADL ``passed``, ``failed``, ``completed``, ``attempted``); the object
    ``{activities}/courses/{course}[/activities/{activity}]`` gives ``course_id`` and
    ``activity_id``; ``result.score`` the score, ``result.duration`` the time spent,
    ``timestamp`` ``recorded_at``. The record's id is ``xapi-<statement id>``, so
    importing the same statements twice gives the same records. Statements voided by a
    voiding statement of the same input are skipped, and so are voiding statements.
    """
    profile = profile or XapiProfile()
    lookup = learner_of.get if isinstance(learner_of, Mapping) else learner_of
    materialised = list(statements)
    # Statement ids are UUIDs, compared without case: a voiding statement may name its
    # target in capitals.
    voided: set[str | None] = {
        _canonical_id((s.get("object") or {}).get("id"))
        for s in materialised
        if (s.get("verb") or {}).get("id") == VERB_VOIDED
    }
    prefix = profile.activities + "/courses/"
    records: list[Progress] = []
    skipped: Counter[str] = Counter()
    for statement in materialised:
        reason, record = _one(statement, lookup, prefix, profile, basis, voided)
        if record is not None:
            records.append(record)
        else:
            skipped[reason] += 1
    return ImportedProgress(records=tuple(records), skipped=dict(skipped))


def _one(
    statement: Mapping[str, Any],
    lookup: Callable[[str], str | None],
    prefix: str,
    profile: XapiProfile,
    basis: LawfulBasis,
    voided: set[str | None],
) -> tuple[str, Progress | None]:
    verb = (statement.get("verb") or {}).get("id")
    if verb == VERB_VOIDED:
        return "voiding statement", None
    statement_id = _canonical_id(statement.get("id"))
    if statement_id is None:
        return "no statement id", None
    if statement_id in voided:
        return "voided", None
    status = _STATUSES.get(str(verb))
    if status is None:
        return "not this profile's verb", None
    account = (statement.get("actor") or {}).get("account") or {}
    if account.get("homePage") != profile.home_page or not isinstance(account.get("name"), str):
        return "actor outside the profile", None
    learner_id = lookup(account["name"])
    if learner_id is None:
        return "unknown learner", None
    target = statement.get("object") or {}
    target_id = target.get("id")
    if not isinstance(target_id, str) or not target_id.startswith(prefix):
        return "activity outside the profile", None
    course, _, rest = target_id[len(prefix) :].partition("/")
    activity: str | None = None
    if rest:
        head, _, tail = rest.partition("/")
        if head != "activities" or not tail or "/" in tail:
            return "activity outside the profile", None
        activity = unquote(tail)
    try:
        recorded_at = dt.datetime.fromisoformat(str(statement.get("timestamp")))
        if not is_aware(recorded_at):
            return "timestamp without a time zone", None
        result = statement.get("result") or {}
        record = Progress(
            id=f"xapi-{statement_id}",
            learner_id=learner_id,
            course_id=unquote(course),
            activity_id=activity,
            status=status,
            recorded_at=recorded_at,
            score=_score(result.get("score")),
            time_spent=parse_duration(result["duration"]) if "duration" in result else None,
            basis=basis,
        )
    except (ValidationError, ValueError, TypeError, InvalidOperation):
        return "invalid values", None
    return "", record


def _canonical_id(value: Any) -> str | None:
    """A statement id in the UUID's canonical (lowercase) form, or None when it is none."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _score(score: Any) -> Score | None:
    if not isinstance(score, Mapping) or "raw" not in score:
        return None
    low, high = score.get("min"), score.get("max")
    if low is None or high is None:
        return None
    return Score(raw=Decimal(str(score["raw"])), min=Decimal(str(low)), max=Decimal(str(high)))
