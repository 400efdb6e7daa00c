"""The keyring's cache of unwrapped keys: per subject, bounded, O(1) eviction.

FieldCipher reads ``KeyCache.texts`` (the default scope, ``texts[subject]``) and
``KeyCache.scoped`` (any other scope, ``scoped[subject, scope]``) directly on its hot
path: one dictionary lookup, then the tuple it needs; and ``KeyCache.subjects``
otherwise (``subjects[subject]``, then sets ``used``). Everything that changes either mapping's
content goes through :class:`KeyCache`'s methods, under its lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy.crypto import _token
from learnprivacy.crypto._validate import DEFAULT_SCOPE

__all__ = ["KeyCache", "SubjectKeys"]


class SubjectKeys:
    """Unwrapped keys of one subject, ready to use; dropped as a whole on shred.

    ``checked`` is the key store's shred mark (see ``KeyStore.shred_mark``) read before
    every key of ``aeads`` was read from the store or last confirmed live there; ``None``
    when no single mark does (a key read without one, or keys read under two marks): a
    fetch then looks the subject up in the key store. ``changes`` counts the keys added,
    so that a confirmation never vouches for a key added while it was looking.
    Both change only under the cache's lock (:meth:`KeyCache.admit`,
    :meth:`KeyCache.confirm`).
    """

    __slots__ = ("aeads", "changes", "checked", "openers", "sealers", "used")

    def __init__(self) -> None:
        self.checked: str | None = None
        self.changes = 0
        self.aeads: dict[str, AESGCM] = {}
        self.sealers: dict[str, _token.Sealer] = {}
        # Keyed by the first 20 characters of a token: its prefix and header.
        self.openers: dict[str, _token.Opener] = {}
        # Set on every cache hit, cleared when eviction passes over the entry: the
        # "second chance" that keeps subjects in use cached (see KeyCache.entry).
        self.used = False


class KeyCache:
    """Subjects' unwrapped keys, at most ``size`` subjects, second-chance eviction.

    ``subjects`` is the mapping readers use: an OrderedDict, because dropping its oldest
    entry is O(1), where a plain dict's first entry is found by scanning past the slot of
    every entry deleted since the dict was last resized (with 10,000 subjects cached, that
    made each eviction cost thousands of steps). It is a plain OrderedDict, not a
    subclass, because a lookup in a subclass costs more. Hits do not reorder it: readers
    only set ``SubjectKeys.used``. Insertions and removals happen here, under a lock, so
    an eviction never races a shred; the mapping is only ever changed in place.
    """

    __slots__ = ("_lock", "scoped", "size", "subjects", "texts")

    def __init__(self, size: int) -> None:
        self.subjects: OrderedDict[str, SubjectKeys] = OrderedDict()
        # For some subjects of ``subjects``, the text-token header, AEAD, associated-data
        # prefix and binary header of their default scope's active key (_token.Text):
        # what FieldCipher needs to encrypt a str or open its token, one lookup away. An
        # entry is only added for a subject whose keys are cached (``remember_text``)
        # and leaves with them. Its presence stands for ``used``: a hit here sets no
        # flag, and eviction's second chance removes the entry (see _make_room).
        self.texts: dict[str, _token.Text] = {}
        # The same for the other scopes of those subjects (purposes such as "contract"),
        # by (subject, scope). A separate mapping, so that no key of one can be looked
        # up in the other (a subject is a str, never a pair). Entries come and go with
        # their subject's ``texts`` entry: every scope's entry was checked against
        # ``SubjectKeys.sealers`` when added, so those scopes name every entry to drop.
        self.scoped: dict[tuple[str, str], _token.Text] = {}
        self.size = size
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyCache(subjects={len(self.subjects)}, size={self.size})"

    def __reduce__(self) -> str:
        raise TypeError("key caches cannot be pickled: they hold keys")

    def __len__(self) -> int:
        return len(self.subjects)

    def __contains__(self, subject: object) -> bool:
        return subject in self.subjects

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.subjects))

    def get(self, subject: str) -> SubjectKeys | None:
        """The keys of ``subject`` if cached."""
        return self.subjects.get(subject)

    def entry(self, subject: str) -> SubjectKeys:
        """The keys of ``subject``, a new empty entry if it has none (making room)."""
        subjects = self.subjects
        keys = subjects.get(subject)
        if keys is None:
            with self._lock:
                keys = subjects.get(subject)
                if keys is None:
                    self._make_room()
                    keys = subjects[subject] = SubjectKeys()
        return keys

    def remember_text(
        self, subject: str, scope: str, keys: SubjectKeys, sealer: _token.Sealer
    ) -> None:
        """Unpack ``sealer`` into ``texts`` (the default scope) or ``scoped`` for
        ``(subject, scope)`` if ``keys`` are still the cached keys of ``subject`` (they
        were not forgotten meanwhile) and ``sealer`` is still their sealer of ``scope``."""
        if self.subjects.get(subject) is keys:  # checked again under the lock, below
            self.remember_texts(scope, ((subject, sealer),))

    def remember_texts(self, scope: str, made: Iterable[tuple[str, _token.Sealer]]) -> None:
        """:meth:`remember_text` for many subjects of one ``scope``, under one lock: each
        ``(subject, sealer)`` is remembered if ``sealer`` is still the sealer of ``scope``
        of the keys cached for ``subject`` (not forgotten or replaced meanwhile)."""
        texts, scoped, text_of, subjects = self.texts, self.scoped, _token.text_of, self.subjects
        default = scope == DEFAULT_SCOPE
        with self._lock:
            for subject, sealer in made:
                keys = subjects.get(subject)
                if keys is None or keys.sealers.get(scope) is not sealer:
                    continue
                if default:
                    texts[subject] = text_of(sealer)
                else:
                    scoped[subject, scope] = text_of(sealer)

    def admit(self, keys: SubjectKeys, key_id: str, aead: AESGCM, mark: str | None) -> AESGCM:
        """Add ``aead`` as key ``key_id`` of ``keys``, read from the key store after
        shred mark ``mark`` was read (``None``: no mark dates the read); the key already
        there if another thread added it first. The entry's ``checked`` becomes ``mark``
        if it held no key, and ``None`` if it held keys dated by another mark."""
        with self._lock:
            found = keys.aeads.get(key_id)
            if found is not None:
                return found
            if not keys.aeads:
                keys.checked = mark
            elif keys.checked != mark:
                keys.checked = None
            keys.changes += 1
            keys.aeads[key_id] = aead
            return aead

    def snapshot(self, subjects: Iterable[str]) -> dict[str, tuple[SubjectKeys, int]]:
        """For each of ``subjects`` cached: its keys and their ``changes``, taken together
        under the lock (before a look-up in the key store, see :meth:`confirm`)."""
        with self._lock:
            found = {}
            for subject in subjects:
                keys = self.subjects.get(subject)
                if keys is not None:
                    found[subject] = (keys, keys.changes)
            return found

    def confirm(self, held: Iterable[tuple[SubjectKeys, int]], mark: str) -> None:
        """Date with ``mark`` the keys of entries a look-up made after reading ``mark``
        found all live: ``held`` as :meth:`snapshot` gave them. An entry that gained a
        key since its snapshot keeps its date (the look-up did not see that key)."""
        with self._lock:
            for keys, changes in held:
                if keys.changes == changes:
                    keys.checked = mark

    def forget(self, subject: str | None = None) -> None:
        """Drop the keys of ``subject``, or of every subject."""
        with self._lock:
            if subject is None:
                self.texts.clear()
                self.scoped.clear()
                self.subjects.clear()
            else:
                keys = self.subjects.pop(subject, None)
                if keys is not None:
                    self._drop_texts(subject, keys)

    def forget_many(self, subjects: Iterable[str]) -> None:
        """Drop the keys of every subject of ``subjects`` (one lock for all)."""
        with self._lock:
            pop, drop = self.subjects.pop, self._drop_texts
            for subject in subjects:
                keys = pop(subject, None)
                if keys is not None:
                    drop(subject, keys)

    def _drop_texts(self, subject: str, keys: SubjectKeys) -> bool:
        """Remove the ``texts`` and ``scoped`` entries of ``subject``, whose cached keys
        are ``keys`` (under the lock); whether there was any."""
        found = self.texts.pop(subject, None) is not None
        scoped = self.scoped
        if scoped:
            # A snapshot (taken in one step): another thread may add a sealer meanwhile;
            # a scope added after it has no entry, as entries are added under the lock.
            for scope in tuple(keys.sealers):
                if scoped.pop((subject, scope), None) is not None:
                    found = True
        return found

    def _make_room(self) -> None:
        # Second chance ("clock"): the oldest entry goes, unless it was used since
        # eviction last passed over it; then its flag is cleared and it moves to the end.
        # Each step is O(1) and each second chance was paid for by an earlier hit, so
        # eviction is O(1) amortised. Second chances are bounded per call, so hits racing
        # in from other threads cannot keep the loop going. An entry of ``texts`` counts
        # as a use (its hits set no flag) and is spent by the second chance: the next
        # use puts it back, through FieldCipher's checked path. ``scoped`` entries count
        # and go the same way.
        subjects, drop = self.subjects, self._drop_texts
        chances = len(subjects)
        while subjects and len(subjects) >= self.size:
            subject, keys = next(iter(subjects.items()))
            if (drop(subject, keys) or keys.used) and chances > 0:
                keys.used = False
                chances -= 1
                subjects.move_to_end(subject)
            else:
                del subjects[subject]
