"""Where wrapped data keys live: the :class:`KeyStore` protocol and its in-memory form.

A key store holds one :class:`KeyEntry` per data key. It never sees a key in clear: the
keyring wraps every data key with the master key before handing it over. The protocol is
small on purpose so that a SQL table can implement it, each method being one transaction:

=================  =================================================================
``get``            one entry by ``(subject, key_id)`` (decryption knows no scope)
``list_entries``   entries of a subject, a (subject, scope), or all of them (rotation)
``add``            insert a new active key unless one exists or the scope is shredded
``update``         replace a live entry (rewrap, retire); never revives a shredded one
``mark_shredded``  destroy key material, keep tombstones
``is_shredded``    whether a (subject, scope) is shredded and not revived
=================  =================================================================

Two optional methods let a keyring trust the keys it caches without asking the store on
every fetch (a store without them is asked on every fetch, as before):

``shred_mark()``
    A short text the store replaces, **in the same transaction**, on every change that
    takes a live key away (``mark_shredded`` destroying at least one key, an ``update``
    to the SHREDDED state, anything else that destroys or deletes a live key), read as
    committed now. Equal marks read at two moments mean no such change committed
    between them. The value must never come back: a fresh random value per change (an
    integer would repeat once the store is restored from a backup and shredded again).
    A change that rolls back leaves the mark as it was.
``batch_mark()``
    Inside this thread's ``batch()`` (a store that prefetches), the mark read in the
    prefetch before its entries were read; ``None`` outside a batch. A store with a
    prefetching ``batch()`` and ``shred_mark()`` must offer it: the keyring dates the
    keys it caches with the mark read *before* their entries were read.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from learnprivacy.errors import KeyShreddedError

__all__ = [
    "ALL_SCOPES",
    "InMemoryKeyStore",
    "KeyEntry",
    "KeyState",
    "KeyStore",
    "entry_from_row",
    "scope_blocked",
]

#: The tombstone scope that covers every scope of a subject.
ALL_SCOPES = "*"


class KeyState(enum.Enum):
    """Life cycle of a data key."""

    #: Used to encrypt new values of its (subject, scope), and to decrypt.
    ACTIVE = "active"
    #: No longer used to encrypt, still decrypts the values it protected.
    RETIRED = "retired"
    #: Key material destroyed; the entry stays as a tombstone so that its tokens raise
    #: ``KeyShreddedError`` rather than a generic ``DecryptionError``.
    SHREDDED = "shredded"


@attrs.frozen(kw_only=True)
class KeyEntry:
    """One data key as a store keeps it: wrapped by the master key, never in clear.

    ``key_id`` is 16 lowercase hex characters (the 8 bytes carried in every token) and is
    unique within a subject. ``master_key_id`` names the master key that wrapped it, so a
    rotation can resume and a wrong master key is detected before any unwrap is tried.
    A shredded entry has empty ``wrapped`` bytes and an empty ``master_key_id``.
    """

    subject: str
    scope: str
    key_id: str
    state: KeyState
    master_key_id: str
    #: nonce (12 bytes) + AES-256-GCM ciphertext of the key (32 bytes) + tag (16 bytes).
    wrapped: bytes = attrs.field(repr=lambda value: f"<{len(value)} bytes>")


_STATES = {state.value: state for state in KeyState}


def entry_from_row(row: Sequence[Any]) -> KeyEntry:
    """A :class:`KeyEntry` from a SQL row ``(subject, scope, key_id, state,
    master_key_id, wrapped)``, as the SQL key stores select them."""
    subject, scope, key_id, state, master_key_id, wrapped = row
    return KeyEntry(
        subject=subject,
        scope=scope,
        key_id=key_id,
        # A dict lookup rather than KeyState(state), whose call costs several times more
        # (a read fetches thousands of entries); an unknown state still raises ValueError.
        state=_STATES.get(state) or KeyState(state),
        master_key_id=master_key_id,
        wrapped=bytes(wrapped),
    )


def scope_blocked(
    entries: Iterable[KeyEntry], tombstones: set[tuple[str, str]], subject: str, scope: str
) -> bool:
    """Whether ``(subject, scope)`` is shredded and not revived, from the subject's
    ``entries`` and the ``tombstones`` known for it (the rule every key store applies:
    a tombstone of the scope or of every scope, and no live key of the scope since)."""
    if (subject, scope) not in tombstones and (subject, ALL_SCOPES) not in tombstones:
        return False
    return all(e.state is KeyState.SHREDDED for e in entries if e.scope == scope)


@runtime_checkable
class KeyStore(Protocol):
    """Persistence of wrapped data keys; see the module docstring for the contract.

    Implementations must make ``add`` and ``mark_shredded`` atomic with respect to each
    other, so that a key can never be created for a subject while it is being shredded.
    """

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        ...

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        ...

    def add(self, entry: KeyEntry, *, revive: bool = False) -> KeyEntry:
        """Insert ``entry`` (an ACTIVE key) and return it, in one transaction.

        If an ACTIVE key already exists for ``(entry.subject, entry.scope)``, store nothing
        and return that one, so concurrent writers converge on a single key. If the
        (subject, scope) is shredded (see :meth:`is_shredded`), raise
        :class:`~learnprivacy.errors.KeyShreddedError` unless ``revive`` is true.
        """
        ...

    def update(self, entry: KeyEntry) -> bool:
        """Replace the stored entry with the same ``(subject, key_id)``.

        Return ``False`` and change nothing when no such entry exists or it is SHREDDED:
        a rewrap racing with a shred must never bring key material back.
        """
        ...

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material and return how many keys were newly shredded.

        With ``key_id``, only that key is shredded. Otherwise every key of ``subject`` (of
        ``scope``, or of all scopes when ``scope`` is ``None``) is shredded and a tombstone
        for ``(subject, scope)`` is recorded, even when no key existed yet: it makes
        :meth:`is_shredded` true and :meth:`add` refuse to create a fresh key.
        """
        ...

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when a tombstone covers ``(subject, scope)`` (or the whole subject) and
        every key of that (subject, scope) is shredded, i.e. nothing was revived since.
        """
        ...


class InMemoryKeyStore:
    """A :class:`KeyStore` kept in a dict: for tests, notebooks and short-lived processes.

    Thread-safe. Its content disappears with the process, and with it every value the
    keys protect.
    """

    __slots__ = ("_by_subject", "_lock", "_mark", "_tombstones")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The shred mark (see the module docstring): a count, as nothing can restore
        # this store to an earlier state.
        self._mark = 0
        # subject -> key_id -> entry; insertion order is creation order.
        self._by_subject: dict[str, dict[str, KeyEntry]] = {}
        # (subject, scope) pairs shredded as a whole; scope None means every scope.
        self._tombstones: set[tuple[str, str | None]] = set()

    def __repr__(self) -> str:
        count = sum(len(keys) for keys in self._by_subject.values())
        return f"InMemoryKeyStore(entries={count})"

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        keys = self._by_subject.get(subject)
        return None if keys is None else keys.get(key_id)

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        with self._lock:
            if subject is None:
                found = [e for keys in self._by_subject.values() for e in keys.values()]
            else:
                found = list(self._by_subject.get(subject, {}).values())
        return iter([e for e in found if scope is None or e.scope == scope])

    def add(self, entry: KeyEntry, *, revive: bool = False) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived."""
        with self._lock:
            keys = self._by_subject.setdefault(entry.subject, {})
            for existing in keys.values():
                if existing.scope == entry.scope and existing.state is KeyState.ACTIVE:
                    return existing
            if not revive and self._blocked(entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            keys[entry.key_id] = entry
            return entry

    def update(self, entry: KeyEntry) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``)."""
        with self._lock:
            keys = self._by_subject.get(entry.subject, {})
            current = keys.get(entry.key_id)
            if current is None or current.state is KeyState.SHREDDED:
                return False
            keys[entry.key_id] = entry
            if entry.state is KeyState.SHREDDED:
                self._mark += 1
            return True

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material of ``subject`` (one key, one scope or all) and count it."""
        with self._lock:
            keys = self._by_subject.setdefault(subject, {})
            if key_id is None:
                self._tombstones.add((subject, scope))
            shredded = 0
            for entry in list(keys.values()):
                if key_id is not None and entry.key_id != key_id:
                    continue
                if scope is not None and entry.scope != scope:
                    continue
                if entry.state is not KeyState.SHREDDED:
                    keys[entry.key_id] = attrs.evolve(
                        entry, state=KeyState.SHREDDED, master_key_id="", wrapped=b""
                    )
                    shredded += 1
            if shredded:
                self._mark += 1
            return shredded

    def shred_mark(self) -> str:
        """Changes with every call that destroys a live key (see the module docstring)."""
        return str(self._mark)

    def batch_mark(self) -> None:
        """``None``: this store has no ``batch()``; :meth:`shred_mark` dates every read."""

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        with self._lock:
            return self._blocked(subject, scope)

    def _blocked(self, subject: str, scope: str) -> bool:
        if (subject, scope) not in self._tombstones and (subject, None) not in self._tombstones:
            return False
        return all(
            entry.state is KeyState.SHREDDED
            for entry in self._by_subject.get(subject, {}).values()
            if entry.scope == scope
        )
