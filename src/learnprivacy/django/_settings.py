"""The ``LEARNPRIVACY`` setting, and the keyring and ciphers built from it once.

::

    LEARNPRIVACY = {
        "MASTER_KEY_ENV": "LEARNPRIVACY_MASTER_KEY",   # base64 of 32 bytes, never in settings
        # Optional: previous master keys (base64, comma-separated) that still open data
        # keys while ``manage.py learnprivacy_keys rotate`` rewraps them under the new one.
        "PREVIOUS_MASTER_KEYS_ENV": "LEARNPRIVACY_PREVIOUS_MASTER_KEYS",
        "KEYS": "learnprivacy_keys",                   # the DATABASES alias of the key store
        "SCHEDULE": "lms.privacy.SCHEDULE",            # optional: dotted path to a Schedule
        "HOLDS": "lms.privacy.HOLDS",                  # optional: dotted path to Holds
        "CONSENTS": "lms.Consent",                     # optional: the consent model
        "CONTROLLER": "lms.privacy.CONTROLLER",        # optional: for learnprivacy_register
        "KEY_CACHE_SIZE": 50_000,                      # learners whose keys stay unwrapped
        "ACTOR": "django",                             # who audit entries name
        # Optional: where the epoch key lives (see "Key epochs" in the Django guide):
        # None = a file beside a SQLite key store (lms.keys.sqlite3 -> lms.keys.vault),
        # or <database name>.vault in the working directory; a path; "pkcs11" (or
        # "pkcs11:<object label>") for a PKCS#11 token named by LEARNPRIVACY_PKCS11_MODULE,
        # _TOKEN and _PIN; or a vault object.
        "VAULT": None,
    }

Nothing here reads the master key before it is needed: importing models, running
``check`` or ``makemigrations`` works without it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from learnprivacy.crypto import BlindIndex, FieldCipher, Keyring, Pseudonymiser
from learnprivacy.errors import ConfigurationError

if TYPE_CHECKING:
    from learnprivacy.store._epochs import Vault

__all__ = ["Runtime", "keys_alias", "runtime", "setting", "vault"]

_DEFAULTS: Mapping[str, Any] = {
    "MASTER_KEY_ENV": "LEARNPRIVACY_MASTER_KEY",
    "PREVIOUS_MASTER_KEYS_ENV": "LEARNPRIVACY_PREVIOUS_MASTER_KEYS",
    "KEYS": "learnprivacy_keys",
    "SCHEDULE": None,
    "HOLDS": None,
    "CONSENTS": None,
    "CONTROLLER": None,
    "KEY_CACHE_SIZE": 50_000,
    "ACTOR": "django",
    "VAULT": None,
}


def setting(name: str) -> Any:
    """One entry of ``settings.LEARNPRIVACY`` (or its default)."""
    from django.conf import settings

    configured = getattr(settings, "LEARNPRIVACY", {})
    if not isinstance(configured, Mapping):
        raise ConfigurationError("settings.LEARNPRIVACY must be a dict")
    unknown = set(configured) - set(_DEFAULTS)
    if unknown:
        raise ConfigurationError(f"settings.LEARNPRIVACY has unknown keys: {sorted(unknown)}")
    return configured.get(name, _DEFAULTS[name])


def keys_alias() -> str:
    """The ``DATABASES`` alias of the key store (``LEARNPRIVACY["KEYS"]``)."""
    alias = setting("KEYS")
    if not isinstance(alias, str) or not alias:
        raise ConfigurationError('LEARNPRIVACY["KEYS"] must name a DATABASES alias')
    return alias


def load(path: object, what: str) -> Any:
    """The object at dotted ``path`` (``module.name``), or ``None`` when unset."""
    if path is None:
        return None
    if not isinstance(path, str):
        return path
    from django.utils.module_loading import import_string

    try:
        return import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f'LEARNPRIVACY["{what}"] could not be imported: {exc}') from None


class Runtime:
    """The keyring of the project, its field cipher and blind index, made once, and the
    vault of its epoch keys (``None`` for a keyring that is not on the Django key store)."""

    __slots__ = ("_row_refs", "cipher", "index", "keyring", "vault")

    def __init__(self, keyring: Keyring, vault: Vault | None = None) -> None:
        self.keyring = keyring
        self.vault = vault
        self.cipher = FieldCipher(keyring)
        self.index: BlindIndex = keyring.blind_index()
        self._row_refs: Pseudonymiser | None = None

    @property
    def row_refs(self) -> Pseudonymiser:
        """What names rows in the register of restricted rows (``lpdj_restrictions``):
        the keyring's pseudonyms in the ``learnprivacy-restrictions`` domain."""
        found = self._row_refs
        if found is None:
            from learnprivacy._inplace._refs import ROW_REF_DOMAIN

            found = self._row_refs = self.keyring.pseudonymiser(ROW_REF_DOMAIN)
        return found

    def __repr__(self) -> str:
        return f"Runtime({self.keyring!r})"


_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The project's :class:`Runtime`, built on first use from the settings."""
    global _runtime
    current = _runtime
    if current is not None:
        return current
    with _lock:
        if _runtime is None:
            from learnprivacy.django._keystore import DjangoKeyStore
            from learnprivacy.store._epochs import open_epochs

            size = setting("KEY_CACHE_SIZE")
            store = DjangoKeyStore(keys_alias())
            keyring = Keyring(
                _master_key(setting("MASTER_KEY_ENV")),
                store=store,
                previous_master_keys=previous_master_keys(),
                cache_size=size,
            )
            # The epoch keys the data keys are wrapped under (none before a compaction);
            # a key store on epochs refuses to open without its vault.
            found = vault(store.alias)
            open_epochs(keyring, store, found)
            _runtime = Runtime(keyring, found)
        return _runtime


def _master_key(env: str) -> bytes:
    from learnprivacy.crypto._master import master_key_from_env

    return master_key_from_env(env, None)


def previous_master_keys() -> list[bytes]:
    """The previous master keys named by ``PREVIOUS_MASTER_KEYS_ENV`` (none when unset).

    The variable holds base64 keys separated by commas. They only open data keys still
    wrapped under them (a rotation under way); new keys are always wrapped under the
    master key. Errors name the variable, never its value.
    """
    import os

    from learnprivacy.crypto._master import master_key_from_env

    name = setting("PREVIOUS_MASTER_KEYS_ENV")
    if not name:
        return []
    if not isinstance(name, str):
        raise ConfigurationError('LEARNPRIVACY["PREVIOUS_MASTER_KEYS_ENV"] must be a str')
    value = os.environ.get(name, "")
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return [master_key_from_env(name, {name: part}) for part in parts]


def reset_runtime() -> None:
    """Forget the keyring (tests that change settings or the key store call this)."""
    global _runtime
    with _lock:
        _runtime = None


# In-memory key stores (Django's SQLite test databases) keep their vault in memory too,
# one per database, for the life of the process (a runtime reset must not lose it).
_memory_vaults: dict[str, Vault] = {}


def vault(alias: str) -> Vault:
    """The vault of the key store at ``alias``, as ``LEARNPRIVACY["VAULT"]`` says."""
    import os
    from pathlib import Path

    from django.db import connections

    from learnprivacy.store._epochs import FileVault, MemoryVault

    configured = setting("VAULT")
    if configured is None:
        connection = connections[alias]
        name = str(connection.settings_dict.get("NAME") or "")
        if connection.vendor == "sqlite":
            if name in ("", ":memory:") or "mode=memory" in name:
                return _memory_vaults.setdefault(name or alias, MemoryVault())
            path = Path(name)
            stem = path.name
            for suffix in (".sqlite3", ".sqlite", ".db"):
                stem = stem.removesuffix(suffix)
            return FileVault(path.with_name(stem + ".vault"))
        if not name:
            raise ConfigurationError(f"DATABASES[{alias!r}] names no database: set VAULT")
        return FileVault(Path.cwd() / f"{name}.vault")
    if isinstance(configured, str) and configured.split(":", 1)[0] == "pkcs11":
        from learnprivacy.store._pkcs11 import Pkcs11Vault

        label = configured.partition(":")[2] or "learnprivacy-vault"
        return Pkcs11Vault.from_env(label=label)
    if isinstance(configured, str | os.PathLike):
        return FileVault(configured)
    if all(hasattr(configured, name) for name in ("read", "write", "describe")):
        found: Vault = configured
        return found
    raise ConfigurationError(
        'LEARNPRIVACY["VAULT"] must be a path, "pkcs11[:label]" or a vault object'
    )
