"""Telling recipients about erasure, rectification and restriction (GDPR Art. 19).

Every external location a provider declares (``collection.add_external_location_link``:
an employer, a funder, an LRS) is a recipient the controller must inform of an erasure,
a rectification or a restriction, unless that proves impossible or disproportionate. The
LMS registers one *notifier* per location name; :class:`Recipients` calls it with a
:class:`Notification` that holds no personal value: the operation, the record types and
field names involved, and a pseudonymous reference to the learner that is stable for that
recipient (a keyed HMAC in the recipient's own pseudonym domain, the one its reports use).

A notifier that raises is recorded as FAILED (the request then fails and can be retried:
only the failed notifications run again); a declared location without a notifier is
recorded as NO_NOTIFIER, never skipped silently. A notifier may return a mapping of
non-personal counts (an LRS recipient: what it voided, what it could not), or raise an
error carrying them in ``details``: they are kept in the outcome, the request's report
and the audit log.

A notifier that has a ``pseudonym_domain`` (an LRS recipient) receives the reference in
that domain derived from the store's keyring (``store.keyring.pseudonymiser(domain)``),
the derivation exports and live xAPI pushes use for actors, so the reference matches
the account the LRS holds statements under.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.requests._outcomes import NotificationOutcome, NotificationStatus

__all__ = ["Notification", "Notifier", "Recipient", "Recipients"]


@attrs.frozen(kw_only=True)
class Notification:
    """What a recipient is told. No personal value: ``reference`` is a pseudonym.

    ``operation`` is ``"erasure"``, ``"rectification"`` or ``"restriction"``;
    ``record_types`` and ``fields`` name what changed (field names, never values).
    """

    location: str
    component: str
    operation: str
    reference: str
    request_id: str
    at: dt.datetime
    record_types: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


#: Called once per recipient; raising marks the notification FAILED.
Notifier = Callable[[Notification], None]


@attrs.frozen(kw_only=True)
class Recipient:
    """An external location declared by a provider: ``component`` declared ``location``."""

    component: str
    location: str


class Recipients:
    """The notifiers of the external locations, by location name.

    ``pseudonym_key`` (32 bytes or more) keys the references; without it they are derived
    from the store's keyring (``keyring=``, or the store the :class:`RequestExecutor`
    runs with). ``domain_of`` maps a location name to its pseudonym domain (the location
    name itself by default; a notifier's own ``pseudonym_domain`` comes first), so the
    reference matches the pseudonyms that recipient already received.

    Every registered notifier is a recipient, declared by a provider or not: those no
    provider declares are notified under the component ``"recipients"``.
    """

    def __init__(
        self,
        *,
        pseudonym_key: bytes | None = None,
        notifiers: Mapping[str, Notifier] | None = None,
        domain_of: Callable[[str], str] | None = None,
        extra: Iterable[Recipient] = (),
        keyring: Any = None,
    ) -> None:
        if pseudonym_key is not None and (
            not isinstance(pseudonym_key, bytes) or len(pseudonym_key) < 32
        ):
            raise ValidationError("pseudonym_key must be at least 32 bytes", field="pseudonym_key")
        self._key = pseudonym_key
        self._keyring = keyring
        self._notifiers: dict[str, Notifier] = {}
        self._domain_of = domain_of or (lambda location: location)
        self._extra = tuple(extra)
        for location, notifier in (notifiers or {}).items():
            self.register(location, notifier)

    def __repr__(self) -> str:
        return f"Recipients(locations={sorted(self._notifiers)!r})"

    @property
    def extra(self) -> tuple[Recipient, ...]:
        """Recipients declared here rather than in provider metadata, and the locations
        that have a notifier (component ``"recipients"``) unless listed already."""
        listed = {r.location for r in self._extra}
        registered = tuple(
            Recipient(component="recipients", location=location)
            for location in self._notifiers
            if location not in listed
        )
        return self._extra + registered

    def notifier(self, location: str) -> Notifier | None:
        """The notifier registered for ``location``, if any."""
        return self._notifiers.get(location)

    def register(self, location: str, notifier: Notifier) -> None:
        """Use ``notifier`` for the external location called ``location``."""
        if not isinstance(location, str) or not location:
            raise ValidationError("location must be a non-empty name", field="location")
        if not callable(notifier):
            raise ValidationError("notifier must be callable", field="notifier")
        self._notifiers[location] = notifier

    def reference(self, location: str, learner_id: str, *, keyring: Any = None) -> str:
        """The pseudonymous reference of ``learner_id`` for ``location``.

        ``keyring`` is the store's (the executor passes it): the derivation for notifiers
        with a ``pseudonym_domain``, and for all when no ``pseudonym_key`` was given.
        """
        notifier = self._notifiers.get(location)
        own_domain = getattr(notifier, "pseudonym_domain", None)
        domain = own_domain if isinstance(own_domain, str) else self._domain_of(location)
        keys = self._keyring if self._keyring is not None else keyring
        if keys is not None and (own_domain is not None or self._key is None):
            return str(keys.pseudonymiser(domain).pseudonym(learner_id))
        if self._key is None:
            raise ConfigurationError(
                "Recipients needs pseudonym_key= or keyring=, or an executor with a store"
            )
        return Pseudonymiser(self._key, domain=domain).pseudonym(learner_id)

    def notify(
        self,
        recipient: Recipient,
        *,
        learner_id: str,
        operation: str,
        request_id: str,
        now: dt.datetime,
        record_types: Iterable[str] = (),
        fields: Iterable[str] = (),
        keyring: Any = None,
    ) -> NotificationOutcome:
        """Notify one recipient and report how it went (never raises for the notifier)."""
        require_aware(now, "now")
        notifier = self._notifiers.get(recipient.location)
        if notifier is None:
            return NotificationOutcome(
                location=recipient.location,
                component=recipient.component,
                status=NotificationStatus.NO_NOTIFIER,
            )
        notification = Notification(
            location=recipient.location,
            component=recipient.component,
            operation=operation,
            reference=self.reference(recipient.location, learner_id, keyring=keyring),
            request_id=request_id,
            at=now,
            record_types=tuple(sorted(set(record_types))),
            fields=tuple(sorted(set(fields))),
        )
        try:
            answer = notifier(notification)
        except Exception as exc:
            # The exception's message may quote anything; only its type is kept, and
            # the counts a library error carries (never values).
            return NotificationOutcome(
                location=recipient.location,
                component=recipient.component,
                status=NotificationStatus.FAILED,
                error=f"notifier raised {type(exc).__name__}",
                details=_details(getattr(exc, "details", None)),
            )
        return NotificationOutcome(
            location=recipient.location,
            component=recipient.component,
            status=NotificationStatus.SENT,
            details=_details(answer),
        )


def _details(value: object) -> dict[str, str]:
    """A notifier's counts as short strings; anything else is ignored."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(k): str(v)
        for k, v in value.items()
        if isinstance(k, str) and isinstance(v, str | int) and len(str(v)) <= 200
    }
