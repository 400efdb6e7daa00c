"""k-anonymous aggregate statistics: what may be kept and shared once data is anonymised.

The policies keep "only anonymised statistics" beyond the retention period. Counting
rows per (course, status) is harmless when every group is large; a group of one is a
person, however many rows that person has. :func:`k_anonymous_aggregate` counts distinct
people and drops every group with fewer than ``k`` of them,
and blanks a mean computed from fewer than ``k`` learners' values, so no published
figure describes fewer than ``k`` people.

What this guarantees, and what it does not: k-anonymity holds for the grouping columns
(``by``) of one table. It does not protect against joining two tables published with
different groupings (differencing), so publish one aggregate per purpose, and never
publish the suppressed groups' sizes nor totals from which they could be subtracted.
People are counted by the learner column: in rows from :meth:`Store.anonymised` that is a
random person id one sweep shares between a learner's rows, unlinked across sweeps, so
rows of one learner anonymised by different sweeps (rules anchored on each record's own
date) count as several people (docs/export-schemas.md).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.export._cells import csv_cell, flatten, plain
from learnprivacy.export._files import create_text as _create
from learnprivacy.export._frames import to_dataframe
from learnprivacy.records import to_json_dict
from learnprivacy.records._serialise import parse_duration

__all__ = ["AggregateReport", "k_anonymous_aggregate"]


@attrs.frozen(kw_only=True)
class AggregateReport:
    """Groups of at least ``k`` learners with their counts and means.

    ``rows`` hold the ``by`` columns, ``learners`` (distinct learners, or rows when the
    input carries no learner column), ``records`` and ``mean_<measure>`` per measure.
    ``suppressed_groups`` says how many groups were withheld, never their sizes.
    """

    by: tuple[str, ...]
    k: int
    measures: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    suppressed_groups: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The column order of :attr:`rows`."""
        return (*self.by, "learners", "records", *(f"mean_{m}" for m in self.measures))

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dicts, for a notebook."""
        return [dict(row) for row in self.rows]

    def to_dataframe(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        return to_dataframe(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, with the parameters needed to read it right."""
        return {
            "by": list(self.by),
            "k": self.k,
            "measures": list(self.measures),
            "suppressed_groups": self.suppressed_groups,
            "rows": self.to_records(),
        }

    def write_csv(self, path: str | Path, *, bom: bool = False) -> Path:
        """Write the rows as RFC 4180 CSV (formula-injection safe); returns the path."""
        target = Path(path)
        with _create(target, bom) as file:
            writer = csv.writer(file, lineterminator="\r\n")
            writer.writerow([csv_cell(c) for c in self.columns])
            for row in self.rows:
                writer.writerow([csv_cell(row.get(c)) for c in self.columns])
        return target


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return parse_duration(value).total_seconds()
        except ValidationError:
            pass
    raise ValidationError(f"{field} is not numeric and cannot be averaged", field=field)


def _flat(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        # Rows read from a store hold typed values (enums, datetimes): published
        # statistics use their JSON form, as every export does.
        return dict(flatten(plain(item)))
    if attrs.has(type(item)):
        return dict(flatten(to_json_dict(item)))
    raise ConfigurationError("aggregates take records or mappings")


@attrs.define
class _Group:
    records: int = 0
    learners: set[str] = attrs.Factory(set)
    sums: dict[str, float] = attrs.Factory(dict)
    contributors: dict[str, set[str]] = attrs.Factory(dict)
    counts: dict[str, int] = attrs.Factory(dict)


def k_anonymous_aggregate(
    items: Iterable[Any],
    *,
    by: Sequence[str],
    k: int = 5,
    measures: Sequence[str] = (),
    learner_field: str | None = "learner_id",
) -> AggregateReport:
    """Count (and average) ``items`` per ``by`` group, suppressing groups under ``k``.

    Args:
        items: records or mappings (anonymised rows kept after retention, typically);
            nested values are addressed with dots (``score.scaled``).
        by: the grouping columns (``("course_id", "status")``).
        k: the smallest group size published (at least 2).
        measures: numeric columns to average (durations count in seconds, booleans
            as 0/1, so ``success`` gives a rate).
        learner_field: the column identifying a person, so that ``k`` counts distinct
            people, not rows (anonymised rows from :meth:`Store.anonymised` carry a
            random person id there); a row without it raises ``ValidationError``.
            ``None`` counts each row as a different person: only for data where that
            is true.

    A group is published only with at least ``k`` learners; a mean only when at least
    ``k`` learners contribute a value to it (otherwise it is ``None``).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ConfigurationError("k must be an integer of at least 2")
    if not by:
        raise ConfigurationError("an aggregate needs at least one grouping column")
    by, measures = tuple(by), tuple(measures)
    groups: dict[tuple[Any, ...], _Group] = {}
    for index, item in enumerate(items):
        flat = _flat(item)
        key = tuple(flat.get(column) for column in by)
        group = groups.setdefault(key, _Group())
        group.records += 1
        if learner_field:
            learner = flat.get(learner_field)
            if learner is None:
                # Counting such a row as one more person would make a group of one
                # learner's five rows look like five people: refuse instead.
                raise ValidationError(
                    f"a row has no {learner_field}: people cannot be counted "
                    "(pass learner_field=None only when every row is a different person)",
                    field=learner_field,
                )
            who = f"learner:{learner}"
        else:
            who = f"row:{index}"
        group.learners.add(who)
        for measure in measures:
            value = _number(flat.get(measure), measure)
            if value is None:
                continue
            group.sums[measure] = group.sums.get(measure, 0.0) + value
            group.counts[measure] = group.counts.get(measure, 0) + 1
            group.contributors.setdefault(measure, set()).add(who)
    rows: list[dict[str, Any]] = []
    suppressed = 0
    for key in sorted(groups, key=lambda values: tuple((v is not None, str(v)) for v in values)):
        group = groups[key]
        if len(group.learners) < k:
            suppressed += 1
            continue
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["learners"] = len(group.learners)
        row["records"] = group.records
        for measure in measures:
            enough = len(group.contributors.get(measure, ())) >= k
            row[f"mean_{measure}"] = (
                round(group.sums[measure] / group.counts[measure], 6) if enough else None
            )
        rows.append(row)
    return AggregateReport(
        by=by, k=k, measures=measures, rows=tuple(rows), suppressed_groups=suppressed
    )
