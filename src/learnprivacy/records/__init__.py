"""Typed learning records carrying their lawful basis and per-field privacy metadata.

Records are frozen attrs classes with keyword-only constructors. Each field is declared
personal or not (:func:`personal` / :func:`not_personal`); :func:`fields_of` reads it back.
Personal values never appear in ``repr``/``str``.
"""

from learnprivacy.records._base import Record, register_record_type
from learnprivacy.records._fields import fields_of, not_personal, personal
from learnprivacy.records._generalise import Granularity
from learnprivacy.records._kinds import AccessKind, CertificateKind, Funder, ProgressStatus
from learnprivacy.records._serialise import from_json_dict, to_json_dict
from learnprivacy.records._types import (
    AccessEvent,
    Certificate,
    Consent,
    Funding,
    Invoice,
    Learner,
    Progress,
    Score,
)

__all__ = [
    "AccessEvent",
    "AccessKind",
    "Certificate",
    "CertificateKind",
    "Consent",
    "Funder",
    "Funding",
    "Granularity",
    "Invoice",
    "Learner",
    "Progress",
    "ProgressStatus",
    "Record",
    "Score",
    "fields_of",
    "from_json_dict",
    "not_personal",
    "personal",
    "register_record_type",
    "to_json_dict",
]
