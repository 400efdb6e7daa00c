"""Exports from a real Store (SQLite file, encrypted fields): access, portability, failures."""

from __future__ import annotations

import datetime as dt
import gc
import json
import weakref
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import NotFoundError, ProviderError
from learnprivacy.export import PackageWriter, export_subject, read_package
from learnprivacy.export.reports import k_anonymous_aggregate
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    PrivacyManager,
)
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests import KEY, NOW, UserContextProvider, account, at, days, record_of, sample

T0 = at(2019, 9, 1, 8)


def _learner_records(learner_id: str, *, organisation: str = "ACME") -> list[Any]:
    return [
        account(
            learner_id,
            given_name="Léa",
            family_name="=Dupont",
            created_at=T0,
            last_activity_at=T0 + days(30),
            organisation_id=organisation,
        ),
        record_of(
            learner_id,
            rec.Progress,
            "P1",
            course_id="SST-2024",
            recorded_at=T0 + days(3),
            score=rec.Score(raw=Decimal("16.5"), min=0, max=20),
            time_spent=dt.timedelta(hours=7),
        ),
        record_of(
            learner_id,
            rec.Progress,
            "P2",
            course_id="RGPD-101",
            status=rec.ProgressStatus.IN_PROGRESS,
            recorded_at=T0 + days(9),
        ),
        record_of(
            learner_id, rec.Certificate, "CERT", course_id="SST-2024", issued_at=T0 + days(4)
        ),
        record_of(
            learner_id,
            rec.Invoice,
            "INV",
            billing_name="Léa Dupont",
            billing_address="3 quai Ouest, 69003 Lyon",
            issued_at=T0 + days(1),
            funder=rec.Funder.OPCO,
        ),
        record_of(learner_id, rec.Funding, "F", dossier_reference="OPCO-2019-0042", opened_at=T0),
        record_of(learner_id, rec.Consent, "C", given_at=T0),
        record_of(learner_id, rec.AccessEvent, "E", at=T0, ip="192.0.2.9"),
    ]


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    """A real SQLite store with two learners' records, personal fields encrypted."""
    sqlite_store.add_all(_learner_records("L1") + _learner_records("L2"))
    return sqlite_store


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where packages go; must hold nothing but them."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


def _key(record: Any) -> tuple[str, str]:
    return type(record).__name__, record.id


def test_access_export_round_trips_the_store_records(store: Store, out_dir: Path) -> None:
    """Every record of the learner comes back equal, and only theirs."""
    out = out_dir / "l1.zip"
    result = export_subject(store, "L1", out, now=NOW, pseudonym_key=KEY)
    package = read_package(out)
    back = sorted(package.records(), key=_key)
    assert back == sorted(_learner_records("L1"), key=_key)
    assert back == sorted(store.records_of("L1"), key=_key)
    assert result.records == len(back)
    text = "".join(package.read_text(e["path"]) for e in package.files)
    assert "L2" not in text.replace("L2-", "")  # no other learner (ids of L1 start with L1-)
    assert "l2@example.org" not in text
    components = {t["component"] for t in package.manifest["record_types"]}
    assert components == {"learnprivacy_store"}
    # The CSV neutralises the family name that looks like a formula; the JSON keeps it.
    learner_csv = package.csv_rows("csv/Learner.csv")
    assert learner_csv[0]["family_name"] == "'=Dupont"
    assert package.rows(record_type="Learner")[0]["family_name"] == "=Dupont"


def test_portability_export_leaves_out_legal_and_security_records(
    store: Store, out_dir: Path
) -> None:
    """Art. 20 from the store: no Invoice, Funding or AccessEvent."""
    out = out_dir / "l1-port"
    export_subject(store, "L1", out, scope="portability", now=NOW, pseudonym_key=KEY)
    package = read_package(out)
    kinds = {type(r).__name__ for r in package.records()}
    assert kinds == {"Learner", "Progress", "Certificate", "Consent"}
    excluded = {t["record_type"]: t["excluded_by_scope"] for t in package.manifest["record_types"]}
    assert excluded["Invoice"] == excluded["Funding"] == excluded["AccessEvent"] == 1
    assert not (out / "data" / "learnprivacy_store" / "Invoice.json").exists()
    assert "Léa Dupont" not in json.dumps(package.rows())  # the billing name stays out


def test_unknown_learner_leaves_no_file(store: Store, out_dir: Path) -> None:
    """NotFoundError and an empty directory."""
    with pytest.raises(NotFoundError):
        export_subject(store, "L404", out_dir / "x.zip", now=NOW)
    assert list(out_dir.iterdir()) == []


class _ExternalGradebook(UserContextProvider):
    """A second component (an external gradebook) whose connection drops mid-export."""

    component = "ext_gradebook"
    table = ("grades", {"grade": "A grade"}, "Grades")

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        def rows() -> Iterator[dict[str, Any]]:
            yield {"grade": "B+"}
            raise ConnectionResetError("gradebook connection reset")

        writer.write_rows(self.component, "grades", rows())


def test_a_provider_failing_mid_export_leaves_no_file(store: Store, out_dir: Path) -> None:
    """Store data written, then the gradebook fails: ProviderError naming it, nothing left."""
    manager = PrivacyManager([_ExternalGradebook()], store=store, discover=False)
    for name in ("l1.zip", "l1"):
        with pytest.raises(ProviderError) as caught:
            export_subject(manager, "L1", out_dir / name, now=NOW, pseudonym_key=KEY)
        assert caught.value.component == "ext_gradebook"
    assert list(out_dir.iterdir()) == []


def test_anonymised_rows_feed_k_anonymous_statistics(tmp_path: Path) -> None:
    """After a sweep anonymises old progress, only groups of k learners are published."""
    schedule = Schedule(
        {
            rec.Progress: RetentionRule(
                Period.parse("P18M"), Trigger.CREATED, action=Action.ANONYMISE
            )
        }
    )
    with Store(
        f"sqlite:///{tmp_path / 'stats.db'}", keyring=Keyring.generate(), clock=lambda: NOW
    ) as store:
        for n in range(7):
            store.add_all(_learner_records(f"L{n}"))
        report = store.sweep(schedule, now=NOW)
        assert report.anonymised
        rows = list(store.anonymised(rec.Progress))
        assert len(rows) == 14
        assert all(row["learner_id"].startswith("anon-") for row in rows)
        stats = k_anonymous_aggregate(
            rows, by=["course_id", "status"], k=5, measures=["time_spent"]
        )
    assert {(r["course_id"], r["status"]) for r in stats.rows} == {
        ("RGPD-101", "in_progress"),
        ("SST-2024", "passed"),
    }
    assert all(r["learners"] == 7 for r in stats.rows)
    passed = next(r for r in stats.rows if r["status"] == "passed")
    assert passed["mean_time_spent"] == 7 * 3600


class _ReleaseCheckingWriter(PackageWriter):
    """The real package writer, checking as the Progress records arrive that the first
    of them is already garbage once two store pages have gone by."""

    def __init__(self, directory: Path, *, after: int) -> None:
        super().__init__(directory, subject_id="L1", subject_reference="ref", xapi_actor="actor")
        self.after = after
        self.released: bool | None = None

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        def observed() -> Iterator[Any]:
            first: weakref.ref[Any] | None = None
            for n, record in enumerate(records):
                if isinstance(record, rec.Progress) and first is None:
                    first = weakref.ref(record)
                if first is not None and n == self.after:
                    gc.collect()
                    self.released = first() is None
                yield record

        return super().write_records(component, observed())


def test_store_export_streams_the_learner_history(store: Store, tmp_path: Path) -> None:
    """Store -> StoreProvider -> PrivacyManager -> PackageWriter holds no whole history:
    the learner's first progress record is freed while later ones are still being
    written (a provider reading the history into a list would keep it alive)."""
    from learnprivacy.store import _reads

    count = _reads.FIRST_PAGE + 2 * _reads.PAGE + 1
    store.add_all(
        sample(rec.Progress, id=f"L1-S{i:06d}", recorded_at=T0 + dt.timedelta(minutes=i))
        for i in range(count)
    )
    writer = _ReleaseCheckingWriter(tmp_path / "package", after=_reads.FIRST_PAGE + _reads.PAGE)
    manager = PrivacyManager(store=store, discover=False, timeout=None)
    manager.export_user_data("L1", writer).raise_for_status()
    assert writer.released is True
    manifest = writer.finish(NOW)
    counts = {t["record_type"]: t["records"] for t in manifest["record_types"]}
    assert counts["Progress"] == count + 2
