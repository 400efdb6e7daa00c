"""A token that needs no padding, given padding anyway, is refused on every path.

Python's strict base64 decoder accepts complete quanta followed by "=" or "==" (it
decodes ``QUJD=`` to ``ABC``), so a token whose text is a whole number of quanta could be
lengthened by one or two "=" and still open, unless the length is checked too: a second
spelling of the same token, which the token format promises does not exist.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from learnprivacy.crypto import FieldCipher, Keyring, _token
from learnprivacy.errors import DecryptionError

SUBJECT, CONTEXT = "L1", "Learner/L1/email"


def _unpadded(cipher: FieldCipher, before: str) -> tuple[str, str]:
    """A value and its token that ends without padding, in one of the characters of
    ``before`` (so that the "=" or "==" after it would be canonical if it were needed)."""
    for _ in range(2_000):
        value = "ana.martin@example.o"  # 20 bytes: header, nonce, text and tag make 60
        token = cipher.encrypt(value, subject=SUBJECT, context=CONTEXT)
        assert not token.endswith("=")
        if token[-1] in before:
            return value, token
    raise AssertionError("no such token drawn")


def _warm() -> FieldCipher:
    cipher = FieldCipher(Keyring.generate())
    for _ in range(2):  # the first use makes the key, the second enables the short paths
        cipher.encrypt("warm", subject=SUBJECT, context="warm")
    assert SUBJECT in cipher._texts
    return cipher


@pytest.mark.parametrize(
    ("pads", "before"), [("=", _token.BEFORE_ONE_PAD), ("==", _token.BEFORE_TWO_PADS)]
)
def test_padding_appended_to_a_token_that_needs_none_fails_everywhere(
    pads: str, before: str
) -> None:
    """Attack: "=" or "==" appended to an unpadded token (whose last character would
    be a canonical one before that padding): decrypt on its short path and cold,
    decrypt_many, decrypt_value, the store's opener path and _token.decode all refuse
    it; the token itself still opens."""
    cipher = _warm()
    value, token = _unpadded(cipher, before)
    longer = token + pads
    cold = FieldCipher(cipher.keyring)
    cold.keyring.clear_cache()
    attempts: list[Callable[[], object]] = [
        lambda: cipher.decrypt(longer, subject=SUBJECT, context=CONTEXT),
        lambda: cipher.decrypt_many([longer], subject=SUBJECT, contexts=[CONTEXT]),
        lambda: cipher.decrypt_many([token, longer], subject=SUBJECT, contexts=[CONTEXT] * 2),
        lambda: cipher.decrypt_value(longer, subject=SUBJECT, context=CONTEXT),
        lambda: cipher._open_text(cipher._openers_of(SUBJECT), longer, SUBJECT, CONTEXT),
        lambda: _token.decode(longer),
    ]
    for attempt in attempts:
        with pytest.raises(DecryptionError):
            attempt()
    with pytest.raises(DecryptionError):
        cold.decrypt(longer, subject=SUBJECT, context=CONTEXT)
    assert cipher.decrypt(token, subject=SUBJECT, context=CONTEXT) == value
    assert cipher.decrypt_many([token], subject=SUBJECT, contexts=[CONTEXT]) == [value]
    assert cold.decrypt(token, subject=SUBJECT, context=CONTEXT) == value
