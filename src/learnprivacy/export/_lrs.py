"""Sending statements to a Learning Record Store (xAPI Communication 2.1.2, over httpx).

What an LRS answers to a POST of a batch, and how it is counted:

- ``200`` with the list of the ids it stored. Every element must be one of the batch's
  ids, each once, or the reply is refused as malformed. The listed ones are
  ``delivered``. Ralph leaves out of the list the statements it already held identically
  (and answers ``204`` when it held them all): each of those is read back by id and
  counts as ``already_stored`` only when the LRS holds it identically; held differently
  it is a conflict, not held at all it is missing (both ``failed``, and the call raises);
- ``409`` when a statement with the same id but different content exists: the batch is
  then settled statement by statement (GET by id, compared; PUT when absent), so a
  statement the LRS holds identically counts as already stored and only a true conflict
  is ``failed``.

A redirect of a POST or PUT is never followed and credentials never leave the
endpoint's origin (see :class:`~learnprivacy.export._lrs_http.LrsConnection`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from learnprivacy._validators import is_aware
from learnprivacy.errors import (
    ConfigurationError,
    ConfigurationWarning,
    DeliveryError,
    ValidationError,
)
from learnprivacy.export._lrs_http import Auth, LrsConnection

__all__ = ["SendReport", "equivalent", "send_statements"]

_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


@attrs.frozen(kw_only=True)
class SendReport:
    """What :func:`send_statements` did; ``delivered + already_stored + failed == sent``.

    ``delivered`` statements the LRS acknowledged storing on this call; ``already_stored``
    it held identically before, read back to be sure (a re-send; after a retried request
    whose first reply was lost, the statements that first attempt stored count here too);
    ``failed`` it holds differently under the same id, or does not hold though its reply
    said so (a report is returned only when nothing failed); ``duplicates``
    were repeated in the input and sent once (each repeat compared with what the LRS
    holds: a repeated id saying something else is ``failed``, a conflict); ``retries``
    is how many requests were repeated after a server or network error.
    """

    sent: int
    delivered: int
    already_stored: int
    failed: int
    duplicates: int
    batches: int
    retries: int


@attrs.define
class _Counters:
    delivered: int = 0
    already: int = 0
    failed: int = 0
    batches: int = 0
    conflicts: list[str] = attrs.Factory(list)
    #: Statements a reply left out of its list (or a 204 covered) that the LRS lacks.
    missing: list[str] = attrs.Factory(list)


# xAPI ids are UUIDs in their standard string form; compared lowercase. A regular
# expression is three times cheaper than uuid.UUID, which dominated the client's CPU time.
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _ids_of(payload: Any, batch_ids: set[str]) -> set[str] | None:
    """The ids a 200 reply lists, or None when it is not a list of the batch's ids."""
    if not isinstance(payload, list):
        return None
    listed: set[str] = set()
    for item in payload:
        if not isinstance(item, str):
            return None
        canonical = item.lower()
        if canonical not in batch_ids or canonical in listed:
            return None
        listed.add(canonical)
    return listed


class _Sender:
    def __init__(self, connection: LrsConnection, counters: _Counters) -> None:
        self._lrs = connection
        self._counters = counters

    def post_batch(self, batch: list[Mapping[str, Any]], batch_ids: set[str]) -> None:
        self._counters.batches += 1
        lrs = self._lrs
        response = lrs.request("POST", lrs.endpoint, body=batch)
        status = response.status_code
        if status == 200:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            listed = _ids_of(payload, batch_ids)
            if listed is None:
                raise lrs.malformed("the list of the statement ids sent", status)
            self._counters.delivered += len(listed)
            self._check_held([s for s in batch if str(s["id"]).lower() not in listed])
        elif status == 204:
            self._check_held(batch)
        elif status == 409:
            # Every statement is settled before the conflict is reported, so the batch's
            # other statements are still delivered.
            for statement in batch:
                if not self._settle(statement):
                    self._counters.failed += 1
                    self._counters.conflicts.append(str(statement["id"]))
        else:
            raise lrs.refusal(response, "statements")

    def _check_held(self, statements: list[Mapping[str, Any]]) -> None:
        """Statements a reply did not list as stored: the LRS must hold them identically.

        Ralph leaves out of its list (or answers ``204`` for) what it already held; that
        is read back rather than believed, so an LRS that dropped a statement is not
        reported as holding it. A statement held differently is a conflict; one the LRS
        does not hold at all is ``missing``: both are ``failed``.
        """
        for statement in statements:
            held = self._held(statement)
            if held is not None and equivalent(statement, held):
                self._counters.already += 1
                continue
            self._counters.failed += 1
            kind = self._counters.conflicts if held is not None else self._counters.missing
            kind.append(str(statement["id"]))

    def differing(self, repeats: list[Mapping[str, Any]]) -> list[str]:
        """The ids of ``repeats`` (statements whose id came earlier in the input) that the
        LRS does not hold as they say (missing statements are already failed)."""
        ids: list[str] = []
        missing = {i.lower() for i in self._counters.missing}
        for statement in repeats:
            statement_id = str(statement["id"])
            if statement_id.lower() in missing:
                continue
            held = self._held(statement)
            if held is None or not equivalent(statement, held):
                ids.append(statement_id)
        return ids

    def _held(self, statement: Mapping[str, Any]) -> Any:
        """The statement the LRS holds under ``statement``'s id, or None."""
        lrs = self._lrs
        params = {"statementId": str(statement["id"])}
        response = lrs.request("GET", lrs.endpoint, params=params)
        if response.status_code == 200:
            try:
                return _single(response.json())
            except ValueError:
                raise lrs.malformed("a statement", 200) from None
        if response.status_code != 404:
            raise lrs.refusal(response, "statement id")
        return None

    def _settle(self, statement: Mapping[str, Any]) -> bool:
        """After a conflicting batch: keep what the LRS has identically, PUT what it lacks.

        Returns False when the LRS holds a different statement under the same id.
        """
        lrs = self._lrs
        params = {"statementId": str(statement["id"])}
        held = self._held(statement)
        if held is not None:
            if not equivalent(statement, held):
                return False
            self._counters.already += 1
            return True
        response = lrs.request("PUT", lrs.endpoint, body=statement, params=params)
        if response.status_code == 204:
            self._counters.delivered += 1
            return True
        if response.status_code == 409:
            return False
        raise lrs.refusal(response, "statement")


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
    statements: Iterable[Mapping[str, Any]],
    size: int,
    seen: set[str],
    skipped: list[Mapping[str, Any]],
) -> Iterator[tuple[list[Mapping[str, Any]], set[str]]]:
    batch: list[Mapping[str, Any]] = []
    ids: set[str] = set()
    for statement in statements:
        raw_id = statement.get("id") if isinstance(statement, Mapping) else None
        statement_id = raw_id.lower() if isinstance(raw_id, str) else ""
        if not _UUID_TEXT.fullmatch(statement_id):
            # Without its own id a statement cannot be matched to the LRS's reply, nor
            # sent twice without being stored twice.
            raise ValidationError("every statement sent needs a UUID id", field="id")
        # Ids are derived from the event: a repeated id is the same statement, and an
        # LRS refuses a batch that holds one id twice.
        if statement_id in seen:
            # Kept to be compared with what the LRS holds once the first is sent: a
            # repeat saying something else is not the same statement.
            skipped.append(statement)
            continue
        seen.add(statement_id)
        ids.add(statement_id)
        batch.append(statement)
        if len(batch) == size:
            yield batch, ids
            batch, ids = [], set()
    if batch:
        yield batch, ids


def _warn_unconfigured(statement: Mapping[str, Any]) -> None:
    from urllib.parse import urlsplit

    account = (statement.get("actor") or {}).get("account") or {}
    host = urlsplit(str(account.get("homePage", ""))).hostname or ""
    if host == "invalid" or host.endswith(".invalid"):
        warnings.warn(
            "statements name actors under the placeholder home page https://lms.invalid: "
            "set XapiProfile(home_page=...) to the LMS's URL",
            ConfigurationWarning,
            stacklevel=3,
        )


def send_statements(
    statements: Iterable[Mapping[str, Any]],
    endpoint: str,
    auth: Auth,
    *,
    batch_size: int = 100,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    version: str = "1.0.3",
    sleep: Callable[[float], None] = time.sleep,
    transport: Any = None,
) -> SendReport:
    """POST ``statements`` to the xAPI Statements resource at ``endpoint``, in batches.

    Args:
        statements: xAPI statements (dicts with an ``id``), typically from
            ``statements_for`` or :func:`read_statements`; consumed lazily, one batch at
            a time.
        endpoint: the Statements resource, e.g. ``https://lrs.example.org/xAPI/statements``:
            its final URL, since a redirected POST is not followed.
        auth: ``(username, password)`` for HTTP Basic, a full ``Authorization`` header
            value (``"Bearer ..."``), or ``None``. Sent to the endpoint's origin only.
        batch_size: statements per request.
        retries: how many times a request is repeated after a 5xx answer or a network
            error (never after a 4xx), waiting ``backoff * 2**n`` seconds (at most 30).
        timeout: seconds to wait for each answer.
        version: the ``X-Experience-API-Version`` header: ``"1.0.3"`` or ``"2.0.0"``
            (``XapiProfile.version``).
        sleep: how to wait (tests pass a recorder).
        transport: an httpx transport (tests and benchmarks).

    Re-sending statements the LRS already holds is harmless: they count as
    ``already_stored``. Batches sent before an error stay stored; sending everything
    again completes the job.

    Raises:
        DeliveryError: sending stopped, or some statements conflict with different ones
            the LRS holds under their ids. Its ``delivered``, ``already_stored`` and
            ``failed`` say exactly how far it got (``failed`` counts the batch being sent
            and the conflicts; statements after that batch were not read), ``status`` the
            HTTP status (401/403 credentials refused, 404/405 no statements resource,
            400/422 invalid statements, 413 batch too large, a 3xx redirect of the POST,
            ``None`` for no connection or a malformed reply).
        ValidationError: a statement has no UUID id (nothing of its batch is sent).
        ConfigurationError: bad endpoint or options.
    """
    from learnprivacy.export._xapi import XAPI_VERSIONS

    if batch_size < 1:
        raise ConfigurationError("batch_size must be >= 1")
    if version not in XAPI_VERSIONS:
        raise ConfigurationError("version must be one of " + ", ".join(XAPI_VERSIONS))
    counters = _Counters()
    seen: set[str] = set()
    skipped: list[Mapping[str, Any]] = []
    sent = 0
    with LrsConnection(
        endpoint,
        auth,
        version=version,
        retries=retries,
        backoff=backoff,
        timeout=timeout,
        sleep=sleep,
        transport=transport,
    ) as connection:
        sender = _Sender(connection, counters)
        try:
            for batch, ids in _batches(statements, batch_size, seen, skipped):
                if not sent:
                    _warn_unconfigured(batch[0])
                sent += len(batch)
                sender.post_batch(batch, ids)
            # A repeated id is the same statement only if it says the same: each repeat
            # is compared with what the LRS holds; one that differs was not sent at all.
            differing = sender.differing(skipped)
            sent += len(differing)
            counters.failed += len(differing)
            counters.conflicts.extend(differing)
        except DeliveryError as exc:
            exc.delivered = counters.delivered
            exc.already_stored = counters.already
            exc.failed = sent - counters.delivered - counters.already
            raise
        if counters.missing:
            raise DeliveryError(
                f"the LRS at {connection.host} answered as if it held "
                f"{len(counters.missing)} of the statements sent, and does not hold them, "
                f"first {counters.missing[0]}",
                status=None,
                delivered=counters.delivered,
                already_stored=counters.already,
                failed=counters.failed,
            )
        if counters.conflicts:
            raise DeliveryError(
                f"the LRS at {connection.host} holds a different statement under "
                f"{len(counters.conflicts)} of the ids sent, first {counters.conflicts[0]}",
                status=409,
                delivered=counters.delivered,
                already_stored=counters.already,
                failed=counters.failed,
            )
        return SendReport(
            sent=sent,
            delivered=counters.delivered,
            already_stored=counters.already,
            failed=counters.failed,
            duplicates=len(skipped) - len(differing),
            batches=counters.batches,
            retries=connection.attempts_repeated,
        )
