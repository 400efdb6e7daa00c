"""Keyed references of row keys: how both integrations' row states name a row.

A row restricted (GDPR Art. 18) or anonymised is marked in a table of the integration
(``lp_row_states`` for SQLAlchemy, ``lpdj_restrictions`` for Django). Its key may be a
learner id (the learners' own table) or hold one (a key of several columns), so the
mark names the row by the keyring's pseudonym (``p1_...``: HMAC-SHA256 under a key
derived from the blind-index key, the derivation of the request book's names and of
the key store's ``k1_``) of ``"<table>\\0<row key text>"`` in the
``learnprivacy-restrictions`` domain: stable across master-key rotation, unlinkable to
the learner without the key store, and different for equal keys of two tables.

:class:`RowRefs` also gives what SQL needs to compute the same reference (a correlated
condition on each query): the HMAC's inner state before the key text (the key's inner
pad, the pseudonym label and domain, the table) and its outer pad.
"""

from __future__ import annotations

import hashlib
import re
from binascii import b2a_base64
from typing import Any

from learnprivacy._inplace._spec import row_key
from learnprivacy.crypto._pseudonym import _LABEL, Pseudonymiser, domain_key
from learnprivacy.crypto._validate import KeyHolder, length_prefixed

__all__ = [
    "ROW_REF_DOMAIN",
    "ROW_REF_LENGTH",
    "RowRefs",
    "is_row_ref",
    "pads_digest",
    "row_ref_text",
]

#: The pseudonym domain of row references (shared by both integrations).
ROW_REF_DOMAIN = "learnprivacy-restrictions"
#: ``p1_`` and 22 characters (16 bytes, URL-safe base64 without padding).
ROW_REF_LENGTH = 25
_SIZE = 16
_BLOCK = 64
_SHAPE = re.compile(r"p1_[A-Za-z0-9_-]{22}")
_ENCODE = bytes.maketrans(b"+/", b"-_")


def row_ref_text(table: str, key_text: str) -> str:
    """What a row's reference is the pseudonym of: table and key text, NUL-separated."""
    return f"{table}\x00{key_text}"


def is_row_ref(text: str) -> bool:
    """Whether ``text`` has the shape of a row reference (not a key written in clear)."""
    return _SHAPE.fullmatch(text) is not None


class RowRefs(KeyHolder):
    """Row references under one deployment's key."""

    __slots__ = ("__weakref__", "_names", "inner_pad", "outer_pad")
    _holders = "row references"

    def __init__(self, key: bytes) -> None:
        self._names = Pseudonymiser(key, domain=ROW_REF_DOMAIN, size=_SIZE)
        padded = key.ljust(_BLOCK, b"\0")
        #: The HMAC's inner input before the message, and its outer pad (for SQL).
        self.inner_pad = bytes(b ^ 0x36 for b in padded) + length_prefixed(
            _LABEL, ROW_REF_DOMAIN.encode()
        )
        self.outer_pad = bytes(b ^ 0x5C for b in padded)

    @classmethod
    def of_keyring(cls, keyring: Any) -> RowRefs:
        """The references of ``keyring``'s deployment (the key of its pseudonymiser
        in :data:`ROW_REF_DOMAIN`)."""
        return cls(domain_key(keyring._index_secret(), ROW_REF_DOMAIN))

    def __repr__(self) -> str:
        return "RowRefs()"

    def of_text(self, table: str, key_text: str) -> str:
        """The reference of the row of ``table`` whose key text is ``key_text``."""
        return self._names.pseudonym(row_ref_text(table, key_text))

    def ref(self, table: str, key: object) -> str:
        """The reference of the row of ``table`` whose key is ``key``."""
        return self.of_text(table, row_key(key))

    def head(self, table: str) -> bytes:
        """The HMAC's inner input before the key text of a row of ``table``."""
        return self.inner_pad + row_ref_text(table, "").encode()


def pads_digest(head: bytes, outer: bytes, key_text: str) -> str:
    """The reference from :meth:`RowRefs.head` and the outer pad, as SQL computes it."""
    inner = hashlib.sha256(head + key_text.encode()).digest()
    digest = hashlib.sha256(outer + inner).digest()[:_SIZE]
    return "p1_" + b2a_base64(digest, newline=False).translate(_ENCODE).rstrip(b"=").decode()
