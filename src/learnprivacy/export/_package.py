"""The streaming package writer: a ContentWriter that sends every row straight to disk.

Providers call :meth:`PackageWriter.write_rows` / :meth:`~PackageWriter.write_records`
with iterables; each row is filtered by scope, serialised to one JSON line in a staging
file (the data file's header, known only at the end, comes first) and to its CSV row,
and forgotten; xAPI statements go straight into the package's statements file, hashed as
they are written. Only counters, column names and descriptions stay in memory, so
exporting 100,000 rows costs what one row costs. :meth:`PackageWriter.finish` turns the
staging files into the package files.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import require_aware
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, ProviderError, UnknownCodeError
from learnprivacy.errors import ValidationError as LPValidationError
from learnprivacy.export._cells import RowEncoder, cells_reader, flatten
from learnprivacy.export._describe import class_columns, class_description, merge_descriptions
from learnprivacy.export._files import HashingFile
from learnprivacy.export._html import PageOptions
from learnprivacy.export._outputs import (
    PackageContent,
    StreamInfo,
    close_statements,
    open_statements,
    write_package,
)
from learnprivacy.export._scope import Scope, basis_of_row
from learnprivacy.export._xapi import StatementBuilder, XapiProfile, statement_builder
from learnprivacy.providers.writer import DataDescription
from learnprivacy.records import fields_of, from_json_dict, to_json_dict
from learnprivacy.records._base import record_type, subject_of

__all__ = ["ALL_FORMATS", "PackageWriter"]

#: Every format a package can hold; ``formats`` selects among them.
ALL_FORMATS = ("json", "csv", "xapi", "html")
# Staging files are reopened in append mode when evicted, so a provider with hundreds of
# record types cannot exhaust the process's file descriptors.
_MAX_OPEN_FILES = 32


@attrs.define
class _Stream:
    """Staging state of one (component, record type): counters and column names only."""

    component: str
    record_type: str
    path: Path
    columns: dict[str, bool]
    handle: IO[str] | None = None
    records: int = 0
    excluded: int = 0
    typed: bool = True
    #: Whether the CSV columns are discovered from the rows (provider rows) rather than
    #: fixed by a record class.
    tracking: bool = False
    #: While the columns are fixed: the CSV rows, written as each row arrives (a dict), so
    #: finishing copies them instead of parsing the staging file again.
    csv_path: Path | None = None
    csv_columns: tuple[str, ...] = ()
    csv_handle: IO[str] | None = None
    csv_writer: Any = None
    csv_cells: Callable[[Mapping[str, Any]], list[str]] | None = None


class PackageWriter:
    """A :class:`~learnprivacy.providers.ContentWriter` streaming into a package directory.

    Args:
        directory: an empty (or absent) directory the package is built in; the caller
            publishes it (``export_subject`` renames or zips it).
        subject_id: the learner whose data this is. A provider writing a record or row of
            another learner (``learner_id``) is a bug that would leak data: it raises
            ``ProviderError`` naming the component.
        subject_reference: the pseudonym the manifest names the subject by.
        xapi_actor: the pseudonymous account name of the xAPI actor.
        scope: ``"access"`` (Art. 15, everything) or ``"portability"`` (Art. 20, consent
            and contract data only).
        formats: which of ``json``, ``csv``, ``xapi``, ``html`` to produce.
        csv_bom: start CSV files with a UTF-8 byte order mark (for spreadsheet users).
        xapi_profile: home page and activity IRIs of the statements.
        defaults: descriptions known beforehand (a component's metadata); what a
            provider passes to :meth:`describe` takes precedence, and its empty
            attributes are completed from these.
        now: the export's time, timezone-aware (a naive one raises ValidationError):
            records dated after it get no xAPI statement.
        progress: told ``advance(1)`` for every row or record received.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        subject_id: str,
        subject_reference: str,
        xapi_actor: str,
        scope: str | Scope = Scope.ACCESS,
        formats: Iterable[str] = ALL_FORMATS,
        csv_bom: bool = False,
        xapi_profile: XapiProfile | None = None,
        defaults: Iterable[DataDescription] = (),
        now: dt.datetime | None = None,
        progress: ProgressReporter | None = None,
    ) -> None:
        self.formats = tuple(dict.fromkeys(formats))
        unknown = [f for f in self.formats if f not in ALL_FORMATS]
        if unknown or not self.formats:
            raise ConfigurationError(
                "formats must be a non-empty subset of " + ", ".join(ALL_FORMATS)
            )
        self.scope = Scope.parse(scope)
        self.root = Path(directory)
        self.root.mkdir(parents=True, exist_ok=True)
        if any(self.root.iterdir()):
            raise ConfigurationError("the package directory must be empty")
        self._staging = self.root / ".staging"
        self._staging.mkdir()
        self._subject_id = subject_id
        self._subject_reference = subject_reference
        self._xapi_actor = xapi_actor
        self._csv_bom = csv_bom
        self._profile = xapi_profile or XapiProfile()
        # Statements never state events after this instant (read once when not given).
        self._now = require_aware(now, "now") if now is not None else dt.datetime.now(dt.UTC)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._descriptions: dict[tuple[str, str], DataDescription] = {}
        self._defaults = {(d.component, d.record_type): d for d in defaults}
        self._merged: dict[tuple[str, str], DataDescription | None] = {}
        self._classes: dict[type[Any], tuple[tuple[str, ...], bool, StatementBuilder | None]] = {}
        self._record_streams: dict[
            tuple[str, type[Any]],
            tuple[_Stream, tuple[str, ...], bool, StatementBuilder | None],
        ] = {}
        # An access export keeps data of every basis: no record's basis needs reading.
        self._includes_all = self.scope is Scope.ACCESS
        self._open: collections.OrderedDict[tuple[str, str], _Stream] = collections.OrderedDict()
        # The statements go straight into the package file, hashed as they are written.
        self._statements: HashingFile | None = None
        self._statement_count = 0
        self._seen = 0
        self._progress = progress
        self._finished = False
        self._dumps = RowEncoder()
        # The PrivacyManager runs each provider in a worker thread, and a provider past
        # its deadline may still be writing when the next one starts: every write holds
        # this lock, so rows never interleave inside a staging file.
        self._lock = threading.RLock()

    @property
    def seen(self) -> int:
        """Rows and records received so far, kept or left out by the scope."""
        return self._seen

    # -- the ContentWriter protocol ---------------------------------------------------

    def describe(self, description: DataDescription) -> None:
        """Declare a kind of data: its purpose, lawful basis and retention go to index.html."""
        with self._lock:
            self._check_open()
            key = (description.component, description.record_type)
            self._descriptions[key] = description
            self._merged.pop(key, None)

    def write_rows(
        self, component: str, record_type: str, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        """Stream JSON-ready rows; returns how many were kept in this export's scope.

        Rows of a registered record type (``"Progress"``) that parse as that type are
        treated exactly like :meth:`write_records` would (typed, with xAPI statements).
        A row's lawful basis is its ``basis`` key, else the description's.
        """
        self._check_open()
        cls = _registered(record_type)
        written = 0
        for row in rows:
            if not isinstance(row, Mapping):
                raise ProviderError(
                    f"{component} wrote a row that is not a mapping", component=component
                )
            record = _parse(cls, row) if cls is not None else None
            if record is not None:
                written += self._write_record(component, record)
            else:
                written += self._write_row(component, record_type, row)
        return written

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        """Stream learnprivacy records (attrs instances); returns how many were kept."""
        self._check_open()
        return sum(self._write_record(component, record) for record in records)

    # -- internals --------------------------------------------------------------------

    def _write_record(self, component: str, record: Any) -> int:
        with self._lock:
            self._check_open()
            self._seen += 1
            if self._progress is not None:
                self._progress.advance(1)
            cls = type(record)
            known = self._record_streams.get((component, cls))
            if known is None:
                known = self._record_stream(component, cls)
            stream, hidden, registered, build = known
            self._check_subject(component, subject_of(record))
            if not self._includes_all:
                basis = getattr(record, "basis", None)
                if not self.scope.includes(basis if isinstance(basis, LawfulBasis) else None):
                    stream.excluded += 1
                    return 0
            row = to_json_dict(record)
            for name in hidden:
                del row[name]
            if hidden or not registered:
                stream.typed = False
            self._append(stream, row)
            if build is not None:
                try:
                    statement = build(record, self._xapi_actor, self._profile, self._now)
                except LPValidationError:
                    # A record dated after the export states nothing yet: its data is in
                    # the JSON and CSV files, and no statement claims it happened.
                    statement = None
                if statement is not None:
                    self._append_statement(statement)
            return 1

    def _record_stream(
        self, component: str, cls: type[Any]
    ) -> tuple[_Stream, tuple[str, ...], bool, StatementBuilder | None]:
        """The stream of a component's records of ``cls`` and the class's facts."""
        if not attrs.has(cls):
            raise ProviderError(f"{component} wrote a non-record object", component=component)
        hidden, registered, build = self._class_facts(cls)
        known = (self._stream(component, cls.__name__, cls), hidden, registered, build)
        self._record_streams[(component, cls)] = known
        return known

    def _write_row(self, component: str, record_type: str, row: Mapping[str, Any]) -> int:
        with self._lock:
            self._check_open()
            self._seen += 1
            if self._progress is not None:
                self._progress.advance(1)
            return self._write_row_locked(component, record_type, row)

    def _write_row_locked(self, component: str, record_type: str, row: Mapping[str, Any]) -> int:
        learner = row.get("learner_id")
        if learner is not None:
            self._check_subject(component, str(learner))
        stream = self._stream(component, record_type, None)
        stream.typed = False
        if not stream.tracking:
            # Columns may grow from now on: the CSV is built from the staging file.
            stream.tracking = True
            stream.csv_path = None
        described = self._description(component, record_type)
        if not self.scope.includes(basis_of_row(row, described.basis if described else None)):
            stream.excluded += 1
            return 0
        self._append(stream, row)
        return 1

    def _class_facts(self, cls: type[Any]) -> tuple[tuple[str, ...], bool, StatementBuilder | None]:
        """The fields a record class keeps out of exports, whether it is registered, and
        what builds its records' xAPI statements in this package, if they state any
        (known once a class)."""
        facts = self._classes.get(cls)
        if facts is None:
            hidden = tuple(info.name for info in fields_of(cls) if not info.exported)
            build = statement_builder(cls) if "xapi" in self.formats else None
            facts = self._classes[cls] = (hidden, cls is _registered(cls.__name__), build)
        return facts

    def _check_subject(self, component: str, subject: str) -> None:
        if subject != self._subject_id:
            raise ProviderError(
                f"{component} wrote data of another learner into this subject's export",
                component=component,
            )

    def _check_open(self) -> None:
        if self._finished:
            raise ConfigurationError("the package is already finished")

    def _stream(self, component: str, record_type: str, cls: type[Any] | None) -> _Stream:
        key = (component, record_type)
        stream = self._streams.get(key)
        if stream is None:
            columns: dict[str, bool] = {}
            if cls is not None:
                columns = class_columns(cls)
            else:
                # Described fields come first in the CSV, in the provider's order.
                described = self._description(component, record_type)
                columns = dict.fromkeys(described.fields if described else (), False)
            path = self._staging / f"{len(self._streams)}.jsonl"
            stream = self._streams[key] = _Stream(component, record_type, path, columns)
            if cls is not None and "csv" in self.formats:
                stream.csv_path = path.with_suffix(".csv")
                stream.csv_columns = tuple(c for c in columns if _keep_column(c, columns))
                stream.csv_cells = cells_reader(stream.csv_columns)
            if cls is not None and key not in self._descriptions:
                self._descriptions[key] = class_description(component, cls)
                self._merged.pop(key, None)
        return stream

    def _append(self, stream: _Stream, row: Mapping[str, Any]) -> None:
        line = self._dumps(row)
        if stream.tracking:
            columns = stream.columns
            pairs = list(flatten(row))
            if len({column for column, _ in pairs}) != len(pairs):
                # {"a.b": 1, "a": {"b": 2}}: both are the CSV column "a.b", and one of the
                # values would be missing from the CSV file.
                raise LPValidationError(
                    "a row names one CSV column twice (a key with a dot and a nested key)",
                    field="export.row",
                )
            for column, value in pairs:
                if column not in columns:
                    columns[column] = False
                if value is not None and not columns[column]:
                    columns[column] = True
        handle = stream.handle
        if handle is None:
            handle = self._handle(stream)
        elif len(self._open) > 1:
            self._open.move_to_end((stream.component, stream.record_type))
        try:
            handle.write(line + "\n")
        except UnicodeEncodeError:
            # A lone surrogate (from a JSON "\\ud800" escape, say) is no UTF-8 text; the
            # encoder's own error would carry the whole value.
            raise LPValidationError(
                "export rows must be valid Unicode text (a lone surrogate cannot be written)",
                field="export.row",
            ) from None
        if stream.csv_path is not None and stream.csv_cells is not None:
            # The row is JSON-ready (a record's to_json_dict): the cells are what the
            # staging line would give back.
            stream.csv_writer.writerow(stream.csv_cells(row))
        stream.records += 1

    def _handle(self, stream: _Stream) -> IO[str]:
        key = (stream.component, stream.record_type)
        if stream.handle is not None:
            self._open.move_to_end(key)
            return stream.handle
        if len(self._open) >= _MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            _close_stream(oldest)
        stream.handle = stream.path.open("a", encoding="utf-8", newline="\n")
        if stream.csv_path is not None:
            # RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or
            # line end (the same writer settings as the package's CSV files).
            stream.csv_handle = stream.csv_path.open("a", encoding="utf-8", newline="")
            stream.csv_writer = csv.writer(
                stream.csv_handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
            )
        self._open[key] = stream
        return stream.handle

    def _append_statement(self, statement: Mapping[str, Any]) -> None:
        line = self._dumps(statement)
        if self._statements is None:
            self._statements = open_statements(self.root)
            self._statements.write(line)
        else:
            self._statements.write(",\n" + line)
        self._statement_count += 1

    def _close_handles(self) -> None:
        for stream in self._open.values():
            _close_stream(stream)
        self._open.clear()

    # -- finishing --------------------------------------------------------------------

    def finish(self, now: dt.datetime, *, page: PageOptions | None = None) -> dict[str, Any]:
        """Write the package files and the manifest; return the manifest.

        ``now`` is the generation time written in the manifest (timezone-aware);
        ``page`` says who the learner's page speaks for, in which language and time zone.
        """
        require_aware(now, "now")
        with self._lock:
            self._check_open()
            self._finished = True
            self._close_handles()
        try:
            statements = None
            if self._statements is not None:
                out, self._statements = self._statements, None
                statements = close_statements(out, self._statement_count)
            content = PackageContent(
                root=self.root,
                generated_at=now,
                scope=self.scope,
                formats=self.formats,
                subject_reference=self._subject_reference,
                csv_bom=self.csv_bom,
                streams=[
                    StreamInfo(
                        component=s.component,
                        record_type=s.record_type,
                        staging=s.path,
                        records=s.records,
                        excluded=s.excluded,
                        typed=s.typed,
                        columns=[c for c in s.columns if _keep_column(c, s.columns)],
                        description=self._description(s.component, s.record_type),
                        csv_rows=s.csv_path if s.records else None,
                    )
                    for s in self._streams.values()
                ],
                described_only=[
                    self._description(*key) or d
                    for key, d in self._descriptions.items()
                    if key not in self._streams
                ],
                statements=statements,
                xapi_profile=self._profile,
                page=page or PageOptions(),
            )
            return write_package(content)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _description(self, component: str, record_type: str) -> DataDescription | None:
        """What the provider said, completed by the metadata (or the record class)."""
        key = (component, record_type)
        if key in self._merged:
            return self._merged[key]
        merged = merge_descriptions(self._descriptions.get(key), self._defaults.get(key))
        self._merged[key] = merged
        return merged

    @property
    def csv_bom(self) -> bool:
        """Whether CSV files start with a byte order mark."""
        return self._csv_bom

    def abandon(self) -> None:
        """Close every staging file (the caller deletes the directory)."""
        with self._lock:
            self._finished = True
            self._close_handles()
            if self._statements is not None:
                self._statements.abandon()
                self._statements = None


def _close_stream(stream: _Stream) -> None:
    if stream.handle is not None:
        stream.handle.close()
        stream.handle = None
    if stream.csv_handle is not None:
        stream.csv_handle.close()
        stream.csv_handle = None
        stream.csv_writer = None


def _keep_column(column: str, columns: Mapping[str, bool]) -> bool:
    # A nested value that is sometimes null ("score": null) and sometimes an object
    # ("score.raw", ...) keeps only the dotted columns; an always-null column stays.
    if columns[column]:
        return True
    prefix = column + "."
    return not any(other.startswith(prefix) for other in columns)


def _registered(name: str) -> type[Any] | None:
    try:
        return record_type(name)
    except UnknownCodeError:
        return None


def _parse(cls: type[Any], row: Mapping[str, Any]) -> Any:
    try:
        return from_json_dict(cls, dict(row))
    except LPValidationError:
        return None
