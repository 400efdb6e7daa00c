"""Moodle tables as their ``db/install.xml`` files declare them, for one table prefix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa

from learnprivacy.moodle._columns import index, sequence_id

__all__ = ["MoodleTables"]


@attrs.frozen
class MoodleTables:
    """Where the tables of one prefix are added (``metadata``), and how."""

    metadata: sa.MetaData
    prefix: str

    def add(
        self,
        name: str,
        *columns: sa.Column[Any],
        indexes: Iterable[str] = (),
        unique: Iterable[str] = (),
    ) -> sa.Table:
        """Add Moodle's table ``name``: its ``id``, then ``columns``, an index on each of
        ``indexes`` and a unique index on each of ``unique`` (column lists as Moodle writes
        them, ``"userid, courseid"``), each named the way Moodle names it."""
        return sa.Table(
            f"{self.prefix}{name}",
            self.metadata,
            sequence_id(),
            *columns,
            *(index(self.prefix, name, fields) for fields in indexes),
            *(index(self.prefix, name, fields, unique=True) for fields in unique),
        )
