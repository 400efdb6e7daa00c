"""Progress bars for long commands: rate and time left, on stderr, only for a person.

One helper for every command::

    with progress(env, "Importing", total=len(records), unit="records") as bar:
        for chunk in chunks:
            ...
            bar.advance(len(chunk))

``bar`` is also a :class:`~learnprivacy._progress.ProgressReporter` (``expect``/``advance``)
that library calls such as ``Store.sweep(progress=bar)`` feed, and ``bar.track(iterable)``
advances by one per item pulled. Nothing is drawn under ``--json`` or when stderr is not
a terminal (pipes, CI logs, cron mail): the counts are still kept, so commands and tests
read them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from learnprivacy.cli._app import Env

__all__ = ["ProgressBar", "progress"]

T = TypeVar("T")


class _RateColumn(ProgressColumn):
    """Units per second, e.g. ``12,345 records/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"? {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


class ProgressBar:
    """One task's counters, drawn by rich when a person is watching."""

    def __init__(self, bar: Progress | None, description: str, total: int | None) -> None:
        self._bar = bar
        self.total = total
        self.done = 0
        self._task = bar.add_task(description, total=total) if bar is not None else None

    def expect(self, units: int) -> None:
        """``units`` more units of work were found (the total grows)."""
        self.total = (self.total or 0) + units
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=self.total)

    def advance(self, units: int = 1) -> None:
        """``units`` units are done."""
        self.done += units
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, units)

    def set(self, done: int, total: int | None) -> None:
        """Jump to ``done`` of ``total`` (for callers that report absolute counts)."""
        self.done, self.total = done, total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)

    def describe(self, description: str) -> None:
        """Change the text before the bar (the current step)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=description)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, advancing by one as each is taken."""
        for item in items:
            yield item
            self.advance(1)


@contextmanager
def progress(
    env: Env, description: str, *, total: int | None = None, unit: str = "records"
) -> Iterator[ProgressBar]:
    """A progress bar on stderr with count, rate, elapsed time and time left.

    Drawn only for a person: not under ``--json``, not when stderr is not a terminal.
    The bar disappears when the block ends; the command then prints its result.
    """
    if env.json or not env.err.is_terminal:
        yield ProgressBar(None, description, total)
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=env.err,
        transient=True,
    )
    with bar:
        yield ProgressBar(bar, description, total)
