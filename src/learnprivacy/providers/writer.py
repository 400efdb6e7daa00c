"""The content writer a privacy provider exports a user's data into (Moodle's ``writer``).

A provider's ``export_user_data(approved_contexts, writer)`` describes each kind of data it
holds and streams rows into the writer. The exporter (``learnprivacy.export``) implements
this protocol with streaming JSON/CSV/xAPI files; :class:`MemoryWriter` keeps everything in
memory for tests and small jobs.

Rows are JSON-ready mappings with stable English keys (``to_json_dict`` gives them for
learnprivacy records). Typed records can be written directly with ``write_records``, which
keeps the record type's name so the export reads back into equal records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from learnprivacy.basis import LawfulBasis
from learnprivacy.records import to_json_dict

__all__ = ["ContentWriter", "DataDescription", "MemoryWriter"]


@attrs.frozen(kw_only=True)
class DataDescription:
    """What an export says about one kind of data: why it is held, on what basis, how long.

    ``record_type`` is the file stem (``"Progress"`` or ``"forum_posts"``); ``fields`` maps
    each exported key to a plain-language description.
    """

    component: str
    record_type: str
    description: str
    purpose: str
    basis: LawfulBasis | None = None
    retention: str | None = None
    fields: Mapping[str, str] = attrs.field(factory=dict)


@runtime_checkable
class ContentWriter(Protocol):
    """Where providers write a subject's data during an access or portability export."""

    def describe(self, description: DataDescription) -> None:
        """Declare a kind of data before (or while) rows of it are written."""

    def write_rows(
        self, component: str, record_type: str, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        """Append JSON-ready rows of ``record_type``; returns how many were written."""

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        """Append learnprivacy records (attrs instances); the type name is the file stem."""


class MemoryWriter:
    """A :class:`ContentWriter` that keeps everything in memory (tests, small exports)."""

    def __init__(self) -> None:
        self.descriptions: dict[tuple[str, str], DataDescription] = {}
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def describe(self, description: DataDescription) -> None:
        """Record the description, keyed by (component, record type)."""
        self.descriptions[(description.component, description.record_type)] = description

    def write_rows(
        self, component: str, record_type: str, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        """Keep copies of the rows."""
        bucket = self.rows.setdefault((component, record_type), [])
        before = len(bucket)
        bucket.extend(dict(row) for row in rows)
        return len(bucket) - before

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        """Convert records with ``to_json_dict`` and keep them under their type name."""
        count = 0
        for record in records:
            count += self.write_rows(component, type(record).__name__, [to_json_dict(record)])
        return count
