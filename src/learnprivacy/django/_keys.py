"""Key store maintenance for ``manage.py learnprivacy_keys``: rotation, compaction and
backups.

**Compaction.** Data keys are wrapped under an epoch key kept in the vault
(``LEARNPRIVACY["VAULT"]``), itself wrapped under the master key.
:func:`compact_keys` re-wraps every live data key under a new epoch key and destroys the
previous one in the vault (``learnprivacy.store._epochs.compact``, the same procedure
as the store's): a copy of the key store taken before (file copy, ``pg_dump``, dead
tuples, WAL), with the master key and the current vault, no longer opens the keys of
learners erased before it. Killed at any point, calling it again finishes. Every process
writing keys checks the current epoch in the transaction of each key it writes, so
processes that opened the key store before a compaction lose nothing.

**Rotation.** The master key comes from the environment (``MASTER_KEY_ENV``), never
from a file this code could write, so a rotation is done the way Django rotates
``SECRET_KEY`` with ``SECRET_KEY_FALLBACKS``:

1. put a new key in ``MASTER_KEY_ENV`` and the old one in ``PREVIOUS_MASTER_KEYS_ENV``,
   and restart the processes: new data keys are wrapped under the new key, the old key
   still opens the others;
2. run ``learnprivacy_keys rotate``: every data key still wrapped under a previous key
   is rewrapped under the new one, a batch per transaction;
3. remove ``PREVIOUS_MASTER_KEYS_ENV``.

Before changing anything, the rotation checks that every live data key opens with the
configured keys (a key under a master key that is not configured would be lost to the
readers that need it), and records in the key store which master key it moves to.
Killed at any point, every data key is wrapped under the old key or the new one and
names which; ``rotate --resume`` finishes. A second plain ``rotate`` while one is
recorded under way is refused, as the store's ``learnprivacy keys rotate`` refuses.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs

from learnprivacy._progress import ProgressReporter
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.errors import ConfigurationError, WrongMasterKeyError

__all__ = [
    "RotationReport",
    "backup_keys",
    "compact_keys",
    "epoch_status",
    "key_store",
    "rotate_master_key",
]

#: The key store's state entry naming a rotation under way.
ROTATION = "rotation"


def key_store() -> Any:
    """The project's Django key store (``LEARNPRIVACY["KEYS"]``)."""
    from learnprivacy.django._keystore import DjangoKeyStore
    from learnprivacy.django._settings import runtime

    store = runtime().keyring.store
    if not isinstance(store, DjangoKeyStore):
        raise ConfigurationError("the keyring does not use the Django key store")
    return store


@attrs.frozen(kw_only=True)
class RotationReport:
    """What a rotation did (or, with ``dry_run``, would do): counts and key ids only."""

    master_key_id: str
    previous_master_key_ids: tuple[str, ...]
    to_rewrap: int
    rewrapped: int
    resumed: bool
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


def rotate_master_key(
    *,
    now: dt.datetime,
    resume: bool = False,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: ProgressReporter | None = None,
) -> RotationReport:
    """Rewrap under the current master key every data key wrapped under a previous one.

    See the module docstring for the procedure. Raises ``WrongMasterKeyError`` (changing
    nothing) when some live key is wrapped under a key the settings do not hold, and
    ``ConfigurationError`` for a ``resume`` with nothing to resume, or a new rotation
    while another is recorded under way.
    """
    from learnprivacy.django._settings import runtime

    keyring = runtime().keyring
    store = key_store()
    current = keyring.wrapping_key_id
    previous = keyring.previous_master_key_ids
    known = {current, keyring.master_key_id, *previous}
    by_key = store.wrapping_counts()
    unknown = sorted(k for k in by_key if k not in known)
    if unknown:
        raise WrongMasterKeyError(
            f"{sum(by_key[k] for k in unknown)} data keys are wrapped under master key(s) "
            f"{', '.join(unknown)}, which the settings do not hold: put them in "
            "PREVIOUS_MASTER_KEYS_ENV before rotating (nothing was changed)"
        )
    to_rewrap = sum(n for k, n in by_key.items() if k != current)
    recorded = _recorded(store)
    if resume and recorded is None:
        raise ConfigurationError("no interrupted rotation to resume: run learnprivacy_keys rotate")
    if recorded is not None:
        if recorded.get("to") != keyring.master_key_id:
            raise ConfigurationError(
                f"a rotation to master key {recorded.get('to')!r} was interrupted, and "
                f"MASTER_KEY_ENV now holds {keyring.master_key_id!r}: put that key back "
                "and run learnprivacy_keys rotate --resume"
            )
        if not resume:
            raise ConfigurationError(
                "a rotation was interrupted and may already use this key: run "
                "learnprivacy_keys rotate --resume"
            )
    report = RotationReport(
        master_key_id=keyring.master_key_id,
        previous_master_key_ids=tuple(previous),
        to_rewrap=to_rewrap,
        rewrapped=0,
        resumed=recorded is not None,
        dry_run=dry_run,
    )
    if dry_run:
        return report
    store.write_meta(
        {
            ROTATION: json.dumps(
                {"to": keyring.master_key_id, "started_at": now.astimezone(dt.UTC).isoformat()}
            )
        }
    )
    rewrapped = keyring.rewrap(progress=progress, batch_size=batch_size)
    # Every data key is under the new key: the rotation is over.
    store.write_meta({ROTATION: None})
    keyring.clear_cache()
    return attrs.evolve(report, rewrapped=rewrapped)


def _recorded(store: Any) -> dict[str, Any] | None:
    text = store.read_meta().get(ROTATION)
    if text is None:
        return None
    found: dict[str, Any] = json.loads(text)
    return found


def rotation_under_way() -> bool:
    """Whether a rotation was started and not finished."""
    return _recorded(key_store()) is not None


def backup_keys(path: str | Path, *, dry_run: bool = False) -> dict[str, Any]:
    """Copy a SQLite key store consistently to ``path``, a file that must not exist.

    Returns the key counts of the copy's source. ``dry_run`` checks and counts only.
    """
    target = Path(path)
    if target.exists():
        raise ConfigurationError(f"{target} exists; refusing to overwrite it")
    if not target.parent.is_dir():
        raise ConfigurationError(f"{target.parent} is not a folder")
    store = key_store()
    from django.db import connections

    vendor = connections[store.alias].vendor
    if vendor != "sqlite":
        raise ConfigurationError(
            f"the key store is on {vendor}: back it up with pg_dump "
            "(--table 'lpdj_key*'), not learnprivacy_keys backup"
        )
    counts: dict[str, int] = store.counts()
    if not dry_run:
        store.backup(str(target))
    return {"path": str(target), "dry_run": dry_run, **counts}


def epoch_status() -> dict[str, Any]:
    """Epoch number, last compaction, learners erased since, the vault in use."""
    from learnprivacy.django._settings import runtime
    from learnprivacy.store._epochs import epoch_status as status

    vault = runtime().vault
    if vault is None:
        raise ConfigurationError("the keyring does not use the Django key store")
    return status(key_store(), vault)


def compact_keys(
    *,
    now: dt.datetime,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: ProgressReporter | None = None,
) -> dict[str, Any]:
    """Re-wrap every live data key under a new epoch key, then destroy the previous one.

    Returns counts (``epoch``, ``rewrapped``, ``live``, ``erased_subjects``,
    ``resumed``); ``dry_run`` returns the epoch status and how many keys would be
    re-wrapped, changing nothing. The audit log records the counts.
    """
    from learnprivacy.django._privacy import get_privacy
    from learnprivacy.django._settings import runtime
    from learnprivacy.store._audit import AuditEvent
    from learnprivacy.store._epochs import compact, compaction_details

    current = runtime()
    store = key_store()
    if current.vault is None:
        raise ConfigurationError("the keyring does not use the Django key store")
    if dry_run:
        counts = store.counts()
        return {
            **epoch_status(),
            "to_rewrap": counts["active"] + counts["retired"],
            "dry_run": True,
        }
    report = compact(
        current.keyring,
        store,
        current.vault,
        now=now,
        progress=progress,
        batch_size=batch_size,
    )
    details = compaction_details(report)
    get_privacy().audit.append(
        [AuditEvent(action="compact_keys", outcome="done", details=details)], now=now
    )
    return {**dict(report), "dry_run": False}
