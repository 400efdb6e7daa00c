"""xAPI 1.0.3 statements for progress and certificates, and sending them to an LRS.

Statements are plain dicts built by learnprivacy (no third-party xAPI package):

- the actor is ``{"objectType": "Agent", "account": {"homePage", "name"}}`` whose name is
  a keyed pseudonym (:class:`~learnprivacy.crypto.Pseudonymiser`): never ``mbox``, never
  the internal learner id;
- verbs: ADL ``passed``, ``failed``, ``completed``, ``attempted`` (in progress) for
  progress (``not_started`` gives no statement), TinCan ``earned`` for certificates;
- ``result.score {raw, min, max, scaled}``, ``success``, ``completion``, ISO 8601
  ``duration``; RFC 3339 ``timestamp`` with its offset; no ``version`` field;
- ids are UUID 5 of the statement's canonical content: re-exporting gives the same ids.

:func:`send_statements` posts them to a Learning Record Store in batches, retrying on
server and connection errors; sending again what the LRS already has is harmless.
"""

from learnprivacy.export._lrs import SendReport, send_statements
from learnprivacy.export._xapi import (
    ACTIVITY_TYPE_CERTIFICATE,
    ACTIVITY_TYPE_COURSE,
    ACTIVITY_TYPE_MODULE,
    STATEMENT_NAMESPACE,
    VERB_ATTEMPTED,
    VERB_COMPLETED,
    VERB_EARNED,
    VERB_FAILED,
    VERB_PASSED,
    Pseudonyms,
    XapiProfile,
    check_statement,
    statement_for,
    statements_for,
)

__all__ = [
    "ACTIVITY_TYPE_CERTIFICATE",
    "ACTIVITY_TYPE_COURSE",
    "ACTIVITY_TYPE_MODULE",
    "STATEMENT_NAMESPACE",
    "VERB_ATTEMPTED",
    "VERB_COMPLETED",
    "VERB_EARNED",
    "VERB_FAILED",
    "VERB_PASSED",
    "Pseudonyms",
    "SendReport",
    "XapiProfile",
    "check_statement",
    "send_statements",
    "statement_for",
    "statements_for",
]
