"""The audit head is anchored in the key database: every SQL edit of the log is caught.

Fourteen kinds of tampering, each done with the write access to the records database an
intruder (or a careless restore) has, each on SQLite and PostgreSQL. The last three are
the ones the sealed head alone cannot catch: the log and its head deleted together, the
tables dropped, and the erasure entries cut off with an older sealed head written back
(exactly the entries ``replay_erasures`` needs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from learnprivacy.errors import AuditTampered
from learnprivacy.records import Progress
from learnprivacy.store import Store
from learnprivacy.store._audit import AuditEntry
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD
from tests.store_fixtures import NOW, forged_audit_row, keys_for, learner, records_for

Tampering = Callable[[Connection, dict[str, Any]], None]


def _history(store: Store) -> dict[str, Any]:
    """A log with adds, a restriction, then an erasure; returns what tampering needs: the
    sealed head row as it stood before the erasure, and every entry."""
    store.add_all([learner("L1"), *records_for("L1")])
    store.add_all([learner("L2"), *records_for("L2")])
    store.restrict(Progress, "L1-P1", reason="accuracy contested")
    with store._db.read() as connection:
        older_head = dict(connection.execute(select(AUDIT_HEAD)).mappings().one())
    store.erase_subject("L2", now=NOW)
    store.lift_restriction(Progress, "L1-P1")
    return {"older_head": older_head, "entries": list(store.audit)}


def _change(column: str, value: object, sequence: int = 3) -> Tampering:
    def tamper(connection: Connection, _history: dict[str, Any]) -> None:
        connection.execute(
            update(AUDIT).where(AUDIT.c.sequence == sequence).values({column: value})
        )

    return tamper


def _delete_entry(which: str) -> Tampering:
    def tamper(connection: Connection, history: dict[str, Any]) -> None:
        sequence = 2 if which == "middle" else history["entries"][-1].sequence
        connection.execute(delete(AUDIT).where(AUDIT.c.sequence == sequence))

    return tamper


def _reorder(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(update(AUDIT).where(AUDIT.c.sequence == 2).values(sequence=-2))
    connection.execute(update(AUDIT).where(AUDIT.c.sequence == 4).values(sequence=2))
    connection.execute(update(AUDIT).where(AUDIT.c.sequence == -2).values(sequence=4))


def _forged_row(last: AuditEntry) -> dict[str, Any]:
    return forged_audit_row(last, action="lift_restriction", details={"count": 1})


def _append_forged(connection: Connection, history: dict[str, Any]) -> None:
    row = _forged_row(history["entries"][-1])
    connection.execute(insert(AUDIT).values(**row))
    # Without the seal key the head can only be moved with a wrong seal.
    connection.execute(update(AUDIT_HEAD).values(sequence=row["sequence"], hash=row["hash"]))


def _rewrite_chain(connection: Connection, history: dict[str, Any]) -> None:
    """Alter entry 2 and recompute every later hash and the head hash (not the seal)."""
    entries: list[AuditEntry] = history["entries"]
    prev = entries[0].hash
    for entry in entries[1:]:
        details = {**entry.details, "count": 0} if entry.sequence == 2 else entry.details
        fixed = attrs.evolve(entry, details=details, prev_hash=prev, hash="")
        prev = fixed.expected_hash()
        connection.execute(
            update(AUDIT)
            .where(AUDIT.c.sequence == entry.sequence)
            .values(
                details=json.dumps(dict(details), sort_keys=True, separators=(",", ":")),
                prev_hash=fixed.prev_hash,
                hash=prev,
            )
        )
    connection.execute(update(AUDIT_HEAD).values(hash=prev))


def _forge_seal(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(update(AUDIT_HEAD).values(seal="f" * 64))


def _delete_head(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(delete(AUDIT_HEAD))


def _delete_all_entries(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(delete(AUDIT))


def _delete_log_and_head(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(delete(AUDIT))
    connection.execute(delete(AUDIT_HEAD))


def _drop_tables(connection: Connection, _history: dict[str, Any]) -> None:
    connection.execute(text("DROP TABLE lp_audit"))
    connection.execute(text("DROP TABLE lp_audit_head"))


def _older_sealed_head(connection: Connection, history: dict[str, Any]) -> None:
    """Cut the erasure entries and everything after, and write back the head row as it
    was sealed before them: a chain and a seal that both verify on their own."""
    older = history["older_head"]
    connection.execute(delete(AUDIT).where(AUDIT.c.sequence > older["sequence"]))
    connection.execute(
        update(AUDIT_HEAD).values(
            sequence=older["sequence"], hash=older["hash"], seal=older["seal"]
        )
    )


TAMPERINGS: dict[str, Tampering] = {
    "outcome changed": _change("outcome", "forged"),
    "details changed": _change("details", '{"count":0}'),
    "actor changed": _change("actor", "someone-else"),
    "subject reference changed": _change("subject_ref", "p1_" + "A" * 22),
    "entry deleted in the middle": _delete_entry("middle"),
    "last entry deleted": _delete_entry("last"),
    "entries reordered": _reorder,
    "forged entry appended": _append_forged,
    "chain rewritten after an edit": _rewrite_chain,
    "head seal forged": _forge_seal,
    "head row deleted": _delete_head,
    "every entry deleted": _delete_all_entries,
    "log and head deleted together": _delete_log_and_head,
    "tables dropped": _drop_tables,
    "older sealed head written back": _older_sealed_head,
}


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_every_tampering_is_caught(store: Store, kind: str) -> None:
    """verify() raises AuditTampered after each kind of tampering (never returns)."""
    history = _history(store)
    assert store.audit.verify() is True
    with store._db.write() as connection:
        TAMPERINGS[kind](connection, history)
    with pytest.raises(AuditTampered) as caught:
        store.audit.verify()
    assert caught.value.sequence is not None
    assert "L1" not in str(caught.value)
    # The refused verification gave its connection back: the entry stream it read was
    # closed, not left to the collector (the traceback held it open).
    assert store._db.engine.pool.checkedout() == 0
    if kind == "tables dropped":
        # The PostgreSQL database is shared by the module's tests: put the tables back.
        from learnprivacy.store._schema import METADATA

        with store._db.write() as connection:
            METADATA.create_all(connection, tables=[AUDIT, AUDIT_HEAD])


def test_the_last_three_are_caught_after_reopening(store_url: str, keyring: object) -> None:
    """Reopening the store after the log and head were deleted (the store recreates an
    empty head) does not launder the tampering: the anchor still names the lost entries."""
    opened = Store(store_url, keys=keys_for(store_url), keyring=keyring)  # type: ignore[arg-type]
    history = _history(opened)
    with opened._db.write() as connection:
        _delete_log_and_head(connection, history)
    opened.close()
    reopened = Store(store_url, keys=keys_for(store_url), keyring=keyring)  # type: ignore[arg-type]
    with pytest.raises(AuditTampered, match="anchor"):
        reopened.audit.verify()
    # New entries on top of the emptied log do not hide it either.
    reopened.add(learner("L9"))
    with pytest.raises(AuditTampered, match="anchor"):
        reopened.audit.verify()
    reopened.close()


def test_a_refilled_log_never_carries_the_anchor_past_what_it_lost(
    store_url: str, keyring: object
) -> None:
    """The log and head deleted, then more entries written than were lost: the anchor
    stays on the lost entry (it moves on only from an entry the log still holds), so the
    new entries, however many, never launder the tampering."""
    opened = Store(store_url, keys=keys_for(store_url), keyring=keyring)  # type: ignore[arg-type]
    history = _history(opened)
    lost = history["entries"][-1]
    with opened._db.write() as connection:
        _delete_log_and_head(connection, history)
    opened.close()
    reopened = Store(store_url, keys=keys_for(store_url), keyring=keyring)  # type: ignore[arg-type]
    for n in range(len(history["entries"]) + 2):
        reopened.add(learner(f"L{10 + n}"))
    assert list(reopened.audit)[-1].sequence > lost.sequence
    name = f"audit:{reopened.store_id}"
    assert reopened._key_db.read_anchor(name) == (lost.sequence, lost.hash)
    with pytest.raises(AuditTampered, match="anchor"):
        reopened.audit.verify()
    reopened.close()


def test_the_anchor_follows_every_commit_and_never_moves_back(store: Store) -> None:
    """After each write the key database's anchor equals the sealed head; a stale
    advance (a writer committing late) does not pull it back."""
    _history(store)
    anchors = store._key_db
    name = f"audit:{store.store_id}"
    last = list(store.audit)[-1]
    assert anchors.read_anchor(name) == (last.sequence, last.hash)
    anchors.advance_anchor(name, 1, "0" * 64)
    assert anchors.read_anchor(name) == (last.sequence, last.hash)
    assert store.audit.verify()


def test_an_anchor_lagging_behind_the_head_is_not_tampering(store: Store) -> None:
    """A crash between the records commit and the anchor leaves the anchor behind the
    head: the log still verifies (the anchored entry is in the chain)."""
    _history(store)
    entries = list(store.audit)
    middle = entries[len(entries) // 2]
    store._key_db.reset_anchor(f"audit:{store.store_id}", middle.sequence, middle.hash)
    assert store.audit.verify()
