"""Per-learner facts the LMS queries: objections, directives, deaths, scheduled erasures.

They outlive the request that created them: an objection keeps stopping processing for
its purpose, a directive waits for the death it provides for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.records import MASK
from learnprivacy.requests._backend import Fact
from learnprivacy.requests._outcomes import NotificationStatus
from learnprivacy.requests._params import PostMortemDirective, params_from_dict

__all__ = [
    "FactsMixin",
    "Objection",
    "RecordedDeath",
    "RegisteredDirective",
    "ScheduledErasure",
]

OBJECTION = "objection"
DIRECTIVE = "directive"
DEATH = "death"
SCHEDULED_ERASURE = "scheduled_erasure"
EXECUTOR_NOTICE = "executor_notice"


def _mask(_value: object) -> str:
    return MASK


@attrs.frozen(kw_only=True)
class Objection:
    """A recorded objection to one purpose.

    ``overridden`` is true when the controller recorded compelling legitimate grounds
    (Art. 21(1)); the processing may then go on and :meth:`FactsMixin.is_objected` is
    false.
    """

    learner_id: str = attrs.field(repr=_mask)
    purpose: str
    request_id: str
    at: dt.datetime
    direct_marketing: bool
    overridden: bool


@attrs.frozen(kw_only=True)
class RegisteredDirective:
    """The post-mortem directive in force for a learner (the latest registered)."""

    learner_id: str = attrs.field(repr=_mask)
    request_id: str
    registered_at: dt.datetime
    directive: PostMortemDirective


@attrs.frozen(kw_only=True)
class RecordedDeath:
    """A learner's death as recorded (date of death, and when it was recorded)."""

    learner_id: str = attrs.field(repr=_mask)
    died_at: dt.datetime
    recorded_at: dt.datetime


@attrs.frozen(kw_only=True)
class ScheduledErasure:
    """An erasure a directive asked for at a later date (keep-then-erase)."""

    learner_id: str = attrs.field(repr=_mask)
    due_at: dt.datetime
    request_id: str
    done_at: dt.datetime | None = None


class FactsMixin:
    """Reading and writing the per-learner facts; mixed into :class:`RequestBook`."""

    def _put_fact(self, fact: Fact) -> None:
        raise NotImplementedError

    def _get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        raise NotImplementedError

    def _list_facts(self, kind: str, learner_id: str | None) -> tuple[Fact, ...]:
        raise NotImplementedError

    # -- objections --------------------------------------------------------------------

    def is_objected(self, learner_id: str, purpose: str) -> bool:
        """Whether ``learner_id`` objected to ``purpose`` and the objection stands.

        The LMS asks this before processing for a legitimate-interest purpose.
        """
        fact = self._get_fact(learner_id, OBJECTION, purpose)
        return fact is not None and not fact.data["overridden"]

    def objections(self, learner_id: str) -> tuple[Objection, ...]:
        """Every objection recorded for ``learner_id``, by purpose."""
        return tuple(_objection(f) for f in self._list_facts(OBJECTION, learner_id))

    def record_objection(
        self,
        learner_id: str,
        purpose: str,
        *,
        request_id: str,
        direct_marketing: bool,
        overridden: bool,
        now: dt.datetime,
    ) -> Objection:
        """Record (or replace) the objection flag for one purpose."""
        fact = Fact(
            learner_id=learner_id,
            kind=OBJECTION,
            key=purpose,
            at=require_aware(now, "now"),
            data={
                "request_id": request_id,
                "direct_marketing": direct_marketing,
                "overridden": overridden,
            },
        )
        self._put_fact(fact)
        return _objection(fact)

    # -- directives --------------------------------------------------------------------

    def directive_of(self, learner_id: str) -> RegisteredDirective | None:
        """The post-mortem directive in force for ``learner_id``, if any."""
        fact = self._get_fact(learner_id, DIRECTIVE, "particular")
        if fact is None:
            return None
        directive = params_from_dict(fact.data["directive"])
        assert isinstance(directive, PostMortemDirective)  # only directives are stored here
        return RegisteredDirective(
            learner_id=learner_id,
            request_id=fact.data["request_id"],
            registered_at=fact.at,
            directive=directive,
        )

    def register_directive(
        self,
        learner_id: str,
        directive: PostMortemDirective,
        *,
        request_id: str,
        now: dt.datetime,
    ) -> RegisteredDirective:
        """Register a directive; it replaces any earlier one (directives can be changed)."""
        self._put_fact(
            Fact(
                learner_id=learner_id,
                kind=DIRECTIVE,
                key="particular",
                at=require_aware(now, "now"),
                data={"request_id": request_id, "directive": directive.to_dict()},
            )
        )
        found = self.directive_of(learner_id)
        assert found is not None  # just written
        return found

    # -- deaths and scheduled erasures -------------------------------------------------

    def death_of(self, learner_id: str) -> RecordedDeath | None:
        """The recorded death of ``learner_id``, if any."""
        fact = self._get_fact(learner_id, DEATH, "death")
        if fact is None:
            return None
        return RecordedDeath(
            learner_id=learner_id,
            died_at=dt.datetime.fromisoformat(fact.data["died_at"]),
            recorded_at=fact.at,
        )

    def put_death(self, learner_id: str, *, died_at: dt.datetime, now: dt.datetime) -> None:
        """Store the death fact (the executor's ``record_death`` applies directives)."""
        require_aware(died_at, "at")
        self._put_fact(
            Fact(
                learner_id=learner_id,
                kind=DEATH,
                key="death",
                at=require_aware(now, "now"),
                data={"died_at": died_at.isoformat()},
            )
        )

    def schedule_erasure(
        self, learner_id: str, *, due_at: dt.datetime, request_id: str, now: dt.datetime
    ) -> ScheduledErasure:
        """Schedule a directive's erasure; scheduling it again changes nothing."""
        existing = self._get_fact(learner_id, SCHEDULED_ERASURE, request_id)
        if existing is None:
            self._put_fact(
                Fact(
                    learner_id=learner_id,
                    kind=SCHEDULED_ERASURE,
                    key=request_id,
                    at=require_aware(now, "now"),
                    data={"due_at": require_aware(due_at, "due_at").isoformat(), "done_at": None},
                )
            )
            existing = self._get_fact(learner_id, SCHEDULED_ERASURE, request_id)
        assert existing is not None  # just written
        return _scheduled(existing)

    def scheduled_erasures(
        self, *, due_by: dt.datetime | None = None
    ) -> tuple[ScheduledErasure, ...]:
        """Scheduled erasures not yet done, optionally only those due by ``due_by``."""
        found = [
            _scheduled(f)
            for f in self._list_facts(SCHEDULED_ERASURE, None)
            if f.data["done_at"] is None
        ]
        if due_by is not None:
            require_aware(due_by, "due_by")
            found = [s for s in found if s.due_at <= due_by]
        return tuple(sorted(found, key=lambda s: (s.due_at, s.request_id)))

    def notice_status(self, learner_id: str, request_id: str) -> NotificationStatus | None:
        """How telling the executor of directive ``request_id`` went, if it was tried."""
        fact = self._get_fact(learner_id, EXECUTOR_NOTICE, request_id)
        return None if fact is None else NotificationStatus(fact.data["status"])

    def record_notice_status(
        self, learner_id: str, request_id: str, *, status: NotificationStatus, now: dt.datetime
    ) -> None:
        """Record how telling the executor went (a failure is retried later)."""
        self._put_fact(
            Fact(
                learner_id=learner_id,
                kind=EXECUTOR_NOTICE,
                key=request_id,
                at=require_aware(now, "now"),
                data={"status": status.value},
            )
        )

    def mark_erasure_done(self, erasure: ScheduledErasure, *, now: dt.datetime) -> None:
        """Mark a scheduled erasure as carried out."""
        fact = self._get_fact(erasure.learner_id, SCHEDULED_ERASURE, erasure.request_id)
        if fact is None or fact.data["done_at"] is not None:
            return
        data: dict[str, Any] = {**fact.data, "done_at": require_aware(now, "now").isoformat()}
        self._put_fact(attrs.evolve(fact, data=data))


def _objection(fact: Fact) -> Objection:
    return Objection(
        learner_id=fact.learner_id,
        purpose=fact.key,
        request_id=fact.data["request_id"],
        at=fact.at,
        direct_marketing=bool(fact.data["direct_marketing"]),
        overridden=bool(fact.data["overridden"]),
    )


def _scheduled(fact: Fact) -> ScheduledErasure:
    done = fact.data["done_at"]
    return ScheduledErasure(
        learner_id=fact.learner_id,
        due_at=dt.datetime.fromisoformat(fact.data["due_at"]),
        request_id=fact.key,
        done_at=dt.datetime.fromisoformat(done) if done else None,
    )
