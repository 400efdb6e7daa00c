"""Moodle's content writer operations, writing Moodle's export layout.

Moodle's providers write through ``writer::with_context($context)`` and its operations;
:class:`MoodleContentWriter` offers the same, so the layout is built the way Moodle builds
its own:

- ``export_data(subcontext, data)``: ``<context>/<subcontext...>/data.json``;
- ``export_metadata(subcontext, key, value, description)``: one entry of
  ``<context>/<subcontext...>/metadata.json`` (``{key: {"value", "description"}}``);
- ``export_related_data(subcontext, name, data)``: ``<context>/<subcontext...>/<name>.json``;
- ``export_file_references(subcontext, filearea, files)``: the metadata of the files of
  an area in ``<context>/<subcontext...>/_files/<filearea>/files.json``; Moodle copies
  the files themselves there, which a database reader cannot (they live in moodledata);
- ``export_user_preference(component, key, value, description)``: one entry of
  ``System _.1/User preferences/<component>.json``, wherever it is called from, as Moodle
  files every preference under the system context.

Nothing is written to disk until :meth:`MoodleContentWriter.finalise`, which also writes
the navigable ``index.html``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.providers import Context

if TYPE_CHECKING:
    from learnprivacy.moodle._layout import MoodleContextTree

__all__ = ["ContextWriter", "MoodleContentWriter", "safe_name"]

# Characters Moodle's writer (clean_param PARAM_PATH) would not keep in a folder name.
_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]+")


#: Bytes a path component may take (file systems allow 255; room is left for a suffix).
_NAME_BYTES = 200


def safe_name(name: str, suffix: str = "") -> str:
    """``name`` and ``suffix`` as one path component: separators and control characters
    replaced, ``name`` shortened so that the whole fits a file system's limit (a course
    or forum subject may be longer than a folder name can be)."""
    cleaned = _UNSAFE.sub("_", name).strip()
    limit = _NAME_BYTES - len(suffix.encode("utf-8"))
    if len(cleaned.encode("utf-8")) > limit:
        cleaned = cleaned.encode("utf-8")[:limit].decode("utf-8", "ignore").rstrip()
    return ("_" if cleaned in {"", ".", ".."} else cleaned) + suffix


class MoodleContentWriter:
    """Collects what providers export, per context and subcontext, then writes it."""

    def __init__(self, tree: MoodleContextTree) -> None:
        self.tree = tree
        self.files: dict[Path, Any] = {}

    def with_context(self, context: Context) -> ContextWriter:
        """The writer of one context (Moodle's ``writer::with_context``)."""
        return ContextWriter(self, context)

    def _path(self, context: Context, subcontext: Sequence[str], name: str) -> Path:
        if isinstance(subcontext, str):
            raise ValidationError("a subcontext is a sequence of names", field="subcontext")
        parts = [safe_name(str(part)) for part in subcontext]
        return self.tree.folder(context).joinpath(*parts, name)

    def export_user_preference(
        self, component: str, key: str, value: Any, description: str
    ) -> None:
        """One preference, in ``System/User preferences/<component>.json``."""
        path = self._path(Context.system(), ["User preferences"], f"{safe_name(component)}.json")
        self.files.setdefault(path, {})[key] = {"value": value, "description": description}

    def finalise(self, directory: str | Path) -> Path:
        """Write every file and ``index.html`` under ``directory``; returns it.

        ``directory`` must be absent or empty: files of an earlier export left in it
        would be handed over with this one. Everything is written in a hidden folder
        beside it, which takes its name at the end, so an export that fails or is killed
        half-way leaves no directory that looks complete (a killed one's folder is
        removed by the next export to the same place).
        """
        from learnprivacy.export._subject import staging_beside

        root = Path(directory)
        if root.is_symlink() or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
            raise ConfigurationError("the export directory must be absent or empty")
        root.parent.mkdir(parents=True, exist_ok=True)
        work = staging_beside(root)
        try:
            for path, data in sorted(self.files.items()):
                target = work / path
                target.parent.mkdir(parents=True, exist_ok=True)
                text = json.dumps(data, indent=4, ensure_ascii=False, default=str)
                with target.open("x", encoding="utf-8") as file:
                    file.write(text)
            _write_index(work, sorted(self.files))
            os.replace(work, root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return root


class ContextWriter:
    """Moodle's writer operations for one context."""

    def __init__(self, owner: MoodleContentWriter, context: Context) -> None:
        self._owner = owner
        self.context = context

    def _path(self, subcontext: Sequence[str], name: str) -> Path:
        return self._owner._path(self.context, subcontext, name)

    def export_data(self, subcontext: Sequence[str], data: Mapping[str, Any]) -> ContextWriter:
        """``data`` as the ``data.json`` of ``subcontext`` (a later call replaces it)."""
        self._owner.files[self._path(subcontext, "data.json")] = dict(data)
        return self

    def add_to_data(
        self, subcontext: Sequence[str], key: str, items: Iterable[Mapping[str, Any]]
    ) -> ContextWriter:
        """Append ``items`` to the list ``key`` of the subcontext's ``data.json``."""
        found = self._owner.files.setdefault(self._path(subcontext, "data.json"), {})
        found.setdefault(key, []).extend(dict(item) for item in items)
        return self

    def set_in_data(self, subcontext: Sequence[str], key: str, value: Any) -> ContextWriter:
        """Set one key of the subcontext's ``data.json``, keeping the others."""
        self._owner.files.setdefault(self._path(subcontext, "data.json"), {})[key] = value
        return self

    def has_data(self, subcontext: Sequence[str] = ()) -> bool:
        """Whether the subcontext's ``data.json`` was written."""
        return self._path(subcontext, "data.json") in self._owner.files

    def data(self, subcontext: Sequence[str] = ()) -> Any:
        """What the subcontext's ``data.json`` holds so far (None if nothing)."""
        return self._owner.files.get(self._path(subcontext, "data.json"))

    def export_metadata(
        self, subcontext: Sequence[str], key: str, value: Any, description: str
    ) -> ContextWriter:
        """One ``{key: {value, description}}`` entry of the subcontext's ``metadata.json``."""
        path = self._path(subcontext, "metadata.json")
        self._owner.files.setdefault(path, {})[key] = {"value": value, "description": description}
        return self

    def export_related_data(self, subcontext: Sequence[str], name: str, data: Any) -> ContextWriter:
        """``data`` as ``<name>.json`` beside the subcontext's ``data.json``."""
        self._owner.files[self._path(subcontext, f"{safe_name(name)}.json")] = data
        return self

    def export_file_references(
        self, subcontext: Sequence[str], filearea: str, files: Iterable[Mapping[str, Any]]
    ) -> ContextWriter:
        """The metadata of an area's files in ``_files/<filearea>/files.json``."""
        path = self._path([*subcontext, "_files", filearea], "files.json")
        self._owner.files.setdefault(path, {}).setdefault("files", []).extend(
            dict(entry) for entry in files
        )
        return self

    def export_user_preference(
        self, component: str, key: str, value: Any, description: str
    ) -> ContextWriter:
        """One preference; Moodle files every preference under the system context."""
        self._owner.export_user_preference(component, key, value, description)
        return self


def _write_index(root: Path, paths: list[Path]) -> None:
    """A navigable tree of the folders, each file linked (no script needed)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.parts[:-1]:
            node = node.setdefault(part, {})
        node.setdefault("__files__", []).append(path)

    def render(node: dict[str, Any]) -> str:
        items = []
        for name in sorted(k for k in node if k != "__files__"):
            items.append(f"<li><details open><summary>{html.escape(name)}</summary>")
            items.append(render(node[name]) + "</details></li>")
        for path in node.get("__files__", []):
            href = "/".join(path.parts)
            items.append(f'<li><a href="{html.escape(href)}">{html.escape(path.name)}</a></li>')
        return "<ul>" + "".join(items) + "</ul>"

    body = render(tree)
    (root / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Data export</title></head><body><h1>Data export</h1>"
        f"<nav>{body}</nav></body></html>\n",
        encoding="utf-8",
    )
