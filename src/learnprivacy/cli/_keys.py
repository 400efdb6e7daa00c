"""``learnprivacy keys``: the key database and the master key.

``keys rotate`` never loses a key: the new master key is written to ``<key file>.new``
(created, never overwritten, synced) before any data key is rewrapped, and replaces the
key file only once every data key is under it. Killed at any point, the store opens with
``Keyring(new, previous_master_keys=[old])`` and ``keys rotate --resume`` finishes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.cli._app import Env, emit, pass_env
from learnprivacy.cli._config import master_key_variable, read_key_file, write_key_file
from learnprivacy.cli._progress import progress
from learnprivacy.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from learnprivacy.store import Store

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """The key database and the master key: rotate, back up, status."""


def _open(env: Env, master: bytes, previous: list[bytes]) -> Store:
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    keyring = Keyring(master, previous_master_keys=previous)
    return Store(env.db, keyring=keyring, keys=env.settings.keys_url, actor="learnprivacy-cli")


#: ``--batch-size`` of the commands that rewrite every key.
_BATCH_SIZE = click.option(
    "--batch-size",
    default=BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Keys rewritten per transaction.",
)


@keys.command("rotate")
@click.option(
    "--resume",
    is_flag=True,
    help="Finish a rotation that was interrupted (uses the key file's .new beside it).",
)
@_BATCH_SIZE
@pass_env
def keys_rotate(env: Env, resume: bool, batch_size: int) -> None:
    """Rewrap every data key under a new master key, then replace the key file.

    The new key is written to KEY_FILE.new first and never overwritten; an interrupted
    rotation is finished with --resume, and every record stays readable meanwhile.
    """
    variable = master_key_variable(env.settings.master_key_env)
    if variable is not None:
        raise ValidationError(
            f"the master key comes from {variable}: rotate it in your secret manager",
            field=variable,
        )
    from learnprivacy.store._epochs import sync_path

    key_path = Path(env.key_file)
    new_path = key_path.with_name(key_path.name + ".new")
    old_key = read_key_file(key_path)  # fails early on a missing or unreadable key file
    if resume:
        if not new_path.exists():
            raise ConfigurationError(
                f"no interrupted rotation to resume: {new_path} does not exist"
            )
        new_key = read_key_file(new_path)
    else:
        if new_path.exists():
            raise ConfigurationError(
                f"{new_path} exists: a rotation was interrupted and may already use that "
                "key; run `learnprivacy keys rotate --resume`"
            )
        new_key = write_key_file(new_path)
        sync_path(new_path)
        sync_path(new_path.parent)
    with (
        _open(env, new_key, [old_key]) as store,
        progress(env, "Rewrapping data keys", unit="keys") as bar,
    ):
        rewrapped = store.keyring.rewrap(progress=bar, batch_size=batch_size)
        key_id = store.keyring.master_key_id
    # Every data key is under the new key: only now may the old key file go.
    os.replace(new_path, key_path)
    sync_path(key_path.parent)
    emit(
        env,
        {"master_key_id": key_id, "key_file": str(key_path), "rewrapped": rewrapped},
        lambda: env.console.print(
            f"Master key rotated (new key id {key_id}, {rewrapped:,} keys rewrapped); "
            f"{key_path} replaced."
        ),
    )


@keys.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@pass_env
def keys_backup(env: Env, path: str) -> None:
    """Copy a SQLite key database consistently to PATH (PostgreSQL: use pg_dump).

    Keep key backups short-lived (docs/security.md): a backup taken before an erasure
    still holds the erased learner's key.
    """
    target = Path(path)
    if target.exists():
        raise ConfigurationError(f"{target} exists; refusing to overwrite it")
    with env.open_store() as store:
        store._key_db.backup(str(target))
        counts = store._key_db.counts()
    emit(
        env,
        {"path": str(target), **counts},
        lambda: env.console.print(
            f"Key database copied to [bold]{target}[/] ({counts['active']:,} active keys)."
        ),
    )


@keys.command("compact")
@_BATCH_SIZE
@pass_env
def keys_compact(env: Env, batch_size: int) -> None:
    """Rewrap every live data key under a new epoch key and destroy the old one.

    Afterwards no copy of the key database taken before (backup, pg_dump, WAL) opens
    the keys of learners erased before, even with the master key. Interrupted, run it
    again: it resumes, and every record stays readable meanwhile.
    """
    with (
        env.open_store() as store,
        progress(env, "Compacting data keys", unit="keys") as bar,
    ):
        report = store.compact_keys(progress=bar, batch_size=batch_size)
        vault = store.vault.describe()
    data = {**report, "vault": vault}
    emit(
        env,
        data,
        lambda: env.console.print(
            f"Keys compacted: epoch {report['epoch']}, {report['rewrapped']:,} keys rewrapped"
            f"{' (resumed)' if report['resumed'] else ''}; the previous epoch key is "
            f"destroyed in {vault}."
        ),
    )


@keys.command("status")
@pass_env
def keys_status(env: Env) -> None:
    """Keys per state, tombstones, the key epoch and the master key id (never a key)."""
    with env.open_store() as store:
        counts = store._key_db.counts()
        epoch = store.key_epoch_status()
        data = {
            "master_key_id": store.keyring.master_key_id,
            "key_database": store._key_db.engine.dialect.name,
            **counts,
            **epoch,
        }

    def show() -> None:
        env.console.print(
            f"Master key {data['master_key_id']} · key database ({data['key_database']}): "
            f"{counts['active']:,} active, {counts['retired']:,} retired, "
            f"{counts['shredded']:,} shredded keys, {counts['tombstones']:,} tombstones."
        )
        compacted = epoch["compacted_at"] or "never"
        env.console.print(
            f"Key epoch {epoch['epoch']} (last compaction: {compacted}) · vault "
            f"{epoch['vault']} · {epoch['erased_awaiting_compaction']:,} erased learners "
            "awaiting compaction"
            + (
                " · a compaction is under way: run `learnprivacy keys compact`"
                if epoch["compaction_under_way"]
                else ""
            )
            + "."
        )

    emit(env, data, show)
