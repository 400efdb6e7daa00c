"""Reading a package back: verified against its manifest, then typed records and rows."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from learnprivacy.errors import ArgumentError, IntegrityError, NotFoundError, UnknownCodeError
from learnprivacy.export._frames import to_dataframe, to_records
from learnprivacy.export._names import check_entry_name
from learnprivacy.export._outputs import DATA_SCHEMA
from learnprivacy.records import from_json_dict
from learnprivacy.records._base import record_type as lookup_record_type

__all__ = ["ExportPackage", "read_package"]

_CHUNK = 1 << 16


class ExportPackage:
    """A package read back by :func:`read_package`, its files verified.

    Contents are read from the directory or archive on demand, not kept in memory.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._is_zip = path.is_file()

    def __repr__(self) -> str:
        return f"<ExportPackage scope={self.scope!r} files={len(self.files)}>"

    @property
    def scope(self) -> str:
        """``"access"`` or ``"portability"``."""
        return str(self.manifest["scope"])

    @property
    def generated_at(self) -> dt.datetime:
        """When the package was generated (timezone-aware)."""
        return dt.datetime.fromisoformat(self.manifest["generated_at"])

    @property
    def subject_reference(self) -> str:
        """The pseudonym the package names its subject by."""
        return str(self.manifest["subject"]["pseudonym"])

    @property
    def files(self) -> list[dict[str, Any]]:
        """The manifest's file entries."""
        return list(self.manifest["files"])

    def open(self, entry: str) -> IO[bytes]:
        """Open one listed file for reading (bytes)."""
        if entry not in {f["path"] for f in self.files} and entry != "manifest.json":
            raise NotFoundError("the package lists no such file")
        return _open(self.path, self._is_zip, entry)

    def read_text(self, entry: str) -> str:
        """One listed file as text (UTF-8; a byte order mark is kept as read)."""
        with self.open(entry) as file:
            return file.read().decode("utf-8")

    def _data(self, component: str | None, record_type_name: str | None) -> Iterator[Any]:
        for entry in self.files:
            if not entry["path"].startswith("data/"):
                continue
            with self.open(entry["path"]) as file:
                document = json.load(file)
            if document.get("schema") != DATA_SCHEMA:
                raise IntegrityError("a data file does not follow the records schema")
            if component is not None and document["component"] != component:
                continue
            if record_type_name is not None and document["record_type"] != record_type_name:
                continue
            yield document

    def rows(
        self, *, component: str | None = None, record_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Every row of the data files (optionally one component or record type), as dicts.

        Each row gets ``_component`` and ``_record_type`` keys saying where it came from.
        """
        out: list[dict[str, Any]] = []
        for document in self._data(component, record_type):
            for row in document["records"]:
                out.append(
                    {"_component": document["component"], "_record_type": document["record_type"]}
                    | row
                )
        return out

    def records(self, *, record_type: str | None = None) -> list[Any]:
        """The typed learnprivacy records of the package (data files marked ``typed``).

        Each is rebuilt with ``from_json_dict``, so it is validated and equal to the record
        that was exported (a row that is not a valid record raises ValidationError). Rows
        of other kinds are available from :meth:`rows`.
        """
        out: list[Any] = []
        for document in self._data(None, record_type):
            if not document.get("typed"):
                continue
            try:
                cls = lookup_record_type(document["record_type"])
            except UnknownCodeError:
                continue
            out.extend(from_json_dict(cls, row) for row in document["records"])
        return out

    def csv_rows(self, entry: str) -> list[dict[str, str]]:
        """The rows of one CSV file, as dicts of text (a byte order mark is skipped)."""
        text = self.read_text(entry).removeprefix("\ufeff")
        return list(csv.DictReader(io.StringIO(text, newline="")))

    def statements(self) -> list[dict[str, Any]]:
        """The xAPI statements of the package (empty when it has none)."""
        if "xapi/statements.json" not in {f["path"] for f in self.files}:
            return []
        with self.open("xapi/statements.json") as file:
            statements: list[dict[str, Any]] = json.load(file)
        return statements

    def to_records(self) -> list[dict[str, Any]]:
        """Every data row as a flat dict (dotted columns), for analysis."""
        return to_records(self.rows())

    def to_dataframe(self) -> Any:
        """Every data row in one ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        return to_dataframe(self.rows())


def _open(path: Path, is_zip: bool, entry: str) -> IO[bytes]:
    check_entry_name(entry)
    if is_zip:
        archive = zipfile.ZipFile(path)
        try:
            data = archive.read(entry)
        except KeyError:
            raise IntegrityError("a file listed by the manifest is missing") from None
        finally:
            archive.close()
        return io.BytesIO(data)
    target = path.joinpath(*entry.split("/"))
    if target.is_symlink() or not target.is_file():
        raise IntegrityError("a file listed by the manifest is missing or not a file")
    return target.open("rb")


def _present(path: Path, is_zip: bool) -> set[str]:
    """Every file name in the package, each checked to be a safe relative name."""
    names: set[str] = set()
    if is_zip:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.filename in names:
                    raise IntegrityError("the archive holds a file name twice")
                names.add(check_entry_name(info.filename))
        return names
    for item in path.rglob("*"):
        if item.is_symlink():
            raise IntegrityError("the package holds a symbolic link")
        if item.is_file():
            names.add(check_entry_name(item.relative_to(path).as_posix()))
    return names


def _sha256(file: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def read_package(path: str | Path) -> ExportPackage:
    """Open an export package (directory or ``.zip``) and verify it against its manifest.

    Every entry name must be a safe relative path, every file the manifest lists must be
    present with the SHA-256 it states, and no file may be present that it does not list.

    Raises:
        NotFoundError: nothing at ``path``.
        IntegrityError: a missing, altered, unlisted or unsafely named file, or a
            manifest that cannot be read.
        ArgumentError: ``path`` is not a path (``None``, a number...).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(
            f"read_package takes a path (str or os.PathLike), got {type(path).__name__}"
        )
    path = Path(path)
    if not path.exists():
        raise NotFoundError("no export package at the given path")
    is_zip = path.is_file()
    if is_zip and not zipfile.is_zipfile(path):
        raise IntegrityError("the package file is not a zip archive")
    present = _present(path, is_zip)
    if "manifest.json" not in present:
        raise IntegrityError("the package has no manifest.json")
    try:
        with _open(path, is_zip, "manifest.json") as file:
            manifest = json.load(file)
        listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        raise IntegrityError("manifest.json cannot be read") from None
    for entry, expected in listed.items():
        if entry not in present:
            raise IntegrityError("a file listed by the manifest is missing")
        with _open(path, is_zip, entry) as file:
            if _sha256(file) != expected:
                raise IntegrityError("a file does not match its SHA-256 in the manifest")
    if present - set(listed) - {"manifest.json"}:
        raise IntegrityError("the package holds a file the manifest does not list")
    return ExportPackage(path, manifest)
