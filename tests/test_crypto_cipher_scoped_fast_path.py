"""The short paths of a purpose scope's keys, and what drops them.

``FieldCipher`` keeps the unpacked text key of each learner's default scope in
``KeyCache.texts`` (by subject) and of every other scope, such as the ``"contract"``
purpose of the in-place integrations, in ``KeyCache.scoped`` (by subject and scope).
These tests check that each entry serves its own (subject, scope) only, and that every
way of changing or forgetting a key (shred, retire, revive, destroying a key, clearing
the cache) drops it, for the default scope and a purpose alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import DecryptionError, KeyShreddedError, ValidationError

EMAIL = "ana.martin@example.org"
SCOPES = ["default", "contract"]


def _entry(cipher: FieldCipher, subject: str, scope: str) -> tuple[object, ...] | None:
    if scope == "default":
        return cipher._texts.get(subject)
    return cipher._scoped.get((subject, scope))


def _warm(cipher: FieldCipher, subject: str, scope: str) -> str:
    """Encrypt twice for ``(subject, scope)``: the first use makes the key, the second
    puts its entry in place. Returns the second token."""
    cipher.encrypt("warm", subject=subject, context="warm", scope=scope)
    token = cipher.encrypt(EMAIL, subject=subject, context="c", scope=scope)
    entry = _entry(cipher, subject, scope)
    assert entry is not None
    assert token.startswith(str(entry[0]))
    return token


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.generate())


@pytest.mark.parametrize("scope", SCOPES)
def test_a_scopes_entry_is_used_and_its_tokens_open_warm_and_cold(
    cipher: FieldCipher, scope: str
) -> None:
    token = _warm(cipher, "L1", scope)
    again = cipher.encrypt(EMAIL, subject="L1", context="c", scope=scope)
    assert again[:20] == token[:20]  # the same key, through the entry
    many = cipher.encrypt_many([EMAIL, "x"], subject="L1", contexts=["c", "d"], scope=scope)
    assert [t[:20] for t in many] == [token[:20]] * 2
    assert cipher.decrypt(again, subject="L1", context="c") == EMAIL
    assert cipher.decrypt_many(many, subject="L1", contexts=["c", "d"]) == [EMAIL, "x"]
    cold = FieldCipher(Keyring(cipher.keyring.export_master_key(), store=cipher.keyring.store))
    assert cold.decrypt_many(many, subject="L1", contexts=["c", "d"]) == [EMAIL, "x"]


def test_an_entry_never_serves_another_scope_learner_or_a_lookalike(
    cipher: FieldCipher,
) -> None:
    """The attack: with (L1, contract) remembered, every other (subject, scope) gets its
    own key, and a pair passed as a subject is refused, not served by that entry."""
    contract = _warm(cipher, "L1", "contract")
    default = _warm(cipher, "L1", "default")
    others = {
        cipher.key_id(cipher.encrypt(EMAIL, subject=s, context="c", scope=sc))
        for s, sc in (("L1", "default"), ("L1", "billing"), ("L2", "contract"), ("L2", "default"))
    }
    assert cipher.key_id(contract) not in others
    assert cipher.key_id(default) in others
    # Each entry holds the key of its own (subject, scope); L2's first key, made just
    # now, has none yet.
    assert cipher._scoped[("L1", "contract")][0] == contract[:20]
    assert cipher._texts["L1"][0] == default[:20]
    assert cipher._scoped[("L1", "billing")][0] not in (contract[:20], default[:20])
    assert ("L2", "contract") not in cipher._scoped
    assert cipher._texts["L2"][0] not in (contract[:20], default[:20])
    for subject in (("L1", "contract"), ["L1", "contract"]):
        with pytest.raises(ValidationError):
            cipher.encrypt(EMAIL, subject=subject, context="c")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            cipher.encrypt_many([EMAIL], subject=subject, contexts=["c"])  # type: ignore[arg-type]
    # Its tokens open for L1 only, at their own context only, warm or in a batch.
    for subject, context in (("L2", "c"), ("L1", "d")):
        with pytest.raises(DecryptionError):
            cipher.decrypt(contract, subject=subject, context=context)
        with pytest.raises(DecryptionError):
            cipher.decrypt_many([contract], subject=subject, contexts=[context])
    # A batch mixing two scopes' tokens opens each with its own key, or refuses both
    # on their own merits: the first token's key never opens the second.
    assert cipher.decrypt_many([contract, default], subject="L1", contexts=["c", "c"]) == [
        EMAIL,
        EMAIL,
    ]
    with pytest.raises(DecryptionError):
        cipher.decrypt_many([contract, default], subject="L1", contexts=["c", "d"])


def test_scoped_entries_stay_within_their_subject_and_scope_under_swaps(
    cipher: FieldCipher,
) -> None:
    """Tokens of a purpose scope moved within a batch, truncated or re-spelled fail on
    the batch's short path as they do one by one."""
    _warm(cipher, "L1", "contract")
    tokens = cipher.encrypt_many(
        [EMAIL, "Ana"], subject="L1", contexts=["a", "b"], scope="contract"
    )
    with pytest.raises(DecryptionError):
        cipher.decrypt_many(tokens[::-1], subject="L1", contexts=["a", "b"])
    with pytest.raises(DecryptionError):
        cipher.decrypt_many([tokens[0], tokens[1][:-4]], subject="L1", contexts=["a", "b"])
    with pytest.raises(DecryptionError):
        cipher.decrypt_many([tokens[0], tokens[1] + "="], subject="L1", contexts=["a", "b"])


def _shred_all(cipher: FieldCipher, scope: str) -> None:
    cipher.keyring.shred("L1")


def _shred_scope(cipher: FieldCipher, scope: str) -> None:
    cipher.keyring.shred("L1", scope)


def _shred_by_ref(cipher: FieldCipher, scope: str) -> None:
    keyring = cipher.keyring
    keyring.shred_ref(keyring.key_ref("L1"), scope)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(
    "shred", [_shred_all, _shred_scope, _shred_by_ref], ids=["all-scopes", "one-scope", "by-ref"]
)
def test_a_shred_drops_the_entry_and_nothing_opens_or_seals_after_it(
    cipher: FieldCipher, scope: str, shred: Callable[[FieldCipher, str], None]
) -> None:
    token = _warm(cipher, "L1", scope)
    shred(cipher, scope)
    assert _entry(cipher, "L1", scope) is None
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="c")
    with pytest.raises(KeyShreddedError):
        cipher.decrypt_many([token], subject="L1", contexts=["c"])
    with pytest.raises(KeyShreddedError):
        cipher.encrypt(EMAIL, subject="L1", context="c", scope=scope)
    with pytest.raises(KeyShreddedError):
        cipher.encrypt_many([EMAIL], subject="L1", contexts=["c"], scope=scope)
    # Revived: a fresh key, a fresh entry; the old tokens stay shut.
    cipher.keyring.revive("L1", scope)
    fresh = _warm(cipher, "L1", scope)
    assert fresh[:20] != token[:20]
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="c")


def test_shredding_a_purpose_spares_the_default_scopes_entry(cipher: FieldCipher) -> None:
    kept = _warm(cipher, "L1", "default")
    gone = _warm(cipher, "L1", "contract")
    cipher.keyring.shred("L1", "contract")
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(gone, subject="L1", context="c")
    assert cipher.decrypt(kept, subject="L1", context="c") == EMAIL


@pytest.mark.parametrize("scope", SCOPES)
def test_retiring_drops_the_entry_and_a_stale_sealer_never_comes_back(
    cipher: FieldCipher, scope: str
) -> None:
    old = _warm(cipher, "L1", scope)
    stale = cipher._cache["L1"].sealers[scope]
    assert cipher.keyring.retire("L1", scope) == 1
    assert _entry(cipher, "L1", scope) is None
    fresh = _warm(cipher, "L1", scope)
    assert fresh[:20] != old[:20]
    cipher._remember_text("L1", scope, stale)  # a thread that lost a race with retire()
    assert cipher.encrypt(EMAIL, subject="L1", context="c", scope=scope)[:20] == fresh[:20]
    assert cipher.decrypt_many([old, fresh], subject="L1", contexts=["c", "c"]) == [EMAIL] * 2


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(
    "forget",
    [
        lambda keyring: keyring.clear_cache("L1"),
        lambda keyring: keyring.clear_cache(),
        lambda keyring: keyring._forget_many(["L0", "L1"]),
        lambda keyring: keyring.destroy_key("L1", "00" * 8),
    ],
    ids=["clear-one", "clear-all", "forget-many", "destroy-unknown-key"],
)
def test_forgetting_keys_drops_their_entries(
    cipher: FieldCipher, scope: str, forget: Callable[[Keyring], object]
) -> None:
    _warm(cipher, "L1", scope)
    _warm(cipher, "L2", scope)
    forget(cipher.keyring)
    assert _entry(cipher, "L1", scope) is None
    assert (_entry(cipher, "L2", scope) is None) == ("L2" not in cipher.keyring._cache)


@pytest.mark.parametrize("scope", SCOPES)
def test_destroying_the_active_key_shuts_its_tokens(cipher: FieldCipher, scope: str) -> None:
    token = _warm(cipher, "L1", scope)
    assert cipher.keyring.destroy_key("L1", cipher.key_id(token))
    assert _entry(cipher, "L1", scope) is None
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject="L1", context="c")


def test_a_purpose_scopes_batch_opens_on_the_short_path(
    cipher: FieldCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learner with keys of a purpose only (as the in-place integrations make them)
    has its batches opened by the key the first token names, with no per-token path;
    a token of another key in the same batch is not opened by it."""
    _warm(cipher, "L1", "contract")
    assert "L1" not in cipher._texts
    tokens = cipher.encrypt_many(
        [EMAIL, "Ana"], subject="L1", contexts=["a", "b"], scope="contract"
    )
    other = cipher.encrypt("x", subject="L1", context="b", scope="billing")

    def per_token(*args: object) -> list[str]:
        raise AssertionError("the per-token path was taken")

    monkeypatch.setattr(FieldCipher, "_decrypt_with", per_token)
    assert cipher.decrypt_many(tokens, subject="L1", contexts=["a", "b"]) == [EMAIL, "Ana"]
    with pytest.raises(AssertionError, match="per-token"):
        cipher.decrypt_many([tokens[0], other], subject="L1", contexts=["a", "b"])
    monkeypatch.undo()
    assert cipher.decrypt_many([tokens[0], other], subject="L1", contexts=["a", "b"]) == [
        EMAIL,
        "x",
    ]
