"""An LRS as an Art. 19 recipient: erasure and rectification void the learner's statements.

xAPI has no delete: a statement is withdrawn by a *voiding statement* (verb
``http://adlnet.gov/expapi/verbs/voided``, object a ``StatementRef`` to it), after which
a conformant LRS leaves the voided statement out of every query and answers for it
only to ``voidedStatementId``. :class:`LrsRecipient` does that for every statement whose
actor is the learner's account, then checks the outcome against the LRS:

- each voiding statement is read back by id (the LRS holds it);
- the learner's statements are queried again: what is still listed is reported as
  ``still_listed`` (0 on an LRS that applies voiding to queries). A statement still
  listed is not withdrawn: the notification fails (``DeliveryError`` with the counts), as
  it does on an LRS that does not apply voiding, such as Ralph's own backends.

Voiding statements name the LMS (``account`` ``lms`` under the profile's home page) as
actor, never the learner, and their ids are UUID 5 of the voided id, so notifying again
after a failure re-sends the same statements and voids nothing twice.

A rectification back to an earlier value (passed, failed, passed again) makes the very
statement an earlier rectification voided, and xAPI cannot un-void one. Such a corrected
statement is re-issued under :func:`reissued_id`: revision 1, 2, ... of its own id, the
first revision the LRS neither lists nor holds as voided (asked by
``voidedStatementId``). The revision is counted from what the LRS holds, so a retry
after a crash finds the re-issued statement listed and sends nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from learnprivacy.errors import ConfigurationError, DeliveryError
from learnprivacy.export._lrs import send_statements
from learnprivacy.export._lrs_http import Auth, LrsConnection
from learnprivacy.export._xapi import (
    STATEMENT_NAMESPACE,
    VERB_EARNED,
    VERB_VOIDED,
    XapiProfile,
    statements_for,
)
from learnprivacy.export._xapi_read import read_statements

__all__ = ["LrsRecipient", "reissued_id", "voiding_statement"]

_VOIDING_ACTOR_NAME = "lms"
# What rectifying a field can make wrong in the statements this profile writes.
_STATEMENT_FIELDS = {
    "Progress": frozenset(
        {"course_id", "activity_id", "status", "recorded_at", "score", "time_spent"}
    ),
    "Certificate": frozenset({"course_id", "issued_at"}),
}


def voiding_statement(statement_id: str, profile: XapiProfile) -> dict[str, Any]:
    """The statement voiding ``statement_id``: same id for the same target, LMS as actor."""
    target = str(uuid.UUID(statement_id))
    return {
        "id": str(uuid.uuid5(STATEMENT_NAMESPACE, f"voided\x1f{target}")),
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": profile.home_page, "name": _VOIDING_ACTOR_NAME},
        },
        "verb": {"id": VERB_VOIDED, "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": target},
    }


def reissued_id(statement_id: str, revision: int) -> str:
    """The id of ``statement_id``'s statement re-issued for the ``revision``-th time.

    UUID 5 in :data:`STATEMENT_NAMESPACE` of ``"reissued", statement_id, revision``
    joined by U+001F: the same statement and revision always take the same id.
    """
    if revision < 1:
        raise ValueError("revision must be >= 1")
    return str(
        uuid.uuid5(STATEMENT_NAMESPACE, f"reissued\x1f{uuid.UUID(statement_id)}\x1f{revision}")
    )


# Beyond this many voided revisions of one statement the LRS is not believed.
_MAX_REVISIONS = 1000


def _record_type(statement: Mapping[str, Any]) -> str:
    verb = (statement.get("verb") or {}).get("id")
    return "Certificate" if verb == VERB_EARNED else "Progress"


class LrsRecipient:
    """A notifier (``Recipients(notifiers={"lrs": LrsRecipient(url, auth=...)})``) for an LRS.

    On an erasure it voids every statement whose actor is the learner's account (the
    reference it is given is that account's name: :class:`Recipients` derives it in
    :attr:`pseudonym_domain` from the store's keyring, as exports and live pushes do).
    On a rectification it voids the learner's statements of the record types whose
    rectified fields a statement carries (a rectified e-mail address is in no statement:
    nothing is voided); corrected statements are then the LMS's to send. A restriction
    voids nothing (statements stay, the LMS stops sending new ones).

    It returns what it did as non-personal counts, which the request's report and the
    audit log keep: ``found``, ``voided``, ``not_voided``, ``still_listed``,
    ``deleted`` (always ``0``: xAPI defines no delete and Ralph offers none). When a
    statement could not be voided, or queries still list a voided one, it raises
    :class:`~learnprivacy.errors.DeliveryError` carrying the same counts in ``details``,
    and the request fails (a retry voids the rest).

    It is also a source for access exports: :meth:`statements_about` reads what the LRS
    holds about an actor.

    Args:
        endpoint: the LRS's Statements resource (its final URL).
        auth: ``(user, password)``, an ``Authorization`` value, or ``None``.
        profile: the LMS's :class:`XapiProfile` (home page and pseudonym domain of the
            actors it sent).
        retries: repetitions after a 5xx or a network error, as for
            :func:`send_statements`.
        timeout: seconds to wait for each answer.
        page_size: statements per page when listing the learner's statements.
        transport: an httpx transport (tests).
        store: the LMS's :class:`~learnprivacy.store.Store`. With it, a rectification
            brings the LRS in line with the store: the statements the store no longer
            makes (the rectified ones) are voided and the corrected ones sent
            (``sent``); unchanged statements stay. Without it, every statement of the
            rectified record types is voided and the LMS sends the corrected ones.
    """

    def __init__(
        self,
        endpoint: str,
        auth: Auth = None,
        *,
        profile: XapiProfile | None = None,
        retries: int = 3,
        timeout: float = 30.0,
        page_size: int = 500,
        transport: Any = None,
        store: Any = None,
    ) -> None:
        # Checked now, so a bad endpoint fails when the recipients are set up.
        LrsConnection(endpoint, auth, retries=retries, timeout=timeout).close()
        if page_size < 1:
            raise ConfigurationError("page_size must be >= 1")
        self.endpoint = endpoint
        self._auth = auth
        self.profile = profile or XapiProfile()
        self._retries = retries
        self._timeout = timeout
        self._page_size = page_size
        self._transport = transport
        self._store = store

    def __repr__(self) -> str:
        # Never the credentials.
        return f"LrsRecipient(endpoint={self.endpoint!r})"

    @property
    def pseudonym_domain(self) -> str:
        """The domain the reference is derived in: the profile's actor domain."""
        return self.profile.pseudonym_domain

    def agent(self, reference: str) -> dict[str, Any]:
        """The actor the LMS sent for the learner whose pseudonym is ``reference``."""
        return self.profile.actor(reference)

    def statements_about(self, reference: str) -> Iterator[dict[str, Any]]:
        """What the LRS lists with the learner's account as actor (voided ones hidden)."""
        return read_statements(
            self.endpoint,
            self._auth,
            agent=self.agent(reference),
            page_size=self._page_size,
            version=self.profile.version,
            retries=self._retries,
            timeout=self._timeout,
            transport=self._transport,
        )

    def __call__(self, notification: Any) -> dict[str, str]:
        """Act on one Art. 19 notification; the counts of what happened."""
        operation = notification.operation
        counts = {"operation": operation, "found": 0, "voided": 0, "not_voided": 0, "sent": 0}
        corrected: list[dict[str, Any]] = []
        try:
            if operation == "erasure":
                targets = self._listed(notification.reference, None)
            elif operation == "rectification":
                targets, corrected = self._rectified(notification)
            else:
                # A restriction: statements stay, the LMS sends no new ones.
                targets = []
        except DeliveryError as exc:
            # Nothing was voided: say so, for the request's report and the audit log.
            exc.details = {
                "operation": operation,
                "found": "unknown: the LRS could not be read",
                "voided": "0",
                "status": str(exc.status),
            }
            raise
        counts["found"] = len(targets)
        voiding = [voiding_statement(target, self.profile) for target in targets]
        error: DeliveryError | None = None
        if voiding:
            try:
                self._send(voiding)
            except DeliveryError as exc:
                error = exc
        confirmed = self._confirm(voiding) if voiding else 0
        counts["voided"] = confirmed
        counts["not_voided"] = len(voiding) - confirmed
        if corrected and error is None and not counts["not_voided"]:
            try:
                report = self._send(corrected)
                counts["sent"] = report.delivered + report.already_stored
            except DeliveryError as exc:
                error = exc
                counts["sent"] = exc.delivered + exc.already_stored
        still = unlisted = 0
        if targets or corrected:
            # Read back: the voided ones are gone, the corrected ones listed (live).
            listed = {str(s.get("id")) for s in self.statements_about(notification.reference)}
            still = len(listed.intersection(targets))
            unlisted = sum(1 for s in corrected if s["id"] not in listed)
        details = {key: str(value) for key, value in counts.items()}
        details.update(still_listed=str(still), deleted="0", delete="not offered by xAPI")
        if corrected:
            details["sent_not_listed"] = str(unlisted)
        if counts["not_voided"] or counts["sent"] < len(corrected) or still or unlisted:
            # A voided statement that queries still list is not withdrawn: the LRS does
            # not apply voiding (stock Ralph), and the controller must act there.
            raise DeliveryError(
                f"the LRS at {self._host} voided {confirmed} of {counts['found']} statements "
                f"(still listing {still} of them) and took {counts['sent']} of "
                f"{len(corrected)} corrected ones ({unlisted} of them not listed)",
                status=None if error is None else error.status,
                details=details,
            ) from error
        return details

    def _send(self, statements: list[dict[str, Any]]) -> Any:
        return send_statements(
            statements,
            self.endpoint,
            self._auth,
            retries=self._retries,
            timeout=self._timeout,
            version=self.profile.version,
            transport=self._transport,
        )

    def _listed(self, reference: str, wanted: set[str] | None) -> list[str]:
        """Ids of the learner's listed statements (of the ``wanted`` record types)."""
        targets = []
        for statement in self.statements_about(reference):
            if (statement.get("verb") or {}).get("id") == VERB_VOIDED:
                # A voiding statement cannot itself be voided (xAPI Data 2.3.2).
                continue
            if wanted is not None and _record_type(statement) not in wanted:
                continue
            targets.append(str(statement.get("id")))
        return targets

    def _rectified(self, notification: Any) -> tuple[list[str], list[dict[str, Any]]]:
        """(ids to void, corrected statements to send) after a rectification."""
        changed = set(notification.fields)
        wanted = {
            kind
            for kind in notification.record_types
            if kind in _STATEMENT_FIELDS and (not changed or changed & _STATEMENT_FIELDS[kind])
        }
        if not wanted:
            return [], []  # nothing a statement carries was rectified
        if self._store is None:
            return self._listed(notification.reference, wanted), []
        from learnprivacy.export.xapi import actor_pseudonyms, learners_by_actor

        learner = learners_by_actor(self._store, self.profile).get(notification.reference)
        records = [] if learner is None else self._store.records_of(learner)
        names = actor_pseudonyms(self._store, self.profile)
        current = {
            s["id"]: s
            for s in statements_for(records, pseudonyms=names, profile=self.profile)
            if _record_type(s) in wanted
        }
        ours = self.profile.activities + "/"
        listed = {str(s.get("id")): s for s in self.statements_about(notification.reference)}
        kept: set[str] = set()
        corrected = []
        with self._connection() as lrs:
            for base, statement in current.items():
                # Its own id, or the revision after the ones the LRS holds as voided.
                candidate, revision = base, 0
                while candidate not in listed and _voided(lrs, candidate):
                    revision += 1
                    if revision > _MAX_REVISIONS:
                        raise lrs.malformed("a bounded number of voided revisions", 200)
                    candidate = reissued_id(base, revision)
                kept.add(candidate)
                if candidate not in listed:
                    corrected.append({**statement, "id": candidate})
        stale = []
        for statement_id, statement in listed.items():
            verb = (statement.get("verb") or {}).get("id")
            target = str((statement.get("object") or {}).get("id", ""))
            # Only what this LMS stated about the rectified record types is stale.
            if (
                verb != VERB_VOIDED
                and target.startswith(ours)
                and _record_type(statement) in wanted
                and statement_id not in kept
            ):
                stale.append(statement_id)
        return stale, corrected

    @property
    def _host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.endpoint).hostname or ""

    def _connection(self) -> LrsConnection:
        return LrsConnection(
            self.endpoint,
            self._auth,
            version=self.profile.version,
            retries=self._retries,
            timeout=self._timeout,
            transport=self._transport,
        )

    def _confirm(self, voiding: list[dict[str, Any]]) -> int:
        """How many of the voiding statements the LRS holds, read back one by one."""
        from learnprivacy.export._lrs import _single, equivalent

        held = 0
        with self._connection() as lrs:
            for statement in voiding:
                response = lrs.request("GET", lrs.endpoint, params={"statementId": statement["id"]})
                if response.status_code != 200:
                    continue
                try:
                    found = _single(response.json())
                except ValueError:
                    continue
                if found is not None and equivalent(statement, found):
                    held += 1
        return held


def _voided(lrs: LrsConnection, statement_id: str) -> bool:
    """Whether the LRS holds ``statement_id`` as voided (``voidedStatementId``)."""
    from learnprivacy.export._lrs import _single

    response = lrs.request("GET", lrs.endpoint, params={"voidedStatementId": statement_id})
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise lrs.refusal(response, "voided statement id")
    try:
        found = _single(response.json())
    except ValueError:
        raise lrs.malformed("a voided statement", 200) from None
    return found is not None and str(found.get("id", "")).lower() == statement_id.lower()
