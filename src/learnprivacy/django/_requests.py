"""The request book in the application's database: ``DjangoRequestBackend``.

The same three tables as ``learnprivacy.requests.sql.SQLBackend`` (requests, hash-chained
history, per-learner facts), as Django models in the default database, so a request's
steps commit with the application's own changes. Bodies hold the requester's identity
and free text: they are encrypted, each request and each fact under a data key of its
own (never the learner's, which erasure shreds), so the proof of an erasure request
outlives the learner's data and its own retention can shred it.

**No learner id in clear.** As in the SQL book, the ``learner_id`` columns hold the
learner's keyed pseudonym (``p1_...``, :func:`learnprivacy.requests._bodies.learner_refs`),
the id itself only inside encrypted bodies; migration ``0006`` converts books written
before. :meth:`DjangoRequestBackend.find_in_clear` reads the stored cells back, so an
erasure request's ``verify_request_book`` step covers this book.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from learnprivacy.crypto import FieldCipher
from learnprivacy.errors import IntegrityError, RequestStateError
from learnprivacy.requests._backend import Fact, RequestQuery
from learnprivacy.requests._bodies import (
    SealedBook,
    canonical_json,
    learner_refs,
)
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

__all__ = ["DjangoRequestBackend"]


class DjangoRequestBackend(SealedBook):
    """A :class:`~learnprivacy.requests.RequestBackend` over ``learnprivacy.django``'s
    models (``lpdj_dsr_requests``, ``lpdj_dsr_history``, ``lpdj_dsr_facts``)."""

    _history_table = "lpdj_dsr_history"
    _cipher: FieldCipher  # always: the Django book is never kept in clear

    def __init__(self, cipher: FieldCipher, *, using: str = "default") -> None:
        self._cipher = cipher
        self._using = using
        self._refs = learner_refs(cipher.keyring)

    def __repr__(self) -> str:
        return f"DjangoRequestBackend(using={self._using!r})"

    # -- bodies --------------------------------------------------------------------------

    def _seal(self, data: Mapping[str, Any], subject: str, context: str) -> str:
        return self._cipher.encrypt(canonical_json(data), subject=subject, context=context)

    def _open(self, body: str, subject: str, context: str) -> Any:
        return json.loads(self._cipher.decrypt(body, subject=subject, context=context))

    def _save_history(self, entry: HistoryEntry) -> None:
        from learnprivacy.django.models import RequestHistory

        RequestHistory(**self._history_columns(entry)).save(using=self._using, force_insert=True)

    # -- requests ------------------------------------------------------------------------

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry in one transaction."""
        from django.db import IntegrityError as DbIntegrityError
        from django.db import transaction

        from learnprivacy.django.models import RequestRow

        try:
            with transaction.atomic(using=self._using):
                RequestRow(id=request.id, **self._request_columns(request)).save(
                    using=self._using, force_insert=True
                )
                self._save_history(entry)
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
                    .update(**self._request_columns(request))
                )
                if changed != 1:
                    raise RequestStateError("the request was changed concurrently; reload it")
                self._save_history(entry)
        except DbIntegrityError:
            raise RequestStateError("the request was changed concurrently; reload it") from None

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version, or ``None``."""
        from learnprivacy.django.models import RequestRow

        row = RequestRow.objects.using(self._using).filter(id=request_id).only("body").first()
        return None if row is None else self._request(request_id, row.body)

    def list_requests(self, query: RequestQuery) -> tuple[SubjectRequest, ...]:
        """The requests ``query`` selects, oldest receipt first (the filters run in SQL)."""
        from learnprivacy.django.models import RequestRow

        rows = RequestRow.objects.using(self._using).order_by("received_at", "id")
        if query.learner_id is not None:
            rows = rows.filter(learner_id=self._ref(query.learner_id))
        states = query.state_values()
        if states is not None:
            rows = rows.filter(state__in=states)
        if query.due_before is not None:
            rows = rows.filter(due_at__lt=query.due_before)
        return tuple(self._request(i, body) for i, body in rows.values_list("id", "body"))

    def history(self, request_id: str) -> tuple[HistoryEntry, ...]:
        """The entries in sequence order."""
        from learnprivacy.django.models import RequestHistory

        bodies = (
            RequestHistory.objects.using(self._using)
            .filter(request_id=request_id)
            .order_by("sequence")
            .values_list("body", flat=True)
        )
        return self._history_of(bodies)

    # -- facts ---------------------------------------------------------------------------

    def put_fact(self, fact: Fact) -> None:
        """Store or replace a fact."""
        from learnprivacy.django.models import RequestFact

        ref, body = self.sealed_fact_body(fact)
        RequestFact.objects.using(self._using).update_or_create(
            learner_id=ref,
            kind=fact.kind,
            key=fact.key,
            defaults={"at": self._stamp(fact.at), "body": body},
        )

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        from learnprivacy.django.models import RequestFact

        ref = self._ref(learner_id)
        row = (
            RequestFact.objects.using(self._using)
            .filter(learner_id=ref, kind=kind, key=key)
            .first()
        )
        return None if row is None else self._fact(ref, kind, key, row.body)

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, ordered by learner then key."""
        from learnprivacy.django.models import RequestFact

        query = RequestFact.objects.using(self._using).filter(kind=kind)
        if learner_id is not None:
            query = query.filter(learner_id=self._ref(learner_id))
        rows = query.values_list("learner_id", "key", "body")
        facts = (self._fact(ref, kind, key, body) for ref, key, body in rows)
        # Ordered here: the column holds references, whose order is not the ids'.
        return tuple(sorted(facts, key=lambda f: (f.learner_id, f.key)))

    # -- checking what is stored ---------------------------------------------------------

    def _stored_cells(self) -> Iterator[tuple[str, str, object]]:
        from learnprivacy.django.models import RequestFact, RequestHistory, RequestRow

        for model in (RequestRow, RequestHistory, RequestFact):
            names = [f.column for f in model._meta.concrete_fields]
            table = model._meta.db_table
            for row in model.objects.using(self._using).values_list(*names).iterator():
                for column, cell in zip(names, row, strict=True):
                    yield table, column, cell
