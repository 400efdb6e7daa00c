"""Safe names for the files of an export package.

Component and record-type names come from privacy providers, that is from code we do not
control; they become path segments inside a directory or a zip archive. A name such as
``../../etc`` or ``/abs`` must never let a file land outside the package (zip slip), so
every segment is normalised to a small portable alphabet, and every entry name is checked
again before it is written or read.
"""

from __future__ import annotations

import re
import unicodedata

from learnprivacy.errors import IntegrityError

__all__ = ["SegmentNamer", "check_entry_name", "safe_segment"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SEGMENT = 80
_ENTRY_RULE = (
    "package entry name refused: entries must be relative paths of portable segments "
    "(letters, digits, '.', '_', '-'), without '..'"
)
# Device names Windows refuses as file names whatever their extension; an archive opened
# there must still extract.
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)


def safe_segment(name: str, *, fallback: str = "unnamed", lower: bool = False) -> str:
    """One portable path segment for ``name``: ASCII letters, digits, ``.``, ``_``, ``-``.

    Accents are folded (``é`` becomes ``e``), every other character run becomes ``_``,
    leading and trailing dots, underscores and dashes are removed (no hidden files, no
    ``..``), the result is at most 80 characters, and an empty result becomes
    ``fallback``.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    segment = re.sub(r"_{2,}", "_", _UNSAFE.sub("_", folded))
    # Leading dots would make hidden files or "..", a leading dash looks like a command
    # option, a trailing dot is dropped by Windows: all are stripped, after truncation.
    segment = segment[:_MAX_SEGMENT].strip("._-")
    if lower:
        segment = segment.lower()
    if not segment:
        segment = fallback
    if segment.split(".")[0].upper() in _RESERVED:
        segment = "_" + segment
    return segment


class SegmentNamer:
    """Gives each distinct original name its own safe segment, stable for the package.

    Two originals that normalise to the same segment (``a/b`` and ``a_b``) get ``a_b``
    and ``a_b-2``: files never overwrite each other.
    """

    def __init__(self, *, lower: bool = False, fallback: str = "unnamed") -> None:
        self._lower = lower
        self._fallback = fallback
        self._by_original: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, original: str) -> str:
        """The segment for ``original`` (the same one every time it is asked)."""
        known = self._by_original.get(original)
        if known is not None:
            return known
        base = safe_segment(original, fallback=self._fallback, lower=self._lower)
        candidate, counter = base, 1
        # Case-insensitive file systems (macOS, Windows) would merge "Progress" and
        # "progress", so uniqueness is checked without case.
        while candidate.lower() in self._taken:
            counter += 1
            candidate = f"{base}-{counter}"
        self._taken.add(candidate.lower())
        self._by_original[original] = candidate
        return candidate


def check_entry_name(path: str) -> str:
    """Return ``path`` if it is a safe relative package path, else raise IntegrityError.

    Safe means: forward slashes only, not absolute, no drive letter, no empty, ``.`` or
    ``..`` segment, and every segment in the portable alphabet. Used before writing a zip
    entry and when reading a package (a manifest naming ``../x`` is refused, not followed).
    """
    if not isinstance(path, str) or not path or "\\" in path or ":" in path:
        raise IntegrityError(_ENTRY_RULE)
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or _UNSAFE.search(segment) or segment.startswith("."):
            raise IntegrityError(_ENTRY_RULE)
    return path
