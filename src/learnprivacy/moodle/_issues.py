"""Problems found while scanning a Moodle database, reported instead of raised.

Real Moodle data is messy: addresses that were never validated, empty names, grades out of
their range, rows without a date. A scan must not stop at the first bad row of a 100,000
user site, so the adapter skips (or trims) such rows and records a :class:`ScanIssue`
naming the table, the row id, the field and the rule, never the value.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from learnprivacy.errors import ValidationError

T = TypeVar("T")

__all__ = ["ScanIssue", "ScanIssues", "reporting", "rule_of"]


@attrs.frozen(kw_only=True)
class ScanIssue:
    """One row that could not be mapped as it is.

    ``table`` is the unprefixed Moodle table (``"user"``), ``row_id`` its ``id``, ``field``
    the learnprivacy field concerned (``"Learner.email"``) and ``rule`` what was wrong.
    ``skipped`` says whether the row was left out (True) or kept without that field.
    """

    table: str
    row_id: int
    field: str
    rule: str
    skipped: bool = True


class ScanIssues:
    """A bounded collection of :class:`ScanIssue`: exact counts, the first ``keep`` details."""

    def __init__(self, *, keep: int = 1_000) -> None:
        self.keep = keep
        self._details: list[ScanIssue] = []
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._skipped: set[tuple[str, int]] = set()

    def __repr__(self) -> str:
        return f"<ScanIssues {self.total} issues>"

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[ScanIssue]:
        return iter(self._details)

    def add(self, issue: ScanIssue) -> None:
        """Record ``issue``."""
        self._counts[(issue.table, issue.field, issue.rule)] += 1
        if issue.skipped:
            self._skipped.add((issue.table, issue.row_id))
        if len(self._details) < self.keep:
            self._details.append(issue)

    def report(
        self, table: str, row_id: int, field: str, rule: str, *, skipped: bool = True
    ) -> None:
        """Shorthand for ``add(ScanIssue(...))``."""
        self.add(ScanIssue(table=table, row_id=row_id, field=field, rule=rule, skipped=skipped))

    @property
    def total(self) -> int:
        """How many issues were recorded (all of them, not only the kept details)."""
        return sum(self._counts.values())

    def skipped_rows(self, table: str) -> int:
        """How many distinct rows of ``table`` were left out."""
        return sum(1 for t, _ in self._skipped if t == table)

    def counts(self) -> dict[str, int]:
        """Issue counts keyed ``"table: field: rule"``, sorted by key."""
        return {f"{t}: {f}: {r}": n for (t, f, r), n in sorted(self._counts.items())}

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self._details.clear()
        self._counts.clear()
        self._skipped.clear()


def rule_of(error: ValidationError) -> str:
    """The rule a validation error states, without the field name it starts with."""
    text = str(error)
    if error.field and text.startswith(error.field + " "):
        text = text[len(error.field) + 1 :]
    return text


def reporting(
    table: str, field: str
) -> Callable[[Callable[[Any, ScanIssues], T | None]], Callable[[Any, ScanIssues], T | None]]:
    """Decorate a row mapper so that a ``ValidationError`` skips the row and is reported.

    The row's first column must be its id. ``field`` names the record when the error
    does not name a field itself.
    """

    def decorate(
        mapper: Callable[[Any, ScanIssues], T | None],
    ) -> Callable[[Any, ScanIssues], T | None]:
        @functools.wraps(mapper)
        def guarded(row: Any, issues: ScanIssues) -> T | None:
            try:
                return mapper(row, issues)
            except ValidationError as exc:
                issues.report(table, row[0], exc.field or field, rule_of(exc))
                return None

        return guarded

    return decorate
