"""What long operations report their progress to.

``Store.sweep``, ``Store.add_all`` callers and ``export_subject`` accept an optional
``progress`` object with two methods: ``expect(n)`` when they find ``n`` more units of work
(rows to decide, records to write), ``advance(n)`` when ``n`` units are done. Nothing else is
assumed, so a command-line progress bar, a web job's counter or a test's list all fit; the
library never prints.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProgressReporter"]


class ProgressReporter(Protocol):
    """Receives the progress of a long operation (counts only, never a value)."""

    def expect(self, units: int) -> None:
        """``units`` more units of work were found."""

    def advance(self, units: int) -> None:
        """``units`` units of work are done."""
