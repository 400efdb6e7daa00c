"""Opening the keyring and the store from command-line options and the environment."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from learnprivacy.cli._settings import DEFAULT_DB, DEFAULT_KEY_FILE
from learnprivacy.crypto import Keyring
from learnprivacy.crypto._keyring import ENV_VAR
from learnprivacy.errors import ConfigurationError

if TYPE_CHECKING:
    from learnprivacy.store import Store

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_KEY_FILE",
    "load_keyring",
    "master_key_variable",
    "open_store",
    "read_key_file",
    "write_key_file",
]


def write_key_file(path: Path, *, overwrite: bool = False) -> bytes:
    """Create a new random master key file, readable by its owner only (mode 0600)."""
    if path.exists() and not overwrite:
        raise ConfigurationError(f"key file {path} already exists; refusing to overwrite it")
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    # Created with 0600 from the start: no window in which the key is world-readable.
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    os.chmod(path, 0o600)
    return key


def read_key_file(path: Path) -> bytes:
    """The 32-byte master key in ``path`` (base64, mode 0600), or ``ConfigurationError``."""
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"no master key: {path} does not exist and {ENV_VAR} is not set "
            "(run `learnprivacy init`)"
        ) from None
    if mode & 0o077:
        raise ConfigurationError(
            f"key file {path} is readable by group or others; run `chmod 600 {path}`"
        )
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ConfigurationError(f"key file {path} does not hold a base64 key") from None
    if len(key) != 32:
        raise ConfigurationError(f"key file {path} must hold 32 bytes, base64-encoded")
    return key


def master_key_variable(master_key_env: str | None = None) -> str | None:
    """The environment variable the master key comes from, when it is set."""
    for name in (master_key_env, ENV_VAR):
        if name and os.environ.get(name):
            return name
    return None


def load_keyring(key_file: str, *, master_key_env: str | None = None) -> Keyring:
    """The keyring from the master key variable (``[keys] master_key_env``, then
    ``LEARNPRIVACY_MASTER_KEY``) if set, else from the key file."""
    variable = master_key_variable(master_key_env)
    if variable is not None:
        return Keyring.from_env(variable)
    return Keyring.from_master_key(_read_key_file(Path(key_file)))


def open_store(
    db: str,
    key_file: str,
    *,
    keys_url: str | None = None,
    master_key_env: str | None = None,
) -> Store:
    """Open the store at ``db`` with the configured master key and key database
    (``[keys] url``; a SQLite store defaults to its sibling ``.keys.db``)."""
    from learnprivacy.store import Store

    keyring = load_keyring(key_file, master_key_env=master_key_env)
    return Store(db, keyring=keyring, keys=keys_url, actor="learnprivacy-cli")
