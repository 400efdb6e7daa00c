"""FieldCipher.encrypt_raw / decrypt_raw: the binary form of the version 1 token.

The binary token is the very bytes a text token encodes (version byte first), so the two
forms convert into each other; the binary short path must refuse everything the checked
path refuses: a changed header byte, a cut or lengthened token, another version, a token
moved to another learner, field or scope, a shredded key.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.crypto import FieldCipher, Keyring, _nonce, _token
from learnprivacy.errors import (
    ArgumentError,
    DecryptionError,
    KeyShreddedError,
    ValidationError,
)
from tests.test_crypto_vectors import _keyring_of, _load, _plaintext

SUBJECT = "L1"
CONTEXT = "Learner/L1/email"
VALUE = "ana.secret@example.org"


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.generate())


def _warm(cipher: FieldCipher, subject: str = SUBJECT) -> FieldCipher:
    """The subject's default-scope key cached and in use: the short paths apply."""
    for _ in range(2):
        cipher.encrypt("warm", subject=subject, context="warm")
    assert subject in cipher._texts
    return cipher


def _assert_plain_failure(caught: pytest.ExceptionInfo[BaseException]) -> None:
    """The one fixed message: no value, subject or context, nothing chained."""
    text = str(caught.value)
    assert "secret" not in text
    assert SUBJECT not in text
    assert "email" not in text
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_binary_tokens_are_the_text_tokens_bytes(cipher: FieldCipher, warm: bool) -> None:
    """Round trip; the text form of a binary token opens with decrypt() and the binary
    form of a text token with decrypt_raw(); the version byte comes first."""
    if warm:
        _warm(cipher)
    raw = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    assert type(raw) is bytes
    assert raw[:4] == bytes((_token.VERSION, _token.ALG_AES256GCM, _token.KIND_TEXT, 0))
    assert len(raw) == _token.MIN_SIZE + len(VALUE.encode())
    assert cipher.decrypt_raw(raw, subject=SUBJECT, context=CONTEXT) == VALUE
    assert cipher.decrypt(_token.encode(raw), subject=SUBJECT, context=CONTEXT) == VALUE
    text = cipher.encrypt(VALUE, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt_raw(_token.decode(text), subject=SUBJECT, context=CONTEXT) == VALUE
    for form in (bytearray(raw), memoryview(raw)):
        assert cipher.decrypt_raw(form, subject=SUBJECT, context=CONTEXT) == VALUE  # type: ignore[arg-type]


def test_every_binary_token_has_its_own_nonce(cipher: FieldCipher) -> None:
    _warm(cipher)
    tokens = [cipher.encrypt_raw("same", subject=SUBJECT, context=CONTEXT) for _ in range(200)]
    assert len({t[12:24] for t in tokens}) == 200
    assert len({t[:12] for t in tokens}) == 1


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_any_changed_byte_cut_or_extension_fails(cipher: FieldCipher, warm: bool) -> None:
    """Every single-bit change (header, nonce, ciphertext, tag), every shorter length and
    extra bytes: one DecryptionError with the fixed message. A short path that trusted
    the cached key's header instead of comparing the token's would open the header
    changes (the kind, the reserved byte, the key id are the token's own)."""
    if warm:
        _warm(cipher)
    raw = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    bad: list[bytes] = []
    for at in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[at] ^= bit
            bad.append(bytes(changed))
    bad += [raw[:cut] for cut in range(len(raw))]
    bad += [raw + b"\x00", raw + raw[-16:], b"\x02" + raw[1:], b""]
    for token in bad:
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt_raw(token, subject=SUBJECT, context=CONTEXT)
        _assert_plain_failure(caught)


def test_a_changed_kind_byte_is_refused_however_the_token_is_spelt(cipher: FieldCipher) -> None:
    """Text kind turned into bytes kind: refused (the kind is authenticated)."""
    _warm(cipher)
    raw = bytearray(cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT))
    raw[2] = _token.KIND_BYTES
    with pytest.raises(DecryptionError):
        cipher.decrypt_raw(bytes(raw), subject=SUBJECT, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt_bytes(_token.encode(bytes(raw)), subject=SUBJECT, context=CONTEXT)


def test_a_token_of_bytes_is_refused_as_decrypt_refuses_it(cipher: FieldCipher) -> None:
    made = _token.decode(cipher.encrypt(b"\x00secret", subject=SUBJECT, context=CONTEXT))
    with pytest.raises(ValidationError):
        cipher.decrypt_raw(made, subject=SUBJECT, context=CONTEXT)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_token_moved_to_another_learner_field_or_scope_fails(
    cipher: FieldCipher, warm: bool
) -> None:
    if warm:
        _warm(cipher)
        _warm(cipher, "L2")
    raw = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    cipher.encrypt("other", subject="L2", context=CONTEXT)
    for subject, context in (("L2", CONTEXT), (SUBJECT, "Learner/L1/name"), ("L2", "x")):
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt_raw(raw, subject=subject, context=context)
        _assert_plain_failure(caught)
    scoped = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT, scope="contract")
    assert scoped[4:12] != raw[4:12]
    assert cipher.decrypt_raw(scoped, subject=SUBJECT, context=CONTEXT) == VALUE
    # A token of L1's contract key spliced under L1's default header: refused.
    with pytest.raises(DecryptionError):
        cipher.decrypt_raw(raw[:12] + scoped[12:], subject=SUBJECT, context=CONTEXT)


def test_retired_and_shredded_keys(cipher: FieldCipher) -> None:
    _warm(cipher)
    old = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    cipher.keyring.retire(SUBJECT, "default")
    new = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    assert new[4:12] != old[4:12]
    assert cipher.decrypt_raw(old, subject=SUBJECT, context=CONTEXT) == VALUE
    assert cipher.decrypt_raw(new, subject=SUBJECT, context=CONTEXT) == VALUE
    cipher.keyring.shred(SUBJECT)
    for token in (old, new):
        with pytest.raises(KeyShreddedError):
            cipher.decrypt_raw(token, subject=SUBJECT, context=CONTEXT)
    with pytest.raises(KeyShreddedError):
        cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)


def test_bad_arguments_are_typed_errors_without_values(cipher: FieldCipher) -> None:
    _warm(cipher)
    raw = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    with pytest.raises(ArgumentError):
        cipher.encrypt_raw(VALUE, SUBJECT, CONTEXT)  # type: ignore[misc]
    with pytest.raises(ArgumentError):
        cipher.decrypt_raw(raw, SUBJECT, CONTEXT)  # type: ignore[misc]
    with pytest.raises(ArgumentError):
        cipher.encrypt_raw(VALUE, subject=SUBJECT)
    with pytest.raises(ArgumentError):
        cipher.decrypt_raw(raw, context=CONTEXT)
    with pytest.raises(ValidationError) as refused:
        cipher.encrypt_raw(b"secret", subject=SUBJECT, context=CONTEXT)  # type: ignore[arg-type]
    assert "secret" not in str(refused.value)
    with pytest.raises(ValidationError) as refused:
        cipher.encrypt_raw("secret\ud800", subject=SUBJECT, context=CONTEXT)
    assert "secret" not in str(refused.value)
    assert refused.value.__cause__ is None
    with pytest.raises(ValidationError):
        cipher.decrypt_raw(_token.encode(raw), subject=SUBJECT, context=CONTEXT)  # type: ignore[arg-type]
    for subject, context in (("", CONTEXT), (SUBJECT, ""), ([SUBJECT], CONTEXT)):
        with pytest.raises(ValidationError):
            cipher.encrypt_raw(VALUE, subject=subject, context=context)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            cipher.decrypt_raw(raw, subject=subject, context=context)  # type: ignore[arg-type]


def test_an_extra_positional_argument_is_refused_with_a_cached_key(cipher: FieldCipher) -> None:
    # With subject and context given by keyword the short paths would find the key: the
    # extra argument alone must send the call to the refusal.
    _warm(cipher)
    raw = cipher.encrypt_raw(VALUE, subject=SUBJECT, context=CONTEXT)
    with pytest.raises(ArgumentError):
        cipher.decrypt_raw(raw, SUBJECT, subject=SUBJECT, context=CONTEXT)  # type: ignore[misc]
    with pytest.raises(ArgumentError):
        cipher.encrypt_raw(VALUE, SUBJECT, subject=SUBJECT, context=CONTEXT)  # type: ignore[misc]


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(st.characters(blacklist_categories=["Cs"]), max_size=60),
    at=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_text_round_trips_and_any_flipped_bit_fails(value: str, at: int, bit: int) -> None:
    cipher = _warm(FieldCipher(Keyring.generate()))
    raw = cipher.encrypt_raw(value, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt_raw(raw, subject=SUBJECT, context=CONTEXT) == value
    changed = bytearray(raw)
    changed[at % len(raw)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        cipher.decrypt_raw(bytes(changed), subject=SUBJECT, context=CONTEXT)


@pytest.mark.parametrize(
    "vector", [v for v in _load()["field_tokens"] if v["kind"] == 1], ids=lambda v: v["name"]
)
def test_version_1_vectors_in_binary_form(vector: dict[str, Any]) -> None:
    """The frozen version 1 text vectors, in binary form: written exactly (with the
    vector's nonce) and opened, cold and then on the short paths."""
    subject, scope, context = vector["subject"], vector["scope"], vector["context"]
    cipher = FieldCipher(_keyring_of(vector))
    plaintext = _plaintext(vector)
    raw = _token.decode(vector["token"])
    for _ in range(3):  # cold, then warm twice
        _nonce.inject(bytes.fromhex(vector["nonce"]))
        assert cipher.encrypt_raw(plaintext, subject=subject, context=context, scope=scope) == raw  # type: ignore[arg-type]
        assert cipher.decrypt_raw(raw, subject=subject, context=context) == plaintext
        with pytest.raises(DecryptionError):
            cipher.decrypt_raw(raw, subject=subject, context=context + "x")
