"""Blind indexes: exact-match lookup on encrypted fields without decrypting them."""

from __future__ import annotations

import unicodedata
from binascii import b2a_base64
from collections.abc import Callable

from learnprivacy.crypto._prekeyed import PrekeyedHmac
from learnprivacy.crypto._validate import KeyHolder, check_key, length_prefixed
from learnprivacy.errors import ValidationError

__all__ = ["BlindIndex", "normalise_text"]

_LABEL = b"learnprivacy/blind-index/v1"
_PREFIX = "b1_"
_ENCODE = bytes.maketrans(b"+/", b"-_")


def normalise_text(value: str) -> str:
    """The default normalisation: Unicode NFC, surrounding blanks stripped, case folded.

    ``" Ana@Example.ORG "`` and ``"ana@example.org"`` thus index alike. Case folding the
    local part of an e-mail address is what nearly every mail provider does in practice.
    """
    return unicodedata.normalize("NFC", value).strip().casefold()


class BlindIndex(KeyHolder):
    """Keyed HMAC-SHA256 of a normalised value, truncated: ``b1_`` + URL-safe base64.

    Store it in a column next to the encrypted value and look rows up by equality::

        index = keyring.blind_index()
        column = index.compute(email, field="Learner.email")

    The ``field`` is part of the HMAC input, so equal values in two fields give unrelated
    indexes. The key must be at least 32 bytes and must be kept apart from the data
    (it lives wrapped in the key store when it comes from ``Keyring.blind_index``).

    Trade-offs, to weigh before indexing a field:

    * **Equality leaks.** Anyone who reads the table sees which rows share a value
      (two learners with the same e-mail, how many learners per employer domain if you
      index domains), without the key.
    * **Frequency analysis.** For low-entropy fields (country, gender, birth year) the
      value behind the most common index is easy to guess. Index only high-entropy,
      unique-ish values such as e-mail addresses or usernames.
    * **Guessing with the key.** Whoever holds the key can confirm a guess by computing
      its index; protect the key like a data key.
    * **Shredding does not remove it.** Crypto-shredding a learner destroys their data
      keys, not their index values: erasure must delete or null the index column too,
      otherwise the row can still be matched against a known e-mail address.
    * **Truncation** to ``size`` bytes (16 by default, at least 8) keeps columns small.
      Shorter indexes add deliberate false positives (less certainty for an attacker,
      more rows to decrypt and filter for you).
    """

    __slots__ = ("_fields", "_key", "_size")
    _holders = "blind indexes"

    def __init__(self, key: bytes, *, size: int = 16) -> None:
        """Index with ``key`` (32 bytes or more), keeping ``size`` bytes (8 to 32)."""
        self._key = check_key(key, field="key")
        if type(size) is not int or not 8 <= size <= 32:
            raise ValidationError("size must be an int from 8 to 32", field="size")
        self._size = size
        # One pre-keyed HMAC per field: computing an index copies it instead of keying.
        self._fields: dict[str, PrekeyedHmac] = {}

    def __repr__(self) -> str:
        return f"BlindIndex(size={self._size})"

    def compute(
        self,
        value: str,
        *,
        field: str,
        normalise: Callable[[str], str] = normalise_text,
    ) -> str:
        """The index of ``value`` for ``field`` (e.g. ``"Learner.email"``).

        ``normalise`` maps equivalent spellings to one; pass ``str`` to index the exact
        value. Raises ``ValidationError`` for a non-str value or an empty field name.
        """
        if type(field) is not str or not field:
            raise ValidationError("field must be a non-empty str", field="field")
        if type(value) is not str:
            raise ValidationError("value to index must be a str", field=field)
        mac = self._fields.get(field)
        if mac is None:
            mac = self._keyed(field)
        try:
            data = normalise(value).encode()
        except UnicodeEncodeError:
            raise ValidationError("value must be encodable as UTF-8", field=field) from None
        text = b2a_base64(mac.digest(data)[: self._size], newline=False)
        return _PREFIX + text.translate(_ENCODE).rstrip(b"=").decode("ascii")

    def _keyed(self, field: str) -> PrekeyedHmac:
        try:
            name = field.encode()
        except UnicodeEncodeError:
            raise ValidationError("field must be encodable as UTF-8", field="field") from None
        mac = PrekeyedHmac(self._key, length_prefixed(_LABEL, name))
        self._fields[field] = mac
        return mac
