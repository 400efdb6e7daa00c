"""The audit log in the application's database, in the application's transaction.

The same entries and hash chain as the store's audit log (``learnprivacy.store``): each
entry's hash covers the previous hash and its canonical JSON, and a one-row head holds
the last sequence and hash sealed with an HMAC under a key derived from the key store.
Entries are written with the change they record, in the caller's transaction on the
default database, so both commit or neither does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from learnprivacy._chain import GENESIS, verify_links
from learnprivacy._validators import require_aware, utc_if_naive
from learnprivacy.crypto import Keyring, Pseudonymiser
from learnprivacy.store._audit import (
    AuditEntry,
    AuditEvent,
    chain_entries,
    check_head,
    entry_columns,
    entry_from_columns,
    seal_head,
)

__all__ = ["AuditEntry", "AuditEvent", "DjangoAuditLog"]

#: The id the audit keys are derived for (one audit log per key store).
_LOG_ID = "learnprivacy.django"


def _keys(keyring: Keyring) -> tuple[bytes, bytes]:
    from learnprivacy.store._open import audit_keys

    return audit_keys(keyring, _LOG_ID)


class DjangoAuditLog:
    """Append-only, hash-chained, pseudonymous audit entries in ``lpdj_audit``."""

    __slots__ = ("_pseudonymiser", "_seal_key", "_using", "actor")

    def __init__(self, keyring: Keyring, *, using: str = "default", actor: str = "django") -> None:
        pseudonym_key, self._seal_key = _keys(keyring)
        self._pseudonymiser = Pseudonymiser(pseudonym_key, domain="learnprivacy-audit")
        self._using = using
        #: Who entries are written as (a role or service name, never a person).
        self.actor = actor

    def __repr__(self) -> str:
        return f"DjangoAuditLog(using={self._using!r})"

    def subject_ref(self, learner_id: str) -> str:
        """The pseudonymous reference entries use for ``learner_id``."""
        return self._pseudonymiser.pseudonym(str(learner_id))

    def _seal(self, sequence: int, head_hash: str) -> str:
        return seal_head(self._seal_key, sequence, head_hash)

    def append(self, events: Sequence[AuditEvent], *, now: dt.datetime) -> list[AuditEntry]:
        """Write ``events`` in the current transaction, after locking the head row."""
        from django.db import transaction

        from learnprivacy.django.models import AuditEntry as Row
        from learnprivacy.django.models import AuditHead

        require_aware(now, "now")
        if not events:
            return []
        with transaction.atomic(using=self._using):
            heads = AuditHead.objects.using(self._using).select_for_update()
            head = heads.filter(id=1).first()
            if head is None:
                head = AuditHead(id=1, sequence=0, hash=GENESIS, seal=self._seal(0, GENESIS))
                head.save(using=self._using, force_insert=True)
            sequence, prev = int(head.sequence), str(head.hash)
            entries = chain_entries(
                events,
                sequence=sequence,
                prev_hash=prev,
                at=now.astimezone(dt.UTC),
                actor=self.actor,
            )
            sequence, prev = entries[-1].sequence, entries[-1].hash
            Row.objects.using(self._using).bulk_create([Row(**entry_columns(e)) for e in entries])
            AuditHead.objects.using(self._using).filter(id=1).update(
                sequence=sequence, hash=prev, seal=self._seal(sequence, prev)
            )
        return entries

    def entries(self, *, after: int = 0) -> Iterator[AuditEntry]:
        """Entries in sequence order, streamed."""
        from learnprivacy.django.models import AuditEntry as Row

        rows = Row.objects.using(self._using).filter(sequence__gt=after).order_by("sequence")
        for row in rows.values().iterator(chunk_size=1000):
            yield _from_row(row)

    def __iter__(self) -> Iterator[AuditEntry]:
        return self.entries()

    def __len__(self) -> int:
        from learnprivacy.django.models import AuditHead

        head = AuditHead.objects.using(self._using).filter(id=1).first()
        return 0 if head is None else int(head.sequence)

    def verify(self) -> bool:
        """``True`` when the chain is intact; :class:`AuditTampered` otherwise."""
        from learnprivacy.django.models import AuditHead

        last, prev = verify_links(
            ((e.sequence, e.prev_hash, e.hash, e.expected_hash()) for e in self.entries()),
            label="audit log",
        )
        head = AuditHead.objects.using(self._using).filter(id=1).first()
        row = None if head is None else (head.sequence, head.hash, head.seal)
        check_head(self._seal_key, last, prev, row)
        return True


def _from_row(row: Mapping[str, Any]) -> AuditEntry:
    return entry_from_columns(row, utc_if_naive(row["at"]).astimezone(dt.UTC))
