"""The in-memory side of a key store's ``batch()``: one implementation for every backend.

A key store that prefetches the keys of a known set of subjects (the SQLAlchemy key
database, the Django key store) keeps them here for the duration of the block, answers
reads and buffered inserts from it, and records here what its flush wrote. Only the SQL
differs between backends; the rules of the buffer live in this one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.crypto._keystore import scope_blocked as _blocked
from learnprivacy.errors import KeyShreddedError

#: Given the current epoch id and entries, the same entries wrapped under that epoch key
#: (a keyring's ``_rewrap_for_epoch``); raises if it cannot load that key.
EpochRewrap = Callable[[str, Sequence[KeyEntry]], list[KeyEntry]]


class KeyBatch:
    """Entries and tombstones of a known set of subjects, and keys not yet inserted."""

    __slots__ = ("entries", "mark", "pending", "revived", "rewrap", "tombstones")

    def __init__(self) -> None:
        #: The key store's shred mark read before the prefetch (``batch_mark()``; see
        #: ``learnprivacy.crypto._keystore``), ``None`` if the store keeps none.
        self.mark: str | None = None
        self.entries: dict[str, list[KeyEntry]] = {}
        self.tombstones: set[tuple[str, str]] = set()
        self.pending: list[KeyEntry] = []
        #: The (subject, scope) pairs a buffered key revives on purpose: a tombstone
        #: written for them before the flush does not refuse it.
        self.revived: set[tuple[str, str]] = set()
        # How the keyring that buffered the pending keys re-wraps them (see add()).
        self.rewrap: EpochRewrap | None = None

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry ``key_id`` of ``subject`` (a subject of the batch), or ``None``."""
        return next((e for e in self.entries[subject] if e.key_id == key_id), None)

    def select(self, subject: str, scope: str | None) -> list[KeyEntry]:
        """The entries of ``subject`` (a subject of the batch), of one ``scope`` if given."""
        return [e for e in self.entries[subject] if scope is None or e.scope == scope]

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        return _blocked(self.entries[subject], self.tombstones, subject, scope)

    def add(self, entry: KeyEntry, *, revive: bool, rewrap: EpochRewrap | None) -> KeyEntry:
        """Buffer ``entry`` unless its scope has an active key (then return that one).

        Raises :class:`KeyShreddedError` for a shredded scope unless ``revive``.
        """
        known = self.entries[entry.subject]
        for existing in known:
            if existing.scope == entry.scope and existing.state is KeyState.ACTIVE:
                return existing
        if not revive and _blocked(known, self.tombstones, entry.subject, entry.scope):
            raise KeyShreddedError(
                f"the keys of this subject's scope {entry.scope!r} were shredded"
            )
        if revive:
            self.revived.add((entry.subject, entry.scope))
        known.append(entry)
        self.pending.append(entry)
        if rewrap is not None:
            self.rewrap = rewrap
        return entry

    def flushed(self, pending: list[KeyEntry], written: Sequence[KeyEntry]) -> None:
        """Record that ``pending`` was inserted as ``written`` (re-wrapped or the same)."""
        self.pending = []
        if written is pending:
            return
        moved = {(e.subject, e.key_id): e for e in written}
        for subject in {e.subject for e in written}:
            self.entries[subject] = [
                moved.get((e.subject, e.key_id), e) for e in self.entries[subject]
            ]

    def updated(self, entry: KeyEntry) -> None:
        """Record that the store replaced ``entry`` (same subject and key id)."""
        self.entries[entry.subject] = [
            entry if e.key_id == entry.key_id else e for e in self.entries[entry.subject]
        ]

    def forget(self, subjects: Iterable[str]) -> None:
        """Drop what the batch knew of ``subjects``: reads of them go to the database."""
        for subject in subjects:
            self.entries.pop(subject, None)


def current_batch(local: threading.local) -> KeyBatch | None:
    """The batch open on this thread, if any."""
    batch: KeyBatch | None = getattr(local, "batch", None)
    return batch


def batch_for(local: threading.local, subject: str | None) -> KeyBatch | None:
    """The batch open on this thread if it holds ``subject``; ``None`` otherwise."""
    batch = current_batch(local)
    if batch is None or subject is None or subject not in batch.entries:
        return None
    return batch


__all__ = ["EpochRewrap", "KeyBatch", "batch_for", "current_batch"]
