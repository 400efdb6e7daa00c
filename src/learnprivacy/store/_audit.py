"""The audit log: append-only, hash-chained, pseudonymous.

Every entry holds a sequence number, a UTC time, an action, a record type, a
*pseudonymous* subject reference (a keyed HMAC of the learner id, never the id), an
actor, an outcome and details (ids of non-personal records, rule labels, counts: never a
personal value). Its hash is SHA-256 over the previous entry's hash and the canonical
JSON of the entry (sorted keys, no spaces, UTF-8), so changing, removing, reordering or
inserting an entry breaks the chain from that entry on: the one hash chain of
:mod:`learnprivacy._chain`, which each request's history uses too.

A head table holds the last sequence and hash, sealed with an HMAC under the store's
audit key: it catches entries cut off the end of the log, and appending forged entries
needs that key.

**Lanes.** On PostgreSQL the store's log is a bundle of chains, *lanes*, so that
concurrent writers do not queue on one row. A writer takes the first head row no other
transaction holds (``FOR UPDATE SKIP LOCKED``) and appends to that lane; its sequence
numbers come from a database sequence, so they are unique and increase along each lane
(a rolled-back transaction leaves a gap). When every lane is taken, the writer waits for
lane 1 and opens the next lane there: an ``audit_lane`` entry *in lane 1* declares it, and
the new lane starts from a hash derived from that entry. Lane 1 is thus the sealed,
chained list of lanes: dropping a whole lane (its entries and its head) leaves its
declaration without a head; cutting the declaration out breaks lane 1. Each lane's head is
sealed with its number, and anchored on its own in the key database, so a lane rolled
back to an older sealed head is caught like the log's single head was. Verification
walks all entries in sequence order and follows each entry to the lane whose last hash
it names. SQLite (one writer at a time) and the integrations' logs keep one lane, whose
sequence numbers have no gaps: a log of one lane is exactly the former single chain.

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
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from sqlalchemy import Connection, func, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from learnprivacy._chain import GENESIS, broken, canonical_json, chain_hash
from learnprivacy._validators import require_aware
from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import AuditTampered
from learnprivacy.store._engine import Database
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD
from learnprivacy.store._types import UTC, to_utc

__all__ = ["AuditEntry", "AuditEvent", "AuditLog"]

#: The action of the lane-1 entry that opens another lane (``details``: ``{"lane": k}``).
LANE_ACTION = "audit_lane"
#: Moves the sequence past the last entry when it is behind (a copied or restored log).
_SYNC_SEQUENCE = text(
    "SELECT setval('lp_audit_sequence', m) FROM (SELECT max(sequence) AS m FROM lp_audit) "
    "AS log WHERE m > (SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
    "FROM lp_audit_sequence)"
)
#: ``n`` new sequence numbers, in increasing order.
_NEXT_SEQUENCES = text("SELECT nextval('lp_audit_sequence') FROM generate_series(1, :n) ORDER BY 1")
#: At most this many lanes: beyond it, writers wait for lane 1 as a single chain's did.
MAX_LANES = 8


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

    __slots__ = ("_anchor", "_db", "_lanes", "_local", "_pseudonymiser", "_seal_key", "actor")

    def __init__(
        self,
        db: Database,
        *,
        pseudonymiser: Pseudonymiser,
        seal_key: bytes,
        actor: str,
        anchor: tuple[Anchors, str] | None = None,
        lanes: bool = False,
    ) -> None:
        self._db = db
        # Lanes need the store's sequence (migration 0006): PostgreSQL stores only.
        self._lanes = lanes and db.is_postgres
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

    def _seal(self, sequence: int, head_hash: str, lane: int = 1) -> str:
        return seal_head(self._seal_key, sequence, head_hash, lane=lane)

    def _anchor_name(self, lane: int) -> str:
        assert self._anchor is not None
        return lane_anchor(self._anchor[1], lane)

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
        """Advance the anchor of each lane this thread's committed transaction appended to."""
        pending: dict[int, tuple[int, str]] | None = getattr(self._local, "pending", None)
        self._local.pending = None
        if pending and self._anchor is not None:
            anchors = self._anchor[0]
            for lane, (sequence, head_hash) in sorted(pending.items()):
                name = self._anchor_name(lane)
                if self._still_holds(anchors.read_anchor(name)):
                    anchors.advance_anchor(name, sequence, head_hash)

    def _still_holds(self, anchored: tuple[int, str] | None) -> bool:
        """Whether the log still holds the entry ``anchored`` names (its number and hash).

        An anchor moves on only from an entry that is still there: a log emptied or cut
        back behind its anchor, then written to again, must not carry the anchor past the
        entries it lost (new entries get new numbers, which would otherwise overtake it).
        """
        if anchored is None or anchored[0] == 0:
            return True
        with self._db.read() as connection:
            found = connection.execute(
                select(AUDIT.c.hash).where(AUDIT.c.sequence == anchored[0])
            ).scalar()
        return found is not None and hmac.compare_digest(str(found), anchored[1])

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
        # Every lane is anchored at its end, the new entry's lane at that entry; a lane
        # opened but not written to yet has no entry to name.
        walk = self._verify_chain()
        for lane, (sequence, head_hash) in sorted(walk.tails.items()):
            if walk.opened.get(lane) == sequence:
                sequence, head_hash = 0, GENESIS
            anchors.reset_anchor(self._anchor_name(lane), sequence, head_hash)
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
        if self._lanes:
            # Entries copied or restored from elsewhere must not meet numbers the sequence
            # gives out again (setval is not transactional and needs no write transaction).
            with self._db.read() as connection:
                connection.execute(_SYNC_SEQUENCE)

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
        """Write ``events`` in ``connection``'s transaction, at the end of one lane.

        The lane's head row stays locked until that transaction ends. With one lane (SQLite,
        the integrations' logs) every writer takes the same row; with lanes (a PostgreSQL
        store) a writer takes a lane no other transaction holds, and waits only when
        every lane is taken (see the module's documentation).
        """
        if not events:
            return []
        at = now.astimezone(UTC)
        pending: dict[int, tuple[int, str]] = getattr(self._local, "pending", None) or {}
        if self._lanes:
            lane, prev, opened = self._take_lane(connection, pending, at)
            numbers = connection.execute(_NEXT_SEQUENCES, {"n": len(events)}).scalars().all()
            entries = chain_entries(
                events, sequence=0, prev_hash=prev, at=at, actor=self.actor, numbers=numbers
            )
        else:
            lane, opened = 1, []
            query = select(AUDIT_HEAD.c.sequence, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == 1)
            if self._db.is_postgres:
                query = query.with_for_update()
            head = connection.execute(query).first()
            if head is None:
                self.ensure_head(connection)
                prev = GENESIS
            else:
                prev = str(head[1])
            # The log's last number: lane 1's, unless lanes were copied in from elsewhere.
            last = connection.execute(select(func.max(AUDIT_HEAD.c.sequence))).scalar()
            entries = chain_entries(
                events, sequence=int(last or 0), prev_hash=prev, at=at, actor=self.actor
            )
        written = [*opened, *entries]
        connection.execute(insert(AUDIT), [_to_row(e) for e in written])
        sequence, prev = written[-1].sequence, written[-1].hash
        connection.execute(
            update(AUDIT_HEAD)
            .where(AUDIT_HEAD.c.id == lane)
            .values(sequence=sequence, hash=prev, seal=self._seal(sequence, prev, lane))
        )
        # Anchored once the caller's transaction commits (publish_anchor).
        pending[lane] = (sequence, prev)
        self._local.pending = pending
        return entries

    def _take_lane(
        self, connection: Connection, pending: Mapping[int, tuple[int, str]], at: dt.datetime
    ) -> tuple[int, str, list[AuditEntry]]:
        """Lock a lane's head for this transaction: ``(lane, its last hash, entries that
        opened a new lane on the way)``."""
        heads = select(AUDIT_HEAD.c.id, AUDIT_HEAD.c.sequence, AUDIT_HEAD.c.hash)
        if pending:
            # This transaction already holds a lane: it goes on appending there.
            held = connection.execute(
                heads.where(AUDIT_HEAD.c.id == min(pending)).with_for_update()
            ).first()
            if held is not None:
                return int(held[0]), str(held[2]), []
        free = connection.execute(
            heads.order_by(AUDIT_HEAD.c.id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if free is not None:
            return int(free[0]), str(free[2]), []
        # Every lane is taken: wait for lane 1, and open the next lane there for the
        # writers that come after (up to MAX_LANES).
        count = select(func.max(AUDIT_HEAD.c.id))
        seen = connection.execute(count).scalar()
        first = connection.execute(heads.where(AUDIT_HEAD.c.id == 1).with_for_update()).first()
        if first is None:
            self.ensure_head(connection)
            return 1, GENESIS, []
        lanes = int(connection.execute(count).scalar_one())
        if lanes >= MAX_LANES or lanes > int(seen or 0):
            # The writer this one waited for had just opened a lane (uncommitted, so not
            # seen): there is one more lane than when every lane looked taken, and this
            # writer holds lane 1 now. Opening yet another would leave lanes no writer needs
            # (three for two workers), each opened by a wait on lane 1.
            return 1, str(first[2]), []
        lane = lanes + 1
        (number,) = connection.execute(_NEXT_SEQUENCES, {"n": 1}).scalars().all()
        (opening,) = chain_entries(
            [AuditEvent(action=LANE_ACTION, outcome="opened", details={"lane": lane})],
            sequence=0,
            prev_hash=str(first[2]),
            at=at,
            actor=self.actor,
            numbers=[number],
        )
        start = lane_genesis(opening.hash, lane)
        connection.execute(
            insert(AUDIT_HEAD),
            [
                {
                    "id": lane,
                    "sequence": opening.sequence,
                    "hash": start,
                    "seal": self._seal(opening.sequence, start, lane),
                }
            ],
        )
        return 1, opening.hash, [opening]

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
        """Entries in sequence order, streamed (``after``: skip up to that sequence).

        With lanes (a PostgreSQL store with concurrent writers), two lanes' transactions
        may commit in the other order than their numbers: an entry numbered below one
        already read can still appear, so a reader following the log with ``after``
        re-reads from a little before its last number.
        """
        query = select(AUDIT).where(AUDIT.c.sequence > after).order_by(AUDIT.c.sequence)
        if actions is not None:
            query = query.where(AUDIT.c.action.in_(list(actions)))
        # The result is closed however the reader stops: no server-side cursor left open.
        with (
            self._db.engine.connect() as connection,
            connection.execution_options(yield_per=1000).execute(query) as result,
        ):
            for row in result:
                yield _from_row(row._mapping)

    def __iter__(self) -> Iterator[AuditEntry]:
        return self.entries()

    def __len__(self) -> int:
        with self._db.read() as connection:
            if self._lanes:
                # Lanes leave gaps in the numbers: count the entries.
                return int(connection.execute(select(func.count()).select_from(AUDIT)).scalar_one())
            head = connection.execute(
                select(AUDIT_HEAD.c.sequence).where(AUDIT_HEAD.c.id == 1)
            ).scalar()
        return int(head or 0)

    def verify(self) -> bool:
        """Return ``True`` if the chain is intact, else raise :class:`AuditTampered`.

        ``AuditTampered.sequence`` is the first entry that is missing, altered, out of
        place or not covered by its lane's sealed head, or the anchored entry when a lane
        was cut back behind its anchor in the key database (tables dropped, truncated, or
        an older sealed head written back).
        """
        anchored: dict[int, tuple[int, str]] = {}
        if self._anchor is not None:
            # Read first: a writer committing meanwhile only moves the heads further on.
            anchors = self._anchor[0]
            for lane in range(1, MAX_LANES + 1):
                found = anchors.read_anchor(self._anchor_name(lane))
                if found is not None:
                    anchored[lane] = found
        try:
            walk = self._verify_chain(want={s for s, _ in anchored.values()})
        except DBAPIError:
            raise AuditTampered("the audit tables cannot be read", sequence=1) from None
        for lane, (sequence, head_hash) in sorted(anchored.items()):
            last = walk.tails.get(lane, (0, GENESIS))[0]
            if sequence > last:
                raise AuditTampered(
                    f"audit log broken at entry {last + 1}: the key store's anchor is at "
                    f"entry {sequence}, the log ends before it",
                    sequence=last + 1,
                )
            if sequence > 0 and not hmac.compare_digest(walk.hashes.get(sequence, ""), head_hash):
                raise AuditTampered(
                    f"audit log broken at entry {sequence}: it differs from the anchored one",
                    sequence=sequence,
                )
        return True

    def _verify_chain(self, want: Collection[int] = ()) -> _Walk:
        """Check every lane's chain and sealed head; return each lane's end and the hashes
        of the entries numbered in ``want``."""
        with self._db.read() as connection:
            names = set(inspect(connection).get_table_names())
        if AUDIT.name not in names or AUDIT_HEAD.name not in names:
            raise AuditTampered("the audit tables are missing", sequence=1)
        with self._db.engine.connect() as connection:
            if self._db.is_postgres:
                # Heads and entries from one snapshot: writers committing meanwhile are
                # seen in neither.
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                heads = {
                    int(row[0]): tuple(row[1:])
                    for row in connection.execute(
                        select(
                            AUDIT_HEAD.c.id,
                            AUDIT_HEAD.c.sequence,
                            AUDIT_HEAD.c.hash,
                            AUDIT_HEAD.c.seal,
                        )
                    )
                }
                # Closed when tampering stops the walk half-way, not left to the collector
                # (a server-side cursor on PostgreSQL).
                with connection.execution_options(yield_per=1000).execute(
                    select(AUDIT).order_by(AUDIT.c.sequence)
                ) as rows:
                    walk = _walk((_from_row(row._mapping) for row in rows), heads, want)
        for lane, (last, prev) in sorted(walk.tails.items()):
            head = heads.pop(lane, None)
            if head is None and lane > 1:
                raise AuditTampered(
                    f"audit log broken at entry {walk.opened[lane]}: the head of the lane "
                    "it opened is missing",
                    sequence=walk.opened[lane],
                )
            check_head(
                self._seal_key,
                last,
                prev,
                head,
                lane=lane,
                uncovered=walk.uncovered.get(lane),
                gapless=len(walk.tails) == 1,
            )
        if heads:
            lane = min(heads)
            raise AuditTampered(
                f"audit log broken: a head for lane {lane}, which no entry opened",
                sequence=max(int(heads[lane][0]), 1),
            )
        return walk


@attrs.define
class _Walk:
    """What verifying the entries found: each lane's ``(last sequence, hash)``, the
    lane-1 entry that opened each lane, each lane's first entry past its head, and the
    hashes asked for."""

    tails: dict[int, tuple[int, str]] = attrs.field(factory=lambda: {1: (0, GENESIS)})
    opened: dict[int, int] = attrs.field(factory=dict)
    uncovered: dict[int, int] = attrs.field(factory=dict)
    hashes: dict[int, str] = attrs.field(factory=dict)


def _walk(
    entries: Iterable[AuditEntry], heads: Mapping[int, tuple[Any, ...]], want: Collection[int]
) -> _Walk:
    """Follow each entry, in sequence order, to the lane whose last hash it names."""
    walk = _Walk()
    lane_of = {GENESIS: 1}
    for e in entries:
        lane = lane_of.pop(e.prev_hash, None)
        single = len(walk.tails) == 1
        if lane is None:
            # With one lane, the number after its last good entry is the one missing.
            raise broken("audit log", walk.tails[1][0] + 1 if single else e.sequence)
        if not hmac.compare_digest(e.expected_hash(), e.hash):
            # An entry renumbered in a log of one lane is out of place at the next number.
            after = walk.tails[1][0] + 1
            at = after if single and e.sequence != after else e.sequence
            raise broken("audit log", at, altered=True)
        walk.tails[lane] = (e.sequence, e.hash)
        lane_of[e.hash] = lane
        head = heads.get(lane)
        if lane not in walk.uncovered and head is not None and e.sequence > int(head[0]):
            walk.uncovered[lane] = e.sequence
        if e.sequence in want:
            walk.hashes[e.sequence] = e.hash
        if lane == 1 and e.action == LANE_ACTION:
            opened = e.details.get("lane") if isinstance(e.details, Mapping) else None
            if opened != max(walk.tails) + 1:
                raise AuditTampered(
                    f"audit log broken at entry {e.sequence}: a lane opened out of turn",
                    sequence=e.sequence,
                )
            start = lane_genesis(e.hash, opened)
            walk.tails[opened] = (e.sequence, start)
            walk.opened[opened] = e.sequence
            lane_of[start] = opened
    return walk


def seal_head(seal_key: bytes, sequence: int, head_hash: str, *, lane: int = 1) -> str:
    """The HMAC sealing an audit log's head row ``(sequence, head_hash)``; a lane's other
    than the first seals its number too, so a head cannot pass for another lane's."""
    text_ = f"{sequence}:{head_hash}" if lane == 1 else f"lane:{lane}:{sequence}:{head_hash}"
    return hmac.new(seal_key, text_.encode("ascii"), hashlib.sha256).hexdigest()


def check_head(
    seal_key: bytes,
    last: int,
    prev: str,
    head: tuple[Any, ...] | None,
    *,
    lane: int = 1,
    uncovered: int | None = None,
    gapless: bool = True,
) -> None:
    """Check an audit log's sealed head ``(sequence, hash, seal)`` against its verified
    chain, which ends at entry ``last`` of hash ``prev``; raise :class:`AuditTampered`.

    ``lane``: which lane of the store's log the head ends (its seal names it);
    ``uncovered``: the lane's first entry after the head's, when the head is behind;
    ``gapless``: whether the log is one lane numbered without gaps.
    """
    if head is None:
        if last == 0:
            return
        raise AuditTampered("audit log head is missing", sequence=1)
    sequence, head_hash, seal = int(head[0]), str(head[1]), str(head[2])
    if not hmac.compare_digest(seal_head(seal_key, sequence, head_hash, lane=lane), seal):
        raise AuditTampered("audit log head seal is invalid", sequence=max(sequence, 1))
    if sequence > last:
        # One lane numbers its entries without gaps: the first one missing follows the
        # last one found. Among lanes only the last one missing is known: the head's.
        missing = last + 1 if gapless else sequence
        raise AuditTampered(
            f"audit log broken at entry {missing}: entries removed from the end",
            sequence=missing,
        )
    if sequence < last:
        first = sequence + 1 if uncovered is None else uncovered
        raise AuditTampered(
            f"audit log broken at entry {first}: entries not covered by the head",
            sequence=first,
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
    numbers: Sequence[int] | None = None,
) -> list[AuditEntry]:
    """The entries of ``events``, chained after the head ``(sequence, prev_hash)``.

    One place for the chaining rule, shared by every audit log (the store's, and those
    the integrations keep in the application's database). ``numbers``, when given, are
    the entries' sequence numbers (a lane's, from the store's sequence); otherwise they
    follow ``sequence``.
    """
    entries: list[AuditEntry] = []
    prev = prev_hash
    for n, event in enumerate(events):
        sequence = sequence + 1 if numbers is None else int(numbers[n])
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


def lane_genesis(opening_hash: str, lane: int) -> str:
    """The "previous hash" of lane ``lane``'s first entry: derived from the lane-1 entry
    that opened it, so the lane hangs from lane 1's chain."""
    return chain_hash(opening_hash, canonical_json({"lane": lane}))


def lane_anchor(name: str, lane: int) -> str:
    """The key database's name for the anchor of ``lane`` of log ``name``."""
    return name if lane == 1 else f"{name}:lane:{lane}"


def entry_columns(e: AuditEntry) -> dict[str, Any]:
    """``e`` as the audit table's column values (``details`` as canonical JSON text)."""
    return {
        "sequence": e.sequence,
        "at": e.at,
        "action": e.action,
        "record_type": e.record_type,
        "subject_ref": e.subject_ref,
        "actor": e.actor,
        "outcome": e.outcome,
        "details": canonical_json(e.details).decode(),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def entry_from_columns(row: Mapping[str, Any], at: dt.datetime) -> AuditEntry:
    """The entry stored as the column values ``row``; ``at``: its time, made aware."""
    return AuditEntry(
        sequence=int(row["sequence"]),
        at=at,
        action=row["action"],
        record_type=row["record_type"],
        subject_ref=row["subject_ref"],
        actor=row["actor"],
        outcome=row["outcome"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _to_row(e: AuditEntry) -> dict[str, Any]:
    return {**entry_columns(e), "at": to_utc(e.at)}


def _from_row(row: Any) -> AuditEntry:
    return entry_from_columns(row, row["at"].replace(tzinfo=UTC))
