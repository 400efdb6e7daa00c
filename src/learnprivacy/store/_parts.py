"""Learner ranges that split one sweep between several workers.

Sweeps started in several processes against PostgreSQL share the work by themselves
(pages are read ``FOR UPDATE SKIP LOCKED``), but each then walks, page after page, over
the rows the others have locked or already deleted: dead rows stay in the table and its
indexes until vacuum, and the server checks each of them again. Given a
:class:`SweepPart` each, workers sweep disjoint, contiguous ranges of learner ids and
never meet.

:meth:`Store.sweep_parts` computes the ranges once, from the learners present (equal
shares); the ranges cover every possible id whatever is written afterwards, so nothing
falls between two workers. Each record is swept by the worker whose range holds its
learner's id (its own id for a learner account, so an account and its records are
decided by the same worker).
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import ColumnElement, func, or_, select, true

from learnprivacy.errors import ValidationError
from learnprivacy.store._schema import ANONYMISED

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["SweepPart", "sweep_parts"]


def _bound(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError("a sweep part's bounds are learner ids (str) or None", field="part")
    return value


@attrs.frozen(kw_only=True)
class SweepPart:
    """Learner ids from ``start`` (included) up to ``stop`` (excluded); ``None`` is open.

    The part whose ``start`` is ``None`` also holds records without a learner id. The
    bounds are learner ids: a part is for the workers of one deployment, never for a
    log line (its repr masks them).
    """

    start: str | None = attrs.field(default=None, converter=_bound, repr=False)
    stop: str | None = attrs.field(default=None, converter=_bound, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.stop is not None and self.start >= self.stop:
            raise ValidationError("a sweep part must end after it starts", field="part")

    def __contains__(self, learner_id: object) -> bool:
        if learner_id is None:
            return self.start is None
        if not isinstance(learner_id, str):
            return False
        if self.start is not None and learner_id < self.start:
            return False
        return self.stop is None or learner_id < self.stop

    def condition(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """SQL: ``column`` (a learner id column) falls in this part.

        The first part also takes rows whose ``column`` is NULL, unless the column cannot
        hold NULL (a primary key, ``NOT NULL``): there ``OR column IS NULL`` would only
        keep the database from bounding an index scan at ``stop``, and a page query would
        read on through every later part's rows to fill its last page.
        """
        parts: list[ColumnElement[bool]] = []
        if self.start is not None:
            parts.append(column >= self.start)
        if self.stop is not None:
            parts.append(column < self.stop)
        if not parts:
            return true()
        inside = parts[0] if len(parts) == 1 else parts[0] & parts[1]
        if self.start is not None or getattr(column, "nullable", True) is False:
            return inside
        return or_(inside, column.is_(None))

    def to_json(self) -> dict[str, str | None]:
        """``{"start": ..., "stop": ...}``, to hand a part to a worker process."""
        return {"start": self.start, "stop": self.stop}

    @classmethod
    def from_json(cls, value: object) -> SweepPart:
        """The part :meth:`to_json` gave."""
        if not isinstance(value, dict) or set(value) != {"start", "stop"}:
            raise ValidationError("a sweep part is {'start': ..., 'stop': ...}", field="part")
        return cls(start=value["start"], stop=value["stop"])


def sweep_parts(store: Store, count: int) -> tuple[SweepPart, ...]:
    """``count`` contiguous parts holding about as many learners each, covering every id."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError("count must be a positive int", field="count")
    column = store._table("Learner").table.c.id
    table = store._table("Learner").table
    bounds: list[str] = []
    with store._reading() as connection:
        total = int(
            connection.execute(
                select(func.count()).select_from(table).where(table.c[ANONYMISED].is_(None))
            ).scalar_one()
        )
        for k in range(1, count):
            found = connection.execute(
                select(column)
                .where(table.c[ANONYMISED].is_(None))
                .order_by(column)
                .offset(k * total // count)
                .limit(1)
            ).scalar()
            if found is not None and (not bounds or found > bounds[-1]):
                bounds.append(str(found))
    edges: list[str | None] = [None, *bounds, None]
    return tuple(SweepPart(start=a, stop=b) for a, b in pairwise(edges))
