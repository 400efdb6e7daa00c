"""One retention rule: a period counted from a trigger, and what to do when it ends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.retention._fiscal import FiscalYear
from learnprivacy.retention._period import Period
from learnprivacy.retention._vocabulary import Action, RetentionMode, Trigger

__all__ = ["RetentionRule", "check_subject", "is_own_subject"]

UTC = dt.UTC
_MISSING = object()

Where = tuple[tuple[str, Any], ...]


def is_own_subject(record: object) -> bool:
    """Whether ``record`` is a learner's own account (it has no ``learner_id``)."""
    return not hasattr(record, "learner_id")


def check_subject(
    record: object, subject: str | None = None, learner: object | None = None
) -> object | None:
    """The record that learner-level triggers read: the record itself or its learner.

    ``subject`` (a learner id) or a ``learner`` that is not the record's own raises
    ``ValidationError``: reading the wrong learner's dates would erase someone else's data
    early.
    """
    own = is_own_subject(record)
    owner = getattr(record, "id" if own else "learner_id", None)
    if subject is not None and subject != owner:
        raise ValidationError("subject must be the learner the record belongs to", field="subject")
    if own:
        if (
            learner is not None
            and learner is not record
            and getattr(learner, "id", _MISSING) != owner
        ):
            raise ValidationError(
                "learner must be the learner the record belongs to", field="learner"
            )
        return record
    if learner is not None and getattr(learner, "id", _MISSING) != owner:
        raise ValidationError("learner must be the learner the record belongs to", field="learner")
    return learner


def _to_period(value: Period | str) -> Period:
    if isinstance(value, str):
        return Period.parse(value)
    if not isinstance(value, Period):
        raise ConfigurationError("RetentionRule.period must be a Period or an ISO 8601 string")
    return value


def _to_where(value: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Where:
    if value is None:
        return ()
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ConfigurationError("RetentionRule.where must map field names to values")
        try:
            hash(item[1])
        except TypeError:
            raise ConfigurationError("RetentionRule.where values must be hashable") from None
    return tuple(sorted(items, key=lambda item: str(item[0])))


def _one_of(*types: type) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ConfigurationError(f"RetentionRule.{attribute.name} must be {expected}")

    return check


def _retention_action(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _one_of(Action)(instance, attribute, value)
    assert isinstance(value, Action)  # narrows the type for mypy
    if not value.retention:
        raise ConfigurationError(
            "RetentionRule.action must be KEEP, ERASE, ANONYMISE, RESTRICT or REVIEW"
        )


def _purpose(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigurationError("RetentionRule.purpose must be non-empty text or None")


def _show(value: object) -> str:
    if hasattr(value, "value") and hasattr(type(value), "__members__"):
        return str(value.value)  # an enum member: its stored code reads best
    return repr(value)


@attrs.frozen
class RetentionRule:
    """Keep a record for ``period`` after ``trigger``, then apply ``action``.

    - ``minimum=False`` (default): the period is a maximum (storage limitation). An erasure
      request erases at once.
    - ``minimum=True``: the period is a legal minimum (legal obligation): the record cannot
      be erased before it ends, even on request; the request turns into a restriction
      (GDPR Art. 17(3)(b)). ``mode`` says whether an audited :class:`Override` may bypass
      it (``GOVERNANCE``) or nothing may (``COMPLIANCE``).
    - ``fallback``: a second trigger for when the first has no date, e.g. count from
      account creation for a learner who never connected. When both dates exist the later
      one counts, so a date appearing (a first connection) never brings erasure forward.
      Without a date at all the rule gives
      ``on_missing_anchor``: ``REVIEW`` (default: a person decides) or ``KEEP`` (the clock has
      not started yet, e.g. a contract that has not ended).
    - ``purpose`` names the processing purpose; several rules for one record type are
      several purposes, and the record is kept until every one of them has ended.
    - ``where`` restricts the rule to records whose fields equal the given values, e.g.
      ``where={"funder": Funder.OPCO}``; a store can translate it to SQL.
    - ``fiscal_year`` defines the year closed by ``Trigger.FISCAL_YEAR_END``.
    """

    period: Period = attrs.field(converter=_to_period)
    trigger: Trigger = attrs.field(validator=_one_of(Trigger))
    action: Action = attrs.field(default=Action.ERASE, kw_only=True, validator=_retention_action)
    minimum: bool = attrs.field(default=False, kw_only=True, validator=_one_of(bool))
    mode: RetentionMode = attrs.field(
        default=RetentionMode.GOVERNANCE, kw_only=True, validator=_one_of(RetentionMode)
    )
    purpose: str | None = attrs.field(default=None, kw_only=True, validator=_purpose)
    basis: LawfulBasis | None = attrs.field(default=None, kw_only=True)
    fallback: Trigger | None = attrs.field(default=None, kw_only=True)
    on_missing_anchor: Action = attrs.field(default=Action.REVIEW, kw_only=True)
    where: Where = attrs.field(default=(), kw_only=True, converter=_to_where)
    fiscal_year: FiscalYear = attrs.field(
        factory=FiscalYear, kw_only=True, validator=_one_of(FiscalYear)
    )

    def __attrs_post_init__(self) -> None:
        if self.basis is not None and not isinstance(self.basis, LawfulBasis):
            raise ConfigurationError("RetentionRule.basis must be a LawfulBasis or None")
        if self.fallback is not None and not isinstance(self.fallback, Trigger):
            raise ConfigurationError("RetentionRule.fallback must be a Trigger or None")
        if self.fallback is self.trigger:
            raise ConfigurationError("RetentionRule.fallback must differ from its trigger")
        if self.on_missing_anchor not in (Action.REVIEW, Action.KEEP):
            # A missing date must never lead to erasure: only a person or time can settle it.
            raise ConfigurationError("RetentionRule.on_missing_anchor must be REVIEW or KEEP")
        if self.mode is RetentionMode.COMPLIANCE and not self.minimum:
            raise ConfigurationError("COMPLIANCE mode applies to legal minimums (minimum=True)")

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """The trigger, then the fallback if any."""
        return (self.trigger,) if self.fallback is None else (self.trigger, self.fallback)

    @property
    def label(self) -> str:
        """A short human description, used in decision reasons and the register."""
        return self.label_for(None)

    def label_for(self, default_purpose: str | None) -> str:
        """:attr:`label`, naming ``default_purpose`` when the rule names none."""
        purpose = self.purpose or default_purpose or "retention"
        text = f"{purpose}: {self.period} after {self.trigger.value}"
        if self.fallback is not None:
            text += f" (else {self.fallback.value})"
        if self.where:
            text += " where " + ", ".join(f"{k}={_show(v)}" for k, v in self.where)
        if self.minimum:
            text += f", legal minimum ({self.mode.value})"
        if self.action is not Action.ERASE:
            text += f", then {self.action.value}"
        return text

    @property
    def sort_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What orders (and distinguishes) the rules of one record type."""
        return (self.purpose or "", tuple((k, _show(v)) for k, v in self.where))

    def applies_to(self, record: object) -> bool:
        """Whether ``where`` selects ``record`` (always true without ``where``)."""
        return all(getattr(record, name, _MISSING) == value for name, value in self.where)

    def check_applicable(self, record_type: type) -> None:
        """Raise ``ConfigurationError`` if ``record_type`` lacks a field this rule reads."""
        if not attrs.has(record_type):
            return
        fields = {a.name for a in attrs.fields(record_type)}
        own = "learner_id" not in fields
        for trigger in self.triggers:
            if trigger.on_subject and not own:
                continue
            if trigger.field_for(record_type) not in fields:
                raise ConfigurationError(
                    f"trigger {trigger.value} reads a date {record_type.__name__} does not have"
                )
        for name, _ in self.where:
            if name not in fields:
                raise ConfigurationError(f"where names a field {record_type.__name__} lacks")

    def read(self, trigger: Trigger, record: object, subject: object | None) -> dt.datetime | None:
        """The raw date ``trigger`` reads (``subject`` already checked), or ``None``."""
        source = subject if trigger.on_subject else record
        if source is None:
            return None
        name = trigger.field_for(type(record))
        value = getattr(source, name, None)
        if value is None:
            return None
        return require_aware(value, f"{type(source).__name__}.{name}")

    def anchor_of(self, record: object, subject: object | None) -> dt.datetime | None:
        """The UTC instant the period counts from, ``subject`` already checked.

        With a fallback, the later of the dates present counts: learning the first date
        (a learner's first activity) must never bring erasure forward.
        """
        latest: dt.datetime | None = None
        for trigger in self.triggers:
            raw = self.read(trigger, record, subject)
            if raw is not None:
                if trigger is Trigger.FISCAL_YEAR_END:
                    instant = self.fiscal_year.closing(raw)
                else:
                    instant = raw.astimezone(UTC)
                latest = instant if latest is None or instant > latest else latest
        return latest

    def anchor(self, record: object, learner: object | None = None) -> dt.datetime | None:
        """The UTC instant this rule's period counts from for ``record``, or ``None``."""
        return self.anchor_of(record, check_subject(record, learner=learner))

    def due_at(self, record: object, learner: object | None = None) -> dt.datetime | None:
        """When this rule's period ends for ``record`` (UTC).

        ``None`` when the record has no anchor date, or when the period ends beyond year
        9999 (it then never ends).
        """
        start = self.anchor(record, learner)
        return None if start is None else self.period_end(start)

    def period_end(self, start: dt.datetime) -> dt.datetime | None:
        """``period.add_to(start)``, or ``None`` when that is beyond the calendar."""
        try:
            return self.period.add_to(start)
        except ValidationError:
            return None

    def cutoff(self, now: dt.datetime, trigger: Trigger | None = None) -> dt.datetime | None:
        """The latest raw date of ``trigger`` (default: the rule's) that has expired at ``now``.

        A record (or, for learner-level triggers, its learner) whose date column is
        ``<= cutoff`` has reached the end of this rule's period; ``None`` means none has.
        Exact: ``date <= rule.cutoff(now)`` if and only if the period counted from that date
        has ended, including month-end clamping and fiscal-year closes. For a rule with a
        ``fallback``, ask again with ``trigger=rule.fallback``: a row has expired when at
        least one of its two dates is present and every present one is ``<=`` its cutoff.
        """
        chosen = self.trigger if trigger is None else trigger
        if chosen not in self.triggers:
            raise ConfigurationError("cutoff asked for a trigger the rule does not use")
        latest = self.period.cutoff(now)
        if chosen is Trigger.FISCAL_YEAR_END:
            return self.fiscal_year.cutoff(latest)
        return latest
