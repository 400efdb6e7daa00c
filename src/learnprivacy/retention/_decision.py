"""What a schedule decides for one record, with the reason a store writes to its audit log."""

from __future__ import annotations

import datetime as dt

import attrs

from learnprivacy.retention._hold import Hold, Override
from learnprivacy.retention._rule import RetentionRule
from learnprivacy.retention._vocabulary import Action

__all__ = ["Decision"]


@attrs.frozen(kw_only=True)
class Decision:
    """The action for one record at one instant, and why.

    - ``action``: what to do now.
    - ``due_at``: when the retention ends (UTC): the record is expired iff ``now >= due_at``.
      For a restriction on request it is when the legal minimum ends; ``None`` when unknown
      (missing date, no rule) or beyond the calendar.
    - ``rule``: the rule that decided (``None`` when no rule applies).
    - ``reason``: a sentence naming the rule and the GDPR article; never a personal value.
    - ``article``: the GDPR article the decision rests on (``"GDPR Art. 17(3)(b)"``).
    - ``hold``: the legal hold that blocked erasure, if any.
    - ``override``: the audited override that bypassed a legal minimum, if any.
    """

    action: Action
    due_at: dt.datetime | None
    rule: RetentionRule | None
    reason: str
    article: str
    hold: Hold | None = None
    override: Override | None = None

    @property
    def destructive(self) -> bool:
        """Whether carrying the decision out removes personal data (erase or anonymise)."""
        return self.action.destructive
