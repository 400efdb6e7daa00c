"""Fixed test vectors for the token, key-wrap, pseudonym and blind-index formats.

``tests/vectors/crypto_v1.json`` holds the vectors. Every one is checked twice: against
the reference functions below, written with the bare primitives only (``cryptography``'s
AESGCM and HKDF, the standard library's ``hmac`` and ``base64``; no learnprivacy code),
and against learnprivacy itself. A change to the formats therefore fails here, loudly,
instead of drifting silently. Never regenerate the file to make a failing test pass:
a new format needs a new version (``lp2.``, ``p2_``...) and a new vector file.

``python tests/test_crypto_vectors.py --regenerate`` rewrote the file from the inputs in
``_INPUTS`` with these reference functions, once, when format version 1 was fixed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from learnprivacy.crypto import (
    BlindIndex,
    FieldCipher,
    InMemoryKeyStore,
    Keyring,
    Pseudonymiser,
    _nonce,
)
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.crypto._master import MasterKey
from learnprivacy.errors import DecryptionError, ValidationError

VECTORS = Path(__file__).parent / "vectors" / "crypto_v1.json"

# -- reference implementation: bare primitives only --------------------------------------


def _lp(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _hkdf(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def ref_master_key_id(master: bytes) -> str:
    return _hkdf(master, b"learnprivacy/v1/master-key-id", 8).hex()


def ref_wrap(
    master: bytes, data_key: bytes, subject: str, scope: str, key_id: str, nonce: bytes
) -> bytes:
    kek = _hkdf(master, b"learnprivacy/v1/key-wrap", 32)
    aad = _lp(b"learnprivacy/v1/key-wrap", subject.encode(), scope.encode(), key_id.encode())
    return nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def ref_token(
    data_key: bytes,
    key_id: str,
    subject: str,
    context: str,
    nonce: bytes,
    plaintext: bytes,
    kind: int,
) -> str:
    header = bytes((1, 1, kind, 0)) + bytes.fromhex(key_id)
    aad = header + _lp(subject.encode()) + context.encode()
    sealed = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    return "lp1." + base64.urlsafe_b64encode(header + nonce + sealed).decode()


def _mac_text(prefix: str, key: bytes, message: bytes, size: int) -> str:
    digest = hmac.new(key, message, hashlib.sha256).digest()[:size]
    return prefix + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def ref_pseudonym(key: bytes, domain: str, identifier: str, size: int) -> str:
    message = _lp(b"learnprivacy/pseudonym/v1", domain.encode()) + identifier.encode()
    return _mac_text("p1_", key, message, size)


def ref_blind_index(key: bytes, field: str, value: str, size: int) -> str:
    normalised = unicodedata.normalize("NFC", value).strip().casefold()
    message = _lp(b"learnprivacy/blind-index/v1", field.encode()) + normalised.encode()
    return _mac_text("b1_", key, message, size)


# -- the vectors -------------------------------------------------------------------------


def _load() -> dict[str, Any]:
    if __name__ == "__main__" and not VECTORS.exists():
        # Regenerating from scratch: nothing to parametrize with yet.
        return {"field_tokens": [], "pseudonyms": [], "blind_indexes": []}
    loaded: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return loaded


def _plaintext(vector: dict[str, Any]) -> str | bytes:
    if vector["kind"] == 1:
        text: str = vector["plaintext"]
        return text
    return bytes.fromhex(vector["plaintext"])


def _plain_bytes(vector: dict[str, Any]) -> bytes:
    value = _plaintext(vector)
    return value.encode() if isinstance(value, str) else value


def test_vector_file_has_provenance_and_all_sections() -> None:
    """The file says where it comes from and covers every format."""
    data = _load()
    assert "bare primitives" in data["provenance"]
    assert data["format"] == "learnprivacy crypto v1"
    for section in ("field_tokens", "pseudonyms", "blind_indexes"):
        assert len(data[section]) >= 3


@pytest.mark.parametrize("vector", _load()["field_tokens"], ids=lambda v: v["name"])
def test_field_token_vectors_match_the_reference(vector: dict[str, Any]) -> None:
    """Master key id, wrapped key and token equal the bare-primitive computation."""
    master_key_id, wrapped, token = _reference(vector)
    assert master_key_id == vector["master_key_id"]
    assert wrapped == vector["wrapped"]
    assert token == vector["token"]


def _keyring_of(vector: dict[str, Any]) -> Keyring:
    """A keyring whose store holds the vector's wrapped data key, active."""
    store = InMemoryKeyStore()
    store.add(
        KeyEntry(
            subject=vector["subject"],
            scope=vector["scope"],
            key_id=vector["key_id"],
            state=KeyState.ACTIVE,
            master_key_id=vector["master_key_id"],
            wrapped=bytes.fromhex(vector["wrapped"]),
        )
    )
    return Keyring(bytes.fromhex(vector["master_key"]), store=store)


@pytest.mark.parametrize("vector", _load()["field_tokens"], ids=lambda v: v["name"])
def test_field_token_vectors_match_the_library(vector: dict[str, Any]) -> None:
    """learnprivacy wraps, encrypts (with the vector's nonce) and decrypts exactly so."""
    master = bytes.fromhex(vector["master_key"])
    subject, scope, context = vector["subject"], vector["scope"], vector["context"]
    wrapped = MasterKey(master).wrap(
        bytes.fromhex(vector["data_key"]),
        subject=subject,
        scope=scope,
        key_id=vector["key_id"],
        nonce=bytes.fromhex(vector["wrap_nonce"]),
    )
    assert wrapped.hex() == vector["wrapped"]
    keyring = _keyring_of(vector)
    assert keyring.master_key_id == vector["master_key_id"]
    cipher = FieldCipher(keyring)
    plaintext = _plaintext(vector)
    _nonce.inject(bytes.fromhex(vector["nonce"]))
    token = cipher.encrypt(plaintext, subject=subject, context=context, scope=scope)
    assert token == vector["token"]
    assert cipher.decrypt_value(vector["token"], subject=subject, context=context) == plaintext
    assert cipher.key_id(token) == vector["key_id"]


@pytest.mark.parametrize("vector", _load()["pseudonyms"], ids=lambda v: v["name"])
def test_pseudonym_vectors(vector: dict[str, Any]) -> None:
    """Pseudonyms equal the reference HMAC computation and the library's output."""
    key = bytes.fromhex(vector["key"])
    arguments = (key, vector["domain"], vector["identifier"], vector["size"])
    assert ref_pseudonym(*arguments) == vector["pseudonym"]
    pseudonymiser = Pseudonymiser(key, domain=vector["domain"], size=vector["size"])
    assert pseudonymiser.pseudonym(vector["identifier"]) == vector["pseudonym"]


@pytest.mark.parametrize("vector", _load()["blind_indexes"], ids=lambda v: v["name"])
def test_blind_index_vectors(vector: dict[str, Any]) -> None:
    """Blind indexes equal the reference HMAC computation and the library's output."""
    key = bytes.fromhex(vector["key"])
    arguments = (key, vector["field"], vector["value"], vector["size"])
    assert ref_blind_index(*arguments) == vector["index"]
    index = BlindIndex(key, size=vector["size"])
    assert index.compute(vector["value"], field=vector["field"]) == vector["index"]


# -- generation (run once, by hand) ------------------------------------------------------

_INPUTS: dict[str, list[dict[str, Any]]] = {
    "field_tokens": [
        {
            "name": "email",
            "master_key": bytes(range(32)).hex(),
            "data_key": bytes(range(32, 64)).hex(),
            "wrap_nonce": bytes(range(100, 112)).hex(),
            "subject": "L1",
            "scope": "default",
            "key_id": "0123456789abcdef",
            "context": "Learner/L1/email",
            "nonce": bytes(range(200, 212)).hex(),
            "kind": 1,
            "plaintext": "ana.martin@example.org",
        },
        {
            "name": "empty-text-legal-scope",
            "master_key": bytes(range(32)).hex(),
            "data_key": bytes(32).hex(),
            "wrap_nonce": bytes(12).hex(),
            "subject": "L1",
            "scope": "legal",
            "key_id": "fedcba9876543210",
            "context": "Invoice/I-2024-001/billing_name",
            "nonce": bytes(12).hex(),
            "kind": 1,
            "plaintext": "",
        },
        {
            "name": "unicode-subject-and-context",
            "master_key": (b"\xff" * 32).hex(),
            "data_key": bytes(range(64, 96)).hex(),
            "wrap_nonce": (b"\x01" * 12).hex(),
            "subject": "élève-42",
            "scope": "contract",
            "key_id": "00000000000000ff",
            "context": "Learner/élève-42/family_name",
            "nonce": (b"\x7f" * 12).hex(),
            "kind": 1,
            "plaintext": "Dupont-Lefèvre 日本",
        },
        {
            "name": "bytes-value",
            "master_key": bytes(range(32)).hex(),
            "data_key": bytes(range(96, 128)).hex(),
            "wrap_nonce": bytes(range(12)).hex(),
            "subject": "L2",
            "scope": "default",
            "key_id": "1111111111111111",
            "context": "Certificate/C9/scan",
            "nonce": bytes(range(12, 24)).hex(),
            "kind": 2,
            "plaintext": bytes(range(256)).hex(),
        },
    ],
    "pseudonyms": [
        {"name": "employer", "key": bytes(range(32)).hex(), "domain": "employer-report"},
        {"name": "funder", "key": bytes(range(32)).hex(), "domain": "funder-report"},
        {"name": "long-key", "key": bytes(range(100)).hex(), "domain": "employer-report"},
        {"name": "full-size", "key": bytes(range(32)).hex(), "domain": "d", "size": 32},
    ],
    "blind_indexes": [
        {"name": "email", "field": "Learner.email", "value": "ana.martin@example.org"},
        {"name": "email-spelling", "field": "Learner.email", "value": " Ana.Martin@EXAMPLE.org "},
        {"name": "username", "field": "Learner.username", "value": "ana.martin@example.org"},
        {"name": "nfd", "field": "Learner.family_name", "value": "Lefe\u0300vre", "size": 8},
    ],
}


def _reference(vector: dict[str, Any]) -> tuple[str, str, str]:
    """The master key id, wrapped data key (hex) and token of a field-token ``vector``'s
    inputs, computed from the bare primitives."""
    master = bytes.fromhex(vector["master_key"])
    data_key = bytes.fromhex(vector["data_key"])
    wrapped = ref_wrap(
        master,
        data_key,
        vector["subject"],
        vector["scope"],
        vector["key_id"],
        bytes.fromhex(vector["wrap_nonce"]),
    )
    token = ref_token(
        data_key,
        vector["key_id"],
        vector["subject"],
        vector["context"],
        bytes.fromhex(vector["nonce"]),
        _plain_bytes(vector),
        vector["kind"],
    )
    return ref_master_key_id(master), wrapped.hex(), token


def _generate() -> dict[str, Any]:
    tokens = []
    for given in _INPUTS["field_tokens"]:
        vector = dict(given)
        vector["master_key_id"], vector["wrapped"], vector["token"] = _reference(vector)
        tokens.append(vector)
    pseudonyms = []
    for given in _INPUTS["pseudonyms"]:
        for identifier in ("L1", "42", "élève"):
            vector = {"size": 16, **given, "identifier": identifier}
            vector["name"] = f"{given['name']}-{identifier}"
            key = bytes.fromhex(vector["key"])
            vector["pseudonym"] = ref_pseudonym(key, vector["domain"], identifier, vector["size"])
            pseudonyms.append(vector)
    indexes = []
    for given in _INPUTS["blind_indexes"]:
        vector = {"key": bytes(range(32, 64)).hex(), "size": 16, **given}
        key = bytes.fromhex(vector["key"])
        vector["index"] = ref_blind_index(key, vector["field"], vector["value"], vector["size"])
        indexes.append(vector)
    return {
        "format": "learnprivacy crypto v1",
        "provenance": (
            "Computed by the reference functions of tests/test_crypto_vectors.py, written "
            "with bare primitives only (cryptography AESGCM and HKDF-SHA256, the standard "
            "library's hmac, hashlib, base64 and unicodedata; no learnprivacy code), from "
            "the fixed inputs listed in that file. Bytes are hex; 'kind' 1 is a UTF-8 text "
            "plaintext, 2 a hex bytes plaintext. Frozen with format version 1: a change "
            "here is a format change and needs a new version."
        ),
        "field_tokens": tokens,
        "pseudonyms": pseudonyms,
        "blind_indexes": indexes,
    }


if __name__ == "__main__" and "--regenerate" in sys.argv:
    VECTORS.write_text(
        json.dumps(_generate(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


@pytest.mark.parametrize("vector", _load()["field_tokens"], ids=lambda v: v["name"])
def test_field_token_vectors_through_the_warm_short_paths(vector: dict[str, Any]) -> None:
    """With the key cached, encrypt and decrypt take their short paths: they must still
    write the vector's exact token and open it (and refuse it elsewhere)."""
    subject, scope, context = vector["subject"], vector["scope"], vector["context"]
    cipher = FieldCipher(_keyring_of(vector))
    plaintext = _plaintext(vector)
    for _ in range(3):  # cold, then warm twice
        _nonce.inject(bytes.fromhex(vector["nonce"]))
        assert (
            cipher.encrypt(plaintext, subject=subject, context=context, scope=scope)
            == (vector["token"])
        )
        assert cipher.decrypt_value(vector["token"], subject=subject, context=context) == plaintext
        if vector["kind"] == 1:
            assert cipher.decrypt(vector["token"], subject=subject, context=context) == plaintext
            assert cipher.decrypt_many([vector["token"]], subject=subject, contexts=[context]) == [
                plaintext
            ]
            with pytest.raises(DecryptionError):
                cipher.decrypt(vector["token"], subject=subject, context=context + "x")
        else:
            with pytest.raises(ValidationError):
                cipher.decrypt(vector["token"], subject=subject, context=context)
    if vector["kind"] == 1:
        # The warm calls above were served by the short path's entry of their scope.
        entry = (
            cipher._texts.get(subject)
            if scope == "default"
            else cipher._scoped.get((subject, scope))
        )
        assert entry is not None
        assert vector["token"].startswith(entry[0])
        _nonce.inject(bytes.fromhex(vector["nonce"]))
        assert cipher.encrypt_many(
            [plaintext], subject=subject, contexts=[context], scope=scope
        ) == [vector["token"]]
