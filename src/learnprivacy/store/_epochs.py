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
compaction starts until every data key is wrapped under the new one; only then is the
old one dropped. Killed at any point, a store opens (every data key names the epoch it
is wrapped under, and both are in the vault) and running the compaction again finishes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, insert, select, update

from learnprivacy._progress import ProgressReporter
from learnprivacy.crypto._master import MasterKey
from learnprivacy.crypto._validate import KEY_SIZE
from learnprivacy.errors import ConfigurationError, WrongMasterKeyError
from learnprivacy.store._keydb import _KEYS, _META, KeyDatabase

if TYPE_CHECKING:
    from learnprivacy.crypto import Keyring

__all__ = [
    "CompactionReport",
    "FileVault",
    "MemoryVault",
    "Vault",
    "compact",
    "default_vault",
    "open_epochs",
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
            _sync_dir(self.path.parent)
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


def _sync_dir(path: Path) -> None:
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


def open_epochs(keyring: Keyring, keys: KeyDatabase, vault: Vault) -> dict[str, Any] | None:
    """Give ``keyring`` the epoch keys of ``vault``; the vault state (``None``: no epoch
    yet, data keys wrapped directly under the master key).

    A vault whose epoch keys are wrapped under a previous master key (a master-key
    rotation under way) is rewritten under the current one. A key database that moved
    to epochs refuses to open without its vault.
    """
    state = vault.read()
    if state is None:
        if _read_meta(keys).get(_META_EPOCHS):
            raise ConfigurationError(
                f"the key database's data keys are wrapped under epoch keys, and its vault "
                f"({vault.describe()}) is missing: open the store with vault= pointing at it"
            )
        return None
    epochs, stale = _unwrap_epochs(state, _masters(keyring))
    if stale:
        master = MasterKey(keyring.export_master_key())
        extra = {k: v for k, v in state.items() if k in ("compacted_at", "number")}
        state = _state(master, epochs, state.get("current"), state.get("next"), **extra)
        vault.write(state)
    current = state.get("current")
    keyring.use_epoch(
        None if current is None else epochs[current],
        others=[raw for eid, raw in epochs.items() if eid != current],
    )
    return state


def _read_meta(keys: KeyDatabase) -> dict[str, str]:
    with keys.database.read() as connection:
        return {str(k): str(v) for k, v in connection.execute(select(_META.c.key, _META.c.value))}


def _write_meta(keys: KeyDatabase, values: dict[str, str]) -> None:
    with keys.database.write() as connection:
        existing = {
            str(k)
            for (k,) in connection.execute(select(_META.c.key).where(_META.c.key.in_(values)))
        }
        for key, value in values.items():
            if key in existing:
                connection.execute(update(_META).where(_META.c.key == key).values(value=value))
            else:
                connection.execute(insert(_META), [{"key": key, "value": value}])


def erased_subjects(keys: KeyDatabase) -> int:
    """How many subjects have a shredded key (learners erased, in part or all, by an
    erasure request or by retention)."""
    with keys.database.read() as connection:
        found = connection.execute(
            select(func.count(func.distinct(_KEYS.c.subject_ref))).where(
                _KEYS.c.state == "shredded"
            )
        ).scalar()
    return int(found or 0)


def epoch_status(keys: KeyDatabase, vault: Vault) -> dict[str, Any]:
    """Epoch number, last compaction, subjects erased since it, and the vault in use."""
    meta = _read_meta(keys)
    erased = erased_subjects(keys)
    state = vault.read()
    return {
        "epoch": int(meta.get(_META_EPOCH_NUMBER, "0")),
        "compacted_at": meta.get(_META_COMPACTED_AT),
        "erased_awaiting_compaction": max(
            0, erased - int(meta.get(_META_ERASED_AT_COMPACTION, "0"))
        ),
        "vault": vault.describe(),
        "compaction_under_way": bool(state and state.get("next")),
    }


class CompactionReport(dict[str, Any]):
    """What a compaction did, in counts: ``epoch``, ``rewrapped``, ``live``,
    ``erased_subjects``, ``resumed``."""


def compact(
    keyring: Keyring,
    keys: KeyDatabase,
    vault: Vault,
    *,
    now: dt.datetime,
    progress: ProgressReporter | None = None,
    batch_size: int = 5_000,
) -> CompactionReport:
    """Wrap every live data key under a new epoch key, then destroy the previous one.

    Resumes a compaction that was interrupted (the vault names the epoch it was moving
    to). See the module docstring for the order of the steps.
    """
    master = MasterKey(keyring.export_master_key())
    state = vault.read()
    epochs: dict[str, bytes] = {}
    current: str | None = None
    nxt: str | None = None
    number = 0
    if state is not None:
        epochs, _stale = _unwrap_epochs(state, _masters(keyring))
        current, nxt = state.get("current"), state.get("next")
        number = int(state.get("number", 0))
    resumed = nxt is not None
    if nxt is None:
        raw = os.urandom(KEY_SIZE)
        nxt = MasterKey(raw).key_id
        epochs[nxt] = raw
        # Old and new epoch are both in the vault before any data key moves.
        vault.write(_state(master, epochs, current, nxt, number=number))
    # From here on the key database cannot be opened without the vault.
    _write_meta(keys, {_META_EPOCHS: "1"})
    keyring.use_epoch(epochs[nxt], others=[raw for eid, raw in epochs.items() if eid != nxt])
    rewrapped = keyring.rewrap(progress=progress, batch_size=batch_size)
    # Keys another process wrapped under the old epoch meanwhile: until none is left.
    while _count_not_under(keys, nxt):
        keyring.use_epoch(epochs[nxt], others=[raw for eid, raw in epochs.items() if eid != nxt])
        rewrapped += keyring.rewrap(batch_size=batch_size)
    erased = erased_subjects(keys)
    number += 1
    at = now.astimezone(dt.UTC).isoformat()
    # Every live data key is under the new epoch: the old one may now go.
    vault.write(_state(master, {nxt: epochs[nxt]}, nxt, None, number=number, compacted_at=at))
    keyring.use_epoch(epochs[nxt])
    _write_meta(
        keys,
        {
            _META_EPOCH_NUMBER: str(number),
            _META_COMPACTED_AT: at,
            _META_ERASED_AT_COMPACTION: str(erased),
        },
    )
    live = sum(v for k, v in keys.counts().items() if k in ("active", "retired"))
    return CompactionReport(
        epoch=number, rewrapped=rewrapped, live=live, erased_subjects=erased, resumed=resumed
    )


def _count_not_under(keys: KeyDatabase, epoch_id: str) -> int:
    with keys.database.read() as connection:
        found = connection.execute(
            select(func.count())
            .select_from(_KEYS)
            .where(_KEYS.c.state != "shredded", _KEYS.c.master_key_id != epoch_id)
        ).scalar()
    return int(found or 0)
