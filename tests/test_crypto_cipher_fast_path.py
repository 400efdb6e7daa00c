"""FieldCipher's fast paths refuse exactly what its checked paths refuse.

``encrypt`` and ``decrypt`` first try a short path for the common case (a cached key, a
``str`` value, the learner's most recently activated key recognised by its header text)
and fall back to the path that checks everything in order. These tests warm the cache so
that the short path is the one taken, then attack it: tokens moved between learners,
fields and kinds, truncated or re-spelled tokens, misplaced arguments, shredded keys,
and an empty nonce pool.
"""

from __future__ import annotations

import pytest

from learnprivacy.crypto import FieldCipher, Keyring, _nonce
from learnprivacy.errors import (
    ArgumentError,
    DecryptionError,
    KeyShreddedError,
    ValidationError,
)

EMAIL = "ana.martin@example.org"


@pytest.fixture
def cipher() -> FieldCipher:
    warm = FieldCipher(Keyring.generate())
    for subject in ("L1", "L2"):
        # Twice: the first use makes the key, the second puts it in KeyCache.texts.
        warm.encrypt("warm", subject=subject, context="warm")
        warm.encrypt("warm", subject=subject, context="warm")
    assert set(warm._texts) == {"L1", "L2"}
    return warm


def _recent(cipher: FieldCipher, subject: str) -> str:
    """The header text of ``subject``'s active key of the default scope."""
    return cipher._cache[subject].sealers["default"][1]


def test_the_fast_path_knows_each_learners_active_key(cipher: FieldCipher) -> None:
    token = cipher.encrypt(EMAIL, subject="L1", context="Learner/L1/email")
    assert token.startswith(_recent(cipher, "L1"))
    assert not token.startswith(_recent(cipher, "L2"))
    assert cipher.decrypt(token, subject="L1", context="Learner/L1/email") == EMAIL


def test_tokens_moved_between_learners_and_fields_fail_on_the_fast_path(
    cipher: FieldCipher,
) -> None:
    token = cipher.encrypt(EMAIL, subject="L1", context="Learner/L1/email")
    for subject, context in (
        ("L2", "Learner/L1/email"),  # another learner, whose key is cached too
        ("L1", "Learner/L1/username"),  # another field of the same learner
        ("L1", "Learner/L9/email"),  # another record
    ):
        with pytest.raises(DecryptionError):
            cipher.decrypt(token, subject=subject, context=context)


def test_truncated_and_respelled_tokens_fail_on_the_fast_path(cipher: FieldCipher) -> None:
    token = cipher.encrypt(EMAIL, subject="L1", context="c")
    for cut in range(1, len(token) - 20):
        with pytest.raises(DecryptionError):
            cipher.decrypt(token[:-cut], subject="L1", context="c")
    # A padded token's last character spelled with non-zero unused bits decodes to the
    # same bytes; only the canonical spelling opens.
    padded = next(
        t
        for t in (cipher.encrypt(EMAIL[:n], subject="L1", context="c") for n in range(9))
        if t.endswith("==")
    )
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(padded[-3])
    respelled = padded[:-3] + alphabet[last | 1] + "=="
    assert respelled != padded
    with pytest.raises(DecryptionError):
        cipher.decrypt(respelled, subject="L1", context="c")


def test_a_bytes_token_of_the_active_key_is_refused_by_decrypt(cipher: FieldCipher) -> None:
    token = cipher.encrypt(b"\x00raw", subject="L1", context="c")
    assert not token.startswith(_recent(cipher, "L1"))  # the kind is in the header
    with pytest.raises(ValidationError):
        cipher.decrypt(token, subject="L1", context="c")
    assert cipher.decrypt_bytes(token, subject="L1", context="c") == b"\x00raw"


def test_a_retired_keys_tokens_still_open_beside_the_new_active_key(
    cipher: FieldCipher,
) -> None:
    old = cipher.encrypt(EMAIL, subject="L1", context="c")
    cipher.keyring.retire("L1", "default")
    new = cipher.encrypt(EMAIL, subject="L1", context="c")
    assert new[:20] != old[:20]
    assert new.startswith(_recent(cipher, "L1"))
    assert cipher.decrypt(old, subject="L1", context="c") == EMAIL
    assert cipher.decrypt(new, subject="L1", context="c") == EMAIL


def test_a_shredded_learners_token_raises_key_shredded(cipher: FieldCipher) -> None:
    token = cipher.encrypt(EMAIL, subject="L1", context="c")
    assert "L1" in cipher._texts
    cipher.keyring.shred("L1")
    assert "L1" not in cipher._texts
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="c")
    with pytest.raises(KeyShreddedError):
        cipher.encrypt(EMAIL, subject="L1", context="c")


def test_misplaced_arguments_are_refused_even_with_a_cached_key(cipher: FieldCipher) -> None:
    token = cipher.encrypt(EMAIL, subject="L1", context="c")
    with pytest.raises(ArgumentError):
        cipher.decrypt(token, "L1", subject="L1", context="c")  # type: ignore[misc]
    with pytest.raises(ArgumentError):
        cipher.encrypt(EMAIL, "L1", subject="L1", context="c")  # type: ignore[misc]


def test_bad_values_raise_the_same_errors_cached_or_not(cipher: FieldCipher) -> None:
    cold = FieldCipher(Keyring.generate())
    for value, context in (("\ud800", "c"), (EMAIL, ""), (EMAIL, "\ud800"), (3, "c")):
        errors = []
        for one in (cipher, cold):
            with pytest.raises(ValidationError) as caught:
                one.encrypt(value, subject="L1", context=context)  # type: ignore[arg-type]
            errors.append((type(caught.value), str(caught.value)))
        assert errors[0] == errors[1]
        assert "\ud800" not in errors[0][1]


def test_an_empty_nonce_pool_is_refilled_and_nonces_never_repeat(
    cipher: FieldCipher,
) -> None:
    _nonce._pool.clear()
    tokens = [cipher.encrypt("v", subject="L1", context="c") for _ in range(2 * _nonce._BATCH)]
    nonces = {_nonce_of(token) for token in tokens}
    assert len(nonces) == len(tokens)
    assert all(cipher.decrypt(t, subject="L1", context="c") == "v" for t in tokens[::97])


def _nonce_of(token: str) -> bytes:
    import base64

    raw = base64.urlsafe_b64decode(token[4:])
    assert len(raw[12:24]) == 12
    return raw[12:24]


def test_shredding_one_scope_spares_the_other_on_the_fast_path(cipher: FieldCipher) -> None:
    kept = cipher.encrypt(EMAIL, subject="L1", context="c", scope="billing")
    gone = cipher.encrypt(EMAIL, subject="L1", context="c")  # the last key made active
    cipher.keyring.shred("L1", "default")
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(gone, subject="L1", context="c")
    assert cipher.decrypt(kept, subject="L1", context="c") == EMAIL
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(gone, subject="L1", context="c")


def test_the_default_scopes_unpacked_sealer_serves_that_scope_only(cipher: FieldCipher) -> None:
    default = cipher.encrypt(EMAIL, subject="L1", context="c")
    assert "L1" in cipher._texts  # the short path's entry is in place
    other = cipher.encrypt(EMAIL, subject="L1", context="c", scope="billing")
    assert cipher.key_id(other) != cipher.key_id(default)
    again = cipher.encrypt(EMAIL, subject="L1", context="c")
    assert cipher.key_id(again) == cipher.key_id(default)
    # A scope equal to the default but another object takes the checked path: same key.
    spelled = "".join(["def", "ault"])
    same = cipher.encrypt(EMAIL, subject="L1", context="c", scope=spelled)
    assert cipher.key_id(same) == cipher.key_id(default)
    assert cipher.decrypt(other, subject="L1", context="c") == EMAIL


def test_a_stale_sealer_is_never_remembered_for_the_short_path(cipher: FieldCipher) -> None:
    cipher.encrypt(EMAIL, subject="L1", context="c")
    stale = cipher._cache["L1"].sealers["default"]
    old = cipher.encrypt(EMAIL, subject="L1", context="c")
    cipher.keyring.retire("L1", "default")
    assert "L1" not in cipher._texts  # retire() dropped it with the cached keys
    fresh = cipher.encrypt(EMAIL, subject="L1", context="c")
    cipher.encrypt(EMAIL, subject="L1", context="c")  # a second use: now remembered
    cipher._remember_text(
        "L1", "default", stale
    )  # as a thread that lost a race with retire() would
    assert cipher._texts["L1"][0] == fresh[:20]
    assert cipher.key_id(cipher.encrypt(EMAIL, subject="L1", context="c")) != cipher.key_id(old)


def test_a_str_subclass_is_refused_cached_or_not(cipher: FieldCipher) -> None:
    class Text(str):
        pass

    cold = FieldCipher(Keyring.generate())
    for one in (cipher, cold):
        with pytest.raises(ValidationError):
            one.encrypt(Text(EMAIL), subject="L1", context="c")


def test_the_canonical_tail_rule_is_the_set_of_allowed_tails_it_replaced() -> None:
    """Every three-character ending (alphabet and "="), through the short paths' inline
    rule and _token.canonical_tail, against the set of allowed tails they replaced."""
    from learnprivacy.crypto import _token

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    allowed = {last + "==" for last in alphabet[::16]} | {
        before + last + "=" for before in alphabet for last in alphabet[::4]
    }
    one, two = _token.BEFORE_ONE_PAD, _token.BEFORE_TWO_PADS
    for a in alphabet:
        for b in alphabet + "=":
            for c in alphabet + "=":
                tail = "AAAA" + a + b + c
                if "=" in b and c != "=":
                    continue  # "=" then a character: the strict decoder refuses it first
                old = tail[-1] != "=" or tail[-3:] in allowed
                inline = tail[-1] != "=" or (
                    tail[-2] in one if tail[-2] != "=" else tail[-3] in two
                )
                assert inline == old == _token.canonical_tail(tail), tail


@pytest.mark.parametrize("pads", ["=", "=="])
def test_respelled_padding_fails_on_every_short_path(cipher: FieldCipher, pads: str) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value, padded = next(
        (EMAIL[:n], t)
        for n in range(9)
        for t in [cipher.encrypt(EMAIL[:n], subject="L1", context="c")]
        if t.endswith(pads) and not t.endswith("=" + pads)
    )
    at = len(padded) - len(pads) - 1
    spare = 1 if pads == "=" else 3  # the unused low bits of that character
    for bits in range(1, spare + 1):
        respelled = padded[:at] + alphabet[alphabet.index(padded[at]) | bits] + pads
        assert respelled != padded
        with pytest.raises(DecryptionError):
            cipher.decrypt(respelled, subject="L1", context="c")
        with pytest.raises(DecryptionError):
            cipher.decrypt_many([padded, respelled], subject="L1", contexts=["c", "c"])
        with pytest.raises(DecryptionError):
            cipher._open_text(cipher._openers_of("L1"), respelled, "L1", "c")
    assert cipher.decrypt_many([padded], subject="L1", contexts=["c"]) == [value]
    assert cipher.decrypt(padded, subject="L1", context="c") == value
