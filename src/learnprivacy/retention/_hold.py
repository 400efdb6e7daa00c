"""Legal holds and audited overrides: the two ways people step into a retention schedule."""

from __future__ import annotations

from typing import Any

import attrs

from learnprivacy._validators import require_text
from learnprivacy.errors import ValidationError
from learnprivacy.records._fields import MASK

__all__ = ["Hold", "Override", "type_matches"]


def _mask(_value: object) -> str:
    return MASK


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = f"{type(instance).__name__}.{attribute.name}"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be non-empty text", field=name)
    require_text(value, name)  # no NUL, no lone surrogate


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _record_type(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, type):
        return
    _text(instance, attribute, value)


def type_matches(selector: type | str, record_type: type) -> bool:
    """Whether ``record_type`` is ``selector`` or a subclass of it (by class or by name)."""
    if isinstance(selector, type):
        return issubclass(record_type, selector)
    return any(cls.__name__ == selector for cls in record_type.__mro__)


@attrs.frozen
class Hold:
    """A legal hold: the records it names are never erased or anonymised while it exists.

    Selectors combine: ``Hold("audit", subject="L1", record_type=Invoice)`` holds the
    invoices of learner ``L1``. ``record_type`` matches subclasses too, and may be a class
    name (``"Invoice"``). A hold naming no selector at all is a *global* hold (litigation or
    regulator freeze): it holds every record. Holding too much never loses data, which is
    why an unqualified hold is accepted rather than refused.

    ``reason`` is written to the audit log: it must describe the case, never a person.
    ``subject`` and ``record_id`` are masked in ``repr``.
    """

    reason: str = attrs.field(validator=_text)
    subject: str | None = attrs.field(default=None, validator=_optional_text, repr=_mask)
    record_type: type | str | None = attrs.field(default=None, validator=_record_type)
    record_id: str | None = attrs.field(default=None, validator=_optional_text, repr=_mask)

    @property
    def is_global(self) -> bool:
        """Whether the hold names no selector and so holds every record."""
        return self.subject is None and self.record_type is None and self.record_id is None

    def matches(self, record: object) -> bool:
        """Whether this hold covers ``record``."""
        if self.record_type is not None and not type_matches(self.record_type, type(record)):
            return False
        if self.record_id is not None and getattr(record, "id", None) != self.record_id:
            return False
        if self.subject is not None:
            owner = getattr(record, "learner_id", None)
            if owner is None:
                owner = getattr(record, "id", None)
            if owner != self.subject:
                return False
        return True


@attrs.frozen
class Override:
    """An explicit, audited bypass of ``GOVERNANCE``-mode legal minimums for one erasure.

    Passed to :meth:`Schedule.evaluate` together with ``erasure_requested=True``; the
    resulting :class:`Decision` carries it so the store writes who (``actor``) and why
    (``reason``) to the audit log before erasing. ``COMPLIANCE``-mode minimums cannot be
    overridden: trying raises ``RetentionViolation``. ``actor`` is masked in ``repr``.
    """

    reason: str = attrs.field(validator=_text)
    actor: str = attrs.field(validator=_text, repr=_mask)
