"""MoodleProvider.export_layout hands over one learner's files, all of them, or nothing.

Before: the layout was written straight into ``directory``, which could already hold an
earlier export (another learner's folders were then handed over with this one), a course
or forum subject longer than a folder name can be stopped it half-way with ``OSError``,
and a failure left a half-written directory that looked like an export.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError
from learnprivacy.moodle import MoodleDatabase, MoodleProvider, _writer
from learnprivacy.testing.moodle import insert_rows
from tests.test_moodle_export_skipped import engine as engine  # the fixture


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_directory_holding_another_export_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    out = tmp_path / "export"
    with MoodleDatabase(engine) as moodle:
        provider = MoodleProvider(moodle)
        provider.export_layout("10", out)
        before = _files(out)
        assert any("Ana Silva" in name for name in before)
        with pytest.raises(ConfigurationError):
            provider.export_layout("12", out)
        assert _files(out) == before
        provider.export_layout("12", tmp_path / "carla")
    assert not any("Ana" in name for name in _files(tmp_path / "carla"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging


def test_names_longer_than_a_folder_name_are_shortened(engine: sa.Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mdl_course SET fullname = :n"), {"n": "Économie " * 60})
    contexts = [(1, 10, 0, "/1"), (20, 50, 2, "/1/20"), (30, 70, 40, "/1/20/30")]
    columns = ("id", "contextlevel", "instanceid", "path")
    insert_rows(engine, "context", [dict(zip(columns, c, strict=True)) for c in contexts])
    with MoodleDatabase(engine) as moodle:
        out = MoodleProvider(moodle).export_layout("10", tmp_path / "export")
    names = _files(out)
    assert any("Économie" in name for name in names)
    for name in names:
        assert all(len(part.encode("utf-8")) <= 255 for part in name.split("/"))
    assert any(part.endswith(" _.20") for name in names for part in name.split("/"))


def test_a_failure_half_way_leaves_no_directory(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = _writer.json.dumps

    def failing(*args: object, **kwargs: object) -> str:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_writer.json, "dumps", failing)
    exports = tmp_path / "exports"
    exports.mkdir()
    with MoodleDatabase(engine) as moodle, pytest.raises(OSError, match="disk full"):
        MoodleProvider(moodle).export_layout("10", exports / "ana")
    assert len(calls) == 2
    assert list(exports.iterdir()) == []
