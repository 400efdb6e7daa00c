"""The audit log: append-only, hash-chained, pseudonymous.

Every entry holds a sequence number, a UTC time, an action, a record type, a
*pseudonymous* subject reference (a keyed HMAC of the learner id, never the id), an
actor, an outcome and details (ids of non-personal records, rule labels, counts: never a
personal value). Its hash is SHA-256 over the previous entry's hash and the canonical
JSON of the entry (sorted keys, no spaces, UTF-8), so changing, removing, reordering or
inserting an entry breaks the chain from that entry on: the one hash chain of
:mod:`learnprivacy._chain`, which each request's history uses too.

A one-row head table holds the last sequence and hash, sealed with an HMAC under the
store's audit key: it catches entries cut off the end of the log, and appending forged
entries needs that key. Writers lock the head row, so sequence numbers have no gaps even
with concurrent writers.

The head is also *anchored* outside the records database, in the key database: after
each commit the store advances the anchor (sequence and hash; it never moves back).
Whoever can write to the records database can drop or truncate the audit tables, or put
back an older sealed head with the entries after it cut off; none of that reaches the
anchor, so :meth:`AuditLog.verify` sees that the entry the anchor names is gone or
different. The anchor may lag behind the head (a crash between the two commits), never
run ahead of it, so a lagging anchor is never mistaken for tampering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from sqlalchemy import Connection, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError

from learnprivacy._chain import GENESIS, canonical_json, chain_hash, verify_links
from learnprivacy._validators import require_aware
from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import AuditTampered
from learnprivacy.store._engine import Database
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD
from learnprivacy.store._types import UTC, to_utc

__all__ = ["AuditEntry", "AuditEvent", "AuditLog"]


@attrs.frozen(kw_only=True)
class AuditEvent:
    """What a caller asks to record; the log adds sequence, time and hashes."""

    action: str
    outcome: str
    record_type: str | None = None
    subject_ref: str | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One entry of the audit log, as stored."""

    sequence: int
    at: dt.datetime
    action: str
    record_type: str | None
    subject_ref: str | None
    actor: str
    outcome: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        """The canonical JSON the hash covers (every field but ``hash``)."""
        return canonical_json(
            {
                "sequence": self.sequence,
                "at": self.at.isoformat(),
                "action": self.action,
                "record_type": self.record_type,
                "subject_ref": self.subject_ref,
                "actor": self.actor,
                "outcome": self.outcome,
                "details": self.details,
                "prev_hash": self.prev_hash,
            }
        )

    def expected_hash(self) -> str:
        """SHA-256 of the previous hash followed by the canonical JSON."""
        return chain_hash(self.prev_hash, self.canonical())


class Anchors(Protocol):
    """Where the head of the chain is anchored (a :class:`~learnprivacy.keys.KeyDatabase`)."""

    def read_anchor(self, name: str) -> tuple[int, str] | None:
        """The anchored ``(sequence, hash)`` of log ``name``."""
        ...

    def advance_anchor(self, name: str, sequence: int, head_hash: str) -> None:
        """Move the anchor of ``name`` forward (never back)."""
        ...

    def reset_anchor(self, name: str, sequence: int, head_hash: str) -> None:
        """Set the anchor of ``name``, backwards too."""
        ...


class AuditLog:
    """The store's audit log (``store.audit``)."""

    __slots__ = ("_anchor", "_db", "_local", "_pseudonymiser", "_seal_key", "actor")

    def __init__(
        self,
        db: Database,
        *,
        pseudonymiser: Pseudonymiser,
        seal_key: bytes,
        actor: str,
        anchor: tuple[Anchors, str] | None = None,
    ) -> None:
        self._db = db
        self._pseudonymiser = pseudonymiser
        self._seal_key = seal_key
        self._anchor = anchor
        self._local = threading.local()
        #: Who the store writes entries as (``Store(actor=...)``): a role or service name.
        self.actor = actor

    def __repr__(self) -> str:
        return "AuditLog()"

    def subject_ref(self, learner_id: str) -> str:
        """The pseudonymous reference the log uses for ``learner_id``."""
        return self._pseudonymiser.pseudonym(learner_id)

    def record_ref(self, record_type: str, record_id: str) -> str:
        """The pseudonymous reference the log uses for a record (its type and id).

        Record ids such as ``L00001-P1`` often spell the learner's id: the log never
        holds them. A NUL separates the parts, which no id contains, so a record
        reference is never a subject reference.
        """
        return self._pseudonymiser.pseudonym(f"\x00record\x00{record_type}\x00{record_id}")

    def _seal(self, sequence: int, head_hash: str) -> str:
        return seal_head(self._seal_key, sequence, head_hash)

    # -- the anchor in the key database -----------------------------------------------

    def anchor_if_new(self) -> None:
        """Anchor the current head if this log was never anchored (a new store, or one
        created before anchors existed)."""
        if self._anchor is None:
            return
        anchors, name = self._anchor
        if anchors.read_anchor(name) is None:
            sequence, head_hash = self._head()
            anchors.advance_anchor(name, sequence, head_hash)

    def publish_anchor(self) -> None:
        """Advance the anchor to what this thread's committed transaction appended."""
        pending = getattr(self._local, "pending", None)
        self._local.pending = None
        if pending is not None and self._anchor is not None:
            anchors, name = self._anchor
            anchors.advance_anchor(name, *pending)

    def discard_anchor(self) -> None:
        """Forget what this thread appended: its transaction rolled back."""
        self._local.pending = None

    def reanchor(self, *, now: dt.datetime, reason: str) -> AuditEntry:
        """Accept the log as it now is after a deliberate restore of the records database.

        A records database restored from a copy carries an older audit log than the
        anchor in the key database, and :meth:`verify` rightly reports it. Once the
        restore is checked (and erasures replayed), this records an entry naming the
        anchor that is given up (sequence and hash) and ``reason`` (a ticket, never a
        person), then anchors the log at that entry. The chain itself must verify.
        """
        if self._anchor is None:
            raise AuditTampered("this audit log has no anchor to reset", sequence=None)
        if not isinstance(reason, str) or not reason.strip():
            from learnprivacy.errors import ValidationError

            raise ValidationError("reason must be non-empty text", field="reason")
        self._verify_chain()
        anchors, name = self._anchor
        old = anchors.read_anchor(name)
        entry = self._append_own(
            AuditEvent(
                action="reanchor",
                outcome="done",
                details={
                    "reason": reason,
                    "previous_anchor": None
                    if old is None
                    else {"sequence": old[0], "hash": old[1]},
                },
            ),
            now=now,
        )
        self._local.pending = None
        anchors.reset_anchor(name, entry.sequence, entry.hash)
        return entry

    def _head(self) -> tuple[int, str]:
        with self._db.read() as connection:
            head = connection.execute(
                select(AUDIT_HEAD.c.sequence, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == 1)
            ).first()
        return (0, GENESIS) if head is None else (int(head[0]), str(head[1]))

    # -- writing -------------------------------------------------------------------------

    def open_head(self) -> None:
        """Create the head row of an empty log, in a write transaction of its own only
        when the row is missing (a store opening reads it otherwise)."""
        with self._db.read() as connection:
            exists = connection.execute(select(AUDIT_HEAD.c.id).where(AUDIT_HEAD.c.id == 1)).first()
        if exists is None:
            with self._db.write() as connection:
                self.ensure_head(connection)

    def ensure_head(self, connection: Connection) -> None:
        """Create the head row of an empty log."""
        exists = connection.execute(select(AUDIT_HEAD.c.id).where(AUDIT_HEAD.c.id == 1)).first()
        if exists is None:
            connection.execute(
                insert(AUDIT_HEAD),
                [{"id": 1, "sequence": 0, "hash": GENESIS, "seal": self._seal(0, GENESIS)}],
            )

    def append(
        self, connection: Connection, events: Sequence[AuditEvent], *, now: dt.datetime
    ) -> list[AuditEntry]:
        """Write ``events`` in ``connection``'s transaction, after locking the head row."""
        if not events:
            return []
        query = select(AUDIT_HEAD.c.sequence, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == 1)
        if self._db.is_postgres:
            query = query.with_for_update()
        head = connection.execute(query).first()
        if head is None:
            self.ensure_head(connection)
            sequence, prev = 0, GENESIS
        else:
            sequence, prev = int(head[0]), str(head[1])
        entries = chain_entries(
            events, sequence=sequence, prev_hash=prev, at=now.astimezone(UTC), actor=self.actor
        )
        sequence, prev = entries[-1].sequence, entries[-1].hash
        connection.execute(
            insert(AUDIT),
            [
                {
                    "sequence": e.sequence,
                    "at": to_utc(e.at),
                    "action": e.action,
                    "record_type": e.record_type,
                    "subject_ref": e.subject_ref,
                    "actor": e.actor,
                    "outcome": e.outcome,
                    "details": canonical_json(e.details).decode(),
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
                for e in entries
            ],
        )
        connection.execute(
            update(AUDIT_HEAD)
            .where(AUDIT_HEAD.c.id == 1)
            .values(sequence=sequence, hash=prev, seal=self._seal(sequence, prev))
        )
        # Anchored once the caller's transaction commits (publish_anchor).
        self._local.pending = (sequence, prev)
        return entries

    def record(
        self,
        action: str,
        outcome: str,
        *,
        now: dt.datetime,
        learner_id: str | None = None,
        record_type: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in a transaction of its own (for events outside the store,
        such as a data-subject request changing state). ``learner_id`` is stored as its
        pseudonymous reference; ``details`` must hold no personal value.
        """
        require_aware(now, "now")
        event = AuditEvent(
            action=action,
            outcome=outcome,
            record_type=record_type,
            subject_ref=None if learner_id is None else self.subject_ref(learner_id),
            details=dict(details or {}),
        )
        entry = self._append_own(event, now=now)
        self.publish_anchor()
        return entry

    def _append_own(self, event: AuditEvent, *, now: dt.datetime) -> AuditEntry:
        try:
            with self._db.write() as connection:
                return self.append(connection, [event], now=now)[0]
        except BaseException:
            self._local.pending = None
            raise

    # -- reading -------------------------------------------------------------------------

    def entries(
        self, *, after: int = 0, actions: Iterable[str] | None = None
    ) -> Iterator[AuditEntry]:
        """Entries in sequence order, streamed (``after``: skip up to that sequence)."""
        query = select(AUDIT).where(AUDIT.c.sequence > after).order_by(AUDIT.c.sequence)
        if actions is not None:
            query = query.where(AUDIT.c.action.in_(list(actions)))
        with self._db.engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(query)
            for row in result:
                yield _from_row(row._mapping)

    def __iter__(self) -> Iterator[AuditEntry]:
        return self.entries()

    def __len__(self) -> int:
        with self._db.read() as connection:
            head = connection.execute(select(AUDIT_HEAD.c.sequence)).scalar()
        return int(head or 0)

    def verify(self) -> bool:
        """Return ``True`` if the chain is intact, else raise :class:`AuditTampered`.

        ``AuditTampered.sequence`` is the first entry that is missing, altered, out of
        place or not covered by the sealed head, or the anchored entry when the log was
        cut back behind the anchor kept in the key database (tables dropped, truncated, or
        an older sealed head written back).
        """
        anchored = None
        if self._anchor is not None:
            # Read first: a writer committing meanwhile only moves the head further on.
            anchors, name = self._anchor
            anchored = anchors.read_anchor(name)
        try:
            last, hashes = self._verify_chain(want=None if anchored is None else anchored[0])
        except DBAPIError:
            raise AuditTampered("the audit tables cannot be read", sequence=1) from None
        if anchored is not None:
            sequence, head_hash = anchored
            if sequence > last:
                raise AuditTampered(
                    f"audit log broken at entry {last + 1}: the key store's anchor is at "
                    f"entry {sequence}, the log ends before it",
                    sequence=last + 1,
                )
            if sequence > 0 and not hmac.compare_digest(hashes.get(sequence, ""), head_hash):
                raise AuditTampered(
                    f"audit log broken at entry {sequence}: it differs from the anchored one",
                    sequence=sequence,
                )
        return True

    def _verify_chain(self, want: int | None = None) -> tuple[int, dict[int, str]]:
        """Check the chain and the sealed head; return the last sequence and the hash of
        entry ``want`` (if reached)."""
        with self._db.read() as connection:
            names = set(inspect(connection).get_table_names())
        if AUDIT.name not in names or AUDIT_HEAD.name not in names:
            raise AuditTampered("the audit tables are missing", sequence=1)
        hashes: dict[int, str] = {}

        def links() -> Iterator[tuple[int, str, str, str]]:
            for e in self.entries():
                if e.sequence == want:
                    hashes[want] = e.hash
                yield e.sequence, e.prev_hash, e.hash, e.expected_hash()

        last, prev = verify_links(links(), label="audit log")
        with self._db.read() as connection:
            head = connection.execute(
                select(AUDIT_HEAD.c.sequence, AUDIT_HEAD.c.hash, AUDIT_HEAD.c.seal)
            ).first()
        check_head(self._seal_key, last, prev, None if head is None else tuple(head))
        return last, hashes


def seal_head(seal_key: bytes, sequence: int, head_hash: str) -> str:
    """The HMAC sealing an audit log's head row ``(sequence, head_hash)``."""
    message = f"{sequence}:{head_hash}".encode("ascii")
    return hmac.new(seal_key, message, hashlib.sha256).hexdigest()


def check_head(seal_key: bytes, last: int, prev: str, head: tuple[Any, ...] | None) -> None:
    """Check an audit log's sealed head ``(sequence, hash, seal)`` against its verified
    chain, which ends at entry ``last`` of hash ``prev``; raise :class:`AuditTampered`."""
    if head is None:
        if last == 0:
            return
        raise AuditTampered("audit log head is missing", sequence=1)
    sequence, head_hash, seal = int(head[0]), str(head[1]), str(head[2])
    if not hmac.compare_digest(seal_head(seal_key, sequence, head_hash), seal):
        raise AuditTampered("audit log head seal is invalid", sequence=max(sequence, 1))
    if sequence > last:
        raise AuditTampered(
            f"audit log broken at entry {last + 1}: entries removed from the end",
            sequence=last + 1,
        )
    if sequence < last:
        raise AuditTampered(
            f"audit log broken at entry {sequence + 1}: entries not covered by the head",
            sequence=sequence + 1,
        )
    if head_hash != prev:
        raise AuditTampered(f"audit log broken at entry {last}", sequence=last)


def chain_entries(
    events: Iterable[AuditEvent],
    *,
    sequence: int,
    prev_hash: str,
    at: dt.datetime,
    actor: str,
) -> list[AuditEntry]:
    """The entries of ``events``, chained after the head ``(sequence, prev_hash)``.

    One place for the chaining rule, shared by every audit log (the store's, and those
    the integrations keep in the application's database).
    """
    entries: list[AuditEntry] = []
    prev = prev_hash
    for event in events:
        sequence += 1
        draft = AuditEntry(
            sequence=sequence,
            at=at,
            action=event.action,
            record_type=event.record_type,
            subject_ref=event.subject_ref,
            actor=actor,
            outcome=event.outcome,
            details=json.loads(canonical_json(dict(event.details))),
            prev_hash=prev,
            hash="",
        )
        prev = draft.expected_hash()
        entries.append(attrs.evolve(draft, hash=prev))
    return entries


def _from_row(row: Any) -> AuditEntry:
    return AuditEntry(
        sequence=int(row["sequence"]),
        at=row["at"].replace(tzinfo=UTC),
        action=row["action"],
        record_type=row["record_type"],
        subject_ref=row["subject_ref"],
        actor=row["actor"],
        outcome=row["outcome"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
