"""Run one provider's turn in a worker thread with a deadline, and gate its writer.

Python cannot kill a thread. When a provider runs past its deadline the manager stops
waiting, reports the provider FAILED and moves on; the worker thread is a daemon, so it
never keeps the interpreter alive, but it may still be running. Whatever it tries to write
into the export afterwards is refused by :class:`GatedWriter`, and a FAILED export must be
discarded anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from learnprivacy.errors import ProviderError
from learnprivacy.providers.writer import ContentWriter, DataDescription

__all__ = ["DeadlineExceeded", "GatedWriter", "Turn", "run_with_deadline"]

_T = TypeVar("_T")


class DeadlineExceeded(Exception):
    """Internal: the worker did not finish in time (never escapes the manager)."""


class Turn:
    """Shared state of one provider's turn: the step it is at, read after a failure."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.step = "start"
        #: What a deletion left because the law keeps it, counted by kind.
        self.kept: dict[str, int] = {}


class _Outcome(Generic[_T]):
    def __init__(self) -> None:
        self.value: _T | None = None
        self.error: BaseException | None = None


def run_with_deadline(function: Callable[[], _T], timeout: float | None, name: str) -> _T:
    """Call ``function`` in a daemon thread and wait at most ``timeout`` seconds.

    Returns its value or re-raises its exception; raises :class:`DeadlineExceeded` when it
    is still running at the deadline. ``timeout=None`` waits without limit.
    """
    outcome: _Outcome[_T] = _Outcome()

    def work() -> None:
        try:
            outcome.value = function()
        except BaseException as exc:
            # Handed back to the calling thread, which re-raises it.
            outcome.error = exc

    worker = threading.Thread(target=work, name=f"learnprivacy-provider-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise DeadlineExceeded
    if outcome.error is not None:
        raise outcome.error
    # The thread ended without error, so the call returned: its value may be None.
    return cast(_T, outcome.value)


class GatedWriter:
    """A :class:`ContentWriter` that forwards to another until it is closed.

    The manager gives each provider its own gate and closes it when the provider's turn
    ends (or its deadline passes), so a provider thread that outlives its deadline cannot
    add rows to the export behind the manager's back.
    """

    def __init__(self, writer: ContentWriter, component: str) -> None:
        self._writer = writer
        self._component = component
        self._open = True

    def close(self) -> None:
        """Refuse every later write."""
        self._open = False

    def _check(self) -> None:
        if not self._open:
            raise ProviderError(
                "the export writer is closed: the provider wrote after its turn ended",
                component=self._component,
            )

    def _guard(self, items: Iterable[_T]) -> Iterator[_T]:
        for item in items:
            self._check()
            yield item

    def describe(self, description: DataDescription) -> None:
        """Forward the description while the gate is open."""
        self._check()
        self._writer.describe(description)

    def write_rows(
        self, component: str, record_type: str, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        """Forward rows while the gate is open; a row after closing raises."""
        self._check()
        return self._writer.write_rows(component, record_type, self._guard(rows))

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        """Forward records while the gate is open; a record after closing raises."""
        self._check()
        return self._writer.write_records(component, self._guard(records))
