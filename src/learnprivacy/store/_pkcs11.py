"""A vault in a PKCS#11 token: the epoch keys on an HSM (SoftHSM2 in tests).

The vault state (the epoch keys, wrapped under the master key) is one private token
object of class ``CKO_DATA``; each write creates a new object and then destroys the
previous ones, so after a compaction the object that held the destroyed epoch key is
gone from the token. Killed between the two steps, the token holds both; the newest
(highest sequence) wins and the next write destroys the other.

Optionally the token keeps the master key too (:meth:`Pkcs11Vault.write_master_key`,
read back by ``Keyring.from_vault``): one more private, read-only data object, written
once and never overwritten, so that no file or environment variable holds it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from learnprivacy.errors import ConfigurationError

__all__ = ["Pkcs11Vault"]

_LIBS: dict[str, Any] = {}
_LOCK = threading.Lock()
_APPLICATION = "learnprivacy"
_MASTER_SIZE = 32


def _lib(module: str) -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigurationError(
            "a PKCS#11 vault needs python-pkcs11: pip install 'learnprivacy[hsm]'"
        ) from None
    with _LOCK:
        found = _LIBS.get(module)
        if found is None:
            found = _LIBS[module] = pkcs11.lib(module)
        return found


class Pkcs11Vault:
    """Epoch keys kept in a PKCS#11 token (an HSM; SoftHSM2 for tests).

    >>> vault = Pkcs11Vault(MODULE_PATH, token="lms", pin=PIN)   # doctest: +SKIP
    >>> store = Store(url, keyring=keyring, vault=vault)         # doctest: +SKIP

    ``module`` is the path of the PKCS#11 library, ``token`` the token label, ``pin`` the
    user PIN; :meth:`from_env` reads them from ``LEARNPRIVACY_PKCS11_MODULE``,
    ``LEARNPRIVACY_PKCS11_TOKEN`` and ``LEARNPRIVACY_PKCS11_PIN``. ``label`` names the
    token object (one per store sharing the token). The repr never shows the PIN.
    """

    __slots__ = ("_pin", "label", "module", "token")

    def __init__(self, module: str, *, token: str, pin: str, label: str = "learnprivacy-vault"):
        """A vault in token ``token`` of the PKCS#11 library ``module``."""
        for name, value in (("module", module), ("token", token), ("pin", pin), ("label", label)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"Pkcs11Vault needs a non-empty {name}")
        self.module = module
        self.token = token
        self.label = label
        self._pin = pin

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, label: str = "learnprivacy-vault"
    ) -> Pkcs11Vault:
        """A vault from ``LEARNPRIVACY_PKCS11_MODULE``/``_TOKEN``/``_PIN``."""
        source = os.environ if environ is None else environ
        values = {}
        for part in ("MODULE", "TOKEN", "PIN"):
            name = f"LEARNPRIVACY_PKCS11_{part}"
            value = source.get(name)
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            values[part] = value
        return cls(values["MODULE"], token=values["TOKEN"], pin=values["PIN"], label=label)

    def __repr__(self) -> str:
        return f"Pkcs11Vault(token={self.token!r}, label={self.label!r})"

    def describe(self) -> str:
        """``pkcs11:<token>/<label>``."""
        return f"pkcs11:{self.token}/{self.label}"

    def _session(self) -> Any:
        import pkcs11

        try:
            token = _lib(self.module).get_token(token_label=self.token)
            return token.open(user_pin=self._pin, rw=True)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise ConfigurationError(
                f"cannot open PKCS#11 token {self.token!r}: {type(exc).__name__}"
            ) from None

    def _objects(self, session: Any) -> list[tuple[int, dict[str, Any], Any]]:
        from pkcs11 import Attribute, ObjectClass

        found = []
        query = {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: self.label}
        for obj in session.get_objects(query):
            try:
                state = json.loads(bytes(obj[Attribute.VALUE]))
                found.append((int(state["sequence"]), state, obj))
            except (ValueError, KeyError, TypeError):
                continue
        found.sort(key=lambda item: item[0])
        return found

    def read(self) -> dict[str, Any] | None:
        """The newest state in the token, or ``None`` if it holds none."""
        with self._session() as session:
            found = self._objects(session)
        return found[-1][1] if found else None

    @property
    def _master_label(self) -> str:
        return f"{self.label}-master-key"

    def read_master_key(self) -> bytes:
        """The master key kept in the token by :meth:`write_master_key`.

        Raises :class:`~learnprivacy.errors.ConfigurationError` if the token holds none
        (or the PIN or token is wrong); the message never holds key material.
        """
        from pkcs11 import Attribute, ObjectClass

        with self._session() as session:
            found = [
                bytes(obj[Attribute.VALUE])
                for obj in session.get_objects(
                    {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: self._master_label}
                )
            ]
        if len(found) != 1 or len(found[0]) != _MASTER_SIZE:
            raise ConfigurationError(
                f"PKCS#11 token {self.token!r} holds no master key under label "
                f"{self._master_label!r}: write it once with Pkcs11Vault.write_master_key"
            )
        return found[0]

    def write_master_key(self, master_key: bytes) -> None:
        """Keep ``master_key`` (32 bytes) in the token, as a private, read-only object.

        Written once: a token that already holds a master key under this vault's label is
        left alone (:class:`~learnprivacy.errors.ConfigurationError`), as overwriting it
        would lose every key it protects. Keep a copy offline, as for any master key.
        """
        from pkcs11 import Attribute, ObjectClass

        if not isinstance(master_key, bytes) or len(master_key) != _MASTER_SIZE:
            raise ConfigurationError(f"the master key must be {_MASTER_SIZE} bytes")
        with self._session() as session:
            query = {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: self._master_label}
            if any(True for _ in session.get_objects(query)):
                raise ConfigurationError(
                    f"PKCS#11 token {self.token!r} already holds a master key under label "
                    f"{self._master_label!r}; it is never overwritten"
                )
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False,
                    Attribute.LABEL: self._master_label,
                    Attribute.APPLICATION: _APPLICATION,
                    Attribute.VALUE: master_key,
                }
            )

    def write(self, state: dict[str, Any]) -> None:
        """Create the object of the new state, then destroy every older one."""
        from pkcs11 import Attribute, ObjectClass

        with self._session() as session:
            older = self._objects(session)
            sequence = older[-1][0] + 1 if older else 1
            body = {**state, "sequence": sequence}
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False,
                    Attribute.LABEL: self.label,
                    Attribute.APPLICATION: _APPLICATION,
                    Attribute.VALUE: json.dumps(body, sort_keys=True).encode(),
                }
            )
            for _sequence, _state, obj in older:
                obj.destroy()
