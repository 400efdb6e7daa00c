"""Data-subject requests: rights turned into audited, deadline-tracked operations.

A :class:`RequestBook` receives a :class:`SubjectRequest` (access, portability,
rectification, erasure, restriction, objection, consent withdrawal, post-mortem
directive), tracks the identity check, the one-month deadline and its one extension
(GDPR Art. 12(3)), and moves the request through a forward-only state machine whose every
step is written to a hash-chained history. A :class:`RequestExecutor` carries requests out
against a :class:`~learnprivacy.store.Store` and privacy providers, notifies recipients
(Art. 19), and :func:`render_letter` writes the answer in French or English.

This module does not import SQLAlchemy; :mod:`learnprivacy.requests.sql` does, when used.
"""

from learnprivacy.requests._adapters import store_audit_sink
from learnprivacy.requests._backend import Fact, MemoryBackend, RequestBackend
from learnprivacy.requests._book import AuditSink, RequestBook
from learnprivacy.requests._codec import request_from_dict, request_to_dict
from learnprivacy.requests._deadlines import (
    MAX_EXTENSION_MONTHS,
    RESPONSE_PERIOD,
    Extension,
    extended_deadline,
    first_deadline,
)
from learnprivacy.requests._death import DeathReport, ExecutorNotice
from learnprivacy.requests._executor import RequestExecutor
from learnprivacy.requests._facts import (
    Objection,
    RecordedDeath,
    RegisteredDirective,
    ScheduledErasure,
)
from learnprivacy.requests._history import GENESIS, HistoryEntry, verify_history
from learnprivacy.requests._letters import LANGUAGES, render_letter
from learnprivacy.requests._machine import TRANSITIONS, check_transition, is_allowed
from learnprivacy.requests._model import (
    Failure,
    IdentityCheck,
    Refusal,
    Requester,
    SubjectRequest,
)
from learnprivacy.requests._outcomes import (
    NotificationOutcome,
    NotificationStatus,
    RecordOutcome,
    StepResult,
)
from learnprivacy.requests._params import (
    DeathAction,
    Executor,
    FieldChange,
    ObjectionParams,
    Params,
    PostMortemDirective,
    RectificationParams,
    RestrictionParams,
    WithdrawConsentParams,
)
from learnprivacy.requests._recipients import Notification, Notifier, Recipient, Recipients
from learnprivacy.requests._vocabulary import (
    Channel,
    IdentityStatus,
    ProofMethod,
    RefusalGrounds,
    RequesterRole,
    RequestState,
    RequestType,
    RestrictionGrounds,
)

__all__ = [
    "GENESIS",
    "LANGUAGES",
    "MAX_EXTENSION_MONTHS",
    "RESPONSE_PERIOD",
    "TRANSITIONS",
    "AuditSink",
    "Channel",
    "DeathAction",
    "DeathReport",
    "Executor",
    "ExecutorNotice",
    "Extension",
    "Fact",
    "Failure",
    "FieldChange",
    "HistoryEntry",
    "IdentityCheck",
    "IdentityStatus",
    "MemoryBackend",
    "Notification",
    "NotificationOutcome",
    "NotificationStatus",
    "Notifier",
    "Objection",
    "ObjectionParams",
    "Params",
    "PostMortemDirective",
    "ProofMethod",
    "Recipient",
    "Recipients",
    "RecordOutcome",
    "RecordedDeath",
    "RectificationParams",
    "Refusal",
    "RefusalGrounds",
    "RegisteredDirective",
    "RequestBackend",
    "RequestBook",
    "RequestExecutor",
    "RequestState",
    "RequestType",
    "Requester",
    "RequesterRole",
    "RestrictionGrounds",
    "RestrictionParams",
    "ScheduledErasure",
    "StepResult",
    "SubjectRequest",
    "WithdrawConsentParams",
    "check_transition",
    "extended_deadline",
    "first_deadline",
    "is_allowed",
    "render_letter",
    "request_from_dict",
    "request_to_dict",
    "store_audit_sink",
    "verify_history",
]
