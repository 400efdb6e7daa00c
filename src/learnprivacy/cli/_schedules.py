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
from learnprivacy.retention.presets import french_training_organisation

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
    """The built-in schedule: ``presets.french_training_organisation()``."""
    return french_training_organisation()


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
