"""docs/export-schemas.md describes what the code writes: every field, every manifest key."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from learnprivacy.export import PackageWriter
from learnprivacy.export._outputs import DATA_SCHEMA, MANIFEST_SCHEMA_VERSION
from learnprivacy.export._xapi import STATEMENT_NAMESPACE
from learnprivacy.records import Learner, fields_of
from learnprivacy.records._base import record_types
from tests import sample

DOC = Path(__file__).resolve().parents[1] / "docs" / "export-schemas.md"


@pytest.fixture(scope="module")
def doc() -> str:
    """The schema document."""
    return DOC.read_text(encoding="utf-8")


def _section(doc: str, title: str) -> str:
    match = re.search(rf"^#### {re.escape(title)}\n(.*?)(?=^#|\Z)", doc, re.M | re.S)
    assert match is not None, f"no section for {title}"
    return match.group(1)


@pytest.mark.parametrize("cls", record_types(), ids=lambda c: c.__name__)
def test_every_exported_field_is_documented_in_order(doc: str, cls: type) -> None:
    """Each record type's table lists its exported fields, in declaration order."""
    section = _section(doc, cls.__name__)
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert documented == [f.name for f in fields_of(cls) if f.exported]


def test_constants_match_the_document(doc: str) -> None:
    """Schema names and the statement namespace are those the document gives."""
    assert f'"schema": "{DATA_SCHEMA}"' in doc
    assert f'"schema_version": "{MANIFEST_SCHEMA_VERSION}"' in doc
    assert str(STATEMENT_NAMESPACE) in doc


def test_every_manifest_key_is_documented(doc: str, tmp_path: Path) -> None:
    """Each key of a real manifest (and of its entries) appears in the document."""
    writer = PackageWriter(
        tmp_path / "p", subject_id="L1", subject_reference="p1_x", xapi_actor="p1_y"
    )
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    writer.write_records(
        "core",
        [
            sample(
                Learner,
                username="u",
                email="u@example.org",
                given_name="A",
                family_name="B",
                created_at=now,
            )
        ],
    )
    manifest = writer.finish(now)
    keys = set(manifest) | set(manifest["files"][0]) | set(manifest["record_types"][0])
    for key in keys:
        assert f"`{key}" in doc or f'"{key}"' in doc, key
