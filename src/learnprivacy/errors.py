"""The one error hierarchy of learnprivacy.

Every error raised on purpose by the library derives from :class:`LearnPrivacyError`, and
where a builtin fits it is mixed in (``ValidationError`` is also a ``ValueError``), so
callers can catch either.

Messages name the field, the record type and the rule that failed; they never contain a
personal value. Code that builds an error message from user input must pass the *name* of
the thing, not its value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditTampered",
    "ConfigurationError",
    "ConfigurationWarning",
    "CryptoError",
    "DecryptionError",
    "DeliveryError",
    "IntegrityError",
    "KeyShreddedError",
    "LearnPrivacyError",
    "NotFoundError",
    "PlaintextError",
    "PolicyError",
    "ProviderError",
    "RequestStateError",
    "RestrictedRecordError",
    "RetentionViolation",
    "UnknownCodeError",
    "ValidationError",
    "WrongMasterKeyError",
]


#: The interpreter's own ``__context__`` slot of every exception.
_CONTEXT: Any = BaseException.__dict__["__context__"]


class LearnPrivacyError(Exception):
    """Root of every error learnprivacy raises on purpose.

    An error raised ``from None`` inside an ``except`` block does not hand out the error
    it replaced: ``__context__`` reads ``None`` when the context is suppressed. Python
    keeps that context on the exception all the same, and an error reporter walking
    ``__context__`` would find, say, the ``UnicodeEncodeError`` whose ``object`` is the
    whole personal value the library refused to quote.
    """

    @property
    def __context__(self) -> BaseException | None:
        if self.__suppress_context__:
            return None
        context: BaseException | None = _CONTEXT.__get__(self)
        return context

    @__context__.setter
    def __context__(self, value: BaseException | None) -> None:
        _CONTEXT.__set__(self, value)


class ValidationError(LearnPrivacyError, ValueError):
    """A value does not satisfy the rule of the field it was given for.

    ``field`` names the offending field (``"Learner.email"``), never its value.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ArgumentError(ValidationError, TypeError):
    """A record or function was called with arguments it does not take (positional
    arguments to a keyword-only record, an unknown or missing field name, ``None`` where
    a path is required). The message names the argument, never a value.

    A refinement of :class:`ValidationError` (catch that), and a ``TypeError`` as Python
    itself would raise; not a name of its own in the public surface.
    """


class UnknownCodeError(ValidationError, LookupError):
    """A vocabulary code (Moodle lawful-basis code, category name...) is not known."""


class ConfigurationError(LearnPrivacyError, ValueError):
    """The library was set up inconsistently (missing key, bad URL, bad option)."""


class PolicyError(LearnPrivacyError):
    """An operation is refused by the privacy policy (lawful basis, schedule, request state)."""


class RetentionViolation(PolicyError):
    """An operation would erase or shorten what a legal minimum or a hold protects."""


class RestrictedRecordError(PolicyError):
    """A write or normal read touched a record whose processing is restricted (Art. 18)."""


class RequestStateError(PolicyError):
    """A data-subject request was asked for a transition its state machine forbids."""


class ProviderError(LearnPrivacyError):
    """A privacy provider failed; ``component`` names it."""

    def __init__(self, message: str, *, component: str | None = None) -> None:
        super().__init__(message)
        self.component = component


class NotFoundError(LearnPrivacyError, LookupError):
    """A record, subject or request that must exist does not."""


class IntegrityError(LearnPrivacyError):
    """A write would break the store's integrity (duplicate id, unknown learner)."""


class CryptoError(LearnPrivacyError):
    """Base of the cryptographic errors."""


class DecryptionError(CryptoError):
    """A token could not be decrypted or verified.

    One error for every cause (tampering, truncation, garbage, wrong key, wrong subject or
    context), so a caller cannot learn which check failed.
    """


class KeyShreddedError(DecryptionError):
    """The data key needed to decrypt was shredded: the value is gone for good."""


class PlaintextError(CryptoError):
    """A personal column holds, or was about to receive, a value that is not a token.

    Raised when an application's own table (``learnprivacy.sqlalchemy``) is read or written
    past the integration, e.g. a plaintext e-mail address in a column declared personal.
    ``table`` and ``column`` name where; the value itself is never in the message.
    """

    def __init__(
        self, message: str, *, table: str | None = None, column: str | None = None
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class WrongMasterKeyError(CryptoError):
    """A keyring or store was opened with a master key that does not match its keys."""


class AuditTampered(LearnPrivacyError):
    """The audit log's hash chain is broken; ``sequence`` is the first bad entry."""

    def __init__(self, message: str, *, sequence: int | None = None) -> None:
        super().__init__(message)
        self.sequence = sequence


class DeliveryError(LearnPrivacyError, ConnectionError):
    """Data could not be delivered to a remote service (an LRS).

    ``status`` is the last HTTP status received, or ``None`` when the connection itself
    failed (or the reply was not what the protocol promises). When sending stopped
    part-way, the counts say exactly where it stood: ``delivered`` items the service
    acknowledged storing, ``already_stored`` it held identically, ``failed`` that it
    did not take (the batch being sent when it stopped, and conflicts). ``details``
    holds further non-personal counts (what an LRS voided, what it could not). The
    message names the endpoint's host and the status, never the data sent.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        delivered: int = 0,
        already_stored: int = 0,
        failed: int = 0,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.delivered = delivered
        self.already_stored = already_stored
        self.failed = failed
        self.details: dict[str, str] = dict(details or {})


class ConfigurationWarning(UserWarning):
    """A setting left at a placeholder that works but is almost certainly not meant
    (statements sent to an LRS under the reserved ``https://lms.invalid`` home page)."""
