"""From staging files to package files: data JSON, CSV, xAPI, index.html and the manifest.

Each staging file (one JSON line per row) is read once, line by line, and written to its
JSON and CSV files at the same time, so finishing a package is as flat in memory as
writing it.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from learnprivacy.export._cells import csv_cell, flatten
from learnprivacy.export._files import FileEntry, HashingFile
from learnprivacy.export._html import PageOptions, TypeSummary, render_index
from learnprivacy.export._names import SegmentNamer
from learnprivacy.export._scope import Scope
from learnprivacy.export._xapi import XapiProfile
from learnprivacy.providers.writer import DataDescription

__all__ = [
    "DATA_SCHEMA",
    "MANIFEST_SCHEMA_VERSION",
    "PackageContent",
    "StreamInfo",
    "write_package",
]

#: The ``schema`` of every data/<component>/<RecordType>.json file.
DATA_SCHEMA = "learnprivacy.export.records/1"
#: The ``schema_version`` of manifest.json; docs/export-schemas.md documents both.
MANIFEST_SCHEMA_VERSION = "1.0"
_PREVIEW_ROWS = 20


@attrs.frozen(kw_only=True)
class StreamInfo:
    """What the writer gathered about one (component, record type)."""

    component: str
    record_type: str
    staging: Path
    records: int
    excluded: int
    typed: bool
    columns: list[str]
    description: DataDescription | None
    #: The CSV rows (no header), written while the rows were dicts, when the columns were
    #: fixed from the start (a record class); else the CSV is built from ``staging``.
    csv_rows: Path | None = None


@attrs.frozen(kw_only=True)
class PackageContent:
    """Everything :func:`write_package` needs."""

    root: Path
    generated_at: dt.datetime
    scope: Scope
    formats: tuple[str, ...]
    subject_reference: str
    csv_bom: bool
    streams: list[StreamInfo]
    described_only: list[DataDescription]
    #: The statements file, written (and hashed) while the statements arrived
    #: (:func:`open_statements`); ``None`` when there was none.
    statements: FileEntry | None
    xapi_profile: XapiProfile
    page: PageOptions = attrs.field(factory=PageOptions)


_CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            yield chunk


def _copy_joined(out: HashingFile, staging: Path) -> None:
    """Copy a staging file of JSON lines as ``line,\nline,\n...line`` (no copy per line)."""
    pending = b""
    for chunk in _chunks(staging):
        # Every line ends with "\n": the last one's separator is dropped at the end.
        out.write_bytes(pending.replace(b"\n", b",\n"))
        pending = chunk
    if pending.endswith(b"\n"):
        pending = pending[:-1]
    out.write_bytes(pending.replace(b"\n", b",\n"))


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as file:
        for line in file:
            yield line.rstrip("\n")


def _describe(description: DataDescription | None) -> dict[str, Any]:
    if description is None:
        return {
            "description": None,
            "purpose": None,
            "lawful_basis": None,
            "retention": None,
            "fields": {},
        }
    basis = description.basis
    return {
        "description": description.description,
        "purpose": description.purpose,
        "lawful_basis": None
        if basis is None
        else {"name": basis.name.lower(), "article": basis.article, "moodle": basis.moodle_code},
        "retention": description.retention,
        "fields": dict(description.fields),
    }


def _write_data_json(root: Path, path: str, stream: StreamInfo) -> FileEntry:
    header = {
        "schema": DATA_SCHEMA,
        "component": stream.component,
        "record_type": stream.record_type,
        "typed": stream.typed,
        **_describe(stream.description),
    }
    out = HashingFile(root, path)
    try:
        # The header object is written without its closing brace, then the records one
        # per line: valid JSON that a line-oriented reader can also stream.
        out.write(json.dumps(header, ensure_ascii=False)[:-1] + ',"records":[\n')
        _copy_joined(out, stream.staging)
        out.write("\n]}\n")
    except BaseException:
        out.abandon()
        raise
    return out.close(records=stream.records, media_type="application/json")


def _write_csv(root: Path, path: str, stream: StreamInfo, *, bom: bool) -> FileEntry:
    out = HashingFile(root, path)
    try:
        if bom:
            out.write("\ufeff")
        # RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line end.
        writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([csv_cell(column) for column in stream.columns])
        if stream.csv_rows is not None:
            for chunk in _chunks(stream.csv_rows):
                out.write_bytes(chunk)
            return out.close(records=stream.records, media_type="text/csv")
        for line in _lines(stream.staging):
            flat = dict(flatten(json.loads(line)))
            writer.writerow([csv_cell(flat.get(column)) for column in stream.columns])
    except BaseException:
        out.abandon()
        raise
    return out.close(records=stream.records, media_type="text/csv")


STATEMENTS_PATH = "xapi/statements.json"


def open_statements(root: Path) -> HashingFile:
    """The package's statements file, opened: statements follow, separated by ``,\n``."""
    out = HashingFile(root, STATEMENTS_PATH)
    out.write("[\n")
    return out


def close_statements(out: HashingFile, count: int) -> FileEntry:
    """End the statements array and close the file; its manifest entry."""
    out.write("\n]\n")
    return out.close(records=count, media_type="application/json")


def _write_statements(root: Path, written: FileEntry | None) -> FileEntry:
    if written is not None:
        return written
    out = open_statements(root)
    try:
        return close_statements(out, 0)
    except BaseException:
        out.abandon()
        raise


def _preview(stream: StreamInfo) -> list[dict[str, Any]]:
    return [
        dict(flatten(json.loads(line)))
        for line in itertools.islice(_lines(stream.staging), _PREVIEW_ROWS)
    ]


def write_package(content: PackageContent) -> dict[str, Any]:
    """Write every package file under ``content.root``; return the manifest written."""
    root = content.root
    components = SegmentNamer(lower=True, fallback="component")
    data_names: dict[str, SegmentNamer] = {}
    csv_names = SegmentNamer(fallback="records")
    per_type = {s.record_type for s in content.streams}
    shared_types = {
        t for t in per_type if sum(1 for s in content.streams if s.record_type == t) > 1
    }
    entries: list[FileEntry] = []
    summaries: list[TypeSummary] = []
    for stream in sorted(content.streams, key=lambda s: (s.component, s.record_type)):
        links: list[tuple[str, str]] = []
        if stream.records:
            folder = components(stream.component)
            names = data_names.setdefault(folder, SegmentNamer(fallback="records"))
            if "json" in content.formats:
                path = f"data/{folder}/{names(stream.record_type)}.json"
                entries.append(_write_data_json(root, path, stream))
                links.append(("JSON", path))
            if "csv" in content.formats:
                stem = stream.record_type
                if stream.record_type in shared_types:
                    stem = f"{stream.component}.{stream.record_type}"
                path = f"csv/{csv_names(stem)}.csv"
                entries.append(_write_csv(root, path, stream, bom=content.csv_bom))
                links.append(("CSV", path))
        summaries.append(_summary(stream, links, content))
    for description in content.described_only:
        summaries.append(
            TypeSummary(
                component=description.component,
                record_type=description.record_type,
                description=description,
                records=0,
                excluded=0,
                links=[],
                preview=[],
                columns=[],
            )
        )
    if "xapi" in content.formats:
        entries.append(_write_statements(root, content.statements))
    if "html" in content.formats:
        entries.append(_write_index(content, summaries, entries))
    manifest = _manifest(content, entries, summaries)
    out = HashingFile(root, "manifest.json")
    out.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    out.close(records=None, media_type="application/json")
    return manifest


def _summary(
    stream: StreamInfo, links: list[tuple[str, str]], content: PackageContent
) -> TypeSummary:
    preview = _preview(stream) if "html" in content.formats and stream.records else []
    return TypeSummary(
        component=stream.component,
        record_type=stream.record_type,
        description=stream.description,
        records=stream.records,
        excluded=stream.excluded,
        links=links,
        preview=preview,
        columns=stream.columns,
    )


def _write_index(
    content: PackageContent, summaries: Sequence[TypeSummary], entries: Sequence[FileEntry]
) -> FileEntry:
    page = render_index(
        generated_at=content.generated_at,
        scope=content.scope,
        subject_reference=content.subject_reference,
        summaries=summaries,
        files=[(entry.path, entry.records) for entry in entries],
        page=content.page,
    )
    out = HashingFile(content.root, "index.html")
    out.write(page)
    return out.close(records=None, media_type="text/html")


def _manifest(
    content: PackageContent, entries: Sequence[FileEntry], summaries: Sequence[TypeSummary]
) -> dict[str, Any]:
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "generator": "learnprivacy",
        "generated_at": content.generated_at.isoformat(),
        "subject": {"pseudonym": content.subject_reference},
        "scope": content.scope.value,
        "gdpr_article": content.scope.article,
        "formats": list(content.formats),
        "xapi": {
            "home_page": content.xapi_profile.home_page,
            "activities": content.xapi_profile.activities,
        },
        "record_types": [
            {
                "component": s.component,
                "record_type": s.record_type,
                "records": s.records,
                "excluded_by_scope": s.excluded,
                "files": [path for _, path in s.links],
                **{k: v for k, v in _describe(s.description).items() if k != "fields"},
            }
            for s in summaries
        ],
        "files": [entry.to_dict() for entry in entries],
    }
