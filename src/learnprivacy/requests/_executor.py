"""``RequestExecutor``: carries requests out, step by step, resumable after a crash.

For a request IN_PROGRESS the executor builds the list of steps of its type, skips those
already recorded, runs the others one by one and records each in the request book as it
finishes. If a step raises, the request becomes FAILED with the step, the component and
a message free of personal values; it never becomes COMPLETED. If the process dies in
the middle, the request stays IN_PROGRESS and ``execute`` simply runs again from the
first unrecorded step (every step is idempotent).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from learnprivacy._validators import require_aware
from learnprivacy.errors import (
    ConfigurationError,
    LearnPrivacyError,
    ProviderError,
    RequestStateError,
)
from learnprivacy.requests import _changes as changes
from learnprivacy.requests import _steps as steps
from learnprivacy.requests._book import RequestBook
from learnprivacy.requests._death import DeathMixin
from learnprivacy.requests._model import Failure, SubjectRequest
from learnprivacy.requests._recipients import Recipients
from learnprivacy.requests._vocabulary import RequestState, RequestType

__all__ = ["RequestExecutor"]

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


class RequestExecutor(DeathMixin):
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
        elif kind is RequestType.RESTRICTION:
            plan.append(("restrict", changes.restrict))
        elif kind is RequestType.OBJECTION:
            plan.append(("objection", changes.object_to_processing))
        elif kind is RequestType.WITHDRAW_CONSENT:
            plan += [
                ("withdraw_consent", steps.withdraw_consent),
                ("plan:erase_consent_data", steps.plan_consent_erasure),
                ("erase_consent_data", steps.erase_consent_data),
            ]
        elif kind is RequestType.RECTIFICATION:
            plan.append(("rectify", changes.rectify))
        else:
            plan.append(("register_directive", changes.register_directive))
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
        current = self.book.get(request)
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
        return self.book.complete(current, now=now)

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
