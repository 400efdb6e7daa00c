"""Key epochs: data keys wrapped under an epoch key that a vault holds and compaction destroys.

The hierarchy is master key -> epoch key -> data keys. The key database holds data keys
wrapped under the current epoch key; the vault (a small file apart from both databases)
holds the epoch key wrapped under the master key. :func:`compact` wraps every live data
key under a new epoch key, then overwrites the vault so that only the new epoch key is
left. A copy of the key database taken before (a file copy, ``pg_dump``, dead tuples,
the WAL) holds the erased learners' keys wrapped under an epoch key that exists nowhere
any more: with the master key and the current vault it opens nothing of them.

**The vault file** has two fixed-size slots, each holding the whole state with a
sequence number and a SHA-256 checksum. A write goes to one slot, is synced, then is
copied over the other slot and synced again: a torn write leaves the other slot valid,
and once both writes are done no slot holds the previous state. The file is overwritten
in place, never replaced by a new file (which would leave the old blocks unlinked but
intact on disk). Copy-on-write file systems and SSD wear levelling may still keep old
blocks: see docs/security.md.

**Crash safety.** The vault holds the old and the new epoch key from the moment a
compaction starts until every data key is wrapped under the new one and the key
database names it current; only then is the old one dropped. Killed at any point, a
store opens (every data key names the epoch it is wrapped under, and the vault holds it)
and running the compaction again finishes.

**Writers in other processes.** The key database records which epoch is current (and,
during a compaction, which is next) in one row of ``lpk_meta``. Every transaction that
writes a wrapped data key reads that row locked and checks that the key is wrapped
under the current (or next) epoch; a process that loaded an epoch key a compaction has
destroyed since re-wraps its keys under the current one (read from the vault) before
inserting them, or raises ``ConfigurationError`` and inserts nothing. The last re-wrap
pass of a compaction and the switch of the current epoch are one transaction holding
that row, so no key is written under the old epoch after the switch.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag

from learnprivacy._progress import ProgressReporter
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.crypto._master import MasterKey
from learnprivacy.crypto._validate import KEY_SIZE
from learnprivacy.errors import ConfigurationError, WrongMasterKeyError
from learnprivacy.store._keydb import KeyDatabase

if TYPE_CHECKING:
    from learnprivacy.crypto import Keyring
    from learnprivacy.crypto._keystore import KeyEntry

__all__ = [
    "CompactionReport",
    "EpochKeys",
    "FileVault",
    "MemoryVault",
    "Vault",
    "compact",
    "compaction_details",
    "default_vault",
    "open_epochs",
    "sync_path",
]

_MAGIC = b"LPV1"
_SLOT = 4096
_HEADER = struct.Struct(">4sQI")  # magic, sequence, payload length
_DIGEST = 32
_VAULT_SUBJECT = "learnprivacy:vault"
_VAULT_SCOPE = "epoch"
# Rows of the key database's lpk_meta written by compaction.
_META_EPOCHS = "epochs"
_META_COMPACTED_AT = "compacted_at"
_META_EPOCH_NUMBER = "epoch_number"
_META_ERASED_AT_COMPACTION = "erased_at_compaction"


class EpochKeys(Protocol):
    """What compaction needs of a key store: the store's :class:`KeyDatabase` and
    ``learnprivacy.django``'s key store both provide it. ``connection`` is whatever
    :meth:`epoch_transaction` yields (a SQLAlchemy connection, a Django cursor): one
    transaction holding the key store's epoch row exclusively."""

    def epochs(self) -> tuple[str, str]: ...
    def epoch_transaction(self) -> AbstractContextManager[tuple[Any, str, str]]: ...
    def set_epochs(self, connection: Any, current: str, nxt: str) -> None: ...
    def meta_in(self, connection: Any) -> dict[str, str]: ...
    def put_meta(self, connection: Any, values: dict[str, str]) -> None: ...
    def erased_in(self, connection: Any) -> int: ...
    def read_meta(self) -> dict[str, str]: ...
    def erased_subjects(self) -> int: ...
    def counts(self) -> dict[str, int]: ...
    def count_not_under(self, target: str) -> int: ...
    def rewrap_all_in(
        self,
        connection: Any,
        target: str,
        rewrap: Callable[[Sequence[KeyEntry]], list[KeyEntry]],
    ) -> int: ...
    def rewrap_live(
        self,
        target: str,
        rewrap: Callable[[str, str, str, str, bytes], bytes],
        *,
        batch_size: int = ...,
        progress: Any = ...,
    ) -> int: ...


class Vault(Protocol):
    """Where the epoch keys live: ``read`` the state (``None`` if never written), ``write``
    it durably, destroying what was there before."""

    def read(self) -> dict[str, Any] | None:
        """The state last written, or ``None``."""
        ...

    def write(self, state: dict[str, Any]) -> None:
        """Replace the state; when this returns, the previous state is gone."""
        ...

    def describe(self) -> str:
        """Where the vault is, for status displays (never a key)."""
        ...


class MemoryVault:
    """A vault in memory, for stores whose key database is in memory too."""

    __slots__ = ("_lock", "_state")

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryVault()"

    def read(self) -> dict[str, Any] | None:
        """The state last written, or ``None``."""
        with self._lock:
            return None if self._state is None else json.loads(json.dumps(self._state))

    def write(self, state: dict[str, Any]) -> None:
        """Replace the state."""
        with self._lock:
            self._state = json.loads(json.dumps(state))

    def describe(self) -> str:
        """``memory``."""
        return "memory"


class FileVault:
    """A vault file of two checksummed slots, overwritten in place and synced.

    The file holds epoch keys wrapped under the master key only; it is useless without
    the master key, and the master key opens no data key without it.
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """A vault at ``path`` (created by the first :meth:`write`)."""
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileVault({str(self.path)!r})"

    def describe(self) -> str:
        """The vault file's path."""
        return str(self.path)

    def _slots(self) -> list[tuple[int, bytes] | None]:
        data = self.path.read_bytes()
        found: list[tuple[int, bytes] | None] = []
        for index in range(2):
            raw = data[index * _SLOT : (index + 1) * _SLOT]
            found.append(_parse_slot(raw))
        return found

    def read(self) -> dict[str, Any] | None:
        """The state of the newest valid slot; ``None`` if the file does not exist.

        A slot left stale by an interrupted write is overwritten with the newest state.
        """
        if not self.path.exists():
            return None
        slots = self._slots()
        valid = [s for s in slots if s is not None]
        if not valid:
            raise ConfigurationError(f"the vault {self.path} is damaged: no valid slot")
        sequence, payload = max(valid)
        if any(s != (sequence, payload) for s in slots):
            self._write_slots(sequence, payload, first=0)
        state: dict[str, Any] = json.loads(payload)
        state["sequence"] = sequence
        return state

    def write(self, state: dict[str, Any]) -> None:
        """Write ``state`` to both slots in turn, syncing after each."""
        body = {k: v for k, v in state.items() if k != "sequence"}
        payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        if _HEADER.size + len(payload) + _DIGEST > _SLOT:
            raise ConfigurationError("the vault state is too large for its slot")
        if self.path.exists():
            slots = self._slots()
            valid = [s for s in slots if s is not None]
            sequence = max(valid)[0] + 1 if valid else 1
            # The slot holding the newest state is written last.
            newest = max(range(2), key=lambda i: slots[i] or (-1, b""))
            first = 1 - newest
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, bytes(2 * _SLOT))
                os.fsync(fd)
            finally:
                os.close(fd)
            sync_path(self.path.parent)
            sequence, first = 1, 0
        self._write_slots(sequence, payload, first=first)

    def _write_slots(self, sequence: int, payload: bytes, *, first: int) -> None:
        slot = _make_slot(sequence, payload)
        fd = os.open(self.path, os.O_RDWR)
        try:
            for index in (first, 1 - first):
                os.pwrite(fd, slot, index * _SLOT)
                os.fsync(fd)
        finally:
            os.close(fd)


def _make_slot(sequence: int, payload: bytes) -> bytes:
    header = _HEADER.pack(_MAGIC, sequence, len(payload))
    digest = hashlib.sha256(header + payload).digest()
    return (header + payload + digest).ljust(_SLOT, b"\0")


def _parse_slot(raw: bytes) -> tuple[int, bytes] | None:
    if len(raw) < _HEADER.size:
        return None
    magic, sequence, length = _HEADER.unpack_from(raw)
    end = _HEADER.size + length
    if magic != _MAGIC or end + _DIGEST > len(raw):
        return None
    payload = raw[_HEADER.size : end]
    if hashlib.sha256(raw[:end]).digest() != raw[end : end + _DIGEST]:
        return None
    return int(sequence), bytes(payload)


def sync_path(path: Path) -> None:
    """Flush ``path`` (a file or a directory: a new entry in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_vault(keys: KeyDatabase) -> Vault:
    """The vault of a key database: ``lms.keys.db`` -> ``lms.keys.vault`` beside it; for a
    PostgreSQL key database ``<database name>.vault`` in the working directory; an
    in-memory key database gets an in-memory vault."""
    url = keys.engine.url
    database = url.database
    if url.get_backend_name() == "sqlite":
        if database in (None, "", ":memory:") or str(database).startswith("file::memory:"):
            return MemoryVault()
        path = Path(str(database))
        return FileVault(path.with_name(path.name.removesuffix(".db") + ".vault"))
    if not database:
        raise ConfigurationError("the key database URL names no database: pass vault=")
    return FileVault(Path.cwd() / f"{database}.vault")


def as_vault(vault: Vault | str | os.PathLike[str] | None, keys: KeyDatabase) -> Vault:
    """``vault`` as given (a path or a vault object), or the default of ``keys``."""
    if vault is None:
        return default_vault(keys)
    if isinstance(vault, (str, os.PathLike)):
        return FileVault(vault)
    if not all(hasattr(vault, name) for name in ("read", "write", "describe")):
        raise ConfigurationError("vault= must be a path or a vault (read/write/describe)")
    return vault


# -- the state: {"epochs": {id: wrapped b64}, "master_key_id", "current", "next", ...} ----


def _wrap_epoch(master: MasterKey, raw: bytes, epoch_id: str) -> str:
    wrapped = master.wrap(raw, subject=_VAULT_SUBJECT, scope=_VAULT_SCOPE, key_id=epoch_id)
    return base64.b64encode(wrapped).decode()


def _unwrap_epochs(
    state: dict[str, Any], masters: list[MasterKey]
) -> tuple[dict[str, bytes], bool]:
    """Every epoch key of ``state``, and whether it was wrapped under a previous master."""
    master_id = state.get("master_key_id")
    by_id = {m.key_id: m for m in masters}
    master = by_id.get(str(master_id))
    if master is None:
        raise WrongMasterKeyError(
            f"the vault's epoch keys are wrapped under master key {master_id!r}, "
            f"this keyring holds {masters[0].key_id!r}"
        )
    found: dict[str, bytes] = {}
    for epoch_id, text in state["epochs"].items():
        try:
            raw = master.unwrap(
                base64.b64decode(text),
                subject=_VAULT_SUBJECT,
                scope=_VAULT_SCOPE,
                key_id=epoch_id,
            )
        except (InvalidTag, ValueError):
            raise WrongMasterKeyError(
                "an epoch key of the vault does not open with the master key it names: "
                "the vault was altered or the master key is wrong"
            ) from None
        found[epoch_id] = raw
    return found, master is not masters[0]


def _state(
    master: MasterKey, epochs: dict[str, bytes], current: str | None, nxt: str | None, **extra: Any
) -> dict[str, Any]:
    return {
        "version": 1,
        "master_key_id": master.key_id,
        "epochs": {eid: _wrap_epoch(master, raw, eid) for eid, raw in epochs.items()},
        "current": current,
        "next": nxt,
        **extra,
    }


def _masters(keyring: Keyring) -> list[MasterKey]:
    current = MasterKey(keyring.export_master_key())
    return [current, *keyring._previous.values()]


def _loader(keyring: Keyring, vault: Vault) -> Callable[[str], bytes | None]:
    """Reads one epoch key by id from ``vault`` (``None`` if it holds no such key)."""

    def load(epoch_id: str) -> bytes | None:
        state = vault.read()
        if state is None or epoch_id not in state.get("epochs", {}):
            return None
        return _unwrap_epochs(state, _masters(keyring))[0].get(epoch_id)

    return load


def open_epochs(keyring: Keyring, keys: EpochKeys, vault: Vault) -> dict[str, Any] | None:
    """Give ``keyring`` the epoch keys of ``vault``; the vault state (``None``: no epoch
    yet, data keys wrapped directly under the master key).

    New data keys are wrapped under the epoch the key database names as current (the
    vault may still hold the previous one, if a compaction was interrupted before it
    dropped it). The keyring also learns to read epoch keys from the vault later, when
    a compaction in another process moves the key database to a new epoch. A vault
    whose epoch keys are wrapped under a previous master key (a master-key rotation under
    way) is rewritten under the current one. A key database that moved to epochs refuses
    to open without its vault.
    """
    loader = _loader(keyring, vault)
    state = vault.read()
    current, _nxt = keys.epochs()
    if state is None:
        if current or _read_meta(keys).get(_META_EPOCHS):
            raise ConfigurationError(
                f"the key database's data keys are wrapped under epoch keys, and its vault "
                f"({vault.describe()}) is missing: open the store with vault= pointing at it"
            )
        keyring.use_epoch(None, loader=loader)
        return None
    epochs, stale = _unwrap_epochs(state, _masters(keyring))
    if stale or (not current and state.get("current")):
        with keys.epoch_transaction() as (connection, current, nxt):
            state = vault.read()
            if state is None:
                raise ConfigurationError(f"the vault ({vault.describe()}) disappeared")
            epochs, stale = _unwrap_epochs(state, _masters(keyring))
            if not current and state.get("current"):
                # A key database compacted before it recorded its epochs: the vault says.
                if not keys.meta_in(connection).get(_META_EPOCHS):
                    raise ConfigurationError(
                        f"the vault ({vault.describe()}) holds epoch keys but this key "
                        "database was never compacted: is it the vault of another store?"
                    )
                current, nxt = str(state["current"]), str(state.get("next") or "")
                keys.set_epochs(connection, current, nxt)
            if stale:
                master = MasterKey(keyring.export_master_key())
                extra = {k: v for k, v in state.items() if k in ("compacted_at", "number")}
                state = _state(master, epochs, state.get("current"), state.get("next"), **extra)
                vault.write(state)
    wrap = epochs.get(current) if current else None
    if current and wrap is None:
        raise ConfigurationError(
            f"the vault ({vault.describe()}) does not hold the key database's current epoch "
            "key: is it the vault of this key database?"
        )
    keyring.use_epoch(
        wrap, others=[raw for eid, raw in epochs.items() if eid != current], loader=loader
    )
    return state


def _read_meta(keys: EpochKeys) -> dict[str, str]:
    return keys.read_meta()


def erased_subjects(keys: EpochKeys) -> int:
    """How many subjects have a shredded key (learners erased, in part or all, by an
    erasure request or by retention)."""
    return keys.erased_subjects()


def epoch_status(keys: EpochKeys, vault: Vault) -> dict[str, Any]:
    """Epoch number, last compaction, subjects erased since it, and the vault in use."""
    meta = _read_meta(keys)
    erased = erased_subjects(keys)
    _current, nxt = keys.epochs()
    state = vault.read()
    return {
        "epoch": int(meta.get(_META_EPOCH_NUMBER, "0")),
        "compacted_at": meta.get(_META_COMPACTED_AT),
        "erased_awaiting_compaction": max(
            0, erased - int(meta.get(_META_ERASED_AT_COMPACTION, "0"))
        ),
        "vault": vault.describe(),
        "compaction_under_way": bool(nxt or (state and state.get("next"))),
    }


class CompactionReport(dict[str, Any]):
    """What a compaction did, in counts: ``epoch``, ``rewrapped``, ``live``,
    ``erased_subjects``, ``resumed``."""


def compaction_details(report: CompactionReport) -> dict[str, Any]:
    """What the audit entry of a compaction records: its counts, never a key or a subject."""
    return {
        "epoch": report["epoch"],
        "rewrapped": report["rewrapped"],
        "live_keys": report["live"],
        "erased_subjects": report["erased_subjects"],
        "resumed": report["resumed"],
    }


def compact(
    keyring: Keyring,
    keys: EpochKeys,
    vault: Vault,
    *,
    now: dt.datetime,
    progress: ProgressReporter | None = None,
    batch_size: int = BATCH_SIZE,
) -> CompactionReport:
    """Wrap every live data key under a new epoch key, then destroy the previous one.

    1. *Start*, in one key-database transaction holding the epoch row: a new epoch key
       is written to the vault beside the current one, then the key database names it
       as the next epoch. Writers may wrap new keys under the current or the next one.
    2. *Bulk*: live keys are re-wrapped under the next epoch, ``batch_size`` per
       transaction, while writers go on.
    3. *Switch*, in one transaction holding the epoch row (so no writer inserts a key
       meanwhile): the last keys not under the next epoch are re-wrapped, and the next
       epoch becomes the current one. From then on every writer checks, in the
       transaction of each key it writes, that it wraps under this epoch, and re-wraps
       under it first if not.
    4. *Trim*: the vault is rewritten, under the epoch row again, to hold only the
       epochs the key database names: the previous epoch key is destroyed.

    Killed at any point, every key opens with a key the vault still holds, and calling
    again finishes (a compaction stopped before its switch carries on with the same next
    epoch; one stopped after it only trims the vault).
    """
    master = MasterKey(keyring.export_master_key())
    masters = _masters(keyring)
    trim_only = False
    with keys.epoch_transaction() as (connection, current, nxt):
        state = vault.read()
        epochs = _unwrap_epochs(state, masters)[0] if state is not None else {}
        for needed in (current, nxt):
            if needed and needed not in epochs:
                raise ConfigurationError(
                    f"the vault ({vault.describe()}) does not hold an epoch key the key "
                    "database names: is it the vault of this key database?"
                )
        resumed = bool(nxt)
        if not nxt and current and state is not None and state.get("next") == current:
            # Killed after its switch: only the vault trim is left.
            trim_only = resumed = True
        elif not nxt:
            raw = os.urandom(KEY_SIZE)
            nxt = MasterKey(raw).key_id
            epochs = {**({current: epochs[current]} if current else {}), nxt: raw}
            # Old and new epoch keys are both in the vault before any data key moves.
            vault.write(_state(master, epochs, current or None, nxt, number=_number(state)))
            keys.set_epochs(connection, current, nxt)
        # From here on the key database cannot be opened without the vault.
        keys.put_meta(connection, {_META_EPOCHS: "1"})
    rewrapped = 0
    if not trim_only:
        keyring.use_epoch(epochs[nxt], others=[raw for eid, raw in epochs.items() if eid != nxt])
        rewrapper = keyring._rewrapper(nxt)
        if progress is not None:
            progress.expect(keys.count_not_under(nxt))
        rewrapped = keys.rewrap_live(nxt, rewrapper, batch_size=batch_size, progress=progress)
        # Keys written under the current epoch meanwhile: few enough to be re-wrapped
        # in the switch's transaction, which blocks every writer of a key.
        while keys.count_not_under(nxt) > batch_size:
            rewrapped += keys.rewrap_live(nxt, rewrapper, batch_size=batch_size)
        rewrapped += _switch(keyring, keys, nxt, at=now.astimezone(dt.UTC).isoformat())
    state = _trim_vault(keyring, keys, vault)
    for eid in epochs:
        if eid not in state["epochs"]:
            keyring._previous.pop(eid, None)
    meta = _read_meta(keys)
    live = sum(v for k, v in keys.counts().items() if k in ("active", "retired"))
    return CompactionReport(
        epoch=int(meta.get(_META_EPOCH_NUMBER, "0")),
        rewrapped=rewrapped,
        live=live,
        erased_subjects=int(meta.get(_META_ERASED_AT_COMPACTION, "0")),
        resumed=resumed,
    )


def _number(state: dict[str, Any] | None) -> int:
    return 0 if state is None else int(state.get("number", 0))


def _switch(keyring: Keyring, keys: EpochKeys, nxt: str, *, at: str) -> int:
    """The last re-wrap pass and the switch of the current epoch, one transaction."""
    with keys.epoch_transaction() as (connection, current, pending):
        if current == nxt:
            return 0  # a concurrent compaction to the same epoch switched first
        if pending != nxt:
            raise ConfigurationError(
                "another compaction moved the key database to another epoch meanwhile: "
                "run the compaction again"
            )
        count = keys.rewrap_all_in(
            connection, nxt, lambda entries: keyring._rewrap_for_epoch(nxt, entries)
        )
        keys.set_epochs(connection, nxt, "")
        number = int(keys.meta_in(connection).get(_META_EPOCH_NUMBER, "0")) + 1
        keys.put_meta(
            connection,
            {
                _META_EPOCH_NUMBER: str(number),
                _META_COMPACTED_AT: at,
                _META_ERASED_AT_COMPACTION: str(keys.erased_in(connection)),
            },
        )
    return count


def _trim_vault(keyring: Keyring, keys: EpochKeys, vault: Vault) -> dict[str, Any]:
    """Rewrite the vault to hold exactly the epochs the key database names (under the
    epoch row, so that no compaction starts meanwhile): the previous epoch key goes."""
    master = MasterKey(keyring.export_master_key())
    with keys.epoch_transaction() as (connection, current, nxt):
        state = vault.read()
        epochs = _unwrap_epochs(state, _masters(keyring))[0] if state is not None else {}
        keep = {eid: epochs[eid] for eid in (current, nxt) if eid and eid in epochs}
        if len(keep) != len({current, nxt} - {""}):
            raise ConfigurationError(
                f"the vault ({vault.describe()}) does not hold an epoch key the key "
                "database names: is it the vault of this key database?"
            )
        meta = keys.meta_in(connection)
        fresh = _state(
            master,
            keep,
            current or None,
            nxt or None,
            number=int(meta.get(_META_EPOCH_NUMBER, "0")),
            compacted_at=meta.get(_META_COMPACTED_AT),
        )
        wanted = (set(keep), fresh["current"], fresh["next"])
        if state is None or (set(state["epochs"]), state.get("current"), state.get("next")) != (
            wanted
        ):
            vault.write(fresh)
            state = fresh
    keyring.use_epoch(keep.get(current))
    return state
