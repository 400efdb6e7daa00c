"""How a persistent request book seals what it stores: one rule for every backend.

A request's JSON form and each fact's body are sealed under a key subject of their own
(derived and short, never the learner's, so that erasing the learner leaves the proof
of the request readable) and an encryption context naming what they are. The SQL and
Django backends differ in their tables and in whether a cipher is optional; the key
subjects, contexts and JSON forms are these, and so are the keyed references that name
learners in their ``learner_id`` columns and the check that nothing shows in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from learnprivacy.requests._backend import Fact
from learnprivacy.requests._codec import request_from_dict, request_to_dict
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

if TYPE_CHECKING:
    from learnprivacy.crypto import FieldCipher, Keyring
    from learnprivacy.crypto._pseudonym import Pseudonymiser

#: The pseudonym domain of learner references in a request book.
REF_DOMAIN = "learnprivacy-requests"
#: Stored cells that are opaque by construction: sealed tokens, keyed pseudonyms, digests.
OPAQUE = re.compile(r"lp1\.[A-Za-z0-9_-]+=*|p1_[A-Za-z0-9_-]+|[0-9a-f]{64}")

#: ``seal(data, subject, context)``: the stored text of ``data``.
Seal = Callable[[Mapping[str, Any], str, str], str]
#: ``open(body, subject, context)``: the data a sealed body holds.
Open = Callable[[str, str, str], Any]


def key_subject(kind: str, *parts: str) -> str:
    """A key subject of its own per request or fact, derived and short (the keyring caps
    subjects at 255 characters): never the learner's, which erasure shreds."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"dsr-{kind}/{digest}"


def learner_refs(keyring: Keyring) -> Pseudonymiser:
    """What names learners in a book's ``learner_id`` columns: a keyed pseudonym
    (``p1_...``) in the keyring's ``learnprivacy-requests`` domain, never the id."""
    return keyring.pseudonymiser(REF_DOMAIN)


def value_patterns(values: Collection[str]) -> list[re.Pattern[str]]:
    """``values`` (names, e-mail addresses) as whole-word, case-blind patterns; values
    under three characters are too short to search."""
    return [
        re.compile(rf"(?<!\w){re.escape(v.strip())}(?!\w)", re.IGNORECASE)
        for v in values
        if isinstance(v, str) and len(v.strip()) >= 3
    ]


def json_strings(cell: str) -> Iterator[str]:
    """Every string inside ``cell`` read as JSON (nothing when it is not JSON)."""
    if not cell.startswith(("{", "[", '"')):
        return
    try:
        stack: list[Any] = [json.loads(cell)]
    except ValueError:
        return
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def canonical_json(data: Mapping[str, Any]) -> str:
    """``data`` as JSON, keys sorted and without spaces (stable across runs)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def request_context(request_id: str) -> tuple[str, str]:
    """The key subject and encryption context of a request's body."""
    return key_subject("request", request_id), f"SubjectRequest/{request_id}"


def fact_context(owner: str, kind: str, key: str) -> tuple[str, str]:
    """The key subject and encryption context of a fact's body; ``owner`` is what the
    row names the learner by (their id, or their reference where the book keeps one)."""
    return key_subject("fact", owner, kind, key), f"Fact/{kind}/{key}"


def seal_request(seal: Seal, request: SubjectRequest) -> str:
    """The stored body of ``request``."""
    return seal(request_to_dict(request), *request_context(request.id))


def open_request(open_: Open, request_id: str, body: str) -> SubjectRequest:
    """The request a stored body holds."""
    return request_from_dict(open_(body, *request_context(request_id)))


def fact_data(fact: Fact) -> dict[str, Any]:
    """What a fact's body holds besides its row's columns."""
    return {"at": fact.at.isoformat(), "data": dict(fact.data)}


def fact_from_data(learner_id: str, kind: str, key: str, data: Mapping[str, Any]) -> Fact:
    """The fact of ``learner_id`` whose opened body is ``data``."""
    return Fact(
        learner_id=learner_id,
        kind=kind,
        key=key,
        at=dt.datetime.fromisoformat(data["at"]),
        data=data["data"],
    )


def cells_in_clear(
    cells: Iterable[tuple[str, str, object]],
    learner_id: str,
    values: Collection[str],
    *,
    history: str,
    sealed_bodies: bool,
) -> tuple[str, ...]:
    """The ``table.column`` names of a stored book's ``(table, column, cell)`` that show
    ``learner_id`` or ``values`` in clear: the one rule of every request book's
    ``find_in_clear``.

    Sealed tokens, keyed pseudonyms and digests are opaque. Any other text is searched
    for each of ``values`` as a whole word, and for the learner id in the ``learner_id``
    columns and as a whole JSON string outside the ``history`` table (whose entries hold
    counts a numeric id would match; they are hash-chained, so an id written into one
    breaks ``verify()`` instead). With ``sealed_bodies``, a request or fact body that is
    not a sealed token is reported whatever it holds.
    """
    wanted = value_patterns(values)
    found: set[str] = set()
    for table, column, cell in cells:
        if not isinstance(cell, str) or OPAQUE.fullmatch(cell):
            continue
        outside_history = table != history
        if (
            (column == "body" and outside_history and sealed_bodies)
            or (column == "learner_id" and cell == learner_id)
            or any(v.search(cell) for v in wanted)
            or (outside_history and learner_id in json_strings(cell))
        ):
            found.add(f"{table}.{column}")
    return tuple(sorted(found))


class SealedBook(ABC):
    """What the SQL and Django request books share: learner references, request bodies
    sealed and opened, and the check of what the stored book shows in clear.

    A book sets ``_cipher`` and ``_refs`` (both ``None`` for a book kept in clear), names
    its history table, and says how it seals, opens and reads back its cells.
    """

    _cipher: FieldCipher | None
    _refs: Pseudonymiser | None
    #: The name of the book's hash-chained history table.
    _history_table: ClassVar[str]

    @abstractmethod
    def _seal(self, data: Mapping[str, Any], subject: str, context: str) -> str:
        """The stored text of ``data``."""

    @abstractmethod
    def _open(self, body: str, subject: str, context: str) -> Any:
        """The data of a stored text."""

    @abstractmethod
    def _stored_cells(self) -> Iterator[tuple[str, str, object]]:
        """Every ``(table, column, cell)`` of the book, as stored."""

    def _ref(self, learner_id: str) -> str:
        """What the ``learner_id`` columns hold for ``learner_id``: its keyed pseudonym,
        or the id itself in a book kept in clear."""
        return learner_id if self._refs is None else self._refs.pseudonym(learner_id)

    def _request_body(self, request: SubjectRequest) -> str:
        return seal_request(self._seal, request)

    def _request(self, request_id: str, body: str) -> SubjectRequest:
        return open_request(self._open, request_id, body)

    def _stamp(self, at: dt.datetime) -> dt.datetime:
        """What the book's date columns hold for ``at``: the instant in UTC."""
        return at.astimezone(dt.UTC)

    def _request_columns(self, request: SubjectRequest) -> dict[str, Any]:
        """Every column of ``request``'s row but its id, the body sealed."""
        return {
            "learner_id": self._ref(request.learner_id),
            "type": request.type.value,
            "state": request.state.value,
            "received_at": self._stamp(request.received_at),
            "due_at": self._stamp(request.due_at),
            "version": request.version,
            "retry_of": request.retry_of,
            "body": self._request_body(request),
        }

    def _history_columns(self, entry: HistoryEntry) -> dict[str, Any]:
        """The columns of a history entry's row (never personal: its body in clear)."""
        return {
            "request_id": entry.request_id,
            "sequence": entry.sequence,
            "at": self._stamp(entry.at),
            "event": entry.event,
            "hash": entry.hash,
            "body": canonical_json(entry.to_dict()),
        }

    @staticmethod
    def _history_of(bodies: Iterable[str]) -> tuple[HistoryEntry, ...]:
        """The entries whose stored bodies are ``bodies``, in their order."""
        return tuple(HistoryEntry.from_dict(json.loads(body)) for body in bodies)

    def sealed_fact_body(self, fact: Fact) -> tuple[str, str]:
        """The row's learner reference and sealed body of ``fact`` (sealed under the
        reference, the id inside the body)."""
        ref = self._ref(fact.learner_id)
        data = {**fact_data(fact), "learner_id": fact.learner_id}
        return ref, self._seal(data, *fact_context(ref, fact.kind, fact.key))

    def _fact(self, ref: str, kind: str, key: str, body: str) -> Fact:
        """The fact a row holds: ``ref`` its learner column, ``body`` as stored."""
        data = self._open(body, *fact_context(ref, kind, key))
        # Facts converted from a book written in clear carry the id in their body too.
        return fact_from_data(data.get("learner_id", ref), kind, key, data)

    def find_in_clear(self, learner_id: str, values: Collection[str] = ()) -> tuple[str, ...]:
        """Where the stored book still shows ``learner_id`` or ``values`` in clear.

        Every cell of the book's tables is read back as stored (not through the book's
        decoding): sealed tokens, keyed pseudonyms and digests are opaque; any other text
        is searched for each of ``values`` (names, e-mail addresses) as a whole word,
        whatever its case (values under three characters are too short to search), and,
        in the ``learner_id`` columns and as a whole JSON string outside the hash-chained
        history, for the learner id. In a book with a cipher, a body that is not a sealed
        token is reported whatever it holds. Returns ``table.column`` names, never a
        value; empty when nothing shows.
        """
        return cells_in_clear(
            self._stored_cells(),
            learner_id,
            values,
            history=self._history_table,
            sealed_bodies=self._cipher is not None,
        )


__all__ = [
    "OPAQUE",
    "REF_DOMAIN",
    "Open",
    "Seal",
    "SealedBook",
    "canonical_json",
    "cells_in_clear",
    "fact_context",
    "fact_data",
    "fact_from_data",
    "json_strings",
    "key_subject",
    "learner_refs",
    "open_request",
    "request_context",
    "seal_request",
    "value_patterns",
]
