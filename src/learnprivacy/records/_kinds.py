"""Closed vocabularies used by the records."""

from __future__ import annotations

import enum

__all__ = ["AccessKind", "CertificateKind", "Funder", "ProgressStatus"]


class ProgressStatus(enum.Enum):
    """Where a learner stands in a course or activity."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PASSED = "passed"
    FAILED = "failed"


class CertificateKind(enum.Enum):
    """What a certificate attests."""

    CERTIFICATE = "certificate"
    ATTENDANCE = "attendance"
    BADGE = "badge"
    DIPLOMA = "diploma"


class Funder(enum.Enum):
    """Who pays for a training: the learner, the employer, an OPCO, the CPF, a region..."""

    SELF = "self"
    EMPLOYER = "employer"
    OPCO = "opco"
    CPF = "cpf"
    REGION = "region"
    OTHER = "other"


class AccessKind(enum.Enum):
    """A security-relevant access event."""

    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
