"""export_subject through a real PrivacyManager: zip or directory, all or nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.toy_lms import ForumProvider, ThemeProvider, ToyLMS, VideoConferenceProvider

from learnprivacy import records as rec
from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import (
    ConfigurationError,
    NotFoundError,
    ProviderError,
    ValidationError,
)
from learnprivacy.export import XapiProfile, export_subject, read_package
from learnprivacy.export._names import check_entry_name
from learnprivacy.export._subject import SUBJECT_REFERENCE_DOMAIN
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    Context,
    ContextList,
    MetadataCollection,
    PrivacyManager,
)
from learnprivacy.records._base import default_basis, subject_of
from tests import KEY, NOW, sample

UTC = dt.UTC
T0 = dt.datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
LEARNER = "learner-7781"


class RecordsProvider:
    """A provider for learnprivacy records kept by an LMS component in its own list."""

    def __init__(self, component: str, records: list[Any]) -> None:
        self.component = component
        self.records = records

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        for cls in {type(r) for r in self.records}:
            collection.add_database_table(
                cls.__name__,
                {f.name: f.description for f in rec.fields_of(cls) if f.personal},
                (cls.__doc__ or "").splitlines()[0],
                purpose=cls.processing_purpose,
                basis=default_basis(cls),
                retention="P18M",
                retention_from="last_activity",
            )
        return collection

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        contexts = ContextList(component=self.component)
        if any(subject_of(r) == user_id for r in self.records):
            contexts.add_user_context(user_id)
        return contexts

    def _mine(self, user_id: str) -> Iterator[Any]:
        return (r for r in self.records if subject_of(r) == user_id)

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        if Context.user(approved.user_id) in approved:
            writer.write_records(self.component, self._mine(approved.user_id))

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        self.records = [r for r in self.records if subject_of(r) != approved.user_id]

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        self.records = [r for r in self.records if subject_of(r) != context.instance_id]


class CrashingProvider(RecordsProvider):
    """Writes three records, then its storage fails (as a dropped connection would)."""

    def _mine(self, user_id: str) -> Iterator[Any]:
        for n, record in enumerate(super()._mine(user_id)):
            if n == 3:
                raise OSError("storage unavailable")
            yield record


def _records(learner_id: str = LEARNER) -> list[Any]:
    records: list[Any] = [
        sample(rec.Learner, id=learner_id, family_name="Martin", created_at=T0),
        sample(rec.Consent, learner_id=learner_id, given_at=T0),
        sample(rec.Certificate, learner_id=learner_id, issued_at=T0, verification_code="Z9"),
        sample(
            rec.Invoice, id="INV1", learner_id=learner_id, billing_name="Ana Martin", issued_at=T0
        ),
    ]
    records += [
        rec.Progress(
            id=f"P{i}",
            learner_id=learner_id,
            course_id=f"C{i % 3}",
            status=list(rec.ProgressStatus)[i % 5],
            recorded_at=T0 + dt.timedelta(days=i),
            score=rec.Score(raw=i, min=0, max=20),
        )
        for i in range(8)
    ]
    return records


@pytest.fixture
def lms(tmp_path: Path) -> ToyLMS:
    """A toy LMS in a real SQLite file, with forum posts and attendance for the learner."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    ForumProvider(lms).make_user_data(LEARNER)
    ForumProvider(lms).make_user_data("someone-else")
    lms.attend("M1", LEARNER, "Ana <b>M.</b>", 42)
    return lms


def _manager(lms: ToyLMS, *extra: object) -> PrivacyManager:
    providers = [
        ForumProvider(lms),
        VideoConferenceProvider(lms),
        ThemeProvider(),
        RecordsProvider("lms_records", _records() + _records("someone-else")),
        *extra,
    ]
    return PrivacyManager(providers, discover=False)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory that receives the package (and must hold nothing else after)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_zip_package_is_complete_and_verified(lms: ToyLMS, out_dir: Path) -> None:
    """The zip holds every provider's data, each entry listed in the manifest with its hash."""
    out = out_dir / "ana.zip"
    result = export_subject(_manager(lms), LEARNER, out, now=NOW, pseudonym_key=KEY)
    assert result.path == out
    assert sorted(p.name for p in out_dir.iterdir()) == ["ana.zip"]
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    assert sorted(names) == sorted([e["path"] for e in manifest["files"]] + ["manifest.json"])
    for name in names:
        check_entry_name(name)
    assert "index.html" in names
    assert "xapi/statements.json" in names
    assert "data/toy_forum/forum_posts.json" in names
    assert "csv/forum_subscriptions.csv" in names
    assert "data/toy_videoconf/videoconf_attendance.json" in names
    package = read_package(out)
    mine = [r for r in _records() if subject_of(r) == LEARNER]
    assert sorted(package.records(), key=repr) == sorted(mine, key=repr)
    posts = package.rows(record_type="forum_posts")
    assert {row["user_id"] for row in posts} == {LEARNER}
    assert len(posts) == 2
    # Progress not started gives no statement; every other progress and the certificate do.
    started = sum(
        1
        for r in mine
        if isinstance(r, rec.Progress) and r.status is not rec.ProgressStatus.NOT_STARTED
    )
    assert len(package.statements()) == started + 1


def test_directory_package(lms: ToyLMS, out_dir: Path) -> None:
    """Without .zip the package is a directory, moved into place whole."""
    out = out_dir / "ana"
    export_subject(_manager(lms), LEARNER, out, now=NOW, pseudonym_key=KEY)
    assert [p.name for p in out_dir.iterdir()] == ["ana"]
    package = read_package(out)
    assert package.scope == "access"
    assert package.generated_at == NOW
    assert (out / "index.html").is_file()


def test_manifest_names_the_subject_by_pseudonym_only(lms: ToyLMS, out_dir: Path) -> None:
    """The subject reference is the keyed pseudonym; the internal id is not in the manifest."""
    out = out_dir / "ana.zip"
    export_subject(_manager(lms), LEARNER, out, now=NOW, pseudonym_key=KEY)
    package = read_package(out)
    expected = Pseudonymiser(KEY, domain=SUBJECT_REFERENCE_DOMAIN).pseudonym(LEARNER)
    assert package.subject_reference == expected
    assert LEARNER not in package.read_text("manifest.json")
    statements = package.statements()
    assert LEARNER not in json.dumps(statements)
    actor = Pseudonymiser(KEY, domain=XapiProfile().pseudonym_domain).pseudonym(LEARNER)
    assert {s["actor"]["account"]["name"] for s in statements} == {actor}
    assert actor != expected


def test_reexport_is_byte_identical(lms: ToyLMS, out_dir: Path) -> None:
    """Same data, key and time: the same archive, hence the same statement ids."""
    first = export_subject(_manager(lms), LEARNER, out_dir / "a.zip", now=NOW, pseudonym_key=KEY)
    second = export_subject(_manager(lms), LEARNER, out_dir / "b.zip", now=NOW, pseudonym_key=KEY)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_portability_excludes_legal_obligation_records(lms: ToyLMS, out_dir: Path) -> None:
    """Art. 20: no invoice; provider tables on contract basis stay, via their metadata."""
    out = out_dir / "port.zip"
    export_subject(_manager(lms), LEARNER, out, scope="portability", now=NOW, pseudonym_key=KEY)
    package = read_package(out)
    kinds = {type(r).__name__ for r in package.records()}
    assert "Invoice" not in kinds
    assert {"Learner", "Progress", "Certificate", "Consent"} <= kinds
    assert not any("Invoice" in e["path"] for e in package.files)
    # forum_subscriptions rows carry no basis and the provider does not describe them:
    # the basis declared in the component's metadata (contract) keeps them in.
    assert len(package.rows(record_type="forum_subscriptions")) == 1
    page = package.read_text("index.html")
    assert "18 months (P18M) from last activity" in page
    assert "Ana &lt;b&gt;M.&lt;/b&gt;" in page


def test_unknown_learner_raises_and_leaves_nothing(lms: ToyLMS, out_dir: Path) -> None:
    """No provider knows the learner: NotFoundError, and the directory stays empty."""
    for name in ("nobody.zip", "nobody"):
        with pytest.raises(NotFoundError):
            export_subject(_manager(lms), "nobody", out_dir / name, now=NOW, pseudonym_key=KEY)
    assert list(out_dir.iterdir()) == []


def test_failing_provider_raises_and_leaves_nothing(lms: ToyLMS, out_dir: Path) -> None:
    """A provider failing after writing rows: ProviderError naming it, no file left."""
    crashing = CrashingProvider("crashy", _records())
    for name in ("ana.zip", "ana"):
        with pytest.raises(ProviderError) as caught:
            export_subject(
                _manager(lms, crashing), LEARNER, out_dir / name, now=NOW, pseudonym_key=KEY
            )
        assert caught.value.component == "crashy"
    assert list(out_dir.iterdir()) == []


def test_provider_leaking_another_learner_fails_the_export(lms: ToyLMS, out_dir: Path) -> None:
    """A provider that writes someone else's record is reported and nothing is produced."""

    class Leaky(RecordsProvider):
        def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
            writer.write_records(self.component, _records("someone-else")[:1])

    leaky = Leaky("leaky", _records())
    with pytest.raises(ProviderError) as caught:
        export_subject(_manager(lms, leaky), LEARNER, out_dir / "a.zip", now=NOW)
    assert caught.value.component == "leaky"
    assert list(out_dir.iterdir()) == []


def test_hostile_component_names_are_sanitised_in_the_zip(lms: ToyLMS, out_dir: Path) -> None:
    """A component called ../../evil cannot place an entry outside the archive's root."""
    hostile = RecordsProvider("../../evil", _records()[:2])
    out = out_dir / "ana.zip"
    export_subject(_manager(lms, hostile), LEARNER, out, now=NOW, pseudonym_key=KEY)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        target = out_dir / "extracted"
        archive.extractall(target)
    assert all(".." not in name.split("/") and not name.startswith("/") for name in names)
    assert "data/evil/Learner.json" in names
    assert {p.name for p in out_dir.iterdir()} == {"ana.zip", "extracted"}
    for path in target.rglob("*"):
        assert path.resolve().is_relative_to(target.resolve())


def test_existing_output_is_refused_unless_overwrite(lms: ToyLMS, out_dir: Path) -> None:
    """An existing out is kept (ConfigurationError) unless overwrite=True replaces it."""
    for name in ("ana.zip", "ana"):
        out = out_dir / name
        export_subject(_manager(lms), LEARNER, out, now=NOW, pseudonym_key=KEY)
        with pytest.raises(ConfigurationError):
            export_subject(_manager(lms), LEARNER, out, now=NOW, pseudonym_key=KEY)
        later = NOW + dt.timedelta(days=1)
        export_subject(_manager(lms), LEARNER, out, now=later, pseudonym_key=KEY, overwrite=True)
        assert read_package(out).generated_at == later
    assert sorted(p.name for p in out_dir.iterdir()) == ["ana", "ana.zip"]


def test_bad_arguments_are_refused_before_anything_is_written(lms: ToyLMS, out_dir: Path) -> None:
    """Naive now, unknown scope, missing parent, wrong source: typed errors, no file."""
    manager = _manager(lms)
    with pytest.raises(ValidationError):
        export_subject(manager, LEARNER, out_dir / "a.zip", now=dt.datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError):
        export_subject(manager, LEARNER, out_dir / "a.zip", scope="everything", now=NOW)
    with pytest.raises(ConfigurationError):
        export_subject(manager, LEARNER, out_dir / "missing" / "a.zip", now=NOW)
    with pytest.raises(ConfigurationError):
        export_subject(object(), LEARNER, out_dir / "a.zip", now=NOW)
    assert list(out_dir.iterdir()) == []


def test_now_defaults_to_the_clock_read_once(lms: ToyLMS, out_dir: Path) -> None:
    """Without now, the generation time is read at the call, timezone-aware."""
    before = dt.datetime.now(UTC)
    result = export_subject(_manager(lms), LEARNER, out_dir / "a.zip")
    after = dt.datetime.now(UTC)
    generated = read_package(result.path).generated_at
    assert before <= generated <= after
    assert generated.utcoffset() == dt.timedelta(0)
