"""A retention schedule: the rules of every record type, and the decision for one record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, UnknownCodeError, ValidationError
from learnprivacy.records._base import record_type as registered_type
from learnprivacy.retention._decide import decide
from learnprivacy.retention._hold import Hold, Override
from learnprivacy.retention._rule import RetentionRule, check_subject, is_own_subject
from learnprivacy.retention._vocabulary import Action, Trigger

if TYPE_CHECKING:
    from learnprivacy.retention._decision import Decision
    from learnprivacy.retention._plan import Plan

__all__ = ["Cutoff", "Schedule"]

R = TypeVar("R")
RuleSpec = RetentionRule | Iterable[RetentionRule]


@attrs.frozen(kw_only=True)
class Cutoff:
    """One date comparison a store can run in SQL for a set-based sweep.

    Rows of ``record_type`` whose ``field`` (on the learner's row when ``on_subject``)
    is ``<= value`` have reached the end of ``rule`` through ``trigger``; ``None`` means
    none has. A rule with a fallback gives a second entry: a row has then expired when at
    least one of the two dates is present and every present one passes. Rows found this
    way still go through :meth:`Schedule.evaluate` (or a :class:`Plan`) for holds, other
    purposes and erasure requests.
    """

    record_type: type | str
    rule: RetentionRule
    trigger: Trigger
    field: str
    on_subject: bool
    value: dt.datetime | None


def _resolve(key: type | str) -> type | None:
    if isinstance(key, type):
        return key
    try:
        return registered_type(key)
    except UnknownCodeError:
        return None


class Schedule:
    """Retention rules per record type, and the decision they give for a record.

    ``Schedule({Learner: RetentionRule(...), Invoice: [rule_a, rule_b]})``: keys are record
    classes (matching subclasses too) or class names (``"Learner"``) for config-driven
    schedules; values are one rule or several (one per purpose: a record is kept until
    every purpose's retention has ended). The most specific key in a record class's MRO wins.

    Pure: no I/O and no clock; ``now`` is always passed in and must be timezone-aware.
    """

    __slots__ = ("_entries", "_resolved", "name")

    def __init__(self, rules: Mapping[Any, RuleSpec], *, name: str | None = None) -> None:
        if not isinstance(rules, Mapping):
            raise ConfigurationError("Schedule takes a mapping of record type to rule(s)")
        entries: dict[type | str, tuple[RetentionRule, ...]] = {}
        names: set[str] = set()
        for key, spec in rules.items():
            if not isinstance(key, type | str) or (isinstance(key, str) and not key.strip()):
                raise ConfigurationError("Schedule keys must be record classes or class names")
            label = key if isinstance(key, str) else key.__name__
            if label in names:
                raise ConfigurationError(f"Schedule names {label} twice")
            names.add(label)
            entries[key] = self._normalise(label, spec, _resolve(key))
        self._entries = entries
        self._resolved: dict[type, tuple[RetentionRule, ...]] = {}
        self.name = name

    @staticmethod
    def _normalise(label: str, spec: RuleSpec, cls: type | None) -> tuple[RetentionRule, ...]:
        rules = (spec,) if isinstance(spec, RetentionRule) else tuple(spec)
        if not rules:
            raise ConfigurationError(f"Schedule gives {label} an empty list of rules")
        if not all(isinstance(rule, RetentionRule) for rule in rules):
            raise ConfigurationError(f"Schedule values for {label} must be RetentionRule")
        keys = {rule.sort_key for rule in rules}
        if len(keys) != len(rules):
            raise ConfigurationError(
                f"the rules for {label} must differ by purpose (or where): one rule per purpose"
            )
        if cls is not None:
            for rule in rules:
                rule.check_applicable(cls)
        # A canonical order makes every decision independent of the order rules were given.
        return tuple(sorted(rules, key=lambda rule: rule.sort_key))

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k if isinstance(k, str) else k.__name__}: {len(v)} rule(s)"
            for k, v in self._entries.items()
        )
        return f"Schedule({parts})"

    @property
    def entries(self) -> Mapping[type | str, tuple[RetentionRule, ...]]:
        """The rules as declared, per key (each tuple in canonical order)."""
        return dict(self._entries)

    def rules_for(self, record_type: type) -> tuple[RetentionRule, ...]:
        """Every rule declared for ``record_type`` (most specific key in its MRO), or ``()``."""
        cached = self._resolved.get(record_type)
        if cached is not None:
            return cached
        found: tuple[RetentionRule, ...] = ()
        for cls in record_type.__mro__:
            if cls in self._entries:
                found = self._entries[cls]
                break
            if cls.__name__ in self._entries:
                found = self._entries[cls.__name__]
                break
        self._resolved[record_type] = found
        return found

    def applicable_rules(self, record: object) -> tuple[RetentionRule, ...]:
        """The rules of ``record``'s type whose ``where`` selects it."""
        return tuple(rule for rule in self.rules_for(type(record)) if rule.applies_to(record))

    def on_consent_end(self, record: object, purpose: str) -> Action | None:
        """What ends ``record``'s processing when the consent to ``purpose`` ends
        (withdrawn, or expired), or ``None`` when something else still holds it.

        The record's applicable rules say which purposes it serves and on what basis (a
        rule's basis, else the record's). Only a record every one of whose rules is
        ``purpose`` on consent is let go (Art. 17(1)(b)); another purpose, or this one
        on another basis, keeps it. It then gets the rules' own action, as at the end of
        their period: ``ERASE`` if any rule erases, else ``ANONYMISE`` if any anonymises
        (only anonymous statistics remain, as the policy says), else ``RESTRICT``:
        processing stops and the data waits for the review or keeping the rule asks for.
        A record no rule covers is not the schedule's to decide: ``None``.
        """
        rules = self.applicable_rules(record)
        if not rules:
            return None
        basis = getattr(record, "basis", None)
        if not all(
            rule.purpose == purpose and (rule.basis or basis) is LawfulBasis.CONSENT
            for rule in rules
        ):
            return None
        actions = {rule.action for rule in rules}
        if Action.ERASE in actions:
            return Action.ERASE
        if Action.ANONYMISE in actions:
            return Action.ANONYMISE
        return Action.RESTRICT

    def evaluate(
        self,
        record: object,
        *,
        now: dt.datetime,
        subject: object | None = None,
        learner: object | None = None,
        holds: Iterable[Hold] = (),
        erasure_requested: bool = False,
        override: Override | None = None,
    ) -> Decision:
        """Decide what to do with ``record`` at ``now``.

        ``learner`` is the record's :class:`~learnprivacy.records.Learner`, whose dates
        ``LAST_ACTIVITY`` and ``CONTRACT_END`` read for records other than the learner's
        own. ``subject`` is the learner id the record must belong to (``"L1"``); a
        mismatch raises ``ValidationError``. For the contract's older spelling,
        ``subject=learner`` with a ``Learner`` object is read as ``learner=``. Without a
        request: ``KEEP`` until every
        applicable rule's period has ended, then the rules' action; a missing date gives
        ``REVIEW`` (or ``KEEP`` where the rule says the clock has not started), never
        ``ERASE``; no rule gives ``REVIEW``. A matching hold turns erasure or anonymisation
        into ``KEEP``. With ``erasure_requested=True``: ``ERASE`` now unless a legal minimum
        runs (``RESTRICT``, Art. 17(3)(b)) or a hold applies (``RESTRICT``, Art. 17(3)(e)).
        ``override`` bypasses ``GOVERNANCE``-mode minimums for that request; a
        ``COMPLIANCE``-mode minimum raises ``RetentionViolation`` instead.
        """
        require_aware(now, "now")
        if override is not None:
            if not isinstance(override, Override):
                raise ValidationError("override must be an Override", field="override")
            if not erasure_requested:
                raise ValidationError(
                    "an override only applies to an erasure request", field="override"
                )
        learner = check_subject(record, *_subject_and_learner(subject, learner))
        hold = next((h for h in holds if h.matches(record)), None)
        rules = self.applicable_rules(record)
        return decide(
            record,
            rules,
            learner,
            now=now,
            hold=hold,
            erasure_requested=bool(erasure_requested),
            override=override,
        )

    def plan(
        self,
        records: Iterable[R],
        *,
        now: dt.datetime,
        learners: Mapping[str, Any] | Iterable[Any] | None = None,
        holds: Iterable[Hold] = (),
        erasure_requested: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> Plan[R]:
        """A lazy sweep of ``records`` at ``now``: decisions grouped by action.

        ``learners`` gives the learners (a mapping id -> Learner, or an iterable of them)
        whose dates ``LAST_ACTIVITY``/``CONTRACT_END`` read. Per-rule cutoffs are computed
        once, so a sweep compares one date per record and allocates no decision unless asked.
        """
        from learnprivacy.retention._plan import Plan

        return Plan(self, records, now, learners, holds, erasure_requested, batch_size)

    def cutoffs(self, now: dt.datetime) -> tuple[Cutoff, ...]:
        """The date comparisons a store needs to find expired rows at ``now``, in SQL.

        Keys that are class names must be registered record types.
        """
        require_aware(now, "now")
        out: list[Cutoff] = []
        for key, rules in self._entries.items():
            cls = _resolve(key)
            if cls is None:
                raise ConfigurationError(f"{key} is not a registered record type")
            own = attrs.has(cls) and "learner_id" not in {a.name for a in attrs.fields(cls)}
            for rule in rules:
                for trigger in rule.triggers:
                    out.append(
                        Cutoff(
                            record_type=key,
                            rule=rule,
                            trigger=trigger,
                            field=trigger.field_for(cls),
                            on_subject=trigger.on_subject and not own,
                            value=rule.cutoff(now, trigger),
                        )
                    )
        return tuple(out)


def _subject_and_learner(subject: object, learner: object) -> tuple[str | None, object]:
    """``(subject id, learner object)`` from :meth:`Schedule.evaluate`'s two arguments."""
    if subject is not None and not isinstance(subject, str):
        # The public contract's spelling: a Learner object passed as ``subject``.
        if learner is not None and learner is not subject:
            raise ValidationError("pass the learner once, as learner=", field="subject")
        learner, subject = subject, None
    if subject is not None and learner is not None and getattr(learner, "id", None) != subject:
        raise ValidationError("learner is not the subject", field="learner")
    return subject, learner


def subject_for(record: object, subjects: Mapping[str, Any]) -> object | None:
    """The learner of ``record`` found in ``subjects`` (the record itself for a learner)."""
    if is_own_subject(record):
        return record
    return subjects.get(getattr(record, "learner_id", ""))
