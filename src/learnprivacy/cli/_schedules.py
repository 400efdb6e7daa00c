"""The schedule the CLI sweeps with: a built-in default or a JSON file.

The JSON form maps record type names to one rule or a list of rules::

    {"Learner": {"period": "P18M", "trigger": "last_activity"},
     "Invoice": {"period": "P10Y", "trigger": "fiscal_year_end", "minimum": true,
                 "mode": "compliance"}}

Keys of a rule: ``period`` and ``trigger`` (required), ``action``, ``minimum``, ``mode``,
``purpose``, ``fallback``, ``on_missing_anchor`` — the names of :class:`RetentionRule`'s
parameters, with enum values in lower case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from learnprivacy.errors import ConfigurationError, LearnPrivacyError
from learnprivacy.retention import Action, RetentionMode, RetentionRule, Schedule, Trigger

__all__ = ["default_schedule", "load_schedule", "schedule_rows"]

_ENUMS: dict[str, type[Any]] = {
    "trigger": Trigger,
    "action": Action,
    "mode": RetentionMode,
    "fallback": Trigger,
    "on_missing_anchor": Action,
}
_ALLOWED = {"period", "minimum", "purpose", *_ENUMS}


def default_schedule() -> Schedule:
    """A French training organisation's schedule, from the promises of real LMS policies.

    Accounts and learning data: 18 months after the last activity, then learning records
    are anonymised (statistics kept). Invoices: 10 years from the close of the fiscal year
    (French Commercial Code L123-22), a compliance-mode legal minimum. Funder (OPCO/CPF)
    files: 72 months after closing, a legal minimum. Consent proof: 5 years after it was
    given. Security logs: one year (CNIL recommendation).
    """
    return Schedule(
        {
            "Learner": RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED),
            "Progress": RetentionRule(
                "P18M", Trigger.LAST_ACTIVITY, action=Action.ANONYMISE, fallback=Trigger.CREATED
            ),
            "Certificate": RetentionRule("P5Y", Trigger.ISSUED),
            "Invoice": RetentionRule(
                "P10Y", Trigger.FISCAL_YEAR_END, minimum=True, mode=RetentionMode.COMPLIANCE
            ),
            "Funding": RetentionRule("P72M", Trigger.CLOSED, minimum=True),
            "Consent": RetentionRule("P5Y", Trigger.CONSENT_GIVEN),
            "AccessEvent": RetentionRule("P1Y", Trigger.CREATED),
        },
        name="french-training-organisation",
    )


def _rule(name: str, spec: Any) -> RetentionRule:
    if not isinstance(spec, dict):
        raise ConfigurationError(f"schedule entry {name} must be an object or a list of them")
    unknown = sorted(set(spec) - _ALLOWED)
    if unknown:
        raise ConfigurationError(f"schedule entry {name} has unknown keys: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key in _ENUMS:
            try:
                kwargs[key] = _ENUMS[key](str(value).lower())
            except ValueError:
                raise ConfigurationError(f"schedule entry {name}: bad {key}") from None
        else:
            kwargs[key] = value
    if "period" not in kwargs or "trigger" not in kwargs:
        raise ConfigurationError(f"schedule entry {name} needs a period and a trigger")
    period, trigger = kwargs.pop("period"), kwargs.pop("trigger")
    return RetentionRule(period, trigger, **kwargs)


def load_schedule(path: str | None) -> Schedule:
    """The schedule in the JSON file at ``path``, or :func:`default_schedule`."""
    if path is None:
        return default_schedule()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read schedule {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigurationError("a schedule file must map record types to rules")
    rules: dict[str | type, Any] = {}
    try:
        for name, spec in data.items():
            specs = spec if isinstance(spec, list) else [spec]
            built = [_rule(name, one) for one in specs]
            rules[name] = built[0] if len(built) == 1 else built
        return Schedule(rules, name=Path(path).stem)
    except LearnPrivacyError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid schedule {path}: {type(exc).__name__}") from None


def schedule_rows(schedule: Schedule) -> list[dict[str, str]]:
    """One row per rule, for display."""
    rows = []
    for key, rules in schedule.entries.items():
        name = key if isinstance(key, str) else key.__name__
        for rule in rules:
            rows.append(
                {
                    "record_type": name,
                    "period": str(rule.period),
                    "trigger": rule.trigger.value,
                    "action": rule.action.value,
                    "legal_minimum": "yes" if rule.minimum else "no",
                }
            )
    return rows
