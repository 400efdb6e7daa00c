"""Retention: how long each record is kept, and what happens when that time is up.

Pure code, no I/O and no clock: ``now`` is always passed in, timezone-aware.

- :class:`Period`: ISO 8601 durations (``P18M``, ``P5Y``, ``P1Y6M``), calendar-correct
  (end-of-month clamped), with an exact :meth:`Period.cutoff` for set-based sweeps.
- :class:`Trigger`: where the clock starts (creation, last activity, contract end, issue,
  fiscal-year close, consent given or withdrawn, funding file closed).
- :class:`RetentionRule`: a period after a trigger, then an :class:`Action`; a legal
  ``minimum`` cannot be cut short by an erasure request (GDPR Art. 17(3)(b)), in
  ``GOVERNANCE`` or ``COMPLIANCE`` :class:`RetentionMode`.
- :class:`Hold`: a legal hold; held records are never erased or anonymised.
- :class:`Schedule`: the rules per record type; :meth:`Schedule.evaluate` gives a
  :class:`Decision` for one record, :meth:`Schedule.plan` a lazy :class:`Plan` over many.

>>> import datetime as dt
>>> from learnprivacy.records import Learner
>>> schedule = Schedule({Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
>>> ana = Learner(id="L1", username="ana", email="ana@example.org", given_name="Ana",
...               family_name="Silva", created_at=dt.datetime(2023, 1, 9, tzinfo=dt.UTC),
...               last_activity_at=dt.datetime(2024, 1, 31, tzinfo=dt.UTC))
>>> decision = schedule.evaluate(ana, now=dt.datetime(2025, 7, 31, tzinfo=dt.UTC))
>>> decision.action, decision.due_at.date()
(<Action.ERASE: 'erase'>, datetime.date(2025, 7, 31))
"""

from learnprivacy.retention._decision import Decision
from learnprivacy.retention._fiscal import FiscalYear
from learnprivacy.retention._hold import Hold, Override
from learnprivacy.retention._period import Period
from learnprivacy.retention._rule import RetentionRule
from learnprivacy.retention._schedule import Schedule
from learnprivacy.retention._vocabulary import Action, RetentionMode, Trigger

__all__ = [
    "Action",
    "Decision",
    "FiscalYear",
    "Hold",
    "Override",
    "Period",
    "RetentionMode",
    "RetentionRule",
    "Schedule",
    "Trigger",
]
