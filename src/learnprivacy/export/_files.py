"""Files of a package being written: created exclusively, hashed as they are written."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Any

import attrs

from learnprivacy.errors import ConfigurationError
from learnprivacy.export._names import check_entry_name

__all__ = ["FileEntry", "HashingFile", "create_text"]


@attrs.frozen(kw_only=True)
class FileEntry:
    """One file of a package as the manifest lists it."""

    path: str
    sha256: str
    records: int | None
    media_type: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """The manifest form: ``path``, ``sha256``, ``records``, ``media_type``, ``bytes``."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "records": self.records,
            "media_type": self.media_type,
            "bytes": self.size,
        }


class HashingFile:
    """A new file under ``root`` that hashes (SHA-256) and counts what is written to it.

    The file is created exclusively (``x`` mode): an existing file, or a symbolic link
    planted at its name, makes the export fail instead of being followed or overwritten.
    ``write`` takes text and writes UTF-8, which is all ``csv.writer`` needs.
    """

    def __init__(self, root: Path, relative: str) -> None:
        self.relative = check_entry_name(relative)
        path = root.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("xb", buffering=1 << 16)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, text: str) -> int:
        """Append ``text`` as UTF-8; returns the number of characters (like a text file)."""
        data = text.encode("utf-8")
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        """Append bytes already encoded as UTF-8."""
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def close(self, *, records: int | None, media_type: str) -> FileEntry:
        """Close the file and return its manifest entry."""
        self._file.close()
        return FileEntry(
            path=self.relative,
            sha256=self._hash.hexdigest(),
            records=records,
            media_type=media_type,
            size=self.size,
        )

    def abandon(self) -> None:
        """Close without an entry (the whole package is being discarded)."""
        self._file.close()


def create_text(path: Path, bom: bool, *, newline: str | None = "") -> IO[str]:
    """A new text file (UTF-8, optional BOM); an existing file is a ConfigurationError.

    Reports are written next to earlier ones: overwriting a file a recipient may already
    have received must be a decision, not an accident.
    """
    try:
        return path.open("x", encoding="utf-8-sig" if bom else "utf-8", newline=newline)
    except FileExistsError:
        raise ConfigurationError("a report file of that name already exists") from None
