"""The state a fixture build shares: the random source, the clock and the rows so far."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import attrs

__all__ = ["DAY", "FixtureSummary", "SiteState"]

DAY = 86_400


@attrs.frozen(kw_only=True)
class FixtureSummary:
    """What :func:`~learnprivacy.testing.moodle.populate` wrote, for tests and demos.

    ``counts`` maps each unprefixed table to its number of rows. The id sets name the
    accounts and courses that exercise a rule (ids only, nothing personal).
    """

    counts: dict[str, int]
    guest_id: int
    admin_id: int
    learner_ids: frozenset[int]
    deleted_user_ids: frozenset[int]
    suspended_user_ids: frozenset[int]
    never_logged_in_user_ids: frozenset[int]
    invalid_email_user_ids: frozenset[int]
    course_access_later_user_ids: frozenset[int]
    course_ids: frozenset[int]
    courses_without_end_date: frozenset[int]
    protected_course_id: int | None


class SiteState:
    """Rows per unprefixed table, id counters and the notable ids collected on the way."""

    def __init__(self, *, seed: int, now: int, years: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.now = now
        self.start = now - years * 365 * DAY
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next: dict[str, int] = defaultdict(lambda: 1)
        self.notes: dict[str, set[int]] = defaultdict(set)
        # Facts later steps need: per user (first, last access) and per course dates.
        self.users: dict[int, tuple[int, int, int]] = {}
        self.courses: dict[int, tuple[int, int]] = {}
        self.course_modules: dict[int, list[tuple[int, str, int, int]]] = {}
        self.context_of: dict[tuple[int, int], int] = {}
        self.enrol_of: dict[int, int] = {}

    def add(self, table: str, row: dict[str, Any]) -> int:
        """Append ``row`` to ``table`` with the next id (or the id it has); return the id."""
        if "id" in row:
            self._next[table] = max(self._next[table], row["id"] + 1)
        else:
            row["id"] = self._next[table]
            self._next[table] += 1
        self.rows[table].append(row)
        return int(row["id"])

    def reserve(self, table: str) -> int:
        """The next id of ``table`` without adding a row (for tables the fixture omits)."""
        value = self._next[table]
        self._next[table] += 1
        return value

    def moment(self, low: int, high: int) -> int:
        """A random Unix time in ``[low, high]`` (``low`` when the range is empty)."""
        return low if high <= low else self.rng.randint(low, high)

    def context(self, level: int, instance: int, parent: int | None) -> int:
        """Add a context row under ``parent`` (a context id) and return its id."""
        cid = self._next["context"]
        if parent is None:
            path, depth = f"/{cid}", 1
        else:
            parent_row = self.rows["context"][parent - 1]
            path, depth = f"{parent_row['path']}/{cid}", parent_row["depth"] + 1
        self.add(
            "context",
            {
                "contextlevel": level,
                "instanceid": instance,
                "path": path,
                "depth": depth,
                "locked": 0,
            },
        )
        self.context_of[(level, instance)] = cid
        return cid
