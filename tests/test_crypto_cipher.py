"""FieldCipher: round trips, the token format's defences, and typed failures."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import DecryptionError, KeyShreddedError, ValidationError

SUBJECT = "L1"
CONTEXT = "Learner/L1/email"
EMAIL = "ana.martin@example.org"
URLSAFE = set(string.ascii_letters + string.digits + "-_=")


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.generate())


@pytest.fixture
def token(cipher: FieldCipher) -> str:
    return cipher.encrypt(EMAIL, subject=SUBJECT, context=CONTEXT)


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token[4:])


def _text(raw: bytes) -> str:
    return "lp1." + base64.urlsafe_b64encode(raw).decode()


def _fails(cipher: FieldCipher, token: object, **where: str) -> DecryptionError:
    where = {"subject": SUBJECT, "context": CONTEXT, **where}
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(token, **where)  # type: ignore[arg-type]
    return caught.value


# -- round trips -------------------------------------------------------------------------


@settings(max_examples=150)
@given(value=st.text(), subject=st.text(min_size=1, max_size=40), context=st.text(min_size=1))
def test_text_round_trips(value: str, subject: str, context: str) -> None:
    """Any text, for any valid subject and context, decrypts to itself."""
    cipher = FieldCipher(_SHARED)
    if not subject.isprintable() or subject.startswith("learnprivacy:"):
        subject = "L" + str(len(subject))
    try:
        context.encode()
        value.encode()
    except UnicodeEncodeError:
        return
    token = cipher.encrypt(value, subject=subject, context=context)
    assert cipher.decrypt(token, subject=subject, context=context) == value


_SHARED = Keyring.generate()


@settings(max_examples=100)
@given(value=st.binary())
def test_bytes_round_trip_through_decrypt_bytes(value: bytes) -> None:
    """Bytes values come back as the same bytes from decrypt_bytes and decrypt_value."""
    cipher = FieldCipher(_SHARED)
    token = cipher.encrypt(value, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt_bytes(token, subject=SUBJECT, context=CONTEXT) == value
    assert cipher.decrypt_value(token, subject=SUBJECT, context=CONTEXT) == value


def test_bytearray_and_memoryview_are_bytes_values(cipher: FieldCipher) -> None:
    """bytearray and memoryview values are encrypted as bytes."""
    for value in (bytearray(b"abc"), memoryview(b"abc")):
        token = cipher.encrypt(value, subject=SUBJECT, context=CONTEXT)
        assert cipher.decrypt_bytes(token, subject=SUBJECT, context=CONTEXT) == b"abc"


def test_kind_is_preserved_and_enforced(cipher: FieldCipher) -> None:
    """decrypt refuses bytes tokens, decrypt_bytes text tokens; decrypt_value keeps the type."""
    text = cipher.encrypt("abc", subject=SUBJECT, context=CONTEXT)
    data = cipher.encrypt(b"abc", subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt_value(text, subject=SUBJECT, context=CONTEXT) == "abc"
    assert cipher.decrypt_value(data, subject=SUBJECT, context=CONTEXT) == b"abc"
    with pytest.raises(ValidationError):
        cipher.decrypt(data, subject=SUBJECT, context=CONTEXT)
    with pytest.raises(ValidationError):
        cipher.decrypt_bytes(text, subject=SUBJECT, context=CONTEXT)


def test_token_is_prefixed_urlsafe_text_with_fresh_nonces(cipher: FieldCipher) -> None:
    """Tokens are 'lp1.' + URL-safe base64, and the same value never gives the same token."""
    tokens = {cipher.encrypt(EMAIL, subject=SUBJECT, context=CONTEXT) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("lp1.")
        assert set(token[4:]) <= URLSAFE
        raw = _raw(token)
        assert raw[:4] == b"\x01\x01\x01\x00"  # version, AES-256-GCM, text, reserved
        assert len(raw) == 12 + 12 + len(EMAIL) + 16


def test_empty_value_round_trips(cipher: FieldCipher) -> None:
    """An empty string is a value like any other (it is still authenticated)."""
    token = cipher.encrypt("", subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt(token, subject=SUBJECT, context=CONTEXT) == ""


# -- every failure is one DecryptionError ------------------------------------------------


def test_flipping_any_bit_of_any_byte_fails(cipher: FieldCipher, token: str) -> None:
    """Each byte of the binary token, with each of its bits flipped, is refused."""
    raw = _raw(token)
    for index in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[index] ^= 1 << bit
            _fails(cipher, _text(bytes(tampered)))
    assert cipher.decrypt(token, subject=SUBJECT, context=CONTEXT) == EMAIL


def test_changing_any_character_of_the_text_fails(cipher: FieldCipher) -> None:
    """No other spelling of a token decrypts, padding bits included (one padded token each)."""
    for value in ("a", "ab", "abc"):  # tokens ending in '==', '=' and no padding
        token = cipher.encrypt(value, subject=SUBJECT, context=CONTEXT)
        for index in range(len(token)):
            for char in string.ascii_letters + string.digits + "-_=+/.! é":
                if char == token[index]:
                    continue
                changed = token[:index] + char + token[index + 1 :]
                _fails(cipher, changed)


def test_every_truncation_and_extension_fails(cipher: FieldCipher, token: str) -> None:
    """Every prefix of a token, and the token with anything appended, is refused."""
    for end in range(len(token)):
        _fails(cipher, token[:end])
    for suffix in ("A", "AAAA", "=", "\n", " ", token):
        _fails(cipher, token + suffix)
    raw = _raw(token)
    for end in range(len(raw)):
        _fails(cipher, _text(raw[:end]))


@settings(max_examples=200)
@given(garbage=st.text() | st.text(alphabet=string.ascii_letters + "-_=").map("lp1.".__add__))
def test_garbage_fails_with_decryption_error(garbage: str) -> None:
    """Arbitrary text is a DecryptionError, never another exception or a value."""
    cipher = FieldCipher(_SHARED)
    _fails(cipher, garbage)


def test_unknown_versions_and_algorithms_fail(cipher: FieldCipher, token: str) -> None:
    """Another text prefix, version byte, algorithm, kind or reserved byte is refused."""
    raw = _raw(token)
    _fails(cipher, "lp2." + token[4:])
    _fails(cipher, "LP1." + token[4:])
    _fails(cipher, token[4:])
    for offset, value in ((0, 2), (0, 0), (1, 2), (2, 3), (2, 0), (3, 1)):
        tampered = bytearray(raw)
        tampered[offset] = value
        _fails(cipher, _text(bytes(tampered)))


def test_wrong_subject_or_context_fails(cipher: FieldCipher, token: str) -> None:
    """A token only opens for the subject and context it was made for."""
    cipher.encrypt("x", subject="L2", context="Learner/L2/email")
    _fails(cipher, token, subject="L2")
    _fails(cipher, token, subject="L10")
    _fails(cipher, token, context="Learner/L1/given_name")
    _fails(cipher, token, context="Learner/L1/email ")
    _fails(cipher, token, context="Learner/L2/email")


def test_tokens_swapped_between_fields_and_learners_fail(cipher: FieldCipher) -> None:
    """Copying a token to another field, record or learner is detected."""
    email = cipher.encrypt("ana@example.org", subject="L1", context="Learner/L1/email")
    name = cipher.encrypt("Ana", subject="L1", context="Learner/L1/given_name")
    other = cipher.encrypt("bob@example.org", subject="L2", context="Learner/L2/email")
    _fails(cipher, name, context="Learner/L1/email")
    _fails(cipher, email, context="Learner/L1/given_name")
    _fails(cipher, other, subject="L1", context="Learner/L1/email")
    _fails(cipher, email, subject="L2", context="Learner/L2/email")


def test_subject_and_context_boundary_is_unambiguous(cipher: FieldCipher) -> None:
    """Moving characters between subject and context does not keep a token valid."""
    token = cipher.encrypt("v", subject="L1", context="2/email")
    cipher.encrypt("w", subject="L12", context="/email")
    _fails(cipher, token, subject="L12", context="/email")


def test_token_of_another_keyring_fails(cipher: FieldCipher, token: str) -> None:
    """A token made under another keyring (unknown key id) is a DecryptionError."""
    other = FieldCipher(Keyring.generate())
    other.encrypt("x", subject=SUBJECT, context=CONTEXT)
    error = _fails(other, token)
    assert not isinstance(error, KeyShreddedError)


def test_all_failures_share_one_message_without_personal_data(
    cipher: FieldCipher, token: str
) -> None:
    """Every cause gives the same message, holding neither value, subject nor context."""
    raw = bytearray(_raw(token))
    raw[-1] ^= 1
    errors = [
        _fails(cipher, token, subject="L2"),
        _fails(cipher, token, context="Learner/L1/name"),
        _fails(cipher, _text(bytes(raw))),
        _fails(cipher, token[:30]),
        _fails(cipher, "garbage ana.martin@example.org"),
    ]
    messages = {str(error) for error in errors}
    assert len(messages) == 1
    message = messages.pop()
    for secret in (EMAIL, "ana", "Learner/L1", "L1"):
        assert secret not in message
    for error in errors:
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__


# -- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 1, 1.5, ["a"], {"a": 1}, object()])
def test_values_other_than_str_or_bytes_are_refused(cipher: FieldCipher, value: object) -> None:
    """Only str and bytes can be encrypted."""
    with pytest.raises(ValidationError) as caught:
        cipher.encrypt(value, subject=SUBJECT, context=CONTEXT)  # type: ignore[arg-type]
    assert caught.value.field == "value"


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": None}, "subject"),
        ({"subject": ["L1"]}, "subject"),
        ({"subject": "L\x001"}, "subject"),
        ({"subject": "learnprivacy:system"}, "subject"),
        ({"subject": "L" * 256}, "subject"),
        ({"context": ""}, "context"),
        ({"context": None}, "context"),
        ({"context": b"Learner/L1/email"}, "context"),
        ({"context": "bad\udc80"}, "context"),
        ({"scope": ""}, "scope"),
        ({"scope": "Legal"}, "scope"),
        ({"scope": None}, "scope"),
        ({"scope": ["legal"]}, "scope"),
    ],
)
def test_bad_subject_context_or_scope_is_a_validation_error(
    cipher: FieldCipher, where: dict[str, object], field: str
) -> None:
    """Empty, non-str, reserved or malformed subjects, contexts and scopes are refused."""
    arguments: dict[str, object] = {"subject": SUBJECT, "context": CONTEXT, **where}
    with pytest.raises(ValidationError) as caught:
        cipher.encrypt(EMAIL, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(
    "where",
    [{"subject": ""}, {"subject": None}, {"context": ""}, {"context": None}, {"subject": [1]}],
)
def test_decrypt_with_bad_subject_or_context_is_a_validation_error(
    cipher: FieldCipher, token: str, where: dict[str, object]
) -> None:
    """Decryption checks its arguments as encryption does, even with a warm cache."""
    cipher.decrypt(token, subject=SUBJECT, context=CONTEXT)
    arguments: dict[str, object] = {"subject": SUBJECT, "context": CONTEXT, **where}
    with pytest.raises(ValidationError):
        cipher.decrypt(token, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", [None, b"lp1.AAAA", 1])
def test_non_str_tokens_are_a_validation_error(cipher: FieldCipher, token: object) -> None:
    """A token must be text; None (a NULL column) is not silently accepted."""
    with pytest.raises(ValidationError):
        cipher.decrypt(token, subject=SUBJECT, context=CONTEXT)  # type: ignore[arg-type]


def test_unencodable_value_error_does_not_quote_it(cipher: FieldCipher) -> None:
    """A lone surrogate is refused with a message that does not contain the text."""
    with pytest.raises(ValidationError) as caught:
        cipher.encrypt("secret\udc80value", subject=SUBJECT, context=CONTEXT)
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_keyring_must_be_a_keyring() -> None:
    """FieldCipher refuses anything but a Keyring."""
    with pytest.raises(ValidationError):
        FieldCipher(b"\x00" * 32)  # type: ignore[arg-type]


# -- scopes, key ids, re-encryption ------------------------------------------------------


def test_scopes_use_distinct_keys(cipher: FieldCipher) -> None:
    """Each (subject, scope) has its own data key, named in the token."""
    contract = cipher.encrypt("a", subject=SUBJECT, context=CONTEXT, scope="contract")
    legal = cipher.encrypt("a", subject=SUBJECT, context=CONTEXT, scope="legal")
    again = cipher.encrypt("b", subject=SUBJECT, context=CONTEXT, scope="contract")
    assert cipher.key_id(contract) == cipher.key_id(again) != cipher.key_id(legal)
    assert len(cipher.key_id(legal)) == 16


def test_reencrypt_moves_a_value_to_the_current_key(cipher: FieldCipher, token: str) -> None:
    """After retire(), reencrypt() gives a token under the new key with the same value."""
    keyring = cipher.keyring
    old_key = cipher.key_id(token)
    assert keyring.retire(SUBJECT) == 1
    fresh = cipher.reencrypt(token, subject=SUBJECT, context=CONTEXT)
    assert cipher.key_id(fresh) != old_key
    assert cipher.decrypt(fresh, subject=SUBJECT, context=CONTEXT) == EMAIL
    assert cipher.decrypt(token, subject=SUBJECT, context=CONTEXT) == EMAIL
    assert keyring.destroy_key(SUBJECT, old_key)
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt(fresh, subject=SUBJECT, context=CONTEXT) == EMAIL


def test_reencrypt_keeps_bytes_as_bytes(cipher: FieldCipher) -> None:
    """Re-encryption preserves the kind of the value."""
    token = cipher.encrypt(b"\x00\xff", subject=SUBJECT, context=CONTEXT)
    fresh = cipher.reencrypt(token, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt_bytes(fresh, subject=SUBJECT, context=CONTEXT) == b"\x00\xff"


def test_key_id_of_garbage_is_a_decryption_error(cipher: FieldCipher) -> None:
    """key_id() parses the header and refuses what is not a token."""
    with pytest.raises(DecryptionError):
        cipher.key_id("lp1.nope")
    with pytest.raises(ValidationError):
        cipher.key_id(None)  # type: ignore[arg-type]


def test_repr_shows_no_key_material(cipher: FieldCipher, token: str) -> None:
    """The cipher's repr names the keyring's public id only."""
    text = repr(cipher)
    assert cipher.keyring.master_key_id in text
    assert cipher.keyring.export_master_key().hex() not in text
    assert token not in text
