"""The append-only, hash-chained history of each request.

Every event on a request (receipt, identity steps, extension, each execution step, the
closing transition) adds one :class:`HistoryEntry`. An entry's ``hash`` is the SHA-256 of
the previous entry's hash and the entry's canonical JSON (the one hash chain of
:mod:`learnprivacy._chain`, which the store's audit log uses too), so editing, removing or
reordering entries breaks the chain, which :func:`verify_history` detects.

Entries hold no personal value: the request id, the event name, the states, the time and
``detail``, a mapping of short strings the library writes itself (enum values, counts,
articles, component names), never text supplied by a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from learnprivacy._chain import GENESIS, canonical_json, chain_hash, verify_links
from learnprivacy.errors import AuditTampered
from learnprivacy.requests._vocabulary import RequestState

__all__ = ["HistoryEntry", "next_entry", "verify_history"]


@attrs.frozen(kw_only=True)
class HistoryEntry:
    """One event in a request's life; see the module documentation for the hash."""

    request_id: str
    sequence: int
    at: dt.datetime
    event: str
    state_before: RequestState | None
    state_after: RequestState
    detail: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    previous_hash: str = GENESIS
    hash: str = ""

    def content(self) -> dict[str, Any]:
        """The hashed content: every field but ``hash``."""
        return {
            "request_id": self.request_id,
            "sequence": self.sequence,
            "at": self.at.isoformat(),
            "event": self.event,
            "state_before": self.state_before.value if self.state_before else None,
            "state_after": self.state_after.value,
            "detail": dict(sorted(self.detail.items())),
            "previous_hash": self.previous_hash,
        }

    def computed_hash(self) -> str:
        """The hash this entry must carry."""
        return chain_hash(self.previous_hash, canonical_json(self.content()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, hash included."""
        return {**self.content(), "hash": self.hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        """Rebuild from :meth:`to_dict` (the hash is kept as stored, for verification)."""
        return cls(
            request_id=data["request_id"],
            sequence=int(data["sequence"]),
            at=dt.datetime.fromisoformat(data["at"]),
            event=data["event"],
            state_before=RequestState(data["state_before"]) if data["state_before"] else None,
            state_after=RequestState(data["state_after"]),
            detail=dict(data["detail"]),
            previous_hash=data["previous_hash"],
            hash=data["hash"],
        )


def next_entry(
    previous: HistoryEntry | None,
    *,
    request_id: str,
    at: dt.datetime,
    event: str,
    state_before: RequestState | None,
    state_after: RequestState,
    detail: Mapping[str, str] | None = None,
) -> HistoryEntry:
    """The entry that follows ``previous`` (or starts the chain), with its hash set."""
    entry = HistoryEntry(
        request_id=request_id,
        sequence=1 if previous is None else previous.sequence + 1,
        at=at,
        event=event,
        state_before=state_before,
        state_after=state_after,
        detail={str(k): str(v) for k, v in (detail or {}).items()},
        previous_hash=GENESIS if previous is None else previous.hash,
    )
    return attrs.evolve(entry, hash=entry.computed_hash())


def verify_history(entries: Iterable[HistoryEntry]) -> bool:
    """Return ``True`` when the chain is intact, else raise ``AuditTampered``.

    The error's ``sequence`` is the first entry that does not fit: a wrong hash, a gap or
    a link to anything but the entry before it.
    """
    verify_links(_links(entries), label="request history")
    return True


def _links(entries: Iterable[HistoryEntry]) -> Iterator[tuple[int, str, str, str]]:
    request_id: str | None = None
    for entry in entries:
        request_id = entry.request_id if request_id is None else request_id
        if entry.request_id != request_id:
            # An entry of another request spliced in: the chain is not this request's.
            raise AuditTampered(
                f"request history broken at entry {entry.sequence}: another request's entry",
                sequence=entry.sequence,
            )
        yield entry.sequence, entry.previous_hash, entry.hash, entry.computed_hash()
