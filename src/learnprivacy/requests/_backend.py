"""Where the request book keeps requests, their histories and per-learner facts.

A backend stores three things:

* requests, each saved *together with* the history entry that produced that version, in
  one atomic write, with a compare-and-set on ``version`` so two workers cannot both
  move the same request;
* the append-only history entries;
* per-learner facts the LMS queries later: objections, post-mortem directives, recorded
  deaths and scheduled erasures, keyed by ``(learner_id, kind, key)``.

:class:`MemoryBackend` keeps them in dictionaries; ``SQLBackend`` (in
``learnprivacy.requests.sql``) in database tables.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from learnprivacy.errors import IntegrityError, RequestStateError
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._vocabulary import RequestState

__all__ = ["Fact", "MemoryBackend", "RequestBackend", "RequestQuery"]


@attrs.frozen(kw_only=True)
class Fact:
    """A per-learner fact: an objection (key = purpose), a directive, a death...

    ``data`` is JSON-ready; it may hold personal values (a directive's instructions) and
    is persisted as personal data.
    """

    learner_id: str = attrs.field(repr=lambda _v: "'***'")
    kind: str
    key: str
    at: dt.datetime
    data: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


def _states(value: Collection[RequestState] | None) -> frozenset[RequestState] | None:
    return None if value is None else frozenset(value)


@attrs.frozen(kw_only=True)
class RequestQuery:
    """Which requests a backend lists (oldest receipt first): optionally one learner's,
    only open ones, only those due strictly before ``due_before``, or only those in
    ``states``."""

    learner_id: str | None = attrs.field(default=None, repr=False)
    open_only: bool = False
    due_before: dt.datetime | None = None
    states: frozenset[RequestState] | None = attrs.field(default=None, converter=_states)

    def state_values(self) -> list[str] | None:
        """The states a listed request may be in (their stored values), or ``None`` for
        any: ``states``, narrowed to the open ones with ``open_only``."""
        if self.states is None and not self.open_only:
            return None
        allowed = self.states if self.states is not None else frozenset(RequestState)
        return sorted(s.value for s in allowed if not (self.open_only and s.terminal))

    def matches(self, request: SubjectRequest) -> bool:
        """Whether ``request`` is one this query lists."""
        allowed = self.state_values()
        return (
            (self.learner_id is None or request.learner_id == self.learner_id)
            and (allowed is None or request.state.value in allowed)
            and (self.due_before is None or request.due_at < self.due_before)
        )


@runtime_checkable
class RequestBackend(Protocol):
    """The storage a :class:`RequestBook` writes through."""

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry; a known id raises ``IntegrityError``."""
        ...

    def replace_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store the next version and its entry atomically.

        The stored version must be ``request.version - 1``; otherwise someone else moved
        the request meanwhile and ``RequestStateError`` is raised, nothing written.
        """
        ...

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version of a request, or ``None``."""
        ...

    def list_requests(self, query: RequestQuery) -> tuple[SubjectRequest, ...]:
        """The requests ``query`` selects, oldest receipt first."""
        ...

    def history(self, request_id: str) -> tuple[HistoryEntry, ...]:
        """A request's history entries in sequence order (empty when unknown)."""
        ...

    def put_fact(self, fact: Fact) -> None:
        """Store a fact, replacing the one with the same (learner, kind, key)."""
        ...

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        ...

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, optionally of one learner, ordered by learner then key."""
        ...


class MemoryBackend:
    """A :class:`RequestBackend` in memory: for tests, scripts and notebooks.

    Thread-safe; nothing survives the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, SubjectRequest] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
        self._facts: dict[tuple[str, str, str], Fact] = {}

    def __repr__(self) -> str:
        return f"MemoryBackend(requests={len(self._requests)})"

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry."""
        with self._lock:
            if request.id in self._requests:
                raise IntegrityError("a request with this id already exists")
            self._requests[request.id] = request
            self._history[request.id] = [entry]

    def replace_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store the next version and its entry, checking the version."""
        with self._lock:
            current = self._requests.get(request.id)
            if current is None or current.version != request.version - 1:
                raise RequestStateError("the request was changed concurrently; reload it")
            self._requests[request.id] = request
            self._history[request.id].append(entry)

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version, or ``None``."""
        with self._lock:
            return self._requests.get(request_id)

    def list_requests(self, query: RequestQuery) -> tuple[SubjectRequest, ...]:
        """The requests ``query`` selects, oldest receipt first."""
        with self._lock:
            found = [r for r in self._requests.values() if query.matches(r)]
        return tuple(sorted(found, key=lambda r: (r.received_at, r.id)))

    def history(self, request_id: str) -> tuple[HistoryEntry, ...]:
        """The entries in sequence order."""
        with self._lock:
            return tuple(self._history.get(request_id, ()))

    def put_fact(self, fact: Fact) -> None:
        """Store or replace a fact."""
        with self._lock:
            self._facts[(fact.learner_id, fact.kind, fact.key)] = fact

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        with self._lock:
            return self._facts.get((learner_id, kind, key))

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, ordered by learner then key."""
        with self._lock:
            found = [
                f
                for f in self._facts.values()
                if f.kind == kind and (learner_id is None or f.learner_id == learner_id)
            ]
        return tuple(sorted(found, key=lambda f: (f.learner_id, f.key)))
