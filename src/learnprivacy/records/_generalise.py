"""Generalising quasi-identifiers: how coarse a date an anonymised record keeps.

An exact timestamp links an anonymised row back to its learner as surely as an id does
(the same instant sits in a log, an e-mail, a certificate). Anonymisation therefore keeps
dates only at a coarser granularity: the first instant of their month by default.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TypeVar

__all__ = ["Granularity"]

D = TypeVar("D", dt.date, dt.datetime)


class Granularity(enum.Enum):
    """How far a date quasi-identifier is generalised on anonymisation."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"

    def generalise(self, value: D) -> D:
        """The first instant of ``value``'s day, month or year (time zone kept).

        >>> import datetime as dt
        >>> Granularity.MONTH.generalise(dt.date(2026, 5, 17))
        datetime.date(2026, 5, 1)
        """
        if self is Granularity.MONTH:
            value = value.replace(day=1)
        elif self is Granularity.YEAR:
            value = value.replace(month=1, day=1)
        if isinstance(value, dt.datetime):
            value = value.replace(hour=0, minute=0, second=0, microsecond=0)
        return value
