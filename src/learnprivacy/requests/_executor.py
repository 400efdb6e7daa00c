"""``RequestExecutor``: carries requests out, step by step, resumable after a crash.

For a request IN_PROGRESS the executor builds the list of steps of its type, skips those
already recorded, runs the others one by one and records each in the request book as it
finishes. If a step raises, the request becomes FAILED with the step, the component and
a message free of personal values; it never becomes COMPLETED. If the process dies in
the middle, the request stays IN_PROGRESS and ``execute`` simply runs again from the
first unrecorded step (every step is idempotent).

Deaths (LIL art. 85): :meth:`RequestExecutor.record_death` records the death and carries
out the learner's directive, in an order that loses nothing: first the export for the
executor (when asked), then the erasure (at once, or scheduled after the keeping period),
then the executor's notification. Each action is an ordinary request of the book (id
derived from the directive's request, so running ``record_death`` again resumes instead
of duplicating), audited and answered like any other.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import (
    ConfigurationError,
    LearnPrivacyError,
    PolicyError,
    ProviderError,
    RequestStateError,
    ValidationError,
)
from learnprivacy.records._fields import MASK
from learnprivacy.requests import _steps as steps
from learnprivacy.requests._book import RegisteredDirective, RequestBook, ScheduledErasure
from learnprivacy.requests._model import Failure, SubjectRequest
from learnprivacy.requests._outcomes import NotificationStatus
from learnprivacy.requests._params import DeathAction, Executor
from learnprivacy.requests._recipients import Recipients
from learnprivacy.requests._vocabulary import ProofMethod, RequestState, RequestType

__all__ = ["DeathReport", "ExecutorNotice", "RequestExecutor"]

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
    """What :meth:`RequestExecutor.record_death` did."""

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


_NOTIFIED = frozenset(
    {
        RequestType.ERASURE,
        RequestType.RECTIFICATION,
        RequestType.RESTRICTION,
        RequestType.WITHDRAW_CONSENT,
    }
)
_NEEDS_STORE = frozenset(
    {
        RequestType.RECTIFICATION,
        RequestType.RESTRICTION,
        RequestType.WITHDRAW_CONSENT,
    }
)


def _describe(step: str, exc: BaseException) -> tuple[str, str | None]:
    """A message free of personal values, and the failing component when known."""
    if isinstance(exc, steps.StepFailed):
        return exc.error, exc.component
    component = exc.component if isinstance(exc, ProviderError) else None
    if isinstance(exc, LearnPrivacyError):
        # learnprivacy's own messages name fields and rules, never values.
        return f"{step}: {type(exc).__name__}: {exc}", component
    return f"{step} raised {type(exc).__name__}", component


class RequestExecutor:
    """Execute requests of a :class:`RequestBook` against a store and providers.

    Args:
        book: where requests are read and each step recorded.
        store: a :class:`~learnprivacy.store.Store` (erasure with per-record outcomes,
            restriction, rectification, consent withdrawal, objection).
        manager: a :class:`~learnprivacy.providers.PrivacyManager` (exports and
            deletions across every provider; its external locations are the Art. 19
            recipients). Build it with ``store=store`` so exports include the store.
        recipients: the notifiers of external locations (Art. 19); without it every
            declared location is recorded as having no notifier.
        export_dir: where access and portability packages are written
            (``<request id>.zip``).
        schedule: passed to ``Store.erase_subject``.
        holds: passed to ``Store.erase_subject``.
        export_key: 32-byte key for stable pseudonyms in export packages.
        executor_notifier: called when a death is recorded and the directive asks for
            its executor to be told (see :meth:`record_death`).
    """

    def __init__(
        self,
        book: RequestBook,
        *,
        store: Any = None,
        manager: Any = None,
        recipients: Recipients | None = None,
        export_dir: str | os.PathLike[str] | None = None,
        schedule: Any = None,
        holds: Sequence[Any] = (),
        export_key: bytes | None = None,
        executor_notifier: Any = None,
    ) -> None:
        if store is None and manager is None:
            raise ConfigurationError("a RequestExecutor needs a store, a manager, or both")
        self.book = book
        self.executor_notifier = executor_notifier
        self._env = steps.Env(
            book=book,
            store=store,
            manager=manager,
            recipients=recipients,
            export_dir=Path(export_dir) if export_dir is not None else None,
            schedule=schedule,
            holds=tuple(holds),
            export_key=export_key,
        )

    def __repr__(self) -> str:
        return f"RequestExecutor({self.book!r})"

    @property
    def env(self) -> steps.Env:
        """What the steps work with."""
        return self._env

    def plan(self, request: SubjectRequest) -> tuple[str, ...]:
        """The names of the steps ``request`` runs, in order."""
        return tuple(name for name, _run in self._steps(request))

    def _steps(self, request: SubjectRequest) -> list[steps.Step]:
        env = self._env
        kind = request.type
        if kind in _NEEDS_STORE and env.store is None:
            raise ConfigurationError(f"a {kind.value} request needs a store")
        plan: list[steps.Step] = []
        if kind in (RequestType.ACCESS, RequestType.PORTABILITY):
            if env.export_dir is None:
                raise ConfigurationError("access and portability requests need export_dir")
            plan.append(("export", steps.export))
        elif kind is RequestType.ERASURE:
            if env.store is not None:
                plan += [("plan:erase", steps.plan_erasure), ("erase_store", steps.erase_store)]
            if env.manager is not None:
                plan.append(("erase_providers", steps.erase_providers))
            plan.append(("remove_packages", steps.remove_packages))
            plan.append(("verify_request_book", steps.verify_request_book))
        elif kind is RequestType.RESTRICTION:
            plan.append(("restrict", steps.restrict))
        elif kind is RequestType.OBJECTION:
            plan.append(("objection", steps.object_to_processing))
        elif kind is RequestType.WITHDRAW_CONSENT:
            plan += [
                ("withdraw_consent", steps.withdraw_consent),
                ("plan:erase_consent_data", steps.plan_consent_erasure),
                ("erase_consent_data", steps.erase_consent_data),
            ]
        elif kind is RequestType.RECTIFICATION:
            plan.append(("rectify", steps.rectify))
        else:
            plan.append(("register_directive", steps.register_directive))
        if kind in _NOTIFIED:
            plan += [steps.notify_step(r) for r in steps.recipients_of(env)]
        return plan

    def execute(self, request: str | SubjectRequest, *, now: dt.datetime) -> SubjectRequest:
        """Run the request's remaining steps; return it COMPLETED or FAILED.

        A request already closed is returned as it is. A request not yet IN_PROGRESS
        (identity not verified) raises ``RequestStateError``; a missing store,
        manager or ``export_dir`` raises ``ConfigurationError`` and leaves it untouched.
        """
        require_aware(now, "now")
        current = self.book.current(request)
        if current.state.terminal:
            return current
        if current.state is not RequestState.IN_PROGRESS:
            raise RequestStateError(
                f"a {current.state.value} request cannot run: verify the identity first"
            )
        try:
            plan = self._steps(current)
        except ConfigurationError:
            raise
        except Exception as exc:
            error, component = _describe("plan", exc)
            return self._fail(current, "plan", error, component, now)
        for name, run in plan:
            if current.step(name) is not None:
                continue
            try:
                result = run(self._env, current, now)
            except Exception as exc:
                error, component = _describe(name, exc)
                return self._fail(current, name, error, component, now)
            current = self.book.record_step(current, result, now=now)
        return self.book.complete(current, now=now, expected_steps=[name for name, _ in plan])

    def _fail(
        self,
        request: SubjectRequest,
        step: str,
        error: str,
        component: str | None,
        now: dt.datetime,
    ) -> SubjectRequest:
        failure = Failure(step=step, error=error, component=component, at=now)
        return self.book.fail(request, failure, now=now)

    # -- deaths and post-mortem directives -------------------------------------------

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
        origin = self.book.current(directive.request_id)
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
            retry = self.book.get(f"{request.id}-retry")
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

    def record_death(
        self, learner_id: str, *, at: dt.datetime, now: dt.datetime, proof: ProofMethod
    ) -> DeathReport:
        """Record that ``learner_id`` died ``at``, on ``proof``, and apply their directive.

        ``proof`` must be ``ProofMethod.DEATH_CERTIFICATE_SIGHTED`` (else ``PolicyError``,
        nothing recorded): the erasure the directive triggers says a death certificate was
        sighted, so one must have been.

        Idempotent: calling it again finishes what a first call left undone (a failed
        export or notification) and repeats nothing that succeeded.
        """
        require_aware(at, "at")
        require_aware(now, "now")
        if not isinstance(proof, ProofMethod):
            raise ValidationError("proof must be a ProofMethod", field="proof")
        if proof is not ProofMethod.DEATH_CERTIFICATE_SIGHTED:
            raise PolicyError("a death is recorded only on a death certificate sighted")
        death = self.book.death_of(learner_id)
        if death is None:
            self.book.put_death(learner_id, died_at=at, now=now, proof=proof)
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
            export = self._on_behalf(
                directive, RequestType.ACCESS, steps.DEATH_EXPORT, recorded, now
            )
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
