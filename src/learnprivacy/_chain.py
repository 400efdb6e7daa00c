"""The one hash chain: the store's audit log and each request's history are built on it.

An entry's hash is SHA-256 over the previous entry's hash (ASCII hex) followed by the
entry's canonical JSON (sorted keys, no whitespace, UTF-8). The first entry follows
:data:`GENESIS`. Changing, removing, reordering or inserting an entry breaks the chain
from that entry on, which :func:`verify_links` finds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from learnprivacy.errors import AuditTampered

__all__ = ["GENESIS", "broken", "canonical_json", "chain_hash", "verify_links"]

#: The "previous hash" of a chain's first entry.
GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """The hash of an entry given its predecessor's hash and its canonical JSON."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def broken(label: str, sequence: int, *, altered: bool = False) -> AuditTampered:
    """The error for a chain broken at entry ``sequence``: an entry missing or out of
    place there, or (``altered``) its content changed. Every chain walk words it so."""
    what = "content altered" if altered else "missing or out of order"
    return AuditTampered(f"{label} broken at entry {sequence}: {what}", sequence=sequence)


def verify_links(links: Iterable[tuple[int, str, str, str]], *, label: str) -> tuple[int, str]:
    """Walk ``(sequence, prev_hash, hash, recomputed hash)`` links from the first entry.

    Returns the last sequence and hash (``(0, GENESIS)`` for an empty chain); raises
    :class:`~learnprivacy.errors.AuditTampered` at the first entry that is missing, out of
    place or altered, with that entry's sequence number. ``label`` names the chain in the
    message ("audit log", "request history").
    """
    expected, prev = 1, GENESIS
    try:
        for sequence, prev_hash, stored, recomputed in links:
            if sequence != expected or prev_hash != prev:
                raise broken(label, expected)
            if not hmac.compare_digest(recomputed, stored):
                raise broken(label, expected, altered=True)
            prev = stored
            expected += 1
    finally:
        # A generator reading the chain from a database is closed here, tampering found
        # or not, so its cursor and connection go back at once: the raised error's
        # traceback would otherwise keep them open until collected.
        close = getattr(links, "close", None)
        if close is not None:
            close()
    return expected - 1, prev
