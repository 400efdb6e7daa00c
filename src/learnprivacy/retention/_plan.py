"""A lazy sweep: a schedule applied to an iterable of records, grouped by action."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import RETENTION_ACTIONS
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.retention._decision import Decision
from learnprivacy.retention._engine import Engine, decide_action, subject_map
from learnprivacy.retention._hold import Hold
from learnprivacy.retention._schedule import Schedule, subject_for
from learnprivacy.retention._vocabulary import Action

__all__ = ["Plan"]

R = TypeVar("R")


class Plan(Generic[R]):
    """The decisions of a schedule over many records, computed lazily, batch by batch.

    Built by :meth:`Schedule.plan`. Each method makes one pass over the records:

    - :meth:`batches` yields ``{action: [records]}`` per batch of ``batch_size`` records;
    - :meth:`of` yields the records of one action; :meth:`grouped` collects all groups;
    - :meth:`counts` counts records per action without keeping them;
    - :meth:`decisions` yields ``(record, Decision)`` pairs (full reasons, for the audit
      log), optionally for one action only.

    Records may be any iterable; a sequence can be swept several times, a one-shot
    iterator (a generator, a database cursor) only once: a second pass raises
    ``ConfigurationError``. Within a batch, records come out grouped by type.
    """

    __slots__ = (
        "_consumed",
        "_engine",
        "_erasure",
        "_holds",
        "_one_shot",
        "_records",
        "_schedule",
        "_subjects",
        "batch_size",
        "now",
    )

    def __init__(
        self,
        schedule: Schedule,
        records: Iterable[R],
        now: dt.datetime,
        learners: Mapping[str, Any] | Iterable[Any] | None,
        holds: Iterable[Hold],
        erasure_requested: bool,
        batch_size: int,
    ) -> None:
        # The arguments of Schedule.plan, which documents them.
        require_aware(now, "now")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size must be a positive whole number", field="batch_size")
        self._holds = tuple(holds)
        if not all(isinstance(h, Hold) for h in self._holds):
            raise ValidationError("holds must be Hold objects", field="holds")
        self._schedule = schedule
        self._records = records
        self._one_shot = iter(records) is records
        self._consumed = False
        self._subjects = subject_map(learners)
        self._erasure = bool(erasure_requested)
        self.now = now
        self.batch_size = batch_size
        self._engine = Engine(
            schedule,
            now,
            self._subjects,
            self._holds,
            decide_action(schedule, now, self._subjects, self._holds, self._erasure),
        )

    def _source(self) -> Iterator[R]:
        if self._one_shot:
            if self._consumed:
                raise ConfigurationError(
                    "this plan reads a one-shot iterator that was already swept; "
                    "pass a sequence to sweep it several times"
                )
            self._consumed = True
        return iter(self._records)

    def batches(self) -> Iterator[dict[Action, list[R]]]:
        """Per batch of records, the records of each action (every action is a key)."""
        source = self._source()
        while True:
            batch = list(itertools.islice(source, self.batch_size))
            if not batch:
                return
            out: dict[Action, list[R]] = {action: [] for action in RETENTION_ACTIONS}
            if self._erasure:
                decide_one = self._engine.decide_one
                for record in batch:
                    out[decide_one(record)].append(record)
            else:
                self._engine.classify(batch, out)
            yield out

    def of(self, action: Action) -> Iterator[R]:
        """The records whose decision is ``action``, lazily."""
        if not isinstance(action, Action):
            raise ValidationError("action must be an Action", field="action")
        for groups in self.batches():
            yield from groups[action]

    def grouped(self) -> dict[Action, list[R]]:
        """Every record, in a list per action (materialises the whole sweep)."""
        out: dict[Action, list[R]] = {action: [] for action in RETENTION_ACTIONS}
        for groups in self.batches():
            for action, records in groups.items():
                out[action].extend(records)
        return out

    def counts(self) -> dict[Action, int]:
        """How many records get each action."""
        out = dict.fromkeys(RETENTION_ACTIONS, 0)
        for groups in self.batches():
            for action, records in groups.items():
                out[action] += len(records)
        return out

    def decide(self, record: R) -> Decision:
        """The full decision for one record, with this plan's now, learners and holds."""
        return self._schedule.evaluate(
            record,
            now=self.now,
            learner=subject_for(record, self._subjects),
            holds=self._holds,
            erasure_requested=self._erasure,
        )

    def decisions(self, action: Action | None = None) -> Iterator[tuple[R, Decision]]:
        """``(record, Decision)`` pairs, lazily; only those of ``action`` when given."""
        for groups in self.batches():
            chosen = groups.values() if action is None else (groups[action],)
            for records in chosen:
                for record in records:
                    yield record, self.decide(record)
