"""The request book in the application's database: ``DjangoRequestBackend``.

The same three tables as ``learnprivacy.requests.sql.SQLBackend`` (requests, hash-chained
history, per-learner facts), as Django models in the default database, so a request's
steps commit with the application's own changes. Bodies hold the requester's identity
and free text: they are encrypted, each request and each fact under a data key of its
own (never the learner's, which erasure shreds), so the proof of an erasure request
outlives the learner's data and its own retention can shred it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from typing import Any

from learnprivacy.crypto import FieldCipher
from learnprivacy.errors import IntegrityError, RequestStateError
from learnprivacy.requests import RequestState
from learnprivacy.requests._backend import Fact
from learnprivacy.requests._bodies import (
    canonical_json,
    fact_context,
    fact_data,
    fact_from_data,
    open_request,
    seal_request,
)
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

__all__ = ["DjangoRequestBackend"]

_OPEN = [s.value for s in RequestState if not s.terminal]


class DjangoRequestBackend:
    """A :class:`~learnprivacy.requests.RequestBackend` over ``learnprivacy.django``'s
    models (``lpdj_dsr_requests``, ``lpdj_dsr_history``, ``lpdj_dsr_facts``)."""

    def __init__(self, cipher: FieldCipher, *, using: str = "default") -> None:
        self._cipher = cipher
        self._using = using

    def __repr__(self) -> str:
        return f"DjangoRequestBackend(using={self._using!r})"

    # -- bodies --------------------------------------------------------------------------

    def _seal(self, data: Mapping[str, Any], subject: str, context: str) -> str:
        return self._cipher.encrypt(canonical_json(data), subject=subject, context=context)

    def _open(self, body: str, subject: str, context: str) -> Any:
        return json.loads(self._cipher.decrypt(body, subject=subject, context=context))

    def _request_body(self, request: SubjectRequest) -> str:
        return seal_request(self._seal, request)

    def _request(self, request_id: str, body: str) -> SubjectRequest:
        return open_request(self._open, request_id, body)

    def _fields(self, request: SubjectRequest) -> dict[str, Any]:
        return {
            "learner_id": request.learner_id,
            "type": request.type.value,
            "state": request.state.value,
            "received_at": request.received_at.astimezone(dt.UTC),
            "due_at": request.due_at.astimezone(dt.UTC),
            "version": request.version,
            "retry_of": request.retry_of,
            "body": self._request_body(request),
        }

    @staticmethod
    def _history_row(entry: HistoryEntry) -> Any:
        from learnprivacy.django.models import RequestHistory

        return RequestHistory(
            request_id=entry.request_id,
            sequence=entry.sequence,
            at=entry.at.astimezone(dt.UTC),
            event=entry.event,
            hash=entry.hash,
            body=canonical_json(entry.to_dict()),
        )

    # -- requests ------------------------------------------------------------------------

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry in one transaction."""
        from django.db import IntegrityError as DbIntegrityError
        from django.db import transaction

        from learnprivacy.django.models import RequestRow

        try:
            with transaction.atomic(using=self._using):
                RequestRow(id=request.id, **self._fields(request)).save(
                    using=self._using, force_insert=True
                )
                self._history_row(entry).save(using=self._using, force_insert=True)
        except DbIntegrityError:
            raise IntegrityError("a request with this id already exists") from None

    def replace_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store the next version and its entry, if nobody moved the request meanwhile."""
        from django.db import IntegrityError as DbIntegrityError
        from django.db import transaction

        from learnprivacy.django.models import RequestRow

        try:
            with transaction.atomic(using=self._using):
                changed = (
                    RequestRow.objects.using(self._using)
                    .filter(id=request.id, version=request.version - 1)
                    .update(**self._fields(request))
                )
                if changed != 1:
                    raise RequestStateError("the request was changed concurrently; reload it")
                self._history_row(entry).save(using=self._using, force_insert=True)
        except DbIntegrityError:
            raise RequestStateError("the request was changed concurrently; reload it") from None

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version, or ``None``."""
        from learnprivacy.django.models import RequestRow

        row = RequestRow.objects.using(self._using).filter(id=request_id).only("body").first()
        return None if row is None else self._request(request_id, row.body)

    def list_requests(
        self,
        *,
        learner_id: str | None = None,
        open_only: bool = False,
        due_before: dt.datetime | None = None,
        states: Collection[RequestState] | None = None,
    ) -> tuple[SubjectRequest, ...]:
        """Requests, oldest receipt first (the filters run in SQL)."""
        from learnprivacy.django.models import RequestRow

        query = RequestRow.objects.using(self._using).order_by("received_at", "id")
        if learner_id is not None:
            query = query.filter(learner_id=learner_id)
        if open_only:
            query = query.filter(state__in=_OPEN)
        if due_before is not None:
            query = query.filter(due_at__lt=due_before)
        if states is not None:
            query = query.filter(state__in=[s.value for s in states])
        return tuple(self._request(i, body) for i, body in query.values_list("id", "body"))

    def history(self, request_id: str) -> tuple[HistoryEntry, ...]:
        """The entries in sequence order."""
        from learnprivacy.django.models import RequestHistory

        bodies = (
            RequestHistory.objects.using(self._using)
            .filter(request_id=request_id)
            .order_by("sequence")
            .values_list("body", flat=True)
        )
        return tuple(HistoryEntry.from_dict(json.loads(body)) for body in bodies)

    # -- facts ---------------------------------------------------------------------------

    def put_fact(self, fact: Fact) -> None:
        """Store or replace a fact."""
        from learnprivacy.django.models import RequestFact

        body = self._seal(fact_data(fact), *fact_context(fact.learner_id, fact.kind, fact.key))
        RequestFact.objects.using(self._using).update_or_create(
            learner_id=fact.learner_id,
            kind=fact.kind,
            key=fact.key,
            defaults={"at": fact.at.astimezone(dt.UTC), "body": body},
        )

    def _fact(self, learner_id: str, kind: str, key: str, body: str) -> Fact:
        data = self._open(body, *fact_context(learner_id, kind, key))
        return fact_from_data(learner_id, kind, key, data)

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        from learnprivacy.django.models import RequestFact

        row = (
            RequestFact.objects.using(self._using)
            .filter(learner_id=learner_id, kind=kind, key=key)
            .first()
        )
        return None if row is None else self._fact(learner_id, kind, key, row.body)

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, ordered by learner then key."""
        from learnprivacy.django.models import RequestFact

        query = RequestFact.objects.using(self._using).filter(kind=kind)
        if learner_id is not None:
            query = query.filter(learner_id=learner_id)
        rows = query.order_by("learner_id", "key").values_list("learner_id", "key", "body")
        return tuple(self._fact(learner, kind, key, body) for learner, key, body in rows)
