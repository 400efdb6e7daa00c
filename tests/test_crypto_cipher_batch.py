"""FieldCipher.encrypt_many / decrypt_many: the batch path gives exactly what the single
path gives, and refuses exactly what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.crypto import FieldCipher, Keyring, _nonce
from learnprivacy.errors import DecryptionError, KeyShreddedError, ValidationError

SUBJECT = "L1"
FIELDS = ("username", "email", "given_name", "family_name")
CONTEXTS = [f"Learner/L1/{name}" for name in FIELDS]
VALUES = ["ana", "ana.martin@example.org", "Ana", "Martin"]


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.generate())


def test_batch_tokens_open_one_by_one_and_back(cipher: FieldCipher) -> None:
    """Tokens made in a batch open with decrypt(), and single tokens open in a batch."""
    tokens = cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    assert [
        cipher.decrypt(t, subject=SUBJECT, context=c) for t, c in zip(tokens, CONTEXTS, strict=True)
    ] == VALUES
    singles = [
        cipher.encrypt(v, subject=SUBJECT, context=c) for v, c in zip(VALUES, CONTEXTS, strict=True)
    ]
    assert cipher.decrypt_many(singles, subject=SUBJECT, contexts=CONTEXTS) == VALUES
    # Fresh nonces per value: the same values never give the same tokens twice.
    assert set(tokens).isdisjoint(singles)
    assert len(set(cipher.encrypt_many(["x"] * 50, subject=SUBJECT, contexts=["C/1/x"] * 50))) == 50


def test_batch_on_a_cold_cache(cipher: FieldCipher) -> None:
    """A batch for a subject whose keys are not cached yet takes the checked path."""
    tokens = cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    fresh = FieldCipher(cipher.keyring)
    cipher.keyring._cache.subjects.clear()
    assert fresh.decrypt_many(tokens, subject=SUBJECT, contexts=CONTEXTS) == VALUES


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40), max_size=8))
def test_batch_round_trip_any_text(values: list[str]) -> None:
    """Any UTF-8 text survives a batch round trip, in order."""
    cipher = FieldCipher(Keyring.generate())
    contexts = [f"Progress/P{i}/note" for i in range(len(values))]
    tokens = cipher.encrypt_many(values, subject=SUBJECT, contexts=contexts)
    assert cipher.decrypt_many(tokens, subject=SUBJECT, contexts=contexts) == values


def test_a_token_moved_within_the_batch_fails(cipher: FieldCipher) -> None:
    """Swapping two tokens of the same record (same subject, same key) is caught: each is
    bound to its field."""
    tokens = cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    swapped = [tokens[1], tokens[0], *tokens[2:]]
    with pytest.raises(DecryptionError):
        cipher.decrypt_many(swapped, subject=SUBJECT, contexts=CONTEXTS)


def test_wrong_subject_tampering_and_garbage_fail(cipher: FieldCipher) -> None:
    """Every token the single path refuses, the batch refuses with the same error type."""
    tokens = cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    cipher.encrypt("warm", subject="L2", context="x")
    with pytest.raises(DecryptionError):
        cipher.decrypt_many(tokens, subject="L2", contexts=CONTEXTS)
    flipped = tokens[2][:-3] + ("A" if tokens[2][-3] != "A" else "B") + tokens[2][-2:]
    for bad in (flipped, "lp1.garbage", "", tokens[0] + "=", tokens[0].upper()):
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt_many([tokens[0], bad], subject=SUBJECT, contexts=CONTEXTS[:2])
        assert caught.value.__cause__ is None
        assert "L1" not in str(caught.value)


def test_shredded_subject_raises_key_shredded(cipher: FieldCipher) -> None:
    """After shredding, a batch neither opens old tokens nor makes new ones."""
    tokens = cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    cipher.keyring.shred(SUBJECT)
    with pytest.raises(KeyShreddedError):
        cipher.decrypt_many(tokens, subject=SUBJECT, contexts=CONTEXTS)
    with pytest.raises(KeyShreddedError):
        cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)


def test_bad_batches_are_typed_errors_without_values(cipher: FieldCipher) -> None:
    """Mismatched lengths, bytes, lone surrogates and empty contexts: ValidationError, the
    value never quoted."""
    with pytest.raises(ValidationError):
        cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS[:2])
    with pytest.raises(ValidationError):
        cipher.decrypt_many(["lp1.x"], subject=SUBJECT, contexts=[])
    with pytest.raises(ValidationError):
        cipher.encrypt_many([b"raw"], subject=SUBJECT, contexts=["C/1/x"])  # type: ignore[list-item]
    with pytest.raises(ValidationError) as caught:
        cipher.encrypt_many(["secret\ud800"], subject=SUBJECT, contexts=["C/1/x"])
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(ValidationError):
        cipher.encrypt_many(["v"], subject=SUBJECT, contexts=[""])
    with pytest.raises(ValidationError):
        cipher.encrypt_many(["v"], subject="", contexts=["C/1/x"])
    assert cipher.encrypt_many([], subject=SUBJECT, contexts=[]) == []


def _warm(cipher: FieldCipher) -> FieldCipher:
    """The subject's default-scope key cached and used: the batch short paths apply."""
    for _ in range(2):
        cipher.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    assert SUBJECT in cipher._texts
    return cipher


def test_warm_batches_refuse_what_cold_ones_refuse(cipher: FieldCipher) -> None:
    warm = _warm(cipher)
    tokens = warm.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    assert warm.decrypt_many(tokens, subject=SUBJECT, contexts=CONTEXTS) == VALUES
    for subject in ([SUBJECT], 3, "", None):
        with pytest.raises(ValidationError):
            warm.encrypt_many(VALUES, subject=subject, contexts=CONTEXTS)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        warm.encrypt_many(["ok", "secret\ud800"], subject=SUBJECT, contexts=["C/1/x", "C/1/y"])
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    with pytest.raises(ValidationError):
        warm.encrypt_many(["v", "w"], subject=SUBJECT, contexts=["C/1/x", ""])
    # A token of the batch moved to another field, or one character changed, fails.
    with pytest.raises(DecryptionError):
        warm.decrypt_many(tokens[::-1], subject=SUBJECT, contexts=CONTEXTS)
    flipped = tokens[1][:-3] + ("A" if tokens[1][-3] != "A" else "B") + tokens[1][-2:]
    with pytest.raises(DecryptionError):
        warm.decrypt_many([tokens[0], flipped], subject=SUBJECT, contexts=CONTEXTS[:2])


def test_a_warm_batch_under_another_scope_uses_that_scopes_key(cipher: FieldCipher) -> None:
    warm = _warm(cipher)
    default = warm.encrypt_many(["v"], subject=SUBJECT, contexts=["C/1/x"])[0]
    other = warm.encrypt_many(["v"], subject=SUBJECT, contexts=["C/1/x"], scope="billing")[0]
    assert warm.key_id(other) != warm.key_id(default)
    assert warm.decrypt_many([other, default], subject=SUBJECT, contexts=["C/1/x"] * 2) == [
        "v",
        "v",
    ]


def test_a_warm_batch_after_a_shred_raises_key_shredded(cipher: FieldCipher) -> None:
    warm = _warm(cipher)
    tokens = warm.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    warm.keyring.shred(SUBJECT)
    assert SUBJECT not in warm._texts
    with pytest.raises(KeyShreddedError):
        warm.encrypt_many(VALUES, subject=SUBJECT, contexts=CONTEXTS)
    with pytest.raises(KeyShreddedError):
        warm.decrypt_many(tokens, subject=SUBJECT, contexts=CONTEXTS)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_batch_of_one_is_the_single_call(cipher: FieldCipher, warm: bool) -> None:
    """One value or token per call takes encrypt()/decrypt(): the same token for the same
    nonce, and every refusal of the single path (moved, tampered, padded, another
    learner, a token of bytes) with no value in the message."""
    if warm:
        _warm(cipher)
    _nonce.inject(bytes(12))
    single = cipher.encrypt("secret", subject=SUBJECT, context=CONTEXTS[0])
    _nonce.inject(bytes(12))
    assert cipher.encrypt_many(["secret"], subject=SUBJECT, contexts=CONTEXTS[:1]) == [single]
    assert cipher.decrypt_many([single], subject=SUBJECT, contexts=CONTEXTS[:1]) == ["secret"]
    cipher.encrypt("warm", subject="L2", context="x")
    flipped = single[:-3] + ("A" if single[-3] != "A" else "B") + single[-2:]
    held = cipher.encrypt(b"secret", subject=SUBJECT, context=CONTEXTS[0])
    for token, subject, context in (
        (single, SUBJECT, CONTEXTS[1]),
        (single, "L2", CONTEXTS[0]),
        (flipped, SUBJECT, CONTEXTS[0]),
        (single + "=", SUBJECT, CONTEXTS[0]),
        (single[:-8], SUBJECT, CONTEXTS[0]),
    ):
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt_many([token], subject=subject, contexts=[context])
        assert "secret" not in str(caught.value)
        assert caught.value.__cause__ is None
    with pytest.raises(ValidationError):
        cipher.decrypt_many([held], subject=SUBJECT, contexts=CONTEXTS[:1])
    with pytest.raises(ValidationError):
        cipher.encrypt_many(["v"], subject=SUBJECT, contexts=[b"C/1/x"])  # type: ignore[list-item]
    cipher.keyring.shred(SUBJECT)
    with pytest.raises(KeyShreddedError):
        cipher.decrypt_many([single], subject=SUBJECT, contexts=CONTEXTS[:1])
    with pytest.raises(KeyShreddedError):
        cipher.encrypt_many(["v"], subject=SUBJECT, contexts=CONTEXTS[:1])


_SPOILERS = {
    "flipped": lambda t: t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:],
    "cut": lambda t: t[:-4],
    "padded": lambda t: t + "=",
    "standard alphabet": lambda t: t[:20] + t[20:].replace("-", "+").replace("_", "/") + "+",
    "another version": lambda t: "lp2." + t[4:],
    "with a newline": lambda t: t[:30] + "\n" + t[30:],
    "empty": lambda t: "",
}


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=2, max_value=9),
    at=st.integers(min_value=0, max_value=8),
    how=st.sampled_from(sorted(_SPOILERS)),
    warm=st.booleans(),
)
def test_one_bad_token_anywhere_fails_the_whole_batch(
    size: int, at: int, how: str, warm: bool
) -> None:
    """A batch with one spoilt or misplaced token returns nothing (no list half
    decrypted) and raises the one fixed DecryptionError, naming no value or subject."""
    cipher = FieldCipher(Keyring.generate())
    if warm:
        _warm(cipher)
    values = [f"secret-{i}" for i in range(size)]
    contexts = [f"Learner/L1/field{i}" for i in range(size)]
    tokens = cipher.encrypt_many(values, subject=SUBJECT, contexts=contexts)
    bad = list(tokens)
    bad[at % size] = _SPOILERS[how](tokens[at % size])
    moved = list(tokens)
    moved[at % size] = tokens[(at + 1) % size]
    for batch in (bad, moved):
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt_many(batch, subject=SUBJECT, contexts=contexts)
        assert "secret" not in str(caught.value)
        assert SUBJECT not in str(caught.value)
        assert caught.value.__cause__ is None
    assert cipher.decrypt_many(tokens, subject=SUBJECT, contexts=contexts) == values
