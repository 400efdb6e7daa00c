"""The master key: derivation of its sub-keys, its public id, and key wrapping.

The master key never encrypts data. Two values are derived from it with HKDF-SHA256 and
distinct labels, so that neither reveals the other:

* the key-encryption key (KEK), an AES-256-GCM key that wraps every data key, with
  associated data binding the wrapped key to its subject, scope and key id;
* the master key id, 8 bytes shown as 16 hex characters, a public fingerprint stored
  next to every wrapped key so that a wrong master key is recognised at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import unicodedata
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from learnprivacy.crypto._validate import KEY_SIZE, KeyHolder, check_key, length_prefixed
from learnprivacy.errors import ConfigurationError, ValidationError

__all__ = [
    "MasterKey",
    "derive_master_key",
    "master_key_from_env",
    "new_salt",
    "wrap_associated_data",
]

_KEK_LABEL = b"learnprivacy/v1/key-wrap"
_KEK_PART = length_prefixed(_KEK_LABEL)
_length = struct.Struct(">I").pack
_ID_LABEL = b"learnprivacy/v1/master-key-id"
_WRAP_NONCE_SIZE = 12

# scrypt cost: N = 2**15, r = 8 uses 32 MiB and about 0.1 s per derivation, the
# interactive-login setting recommended by the scrypt paper and RFC 7914.
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_MIN = 16
_PASSPHRASE_MIN = 12


def _hkdf(master: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(master)


def wrap_associated_data(subject: str, scope: str, key_id: str) -> bytes:
    """Associated data of a wrapped key: binds it to its subject, scope and key id.

    ``length_prefixed(_KEK_LABEL, subject, scope, key_id)`` (UTF-8), with the label's part
    made once: every key read is unwrapped with it.
    """
    who, where, which = subject.encode(), scope.encode(), key_id.encode()
    return b"".join(
        (_KEK_PART, _length(len(who)), who, _length(len(where)), where, _length(len(which)), which)
    )


class MasterKey(KeyHolder):
    """A 32-byte master key with its derived KEK and id. Its repr shows the id only."""

    __slots__ = ("_kek", "_raw", "key_id")
    _holders = "master keys"

    def __init__(self, raw: bytes) -> None:
        self._raw = check_key(raw, field="master_key", exact=True)
        self._kek = AESGCM(_hkdf(self._raw, _KEK_LABEL, KEY_SIZE))
        #: Public fingerprint of the key: safe to store, log and compare.
        self.key_id: str = _hkdf(self._raw, _ID_LABEL, 8).hex()

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @property
    def raw(self) -> bytes:
        """The key bytes, for the caller who must save them (see ``export_master_key``)."""
        return self._raw

    def wrap(
        self, data_key: bytes, *, subject: str, scope: str, key_id: str, nonce: bytes | None = None
    ) -> bytes:
        """Encrypt ``data_key``: ``nonce + ciphertext + tag`` (60 bytes for a 32-byte key).

        ``nonce``: 12 bytes the caller drew from ``os.urandom`` for this wrap alone (the
        keyring draws many keys' material at once), or a fixed one in test vectors;
        drawn here if ``None``.
        """
        nonce = os.urandom(_WRAP_NONCE_SIZE) if nonce is None else nonce
        aad = wrap_associated_data(subject, scope, key_id)
        return nonce + self._kek.encrypt(nonce, data_key, aad)

    def wrapper(self, scope: str) -> Callable[[bytes, str, str, bytes], bytes]:
        """``f(data_key, subject, key_id, nonce)``: :meth:`wrap` of many keys of one
        ``scope`` (a batch of new keys), the same bytes; the scope's share of the
        associated data is encoded once. ``nonce``: 12 bytes drawn for that wrap alone."""
        seal = self._kek.encrypt
        where = scope.encode()
        scope_part = _length(len(where)) + where

        def wrap(data_key: bytes, subject: str, key_id: str, nonce: bytes) -> bytes:
            who, which = subject.encode(), key_id.encode()
            aad = b"".join(
                (_KEK_PART, _length(len(who)), who, scope_part, _length(len(which)), which)
            )
            return nonce + seal(nonce, data_key, aad)

        return wrap

    def unwrap(self, wrapped: bytes, *, subject: str, scope: str, key_id: str) -> bytes:
        """Decrypt a wrapped key; raises ``cryptography``'s ``InvalidTag`` on any mismatch."""
        aad = wrap_associated_data(subject, scope, key_id)
        nonce, body = wrapped[:_WRAP_NONCE_SIZE], wrapped[_WRAP_NONCE_SIZE:]
        return self._kek.decrypt(nonce, body, aad)


def derive_master_key(passphrase: str, *, salt: bytes) -> bytes:
    """Derive a 32-byte master key from ``passphrase`` with scrypt (N=2**15, r=8, p=1).

    The salt is not secret but must be kept: the same passphrase and salt give the same
    key. The passphrase is normalised to Unicode NFC first, so "café" typed with a
    precomposed "é" or with "e" and a combining accent gives one key. Passphrases shorter
    than 12 characters, made only of spaces and control characters, or not encodable
    (a lone surrogate) are refused.
    """
    if type(passphrase) is not str:
        raise ValidationError("passphrase must be a str", field="passphrase")
    text = unicodedata.normalize("NFC", passphrase)
    if len(text) < _PASSPHRASE_MIN:
        raise ValidationError(
            f"passphrase must be a str of at least {_PASSPHRASE_MIN} characters",
            field="passphrase",
        )
    if all(unicodedata.category(c)[0] in ("C", "Z") for c in text):
        raise ValidationError(
            "passphrase is blank: only spaces or control characters", field="passphrase"
        )
    try:
        encoded = text.encode()
    except UnicodeEncodeError:
        raise ValidationError("passphrase is not valid Unicode text", field="passphrase") from None
    if not isinstance(salt, bytes) or len(salt) < _SALT_MIN:
        raise ValidationError(f"salt must be at least {_SALT_MIN} bytes", field="salt")
    kdf = Scrypt(salt=salt, length=KEY_SIZE, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return kdf.derive(encoded)


def new_salt() -> bytes:
    """A fresh random 16-byte salt for :func:`derive_master_key`."""
    return os.urandom(_SALT_MIN)


def master_key_from_env(name: str, environ: Mapping[str, str] | None = None) -> bytes:
    """Read a base64 (standard or URL-safe, padding optional) 32-byte key from ``name``.

    Raises ``ConfigurationError`` naming the variable, never quoting its value.
    """
    source = os.environ if environ is None else environ
    value = source.get(name)
    if not value or not value.strip():
        raise ConfigurationError(f"environment variable {name} is not set")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"environment variable {name} is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise ConfigurationError(
            f"environment variable {name} must decode to exactly {KEY_SIZE} bytes"
        )
    return raw
