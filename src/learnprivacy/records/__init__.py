"""Typed learning records carrying their lawful basis and per-field privacy metadata.

Records are frozen attrs classes with keyword-only constructors. Each field is declared
personal or not (:func:`personal` / :func:`not_personal`); :func:`fields_of` reads it back.
Personal values never appear in ``repr``/``str``.
"""

from learnprivacy.records._base import (
    Record,
    default_basis,
    record_type,
    record_types,
    register_record_type,
    subject_of,
)
from learnprivacy.records._billing import Funding, Invoice
from learnprivacy.records._compliance import AccessEvent, Consent
from learnprivacy.records._fields import (
    MASK,
    METADATA_KEY,
    FieldInfo,
    fields_of,
    not_personal,
    personal,
)
from learnprivacy.records._generalise import Granularity
from learnprivacy.records._kinds import AccessKind, CertificateKind, Funder, ProgressStatus
from learnprivacy.records._learning import Certificate, Learner, Progress, Score
from learnprivacy.records._serialise import (
    format_duration,
    from_json_dict,
    parse_duration,
    to_json_dict,
)

__all__ = [
    "MASK",
    "METADATA_KEY",
    "AccessEvent",
    "AccessKind",
    "Certificate",
    "CertificateKind",
    "Consent",
    "FieldInfo",
    "Funder",
    "Funding",
    "Granularity",
    "Invoice",
    "Learner",
    "Progress",
    "ProgressStatus",
    "Record",
    "Score",
    "default_basis",
    "fields_of",
    "format_duration",
    "from_json_dict",
    "not_personal",
    "parse_duration",
    "personal",
    "record_type",
    "record_types",
    "register_record_type",
    "subject_of",
    "to_json_dict",
]
