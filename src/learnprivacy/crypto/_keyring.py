"""The keyring: one master key wrapping one random data key per (subject, scope).

Erasing a learner is then a matter of destroying their data keys (crypto-shredding):
every copy of their encrypted values, in backups and replicas too, becomes unreadable
at once. Scopes let erasure destroy a learner's ``"contract"`` keys while their
``"legal"`` keys, which protect invoices under a legal retention duty, stay alive until
their own retention ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy._progress import ProgressReporter
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.crypto import _token
from learnprivacy.crypto._blind_index import BlindIndex
from learnprivacy.crypto._keycache import KeyCache, SubjectKeys
from learnprivacy.crypto._keystore import InMemoryKeyStore, KeyEntry, KeyState, KeyStore
from learnprivacy.crypto._master import (
    _KEK_LABEL,
    _KEK_PART,
    MasterKey,
    derive_master_key,
    master_key_from_env,
    new_salt,
)
from learnprivacy.crypto._master import _length as _LENGTH
from learnprivacy.crypto._prekeyed import PrekeyedHmac
from learnprivacy.crypto._pseudonym import Pseudonymiser, domain_key
from learnprivacy.crypto._validate import (
    DEFAULT_SCOPE,
    KEY_SIZE,
    SYSTEM_SUBJECT,
    KeyHolder,
    check_scope,
    check_subject,
    length_prefixed,
)
from learnprivacy.errors import (
    ConfigurationError,
    KeyShreddedError,
    ValidationError,
    WrongMasterKeyError,
)

__all__ = ["ENV_VAR", "Keyring"]

#: The environment variable :meth:`Keyring.from_env` reads by default.
ENV_VAR = "LEARNPRIVACY_MASTER_KEY"

_CHECK_SCOPE = "check"
_BLIND_INDEX_SCOPE = "blind-index"
_KEY_REF_LABEL = b"learnprivacy/v1/key-store-subject"
_KEY_REF_PREFIX = "k1_"
#: Random bytes a new data key takes: the key, its id, the nonce that wraps it.
_NONCE_AT = KEY_SIZE + _token.KEY_ID_SIZE
_FRESH_SIZE = _NONCE_AT + 12
#: At most this many key references are remembered (see Keyring._refs).
_REFS_KEPT = 20_000
#: A live data key as Keyring._live_keys gives it: (key reference, scope, key id, id of
#: the master key wrapping it, wrapped key).
_LiveKey = tuple[str, str, str, str, bytes]


class Keyring(KeyHolder):
    """A master key and the data keys it wraps, kept in a :class:`KeyStore`.

    >>> keyring = Keyring.generate()
    >>> keyring.shred("L1")
    0

    **Shredding is final and remembered.** :meth:`shred` destroys the keys of a subject
    (one scope, or all) and leaves a tombstone. Afterwards, decrypting their values raises
    :class:`~learnprivacy.errors.KeyShreddedError`, and so does *encrypting* for that
    subject and scope: a fresh key would silently make an erased learner look active
    again. Call :meth:`revive` when new data about the same person is lawfully collected
    (they come back and sign up again); old values stay unreadable.

    **Caches.** Unwrapped keys are cached per subject, for ``cache_size`` subjects; when
    the cache is full, the oldest subject not used since eviction last passed over it is
    dropped. :meth:`shred` clears this process's cache for the subject; another process
    sharing the same key store keeps its cache until :meth:`clear_cache`, so run erasure
    where the keys are used or clear caches after it.

    **Opening one, and its vault.** The master key comes from one of:

    * a file (mode ``0600``, 32 raw bytes): ``Keyring.from_master_key(path.read_bytes())``
      (the CLI's ``[keys] master_key_file``);
    * the environment: ``Keyring.from_env()`` reads base64 from
      ``LEARNPRIVACY_MASTER_KEY`` (or the variable named);
    * a passphrase and its salt: ``Keyring.from_passphrase(text, salt=salt)``;
    * a PKCS#11 token (an HSM; SoftHSM2 in tests):
      ``Keyring.from_vault(Pkcs11Vault.from_env())``, the module path, token label and
      PIN read from ``LEARNPRIVACY_PKCS11_MODULE``, ``LEARNPRIVACY_PKCS11_TOKEN`` and
      ``LEARNPRIVACY_PKCS11_PIN``, after the key was put there once with
      ``Pkcs11Vault.write_master_key``.

    The epoch keys the data keys are wrapped under live in a *vault*, which
    :class:`~learnprivacy.store.Store` opens with ``vault=``:

    * omitted: a file beside a SQLite key database (``lms.keys.vault``), or
      ``<keys database>.vault`` in the working directory for a PostgreSQL one;
    * a path: ``Store(url, keyring=keyring, vault="/srv/vault/lms.vault")``, a file of two
      checksummed slots overwritten in place;
    * a token: ``vault=Pkcs11Vault(module, token=label, pin=pin)`` or
      ``Pkcs11Vault.from_env()`` (the same object may also give the master key, as
      above: ``vault = Pkcs11Vault.from_env(); Store(url,
      keyring=Keyring.from_vault(vault), vault=vault)``).

    See docs/security.md for where each should live and how long its backups may.

    The repr shows the master key id only, and a keyring cannot be pickled.
    """

    __slots__ = (
        "_cache",
        "_epoch_loader",
        "_index_key",
        "_master",
        "_previous",
        "_pseudonymous",
        "_ref_key",
        "_refs",
        "_store",
        "_verified",
        "_wrap_key",
    )
    _holders = "keyrings"

    def __init__(
        self,
        master_key: bytes,
        *,
        store: KeyStore | None = None,
        previous_master_keys: Iterable[bytes] = (),
        cache_size: int = 10_000,
    ) -> None:
        """Open a keyring on ``master_key`` (exactly 32 bytes).

        ``previous_master_keys`` only matter to finish an interrupted :meth:`rotate`:
        keys still wrapped under one of them stay readable until :meth:`rewrap` runs.
        """
        if type(cache_size) is not int or cache_size < 1:
            raise ValidationError("cache_size must be a positive int", field="cache_size")
        self._master = MasterKey(master_key)
        self._previous = {key.key_id: key for key in map(MasterKey, previous_master_keys)}
        # The key new data keys are wrapped under: the master key, or an epoch key.
        self._wrap_key = self._master
        # Reads an epoch key by id from the vault (set by use_epoch): a compaction in
        # another process may have moved the key store to an epoch this one never saw.
        self._epoch_loader: Callable[[str], bytes | None] | None = None
        self._store: KeyStore = InMemoryKeyStore() if store is None else store
        # A store that asks for it (a key database) never sees a subject in clear.
        self._pseudonymous = bool(getattr(self._store, "pseudonymous_subjects", False))
        self._cache = KeyCache(cache_size)
        self._verified = False
        self._index_key: bytes | None = None
        self._ref_key: PrekeyedHmac | None = None
        # Key references computed lately, by subject: a read names each learner when it
        # fetches their keys, then again when it opens them. Bounded (_REFS_KEPT).
        self._refs: dict[str, str] = {}

    @classmethod
    def generate(cls, *, store: KeyStore | None = None) -> Keyring:
        """A keyring on a new random master key; save it with :meth:`export_master_key`."""
        return cls(os.urandom(KEY_SIZE), store=store)

    @classmethod
    def from_master_key(cls, master_key: bytes, *, store: KeyStore | None = None) -> Keyring:
        """A keyring on raw ``master_key`` bytes (exactly 32)."""
        return cls(master_key, store=store)

    @classmethod
    def from_env(
        cls,
        name: str = ENV_VAR,
        *,
        store: KeyStore | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Keyring:
        """A keyring on the base64 master key in environment variable ``name``.

        Raises :class:`~learnprivacy.errors.ConfigurationError` when it is missing or not
        32 bytes of base64; the message names the variable, never its value.
        """
        return cls(master_key_from_env(name, environ), store=store)

    @classmethod
    def from_vault(cls, vault: Any, *, store: KeyStore | None = None) -> Keyring:
        """A keyring on the master key a vault keeps: a
        :class:`~learnprivacy.store.Pkcs11Vault` after
        :meth:`~learnprivacy.store.Pkcs11Vault.write_master_key` (the token then holds
        both the master key and the epoch keys; no file or variable holds either).

        Raises :class:`~learnprivacy.errors.ConfigurationError` for a vault that keeps no
        master key.
        """
        read = getattr(vault, "read_master_key", None)
        if read is None:
            raise ConfigurationError("this vault keeps no master key (a Pkcs11Vault does)")
        return cls(read(), store=store)

    @classmethod
    def from_passphrase(
        cls, passphrase: str, *, salt: bytes, store: KeyStore | None = None
    ) -> Keyring:
        """A keyring on a master key derived from ``passphrase`` with scrypt.

        ``salt`` (at least 16 bytes, from :meth:`new_salt`) is not secret; store it with
        the configuration, as the same passphrase and salt must give the same key.
        """
        return cls(derive_master_key(passphrase, salt=salt), store=store)

    derive_master_key = staticmethod(derive_master_key)
    new_salt = staticmethod(new_salt)

    def __repr__(self) -> str:
        return f"<Keyring master_key_id={self._master.key_id!r} store={self._store!r}>"

    @property
    def master_key_id(self) -> str:
        """Public fingerprint of the master key (16 hex characters), stored with each key."""
        return self._master.key_id

    @property
    def store(self) -> KeyStore:
        """The key store holding the wrapped data keys."""
        return self._store

    @property
    def previous_master_key_ids(self) -> tuple[str, ...]:
        """Ids of the previous master keys this keyring still opens (a rotation to finish)."""
        return tuple(self._previous)

    def bound_to(self, store: KeyStore) -> Keyring:
        """A keyring on the same master key (and previous master keys) over ``store``."""
        keyring = Keyring(self._master.raw, store=store, cache_size=self._cache.size)
        keyring._previous = dict(self._previous)
        if self._wrap_key is not self._master:
            keyring._wrap_key = self._wrap_key
        keyring._epoch_loader = self._epoch_loader
        return keyring

    @property
    def wrapping_key_id(self) -> str:
        """Id of the key new data keys are wrapped under: the master key's, or the current
        epoch key's once a vault holds one (see :meth:`use_epoch`)."""
        return self._wrap_key.key_id

    def use_epoch(
        self,
        epoch_key: bytes | None,
        *,
        others: Iterable[bytes] = (),
        loader: Callable[[str], bytes | None] | None = None,
    ) -> None:
        """Wrap new data keys under ``epoch_key`` (32 bytes; ``None``: the master key).

        ``others`` are further epoch keys that still open data keys (a compaction under
        way). ``loader`` reads an epoch key by id from the vault, for when another
        process compacts: a key store that names a newer current epoch makes this
        keyring load it, re-wrap the keys it was about to write, and wrap under it from
        then on. Epoch keys are kept by a vault, itself protected by the master key; a
        :class:`~learnprivacy.store.Store` calls this when it opens its vault.
        """
        self._wrap_key = self._master if epoch_key is None else MasterKey(epoch_key)
        for raw in others:
            key = MasterKey(raw)
            self._previous[key.key_id] = key
        if loader is not None:
            self._epoch_loader = loader

    def key_ref(self, subject: str) -> str:
        """How the key store names ``subject``.

        For a key store that asks for pseudonymous subjects (a
        :class:`~learnprivacy.keys.KeyDatabase`): ``k1_`` and the URL-safe base64 of the
        first 16 bytes of HMAC-SHA256 under a key derived (HKDF) from this keyring's
        blind-index key, which lives wrapped in that store, never changes and is never
        shredded. The reference is stable across master-key rotation; without the master
        key it cannot be linked to the learner id. Other stores see the subject itself.
        """
        check_subject(subject)
        if not self._pseudonymous:
            return subject
        ref = self._refs.get(subject)
        if ref is None:
            digest = self._ref_mac().digest(subject.encode())[:16]
            ref = _KEY_REF_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")
            self._remember_refs({subject: ref})
        return ref

    def _key_refs(self, subjects: Iterable[str]) -> dict[str, str]:
        """:meth:`key_ref` of many subjects, by subject (a sweep names thousands)."""
        subjects = [check_subject(subject) for subject in subjects]
        if not self._pseudonymous:
            return {subject: subject for subject in subjects}
        digest = self._ref_mac().digest
        prefix, alphabet = _KEY_REF_PREFIX, _token.ENCODE_TABLE
        known = self._refs
        # key_ref's text in one pass: 16 bytes are 22 base64 characters and "==" (cut).
        refs = {
            subject: known.get(subject)
            or prefix
            + b2a_base64(digest(subject.encode())[:16], newline=False)[:22]
            .translate(alphabet)
            .decode()
            for subject in subjects
        }
        self._remember_refs(refs)
        return refs

    def _remember_refs(self, refs: dict[str, str]) -> None:
        known = self._refs
        if len(known) + len(refs) > _REFS_KEPT:
            known.clear()
        if len(refs) <= _REFS_KEPT:
            known.update(refs)

    def _ref_mac(self) -> PrekeyedHmac:
        mac = self._ref_key
        if mac is None:
            # The HMAC key is derived once, and its pads absorbed once.
            key = hmac.new(self._index_secret(), _KEY_REF_LABEL, hashlib.sha256).digest()
            mac = self._ref_key = PrekeyedHmac(key, b"")
        return mac

    def export_master_key(self) -> bytes:
        """The raw master key, to be saved in a secret manager. Handle with care."""
        return self._master.raw

    def verify(self) -> None:
        """Check that the key store belongs to this master key.

        The first call on an empty store records a check value (a wrapped random key);
        later calls unwrap it. Raises :class:`~learnprivacy.errors.WrongMasterKeyError`
        when the store was written under another master key.
        """
        self._system_key(_CHECK_SCOPE)
        self._verified = True

    def blind_index(self, *, size: int = 16) -> BlindIndex:
        """A :class:`BlindIndex` on this keyring's own blind-index key.

        The key is random, kept wrapped in the store like a data key, survives master key
        rotation, and is never shredded with a subject (see BlindIndex for what that means).
        """
        return BlindIndex(self._index_secret(), size=size)

    def pseudonymiser(self, domain: str, *, size: int = 16) -> Pseudonymiser:
        """A :class:`Pseudonymiser` for ``domain`` whose key this keyring derives.

        Pseudonyms are stable for the life of the key store: the key is derived from the
        blind-index key (random, kept wrapped in the store, unchanged by :meth:`rotate`,
        never shredded) with HKDF-SHA256, one key per domain. The same store therefore
        gives a learner the same pseudonym in a domain in every export, in its backups
        and in a copy made with ``learnprivacy.store.copy_store``; two domains, or two
        key stores, give unrelated pseudonyms, and a domain's key reveals nothing about
        another domain's. A keyring on an in-memory key store keeps its pseudonyms only
        as long as that store lives.
        """
        return Pseudonymiser(domain_key(self._index_secret(), domain), domain=domain, size=size)

    def share_index_key(self, bound: Keyring) -> None:
        """Derive pseudonyms and blind indexes as ``bound`` does (a store's keyring).

        ``Store(keyring=k)`` binds a new keyring on ``k``'s master key to the store's key
        table; this makes ``k`` itself give the store's pseudonyms too. Only a keyring
        on an in-memory key store (whose own index key lives nowhere) changes; one bound
        to another key store keeps its own.
        """
        if isinstance(self._store, InMemoryKeyStore) and bound is not self:
            self._index_key = bound._index_secret()
            self._ref_key = None
            self._refs.clear()

    def shred(self, subject: str, scope: str | None = None) -> int:
        """Destroy the data keys of ``subject`` in ``scope`` (all scopes when ``None``).

        Irreversible. Returns the number of keys destroyed; the (subject, scope) is
        remembered as shredded even when it had no key yet.
        """
        ref = self.key_ref(subject)
        if scope is not None:
            check_scope(scope)
        count = self._store.mark_shredded(ref, scope)
        self._cache.forget(subject)
        return count

    def shred_ref(self, ref: str, scope: str | None = None) -> int:
        """:meth:`shred` for the subject that :meth:`key_ref` names ``ref``.

        For work queued in a table that must not name the learner (the subject is not
        known here, so every cached key is forgotten; they reload on demand).
        """
        if scope is not None:
            check_scope(scope)
        count = self._store.mark_shredded(check_subject(ref), scope)
        self._cache.forget(None)
        return count

    def is_shredded(self, subject: str, scope: str = DEFAULT_SCOPE) -> bool:
        """Whether ``(subject, scope)`` was shredded and not revived since."""
        ref = self.key_ref(subject)
        return self._store.is_shredded(ref, check_scope(scope))

    def revive(self, subject: str, scope: str = DEFAULT_SCOPE) -> str:
        """Give a shredded ``(subject, scope)`` a fresh key and return its id.

        Values encrypted before the shred stay unreadable. Use it only when new data is
        lawfully collected for the same subject.
        """
        ref = self.key_ref(subject)
        check_scope(scope)
        entry, _key = self._create(ref, scope, revive=True)
        self._cache.forget(subject)
        return entry.key_id

    def retire(self, subject: str, scope: str = DEFAULT_SCOPE) -> int:
        """Stop encrypting with the current key of ``(subject, scope)``; return 0 or 1.

        The retired key still decrypts; the next encryption creates a new key. After
        re-encrypting old values, :meth:`destroy_key` removes the retired key for good.
        """
        ref = self.key_ref(subject)
        check_scope(scope)
        retired = 0
        for entry in self._store.list_entries(ref, scope):
            if entry.state is KeyState.ACTIVE:
                retired += self._store.update(attrs.evolve(entry, state=KeyState.RETIRED))
        self._cache.forget(subject)
        return retired

    def destroy_key(self, subject: str, key_id: str) -> bool:
        """Shred the single key ``key_id`` of ``subject``; ``False`` if it was not alive."""
        ref = self.key_ref(subject)
        destroyed = self._store.mark_shredded(ref, key_id=key_id) > 0
        self._cache.forget(subject)
        return destroyed

    def rotate(
        self,
        new_master_key: bytes | None = None,
        *,
        progress: ProgressReporter | None = None,
    ) -> str:
        """Switch to a new master key, rewrap every data key, return the new key's id.

        Save ``new_master_key`` *before* calling: once entries are rewrapped, only it opens
        them. Without an argument a random key is made; export it at once with
        :meth:`export_master_key`. Encrypted values are untouched and stay readable.

        **Interrupted?** Nothing is lost: every entry is wrapped under the old or the new
        key, and names which. Open a keyring on the new key with
        ``previous_master_keys=[old]`` (a store opens with it too) and call :meth:`rewrap`
        (``learnprivacy keys rotate --resume``) to finish.
        """
        new = MasterKey(os.urandom(KEY_SIZE) if new_master_key is None else new_master_key)
        if new.key_id != self._master.key_id:
            self._previous[self._master.key_id] = self._master
            if self._wrap_key.key_id == self._master.key_id:
                self._wrap_key = new
            self._master = new
        self.rewrap(progress=progress)
        return new.key_id

    def rewrap(
        self, *, progress: ProgressReporter | None = None, batch_size: int = BATCH_SIZE
    ) -> int:
        """Rewrap under the current master key every entry wrapped under a previous one.

        Returns how many entries were rewrapped. Entries are read a page at a time and
        written back ``batch_size`` per transaction (for stores that offer it), each
        naming its new master key, so an interruption at any point leaves every entry
        readable and a later call finishes the work. The store's check value is rewrapped
        last: the store only reports the new master key once every key is under it.
        ``progress`` (``expect``/``advance``) is told the number of entries, then each
        entry examined.
        """
        if type(batch_size) is not int or batch_size < 1:
            raise ValidationError("batch_size must be a positive int", field="batch_size")
        store = self._store
        paged = getattr(store, "iter_entries", None)
        update_many = getattr(store, "update_many", None)
        total = 0
        if progress is not None:
            counts = getattr(store, "counts", None)
            total = (
                sum(v for k, v in counts().items() if k in ("active", "retired", "shredded"))
                if counts is not None
                else sum(1 for _ in store.list_entries())
            )
            progress.expect(total)
        count = 0
        if self._bulk_rewrap_possible():
            count, examined = self._rewrap_bulk(batch_size, progress)
            if not cast(Any, store).epochs()[0]:
                # Every data key is under the current master key: the check value last.
                for entry in store.list_entries(SYSTEM_SUBJECT, _CHECK_SCOPE):
                    if entry.state is not KeyState.SHREDDED and (
                        entry.master_key_id != self._wrap_key.key_id
                    ):
                        count += self._rewrap_entry(entry)
                if progress is not None and total > examined:
                    progress.advance(total - examined)
                self._previous.clear()
                return count
            # A compaction began meanwhile: the pass below re-wraps the rest for its epoch.
        entries = paged() if paged is not None else iter(list(store.list_entries()))
        deferred: list[KeyEntry] = []
        pending: list[KeyEntry] = []
        for entry in entries:
            if entry.state is KeyState.SHREDDED or entry.master_key_id == self._wrap_key.key_id:
                pass
            elif entry.subject == SYSTEM_SUBJECT and entry.scope == _CHECK_SCOPE:
                deferred.append(entry)
            elif update_many is None:
                count += self._rewrap_entry(entry)
            else:
                pending.append(self._rewrapped(entry))
                if len(pending) >= batch_size:
                    count += update_many(pending, **self._epoch_rewrap())
                    pending = []
            if progress is not None:
                progress.advance(1)
        if pending and update_many is not None:
            count += update_many(pending, **self._epoch_rewrap())
        for entry in deferred:
            count += self._rewrap_entry(entry)
        self._previous.clear()
        return count

    def _bulk_rewrap_possible(self) -> bool:
        """Whether the store re-wraps in bulk (a key database, a store's keys) and names
        no epoch: data keys are then under master keys, re-wrapped as plain rows."""
        store: Any = self._store
        if not getattr(store, "bulk_rewrap", False):
            return False
        return not store.epochs()[0] and self._wrap_key is self._master

    def _rewrap_bulk(self, batch_size: int, progress: ProgressReporter | None) -> tuple[int, int]:
        """The key database's bulk pass of :meth:`rewrap`: every live data key under the
        master key, the check value left for last; ``(re-wrapped, examined)``. Stops,
        the current batch unwritten, if a compaction names an epoch meanwhile."""
        store: Any = self._store
        target = self._master.key_id
        tally = _Tally(progress)
        count = int(
            store.rewrap_live(
                target,
                self._rewrapper(target),
                batch_size=batch_size,
                progress=tally,
                skip=(SYSTEM_SUBJECT, _CHECK_SCOPE),
                stop_at_epoch=True,
            )
        )
        return count, tally.seen

    def rewrap_entry(self, entry: KeyEntry, *, subject: str) -> KeyEntry:
        """``entry`` wrapped again under the current master key for store name ``subject``.

        For moving keys between stores that name subjects differently (a store's old key
        table to its key database). A shredded entry only gets the new name.
        """
        if entry.state is KeyState.SHREDDED:
            return attrs.evolve(entry, subject=subject)
        key = self._unwrap(entry)
        wrapped = self._wrap_key.wrap(key, subject=subject, scope=entry.scope, key_id=entry.key_id)
        return attrs.evolve(
            entry, subject=subject, master_key_id=self._wrap_key.key_id, wrapped=wrapped
        )

    def clear_cache(self, subject: str | None = None) -> None:
        """Forget unwrapped keys (of ``subject`` only, or all); they reload on demand."""
        self._cache.forget(subject)

    def _forget_many(self, subjects: Iterable[str]) -> None:
        """:meth:`clear_cache` for many subjects at once (after a sweep's shreds)."""
        self._cache.forget_many(subjects)

    # -- used by FieldCipher -------------------------------------------------------------

    def _sealer(self, subject: str, scope: str) -> _token.Sealer:
        """What encrypting for ``(subject, scope)`` needs; creates the key if there is none."""
        ref = self.key_ref(subject)
        check_scope(scope)
        return self._sealer_of(subject, ref, scope)

    def _sealers(self, subjects: Iterable[str], scope: str, *, skip_shredded: bool = False) -> None:
        """:meth:`_sealer` for many subjects of one scope (a flush's new learners, inside
        the store's ``batch``): references computed in one pass, checks done once, and the
        random material of every new key (key, id, wrapping nonce) drawn in one call.
        A subject whose keys of ``scope`` were shredded raises ``KeyShreddedError``, or
        is left without a key when ``skip_shredded`` (the others still get theirs)."""
        check_scope(scope)
        if not self._verified:
            self.verify()
        # Read before any entry below is (inside a batch: with its prefetch), it dates
        # the keys this call puts in the cache.
        mark = self._entries_mark()
        lister = self._store.list_entries
        cached = self._cache.subjects
        # A subject whose sealer of this scope is cached is left as it is: encryption
        # would use that one without asking the store.
        wanted = [s for s in subjects if s not in cached or scope not in cached[s].sealers]
        new: list[tuple[str, str]] = []
        for subject, ref in self._key_refs(wanted).items():
            entry = _active(lister(ref, scope))
            if entry is None:
                new.append((subject, ref))
            else:
                self._seal(subject, scope, entry, None, mark)
        size = _FRESH_SIZE
        material = os.urandom(size * len(new))
        rewrap = self._epoch_rewrap()
        wrapping = self._wrap_key
        wrap = wrapping.wrapper(scope)
        made_now: list[tuple[str, _token.Sealer]] = []
        for at, (subject, ref) in enumerate(new):
            if self._wrap_key is not wrapping:  # a store's add() moved to a new epoch key
                wrapping = self._wrap_key
                wrap = wrapping.wrapper(scope)
            fresh = material[at * size : (at + 1) * size]
            try:
                made = self._add_wrapped(wrapping, wrap, ref, scope, fresh, False, rewrap)
            except KeyShreddedError:
                if skip_shredded:
                    continue
                raise
            made_now.append((subject, self._seal(subject, scope, *made, mark)))
        # The keys are made to be used at once (a flush encrypts with them next): the
        # cipher's short paths get them now rather than through a miss on first use.
        self._cache.remember_texts(scope, made_now)

    def _sealer_of(self, subject: str, ref: str, scope: str) -> _token.Sealer:
        entry = _active(self._store.list_entries(ref, scope))
        key = None
        if entry is None:
            entry, key = self._create(ref, scope, revive=False)
        return self._seal(subject, scope, entry, key)

    def _seal(
        self,
        subject: str,
        scope: str,
        entry: KeyEntry,
        key: bytes | None,
        mark: str | None = None,
    ) -> _token.Sealer:
        """Cache the sealer of ``entry``, the active key of ``(subject, scope)``; ``key``
        is its raw key when it was just made, ``mark`` the shred mark read before
        ``entry`` was (see :meth:`_aead`)."""
        keys = self._cache.entry(subject)
        sealer = _token.make_sealer(
            self._aead(keys, entry, key, mark), bytes.fromhex(entry.key_id), subject
        )
        keys.sealers[scope] = sealer
        # The openers of the active key share the sealer's header text and associated-data
        # prefix: a value read back soon after it was written finds them without a miss.
        keys.openers.update(_token.openers_of(sealer))
        return sealer

    def _opener(self, subject: str, head: bytes) -> _token.Opener:
        """What decrypting tokens with header ``head`` for ``subject`` needs."""
        ref = self.key_ref(subject)
        key_id = _token.parse_header(head).hex()
        entry = self._store.get(ref, key_id)
        if entry is None:
            raise _token.decryption_failed()
        if entry.state is KeyState.SHREDDED:
            raise KeyShreddedError("the data key of this value was shredded; it is gone")
        keys = self._cache.entry(subject)
        opener = _token.make_opener(self._aead(keys, entry), head, subject)
        keys.openers[_token.header_text(head)] = opener
        return opener

    def _openers_of_subjects(self, refs: Mapping[str, str]) -> dict[str, dict[str, _token.Opener]]:
        """Openers of the live data keys of each subject of ``refs`` (subject -> its
        :meth:`key_ref`), by subject, then by token header text: what a page of rows
        read together needs, fetched and unwrapped in one pass.

        :meth:`_live_keys` then :meth:`_open_keys` for every subject; see those.
        """
        found: dict[str, dict[str, _token.Opener]] = {}
        self._open_keys(self._live_keys(refs), refs, found)
        return found

    def _live_keys(self, refs: Mapping[str, str]) -> dict[str, list[_LiveKey]]:
        """The wrapped live keys of each subject of ``refs`` (subject -> its
        :meth:`key_ref`), by subject, as ``(ref, scope, key_id, master key id, wrapped)``:
        fetched, not unwrapped (see :meth:`_open_keys`).

        A key store with ``live_entries(refs)`` (the key database) answers in a few
        queries; any other is asked subject by subject.
        """
        subjects = {ref: subject for subject, ref in refs.items()}
        bulk = getattr(self._store, "live_entries", None)
        live: Iterable[_LiveKey]
        if bulk is not None:
            live = bulk(list(subjects))
        else:
            live = [
                (ref, e.scope, e.key_id, e.master_key_id, e.wrapped)
                for ref in subjects
                for e in self._store.list_entries(ref)
                if e.state is not KeyState.SHREDDED
            ]
        keys: dict[str, list[_LiveKey]] = {}
        for key in live:
            subject = subjects.get(key[0])
            if subject is not None:
                mine = keys.get(subject)
                if mine is None:
                    keys[subject] = [key]
                else:
                    mine.append(key)
        return keys

    def _open_keys(
        self,
        live: Mapping[str, Sequence[_LiveKey]],
        subjects: Iterable[str],
        found: dict[str, dict[str, _token.Opener]],
    ) -> None:
        """Put in ``found`` the openers of ``live`` (see :meth:`_live_keys`) of each of
        ``subjects`` not in it yet, by token header text; a subject without live keys
        gets an empty mapping.

        Only keys that :meth:`_opener` would open are here. A shredded key, a key
        wrapped under a master key this keyring does not hold, or a wrapped key that does
        not open is left out, so that its tokens take the one-token path and meet the
        error they always met (``KeyShreddedError``, ``WrongMasterKeyError``); a token
        naming an unknown key finds no opener either (``DecryptionError``). The keys are
        not put in the cache: a page may hold more subjects than the cache does. A subject
        whose cache holds a key that ``live`` leaves out (shredded or destroyed since, by
        another process or keyring) is dropped from the cache: its tokens are then refused
        as the key database says, not opened from memory.

        A reader unwraps the keys of a few hundred rows, reads those rows, then the
        next: the AES-GCM objects are used while they are still in the CPU's caches.
        """
        # Looked up per call, never kept: a compaction may destroy an epoch key meanwhile.
        unwrappers: dict[str, Callable[[bytes, bytes, bytes], bytes]] = {}
        text = _token.KIND_TEXT
        # The header of a text token is these four bytes and the key id; its token text
        # is the prefix and the header's base64 (what _token.header_text computes).
        head_start = _token.header(text, b"")
        prefix, alphabet = _token.PREFIX, _token.ENCODE_TABLE
        # wrap_associated_data(ref, scope, key_id) and _token.subject_part(subject) built
        # inline, the part naming a scope made once per scope: one pass over thousands
        # of keys (tests compare the openers with those _opener makes).
        length = _LENGTH
        scoped: dict[str, bytes] = {}
        nothing: Sequence[_LiveKey] = ()
        cached = self._cache.subjects
        stale: list[str] = []
        for subject in subjects:
            if subject in found:
                continue
            mine: dict[str, _token.Opener] = {}
            found[subject] = mine
            name = subject.encode()
            tail = length(len(name)) + name
            alive = live.get(subject, nothing)
            if _outlived(cached.get(subject), alive):
                stale.append(subject)
            for ref, scope, key_id, wrapping, wrapped in alive:
                unwrap = unwrappers.get(wrapping)
                if unwrap is None:
                    master = self._known_key(wrapping)
                    if master is None:
                        continue
                    unwrap = unwrappers[wrapping] = master._kek.decrypt
                where = scoped.get(scope)
                if where is None:
                    where = scoped[scope] = length(len(scope.encode())) + scope.encode()
                who, which = ref.encode(), key_id.encode()
                try:
                    raw = unwrap(
                        wrapped[:12],
                        wrapped[12:],
                        b"".join(
                            (_KEK_PART, length(len(who)), who, where, length(len(which)), which)
                        ),
                    )
                    head = head_start + bytes.fromhex(key_id)
                    aead = AESGCM(raw)
                except (InvalidTag, ValueError):
                    continue
                # The store writes text tokens only: a token of the other kind finds no
                # opener here and is refused by the one-token path, as ever.
                header_text = prefix + b2a_base64(head, newline=False).translate(alphabet).decode()
                mine[header_text] = (aead, head + tail, text)
        if stale:
            self._cache.forget_many(stale)

    def _drop_stale(self, subjects: Iterable[str]) -> None:
        """Forget the cached keys of those of ``subjects`` that hold a key the key store
        no longer lists live (shredded or destroyed since, by another process or keyring):
        their tokens are then refused as the key database says, not opened from memory.
        Subjects with nothing cached cost nothing.

        A key store with a *shred mark* (``shred_mark()``: a value it changes in the
        same transaction as every change that takes a live key away) is asked for it
        first, in one small query: subjects whose cached keys were read, or last
        confirmed live, after the store showed that same mark are kept without a
        look-up, as nothing was shredded since. The others (and every subject, with a
        store that has no mark) are looked up in one query for all; those found live
        are dated with the mark just read. The mark is read before the look-up, so the
        look-up sees every shred committed before this call began.
        """
        cache = self._cache
        cached = cache.subjects
        held = [subject for subject in subjects if subject in cached]
        if not held:
            return
        mark = self._current_mark()
        if mark is not None:
            get = cached.get
            held = [s for s in held if (keys := get(s)) is not None and keys.checked != mark]
            if not held:
                return
        # Taken before the look-up, which then sees every key of these entries: a key
        # added after it is not vouched for by the look-up (see KeyCache.confirm).
        snapshot = cache.snapshot(held)
        live = self._live_keys(self._key_refs(snapshot))
        nothing: Sequence[_LiveKey] = ()
        stale = [s for s, v in snapshot.items() if _outlived(v[0], live.get(s, nothing))]
        if stale:
            cache.forget_many(stale)
        if mark is not None:
            gone = set(stale)
            cache.confirm((v for s, v in snapshot.items() if s not in gone), mark)

    def _current_mark(self) -> str | None:
        """The key store's shred mark as committed now, or ``None`` if it keeps none."""
        read = getattr(self._store, "shred_mark", None)
        return None if read is None else cast("str | None", read())

    def _entries_mark(self) -> str | None:
        """A shred mark read before the entries the store is about to give this thread:
        inside the store's ``batch()``, the one its prefetch read (``batch_mark()``),
        else the current one. ``None`` when the store cannot tell (no mark, or a batch
        it cannot date): the keys read then are looked up at their next fetch."""
        batch_mark = getattr(self._store, "batch_mark", None)
        if batch_mark is None:
            return None
        found = batch_mark()
        if found is not None:
            return cast(str, found)
        return self._current_mark()

    # -- internals -----------------------------------------------------------------------

    def _aead(
        self,
        keys: SubjectKeys,
        entry: KeyEntry,
        key: bytes | None = None,
        mark: str | None = None,
    ) -> AESGCM:
        """The AES-GCM object of ``entry``; ``key`` is its raw key when the caller has
        just made it, which spares unwrapping what was wrapped a moment ago. ``mark``:
        the key store's shred mark read before ``entry`` was (``None``: unknown), which
        dates the key in the cache (see :meth:`_drop_stale`).
        """
        aead = keys.aeads.get(entry.key_id)
        if aead is None:
            raw = self._unwrap(entry) if key is None else key
            aead = self._cache.admit(keys, entry.key_id, AESGCM(raw), mark)
        return aead

    def _known_key(self, key_id: str) -> MasterKey | None:
        if key_id == self._wrap_key.key_id:
            return self._wrap_key
        if key_id == self._master.key_id:
            return self._master
        found = self._previous.get(key_id)
        if found is None and self._epoch_loader is not None:
            raw = self._epoch_loader(key_id)
            if raw is not None:
                found = self._previous[key_id] = MasterKey(raw)
        return found

    def _rewrap_for_epoch(self, epoch_id: str, entries: Sequence[KeyEntry]) -> list[KeyEntry]:
        """``entries`` wrapped under epoch key ``epoch_id``, which wraps new keys from now
        on: the key store names it current, a compaction elsewhere having destroyed the
        epoch key this keyring was using (kept in memory here to unwrap ``entries``).

        Raises :class:`~learnprivacy.errors.ConfigurationError` when that epoch key
        cannot be loaded from the vault: the caller writes nothing.
        """
        if self._wrap_key.key_id != epoch_id:
            target = self._known_key(epoch_id)
            if target is None:
                raise ConfigurationError(
                    "the key database's current epoch key is not in this store's vault: "
                    "another process compacted the keys with another vault, or the vault "
                    "cannot be read; nothing was written"
                )
            if self._wrap_key is not self._master:
                self._previous[self._wrap_key.key_id] = self._wrap_key
            self._wrap_key = target
        return [
            entry
            if entry.state is KeyState.SHREDDED or entry.master_key_id == epoch_id
            else self._rewrapped(entry)
            for entry in entries
        ]

    def _rewrapper(self, target_id: str) -> Callable[[str, str, str, str, bytes], bytes]:
        """``f(subject, scope, key_id, wrapping_id, wrapped)``: that key wrapped under
        ``target_id`` (a key this keyring holds), for bulk re-wrapping. The associated
        data is the same before and after, so it is computed once per key."""
        target = self._known_key(target_id)
        if target is None:
            raise ConfigurationError("the target epoch key is not in this keyring")
        seal = target._kek.encrypt
        openers: dict[str, Callable[[bytes, bytes, bytes], bytes]] = {}
        urandom = os.urandom
        pack = struct.Struct(">I").pack
        label = length_prefixed(_KEK_LABEL)

        def rewrap(
            subject: str, scope: str, key_id: str, wrapping_id: str, wrapped: bytes
        ) -> bytes:
            opener = openers.get(wrapping_id)
            if opener is None:
                key = self._known_key(wrapping_id)
                if key is None:
                    raise WrongMasterKeyError(
                        f"a key in the store is wrapped under master key {wrapping_id!r}, "
                        f"this keyring holds {self._master.key_id!r}"
                    )
                opener = openers[wrapping_id] = key._kek.decrypt
            # wrap_associated_data, inlined: the same bytes at a third of the cost.
            s, c, k = subject.encode(), scope.encode(), key_id.encode()
            aad = b"".join((label, pack(len(s)), s, pack(len(c)), c, pack(len(k)), k))
            try:
                raw = opener(wrapped[:12], wrapped[12:], aad)
            except InvalidTag:
                raise WrongMasterKeyError(
                    "a wrapped key does not open with the master key it names: "
                    "the key store was altered or the master key is wrong"
                ) from None
            nonce = urandom(12)
            return nonce + seal(nonce, raw, aad)

        return rewrap

    def _epoch_rewrap(self) -> dict[str, Callable[[str, Sequence[KeyEntry]], list[KeyEntry]]]:
        """The ``rewrap=`` keyword for key stores that check epochs on each write."""
        if getattr(self._store, "checks_epochs", False):
            return {"rewrap": self._rewrap_for_epoch}
        return {}

    def _master_for(self, entry: KeyEntry) -> MasterKey:
        previous = self._known_key(entry.master_key_id)
        if previous is None:
            raise WrongMasterKeyError(
                f"a key in the store is wrapped under master key {entry.master_key_id!r}, "
                f"this keyring holds {self._master.key_id!r}"
            )
        return previous

    def _unwrap(self, entry: KeyEntry) -> bytes:
        try:
            return self._master_for(entry).unwrap(
                entry.wrapped, subject=entry.subject, scope=entry.scope, key_id=entry.key_id
            )
        except InvalidTag:
            raise WrongMasterKeyError(
                "a wrapped key does not open with the master key it names: "
                "the key store was altered or the master key is wrong"
            ) from None

    def _add_new_key(
        self, subject: str, scope: str, *, revive: bool = False, fresh: bytes | None = None
    ) -> tuple[KeyEntry, bytes | None]:
        """Wrap a fresh random key, add it to the store; return the stored entry and,
        when that entry is the new key, its raw bytes (``None`` when a concurrent writer's
        key won, which must then be unwrapped).

        ``fresh``: :data:`_FRESH_SIZE` bytes from ``os.urandom`` the caller drew for this
        key alone (key, key id, wrapping nonce, in that order); drawn here if ``None``.
        """
        if fresh is None:
            fresh = os.urandom(_FRESH_SIZE)
        wrapping = self._wrap_key
        return self._add_wrapped(
            wrapping, wrapping.wrapper(scope), subject, scope, fresh, revive, self._epoch_rewrap()
        )

    def _add_wrapped(
        self,
        wrapping: MasterKey,
        wrap: Callable[[bytes, str, str, bytes], bytes],
        subject: str,
        scope: str,
        fresh: bytes,
        revive: bool,
        rewrap: Mapping[str, Any],
    ) -> tuple[KeyEntry, bytes | None]:
        """:meth:`_add_new_key` with its set-up done by the caller, once for many keys:
        ``wrap`` is ``wrapping.wrapper(scope)``, ``rewrap`` :meth:`_epoch_rewrap`."""
        key = fresh[:KEY_SIZE]
        key_id = fresh[KEY_SIZE:_NONCE_AT].hex()
        entry = KeyEntry(
            subject=subject,
            scope=scope,
            key_id=key_id,
            state=KeyState.ACTIVE,
            master_key_id=wrapping.key_id,
            wrapped=wrap(key, subject, key_id, fresh[_NONCE_AT:]),
        )
        stored = self._store.add(entry, revive=revive, **rewrap)
        return stored, (key if stored.key_id == key_id else None)

    def _create(self, subject: str, scope: str, *, revive: bool) -> tuple[KeyEntry, bytes | None]:
        # The first key a keyring creates binds an empty store to its master key, so that a
        # later keyring opened on the wrong master key is refused by verify().
        if not self._verified:
            self.verify()
        return self._add_new_key(subject, scope, revive=revive)

    def _index_secret(self) -> bytes:
        # The key never changes (rotation rewraps it, shredding never touches it), so it
        # is unwrapped once per keyring.
        if self._index_key is None:
            self._index_key = self._system_key(_BLIND_INDEX_SCOPE)
        return self._index_key

    def _system_key(self, scope: str) -> bytes:
        entry = _active(self._store.list_entries(SYSTEM_SUBJECT, scope))
        if entry is None:
            if scope == _CHECK_SCOPE:
                # A store that already holds keys but no check value was written by an
                # older or foreign keyring: trust it only if its keys name our master key.
                for existing in self._store.list_entries():
                    if existing.state is not KeyState.SHREDDED:
                        self._master_for(existing)
                        break
            entry, key = self._add_new_key(SYSTEM_SUBJECT, scope)
            if key is not None:
                return key
        return self._unwrap(entry)

    def _rewrapped(self, entry: KeyEntry) -> KeyEntry:
        key = self._unwrap(entry)
        wrapped = self._wrap_key.wrap(
            key, subject=entry.subject, scope=entry.scope, key_id=entry.key_id
        )
        # Built directly rather than with attrs.evolve: rotation makes one per key.
        return KeyEntry(
            subject=entry.subject,
            scope=entry.scope,
            key_id=entry.key_id,
            state=entry.state,
            master_key_id=self._wrap_key.key_id,
            wrapped=wrapped,
        )

    def _rewrap_entry(self, entry: KeyEntry) -> int:
        return int(self._store.update(self._rewrapped(entry), **self._epoch_rewrap()))


class _Tally:
    """Counts the entries a bulk pass examined, telling ``progress`` too."""

    __slots__ = ("progress", "seen")

    def __init__(self, progress: ProgressReporter | None) -> None:
        self.progress = progress
        self.seen = 0

    def advance(self, n: int) -> None:
        self.seen += n
        if self.progress is not None:
            self.progress.advance(n)


def _outlived(held: SubjectKeys | None, alive: Sequence[_LiveKey]) -> bool:
    """Whether cached keys ``held`` name a key that ``alive`` (the key store's live keys
    of the same subject) no longer lists."""
    return held is not None and not {key[2] for key in alive}.issuperset(held.aeads)


def _active(entries: Iterable[KeyEntry]) -> KeyEntry | None:
    for entry in entries:
        if entry.state is KeyState.ACTIVE:
            return entry
    return None
