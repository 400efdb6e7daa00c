"""Applying post-mortem directives once a death is recorded (LIL art. 85).

:meth:`DeathMixin.record_death` records the death and carries out the learner's
directive, in an order that loses nothing: first the export for the executor (when
asked), then the erasure (at once, or scheduled after the keeping period), then the
executor's notification. Each action is an ordinary request of the book (id derived from
the directive's request, so running ``record_death`` again resumes instead of
duplicating), audited and answered like any other.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.records import MASK
from learnprivacy.requests._facts import RegisteredDirective, ScheduledErasure
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._outcomes import NotificationStatus
from learnprivacy.requests._params import DeathAction, Executor
from learnprivacy.requests._vocabulary import ProofMethod, RequestState, RequestType

if TYPE_CHECKING:
    from learnprivacy.requests._book import RequestBook
    from learnprivacy.requests._steps import Env

__all__ = ["DeathMixin", "DeathReport", "ExecutorNotice"]

_NOTICE = "executor_notice"


def _mask(_value: object) -> str:
    return MASK


@attrs.frozen(kw_only=True)
class ExecutorNotice:
    """What the executor notifier receives: who to tell, about whom, what was done.

    It holds the executor's contact and the learner id (the LMS composes the message);
    it goes to the LMS's own callable, not to an outside recipient.
    """

    executor: Executor
    learner_id: str = attrs.field(repr=_mask)
    died_at: dt.datetime
    directive_request_id: str
    actions: tuple[str, ...]
    package: str | None = None
    erasure_due_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class DeathReport:
    """What :meth:`DeathMixin.record_death` did."""

    learner_id: str = attrs.field(repr=_mask)
    died_at: dt.datetime
    directive: RegisteredDirective | None = None
    export: SubjectRequest | None = None
    erasure: SubjectRequest | None = None
    scheduled: ScheduledErasure | None = None
    executor_notified: NotificationStatus | None = None

    @property
    def complete(self) -> bool:
        """Whether every action the directive asks for at death is done or scheduled."""
        for request in (self.export, self.erasure):
            if request is not None and request.state is not RequestState.COMPLETED:
                return False
        return self.executor_notified in (None, NotificationStatus.SENT)


class DeathMixin:
    """``record_death`` and ``run_scheduled_erasures``; mixed into the executor."""

    book: RequestBook
    executor_notifier: Any
    _env: Env

    def execute(self, request: str | SubjectRequest, *, now: dt.datetime) -> SubjectRequest:
        raise NotImplementedError

    @property
    def _export_possible(self) -> bool:
        return self._env.export_dir is not None

    def _on_behalf(
        self,
        directive: RegisteredDirective,
        kind: RequestType,
        suffix: str,
        received_at: dt.datetime,
        now: dt.datetime,
    ) -> SubjectRequest:
        # The action is the subject's own, asked for in the directive: same requester
        # and channel; the recorded death stands as the proof.
        origin = self.book.get(directive.request_id)
        at = max(received_at, now)
        request = self.book.receive(
            kind,
            learner_id=directive.learner_id,
            received_at=received_at,
            channel=origin.channel,
            requester=origin.requester,
            request_id=f"{directive.request_id}-{suffix}",
            now=at,
        )
        while request.state is RequestState.FAILED:
            retry = self.book.find(f"{request.id}-retry")
            if retry is None:
                # It failed in an earlier call: this call is the retry.
                request = self.book.retry(request, now=at)
                break
            request = retry
        if request.state is RequestState.RECEIVED:
            request = self.book.verify_identity(
                request, method=ProofMethod.DEATH_CERTIFICATE_SIGHTED, now=at
            )
        return self.execute(request, now=at)

    def record_death(self, learner_id: str, *, at: dt.datetime, now: dt.datetime) -> DeathReport:
        """Record that ``learner_id`` died ``at``, and apply their directive.

        Idempotent: calling it again finishes what a first call left undone (a failed
        export or notification) and repeats nothing that succeeded.
        """
        require_aware(at, "at")
        require_aware(now, "now")
        death = self.book.death_of(learner_id)
        if death is None:
            self.book.put_death(learner_id, died_at=at, now=now)
            death = self.book.death_of(learner_id)
        assert death is not None  # just written
        report = DeathReport(learner_id=learner_id, died_at=death.died_at)
        directive = self.book.directive_of(learner_id)
        if directive is None:
            return report
        report = attrs.evolve(report, directive=directive)
        wishes = directive.directive
        recorded = death.recorded_at
        actions: list[str] = []
        if wishes.communicate_export and self._export_possible:
            export = self._on_behalf(directive, RequestType.ACCESS, "death-export", recorded, now)
            report = attrs.evolve(report, export=export)
            actions.append("export")
            if export.state is not RequestState.COMPLETED:
                # Erasing now would destroy what the executor is owed: stop here.
                return report
        if wishes.on_death is DeathAction.ERASE:
            erasure = self._on_behalf(
                directive, RequestType.ERASURE, "death-erasure", recorded, now
            )
            report = attrs.evolve(report, erasure=erasure)
            actions.append("erasure")
        elif wishes.on_death is DeathAction.KEEP_THEN_ERASE:
            from learnprivacy.retention import Period

            assert wishes.keep_for is not None  # guaranteed by PostMortemDirective
            due = Period.parse(wishes.keep_for).add_to(death.died_at)
            scheduled = self.book.schedule_erasure(
                learner_id, due_at=due, request_id=directive.request_id, now=now
            )
            report = attrs.evolve(report, scheduled=scheduled)
            actions.append("scheduled_erasure")
            if due <= now:
                done = self.run_scheduled_erasures(now=now)
                due_now = [r for r in done if r.learner_id == learner_id]
                report = attrs.evolve(report, erasure=due_now[0] if due_now else None)
        if wishes.notify_executor and wishes.executor is not None:
            status = self._notify_executor(directive, death.died_at, actions, report, now)
            report = attrs.evolve(report, executor_notified=status)
        return report

    def _notify_executor(
        self,
        directive: RegisteredDirective,
        died_at: dt.datetime,
        actions: list[str],
        report: DeathReport,
        now: dt.datetime,
    ) -> NotificationStatus:
        previous = self.book.notice_status(directive.learner_id, directive.request_id)
        if previous is NotificationStatus.SENT:
            return previous
        executor = directive.directive.executor
        assert executor is not None  # checked by the caller
        if self.executor_notifier is None:
            status = NotificationStatus.NO_NOTIFIER
        else:
            export = report.export
            notice = ExecutorNotice(
                executor=executor,
                learner_id=directive.learner_id,
                died_at=died_at,
                directive_request_id=directive.request_id,
                actions=tuple(actions),
                package=export.steps[0].artifact if export and export.steps else None,
                erasure_due_at=report.scheduled.due_at if report.scheduled else None,
            )
            try:
                self.executor_notifier(notice)
                status = NotificationStatus.SENT
            except Exception:
                # Recorded, not dropped: the next record_death call tries again.
                status = NotificationStatus.FAILED
        self.book.record_notice_status(
            directive.learner_id, directive.request_id, status=status, now=now
        )
        return status

    def run_scheduled_erasures(self, *, now: dt.datetime) -> tuple[SubjectRequest, ...]:
        """Carry out the directives' erasures due by ``now``; return their requests.

        An erasure that failed stays scheduled; running this again (after fixing the
        cause) retries it.
        """
        require_aware(now, "now")
        done = []
        for scheduled in self.book.scheduled_erasures(due_by=now):
            directive = self.book.directive_of(scheduled.learner_id)
            if directive is None:
                continue
            request = self._on_behalf(
                directive, RequestType.ERASURE, "death-erasure", scheduled.due_at, now
            )
            if request.state is RequestState.COMPLETED:
                self.book.mark_erasure_done(scheduled, now=now)
            done.append(request)
        return tuple(done)
