"""CSV rows written while the rows are dicts: the same cells as parsing the staging file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import ValidationError
from learnprivacy.export import PackageWriter, read_package
from learnprivacy.export import _package as package_module
from learnprivacy.export._cells import RowEncoder, cells_reader, csv_cell, dumps_row, flatten
from learnprivacy.records import Progress, ProgressStatus, Score
from tests import NOW

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def _writer(root: Path) -> PackageWriter:
    return PackageWriter(root, subject_id="L1", subject_reference="p1_ref", xapi_actor="p1_a")


def _progress(i: int, **overrides: Any) -> Progress:
    values: dict[str, Any] = {
        "id": f"P{i}",
        "learner_id": "L1",
        "course_id": f"C{i % 7}",
        "status": ProgressStatus.PASSED,
        "recorded_at": T0 + dt.timedelta(minutes=i),
        "score": Score(raw=i % 21, min=0, max=20) if i % 3 else None,
        "activity_id": "=cmd|' /C calc'!A0" if i == 4 else f"A{i}",
    }
    values.update(overrides)
    return Progress(**values)


def _csv(root: Path, name: str) -> list[list[str]]:
    text = (root / "csv" / name).read_bytes().decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _from_json(root: Path, component: str, record_type: str) -> list[list[str]]:
    """The CSV that parsing the package's JSON would give (the former way)."""
    data = json.loads((root / "data" / component / f"{record_type}.json").read_text("utf-8"))
    header = _csv(root, f"{record_type}.csv")[0]
    rows = [dict(flatten(row)) for row in data["records"]]
    return [header, *([csv_cell(row.get(c)) for c in header] for row in rows)]


def test_typed_csv_equals_what_the_json_rows_give(tmp_path: Path) -> None:
    """Every cell (nulls, nested scores, a formula) equals the cell parsed back from JSON."""
    writer = _writer(tmp_path / "p")
    writer.write_records("lms", [_progress(i) for i in range(40)])
    manifest = writer.finish(NOW)
    root = tmp_path / "p"
    assert _csv(root, "Progress.csv") == _from_json(root, "lms", "Progress")
    assert any(cell.startswith("'=") for row in _csv(root, "Progress.csv") for cell in row)
    read_package(root)  # hashes and sizes in the manifest match the files
    assert {f["path"] for f in manifest["files"]} >= {"csv/Progress.csv"}


def test_rows_that_add_columns_switch_the_stream_to_parsing(tmp_path: Path) -> None:
    """Attack: records first, then provider rows of the same type with a new column.

    The columns fixed at the start no longer hold; the CSV must still carry every row
    and the new column (the staged CSV rows are dropped, the staging file is parsed).
    """
    writer = _writer(tmp_path / "p")
    writer.write_records("lms", [_progress(i) for i in range(5)])
    extra = {"id": "X1", "learner_id": "L1", "note": "free text", "status": "odd"}
    writer.write_rows("lms", "Progress", [extra])
    writer.finish(NOW)
    rows = _csv(tmp_path / "p", "Progress.csv")
    assert "note" in rows[0]
    assert len(rows) == 1 + 6
    assert rows[-1][rows[0].index("note")] == "free text"
    assert rows == _from_json(tmp_path / "p", "lms", "Progress")


def test_evicted_streams_keep_their_csv_rows(tmp_path: Path, monkeypatch: Any) -> None:
    """Attack: with two open files at most, streams are closed and reopened in turn."""
    from learnprivacy.records import Certificate

    monkeypatch.setattr(package_module, "_MAX_OPEN_FILES", 1)
    writer = _writer(tmp_path / "p")
    for i in range(6):
        writer.write_records("lms", [_progress(i)])
        writer.write_records(
            "lms",
            [
                Certificate(
                    id=f"C{i}",
                    learner_id="L1",
                    course_id="C1",
                    issued_at=T0,
                    verification_code=f"V{i}",
                )
            ],
        )
    writer.finish(NOW)
    root = tmp_path / "p"
    assert _csv(root, "Progress.csv") == _from_json(root, "lms", "Progress")
    assert len(_csv(root, "Certificate.csv")) == 7
    assert _csv(root, "Certificate.csv") == _from_json(root, "lms", "Certificate")


_cell_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    # Text a spreadsheet would run, and signed numbers that stay numbers.
    st.sampled_from(["=1+1", "+33 6", "-cmd", "@SUM(A1)", "\tx", "\rx", "-12.5", "+3", ""]),
    st.lists(st.integers(), max_size=2),
)
_rows = st.dictionaries(
    st.sampled_from(["id", "score", "status", "note"]),
    st.one_of(
        _cell_values,
        st.dictionaries(st.sampled_from(["raw", "min", "max", "deep"]), _cell_values, max_size=3),
        st.dictionaries(
            st.just("deep"), st.dictionaries(st.just("x"), _cell_values, max_size=1), max_size=1
        ),
    ),
    max_size=4,
)
_columns = st.lists(
    st.sampled_from(
        ["id", "score", "score.raw", "score.min", "score.deep", "status", "note", "note.x"]
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(row=_rows, columns=_columns)
def test_cells_read_from_the_row_are_those_of_its_flat_copy(
    row: dict[str, Any], columns: list[str]
) -> None:
    """The CSV line written while rows are dicts, read without a flat copy, is exactly
    that of the flattened row (what re-reading the staging file used to give): numbers
    left as numbers are written as csv_cell writes them, formulas are neutralised."""
    flat = dict(flatten(row))
    assert _line(cells_reader(columns)(row)) == _line([csv_cell(flat.get(c)) for c in columns])
    assert all(type(cell) in (str, int, float) for cell in cells_reader(columns)(row))


def _line(cells: list[Any]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(cells)
    return out.getvalue()


def test_a_row_encoder_recovers_after_a_refused_row() -> None:
    """The writer's encoder is made once; a row it refuses (NaN, a value with no JSON form,
    a row that contains itself) raises ValidationError and leaves no trace: the same nested
    object encodes fine afterwards (it would read as circular otherwise), and every row
    reads as dumps_row writes it."""
    encoder = RowEncoder()
    shared: dict[str, Any] = {"raw": 1, "when": T0}
    for bad in (float("nan"), object()):
        # Refused while inside the shared object.
        shared["bad"] = bad
        with pytest.raises(ValidationError):
            encoder({"score": shared})
        with pytest.raises(ValidationError):
            dumps_row({"score": shared})
        del shared["bad"]
        assert encoder({"score": shared}) == dumps_row({"score": shared})
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    with pytest.raises(ValidationError):
        encoder(looped)
    row = {"score": shared, "list": [shared, shared], "é": "ü\n\u2028"}
    assert encoder(row) == dumps_row(row)
    assert json.loads(encoder(row))["score"] == {"raw": 1, "when": T0.isoformat()}
