"""Data-subject requests: rights turned into audited, deadline-tracked operations.

A :class:`RequestBook` receives a :class:`SubjectRequest` (access, portability,
rectification, erasure, restriction, objection, consent withdrawal, post-mortem
directive), tracks the identity check, the one-month deadline and its one extension
(GDPR Art. 12(3)), and moves the request through a forward-only state machine whose every
step is written to a hash-chained history. A :class:`RequestExecutor` carries requests out
against a :class:`~learnprivacy.store.Store` and privacy providers, notifies recipients
(Art. 19), and :func:`render_letter` writes the answer in French or English.

The names below are what a user writes; the types a request carries and returns
(``HistoryEntry``, ``RecordOutcome``, ``StepResult``, ``Extension``, ``DeathReport``...) are
documented with the classes that return them. The controller signing the letters is the
shared :class:`learnprivacy.Controller`; what happened to a record is a
:class:`learnprivacy.Action`.

This module does not import SQLAlchemy; :mod:`learnprivacy.requests.sql` does, when used.
"""

from learnprivacy.requests._adapters import store_audit_sink
from learnprivacy.requests._backend import MemoryBackend
from learnprivacy.requests._book import RequestBook
from learnprivacy.requests._executor import RequestExecutor
from learnprivacy.requests._history import verify_history
from learnprivacy.requests._letters import render_letter
from learnprivacy.requests._model import Requester, SubjectRequest
from learnprivacy.requests._params import (
    DeathAction,
    Executor,
    FieldChange,
    ObjectionParams,
    PostMortemDirective,
    RectificationParams,
    RestrictionParams,
    WithdrawConsentParams,
)
from learnprivacy.requests._recipients import Notification, Recipients
from learnprivacy.requests._vocabulary import (
    Channel,
    ProofMethod,
    RefusalGrounds,
    RequesterRole,
    RequestState,
    RequestType,
    RestrictionGrounds,
)

__all__ = [
    "Channel",
    "DeathAction",
    "Executor",
    "FieldChange",
    "MemoryBackend",
    "Notification",
    "ObjectionParams",
    "PostMortemDirective",
    "ProofMethod",
    "Recipients",
    "RectificationParams",
    "RefusalGrounds",
    "RequestBook",
    "RequestExecutor",
    "RequestState",
    "RequestType",
    "Requester",
    "RequesterRole",
    "RestrictionGrounds",
    "RestrictionParams",
    "SubjectRequest",
    "WithdrawConsentParams",
    "render_letter",
    "store_audit_sink",
    "verify_history",
]
