"""Keyed references of row keys: how the integrations' row states name a row.

A row restricted (GDPR Art. 18) or anonymised is marked in a table of the integration
(``lp_row_states`` for SQLAlchemy, ``lpdj_restrictions`` for Django). Its key may be a
learner id (the learners' own table) or hold one (a key of several columns): the mark
names the row by ``r1_`` and the hex HMAC-SHA256 of ``"<table>/<row key text>"`` under
a key derived from the keyring's blind-index key for the ``learnprivacy-row-states``
domain (the derivation of the request book's ``p1_`` pseudonyms, one domain of its
own). Without the key store the reference cannot be linked to a learner; the table is
part of the message, so a mark copied to another table's row names nothing there.

The integrations compute the same reference in SQL (a correlated condition on each
query), from the HMAC's two pads: ``sha256(outer || sha256(inner || message))``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from learnprivacy._inplace._spec import row_key
from learnprivacy.crypto._prekeyed import PrekeyedHmac
from learnprivacy.crypto._pseudonym import domain_key

__all__ = ["ROW_REF_DOMAIN", "ROW_REF_PREFIX", "RowRefs", "is_row_ref"]

ROW_REF_DOMAIN = "learnprivacy-row-states"
ROW_REF_PREFIX = "r1_"
ROW_REF_LENGTH = len(ROW_REF_PREFIX) + 64
_BLOCK = 64
_SHAPE = re.compile(r"r1_[0-9a-f]{64}")


def is_row_ref(text: str) -> bool:
    """Whether ``text`` is a row reference (not a row key written in clear)."""
    return _SHAPE.fullmatch(text) is not None


class RowRefs:
    """Row references under one deployment's key."""

    __slots__ = ("_mac", "inner_pad", "outer_pad")

    def __init__(self, key: bytes) -> None:
        padded = key.ljust(_BLOCK, b"\0")
        #: The HMAC key XOR the inner and outer pads, for the SQL form of the reference.
        self.inner_pad = bytes(b ^ 0x36 for b in padded)
        self.outer_pad = bytes(b ^ 0x5C for b in padded)
        self._mac = PrekeyedHmac(key, b"")

    @classmethod
    def of_keyring(cls, keyring: Any) -> RowRefs:
        """The references of ``keyring``'s deployment (stable for its key store's life)."""
        return cls(domain_key(keyring._index_secret(), ROW_REF_DOMAIN))

    def __repr__(self) -> str:
        return "RowRefs()"

    def __reduce__(self) -> str:
        raise TypeError("row references' keys cannot be pickled")

    def of_text(self, table: str, key_text: str) -> str:
        """The reference of the row of ``table`` whose key text is ``key_text``."""
        return ROW_REF_PREFIX + self._mac.digest(f"{table}/{key_text}".encode()).hex()

    def ref(self, table: str, key: object) -> str:
        """The reference of the row of ``table`` whose key is ``key``."""
        return self.of_text(table, row_key(key))


def pads_digest(inner: bytes, outer: bytes, message: str) -> str:
    """The reference from the two pads, as the SQL form computes it (SQLite's function)."""
    first = hashlib.sha256(inner + message.encode()).digest()
    return ROW_REF_PREFIX + hashlib.sha256(outer + first).hexdigest()
