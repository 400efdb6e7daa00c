"""Sending statements to a Learning Record Store over HTTP (standard library only).

``urllib`` is enough for a few JSON POSTs, and keeps httpx out of the runtime
dependencies. What an LRS answers to a POST (xAPI 1.0.3, Communication 2.1.2):

- ``200`` with the list of ids it stored; statements it already held (same id, same
  content) are left out of the list, and Ralph answers ``204`` when it held them all;
- ``409`` when a statement with the same id but different content exists: the batch is
  then checked statement by statement (GET by id, compared; PUT when absent), so a
  statement the LRS holds identically counts as delivered and only a true conflict fails.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from learnprivacy._validators import is_aware
from learnprivacy.errors import (
    ConfigurationError,
    DeliveryError,
    IntegrityError,
    ValidationError,
)

__all__ = ["SendReport", "send_statements"]

_XAPI_VERSION = "1.0.3"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 30.0
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


@attrs.frozen(kw_only=True)
class SendReport:
    """What :func:`send_statements` did.

    ``stored`` statements were new to the LRS; ``already_stored`` it held identically
    (a re-send); ``duplicates`` were repeated in the input and sent once; ``retries`` is
    how many requests were repeated after a server or connection error.
    """

    sent: int
    stored: int
    already_stored: int
    duplicates: int
    batches: int
    retries: int


@attrs.define
class _Counters:
    stored: int = 0
    already: int = 0
    retries: int = 0
    batches: int = 0


class _Client:
    def __init__(
        self,
        endpoint: str,
        auth: tuple[str, str] | str | None,
        *,
        retries: int,
        backoff: float,
        timeout: float,
        sleep: Callable[[float], None],
        counters: _Counters,
    ) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("the LRS endpoint must be an http(s) URL")
        self._endpoint = endpoint
        self._host = parts.hostname
        self._headers = {
            "X-Experience-API-Version": _XAPI_VERSION,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if isinstance(auth, tuple):
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        elif isinstance(auth, str):
            self._headers["Authorization"] = auth
        # A proxy from the environment must not receive requests (and credentials) meant
        # for a server on this machine.
        handlers = [urllib.request.ProxyHandler({})] if self._host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)
        self._retries = retries
        self._backoff = backoff
        self._timeout = timeout
        self._sleep = sleep
        self._counters = counters

    def _once(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        # The scheme was checked to be http(s) when the client was built.
        request = urllib.request.Request(  # noqa: S310
            url, data=body, method=method, headers=self._headers
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), exc.read()

    def request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        """One request, repeated with exponential backoff on 5xx, 429 or no connection."""
        last: int | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                self._counters.retries += 1
                self._sleep(min(self._backoff * 2 ** (attempt - 1), _MAX_BACKOFF))
            try:
                status, payload = self._once(method, url, body)
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                last = None
                continue
            if status not in _RETRY_STATUSES:
                return status, payload
            last = status
        cause = f"HTTP {last}" if last is not None else "no connection"
        raise DeliveryError(
            f"the LRS at {self._host} did not answer after {self._retries + 1} attempts ({cause})",
            status=last,
        )

    def refuse(self, status: int) -> Exception:
        """The error for a final answer that is neither success nor conflict."""
        if status in (401, 403):
            return ConfigurationError(
                f"the LRS at {self._host} refused the credentials (HTTP {status})"
            )
        if status in (404, 405):
            return ConfigurationError(
                f"no xAPI statements resource at the endpoint on {self._host} (HTTP {status})"
            )
        if status in (400, 422):
            # 400 is what xAPI specifies; FastAPI-based LRSs such as Ralph answer 422.
            return ValidationError("the LRS rejected the statements as invalid", field="statements")
        if status == 413:
            return ConfigurationError(
                f"the LRS at {self._host} refused a batch as too large: lower batch_size"
            )
        return DeliveryError(f"the LRS at {self._host} answered HTTP {status}", status=status)

    def post_batch(self, batch: list[Mapping[str, Any]]) -> None:
        self._counters.batches += 1
        status, payload = self.request("POST", self._endpoint, _encode(list(batch)))
        if status == 200:
            stored = len(json.loads(payload or b"[]"))
            self._counters.stored += stored
            self._counters.already += len(batch) - stored
        elif status == 204:
            self._counters.already += len(batch)
        elif status == 409:
            # Every statement is settled before the conflict is reported, so the batch's
            # other statements are still delivered.
            conflicts = [s for s in batch if not self._settle(s)]
            if conflicts:
                raise IntegrityError(
                    f"the LRS holds a different statement under {len(conflicts)} of the ids "
                    f"sent, first {conflicts[0].get('id')}"
                )
        else:
            raise self.refuse(status)

    def _settle(self, statement: Mapping[str, Any]) -> bool:
        """After a conflicting batch: keep what the LRS has identically, PUT what it lacks.

        Returns False when the LRS holds a different statement under the same id.
        """
        statement_id = str(statement.get("id") or "")
        if not statement_id:
            raise IntegrityError("the LRS reported a conflict on a statement without an id")
        url = _with_query(self._endpoint, statementId=statement_id)
        status, payload = self.request("GET", url, None)
        held = _single(json.loads(payload)) if status == 200 else None
        if held is not None:
            if not equivalent(statement, held):
                return False
            self._counters.already += 1
            return True
        if status not in (200, 404):
            raise self.refuse(status)
        status, _ = self.request("PUT", url, _encode(statement))
        if status == 204:
            self._counters.stored += 1
            return True
        if status == 409:
            return False
        raise self.refuse(status)


def _single(document: Any) -> Any:
    """The statement a GET by ``statementId`` returned, or None when there is none.

    xAPI answers with the statement itself; some LRS versions (Ralph among them) wrap it
    in a StatementResult, empty when the id is unknown.
    """
    if isinstance(document, Mapping) and "statements" in document and "id" not in document:
        found = document["statements"]
        if isinstance(found, list) and len(found) == 1:
            return found[0]
        return None
    return document


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if is_aware(parsed) else None


def equivalent(ours: Any, stored: Any) -> bool:
    """Whether the LRS's copy says what we sent.

    Everything we sent must be in ``stored`` (the LRS adds ``stored``, ``authority`` and
    may add ``version``). An LRS may rewrite values in its own canonical form, so numbers
    compare by value, timestamps as instants and durations by their total seconds.
    """
    if isinstance(ours, Mapping):
        return isinstance(stored, Mapping) and all(
            key in stored and equivalent(value, stored[key]) for key, value in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(stored, list)
            and len(ours) == len(stored)
            and all(equivalent(a, b) for a, b in zip(ours, stored, strict=True))
        )
    if isinstance(ours, bool) or ours is None:
        return ours is stored or ours == stored
    if isinstance(ours, int | float):
        return _number(ours) == _number(stored)
    if isinstance(ours, str):
        if ours == stored:
            return True
        mine, theirs = _instant(ours), _instant(stored)
        if mine is not None and theirs is not None:
            return mine == theirs
        seconds_mine, seconds_theirs = _duration_seconds(ours), _duration_seconds(stored)
        return seconds_mine is not None and seconds_mine == seconds_theirs
    return bool(ours == stored)


def _duration_seconds(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value)
    if match is None or value in ("P", "PT"):
        return None
    weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[:4])
    seconds = Decimal(match.group(5) or 0)
    return Decimal(((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def _batches(
    statements: Iterable[Mapping[str, Any]], size: int, seen: set[str], skipped: list[int]
) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for statement in statements:
        statement_id = statement.get("id")
        if statement_id is not None:
            # Ids are derived from the content: a repeated id is the same statement, and
            # an LRS refuses a batch that holds one id twice.
            if statement_id in seen:
                skipped[0] += 1
                continue
            seen.add(str(statement_id))
        batch.append(statement)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def send_statements(
    statements: Iterable[Mapping[str, Any]],
    endpoint: str,
    auth: tuple[str, str] | str | None,
    *,
    batch_size: int = 100,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """POST ``statements`` to the xAPI Statements resource at ``endpoint``, in batches.

    Args:
        statements: xAPI statements (dicts), typically from ``statements_for`` or a
            package's ``xapi/statements.json``; consumed lazily, one batch at a time.
        endpoint: the Statements resource, e.g. ``https://lrs.example.org/xAPI/statements``.
        auth: ``(username, password)`` for HTTP Basic, a full ``Authorization`` header
            value (``"Bearer ..."``), or ``None``.
        batch_size: statements per request.
        retries: how many times a request is repeated after a 5xx, 408, 425 or 429 answer
            or a connection error, waiting ``backoff * 2**n`` seconds (at most 30) before
            the n-th repetition.
        timeout: seconds to wait for each answer.
        sleep: how to wait (tests pass a recorder).

    Re-sending statements the LRS already holds is harmless: they count as
    ``already_stored``. Batches sent before an error stay stored; sending everything
    again completes the job.

    Raises:
        DeliveryError: the LRS kept failing or could not be reached after every retry.
        IntegrityError: the LRS holds a different statement under one of the ids.
        ConfigurationError: bad endpoint (404/405), credentials refused (401/403), or a
            batch too large (413).
        ValidationError: the LRS rejected the statements as invalid (400 or 422).
    """
    if batch_size < 1 or retries < 0 or backoff < 0 or timeout <= 0:
        raise ConfigurationError("batch_size must be >= 1, retries and backoff >= 0, timeout > 0")
    counters = _Counters()
    client = _Client(
        endpoint,
        auth,
        retries=retries,
        backoff=backoff,
        timeout=timeout,
        sleep=sleep,
        counters=counters,
    )
    seen: set[str] = set()
    skipped = [0]
    sent = 0
    for batch in _batches(statements, batch_size, seen, skipped):
        client.post_batch(batch)
        sent += len(batch)
    return SendReport(
        sent=sent,
        stored=counters.stored,
        already_stored=counters.already,
        duplicates=skipped[0],
        batches=counters.batches,
        retries=counters.retries,
    )
