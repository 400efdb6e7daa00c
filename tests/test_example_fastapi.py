"""The FastAPI mini-LMS example, driven over HTTP on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.fastapi_lms import create_app
from examples.fastapi_lms.policy import INTERNAL_ONLY, RECORD_TYPES, SCHEDULE
from fastapi.testclient import TestClient

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError, RestrictedRecordError, WrongMasterKeyError
from learnprivacy.records import Invoice, Learner, Progress
from learnprivacy.retention import Action, RetentionMode, Trigger
from learnprivacy.store import Store

KEY = bytes(range(32))
TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
START = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)
ANA = {
    "username": "ana.silva",
    "email": "ana.silva@example.org",
    "given_name": "Ana",
    "family_name": "Silva",
    "course_id": "RGPD-101",
    "billing_address": "12 rue des Écoles, 75005 Paris",
}


class Clock:
    """A settable clock: tests move time on explicitly."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """The app's clock, starting at START."""
    return Clock(START)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The SQLite file the app stores into."""
    return tmp_path / "lms.db"


@pytest.fixture
def client(tmp_path: Path, db: Path, clock: Clock) -> Iterator[TestClient]:
    """A client of the app on a fresh SQLite file, lifespan included."""
    (tmp_path / "exports").mkdir()
    app = create_app(
        f"sqlite:///{db}", KEY, clock=clock, admin_token=TOKEN, export_dir=tmp_path / "exports"
    )
    with TestClient(app) as test_client:
        yield test_client


def _enrol(client: TestClient, **changes: str) -> str:
    response = client.post("/learners", json={**ANA, **changes})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _pass_course(client: TestClient, learner_id: str) -> None:
    progress = {"course_id": "RGPD-101", "status": "passed", "score": 17, "max_score": 20}
    response = client.post(f"/learners/{learner_id}/progress", json=progress)
    assert response.status_code == 201, response.text
    response = client.post(f"/learners/{learner_id}/certificates", json={"course_id": "RGPD-101"})
    assert response.status_code == 201, response.text


def _open_store(db: Path) -> Store:
    return Store(f"sqlite:///{db}", keyring=Keyring.from_master_key(KEY))


def _package(content: bytes) -> dict[str, Any]:
    """Check a zip package against its manifest; return the records per type."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    names = set(archive.namelist()) - {"manifest.json"}
    assert {entry["path"] for entry in manifest["files"]} == names
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    data = {}
    for name in names:
        if name.startswith("data/") and name.endswith(".json"):
            data[Path(name).stem] = json.loads(archive.read(name))
    return data


def _count(data: dict[str, Any], record_type: str) -> int:
    body = data.get(record_type)
    if body is None:
        return 0
    rows = body["records"] if isinstance(body, dict) else body
    return len(rows)


def test_enrolment_progress_and_certificate_come_back_in_a_verified_export(
    client: TestClient, db: Path, clock: Clock
) -> None:
    """A learner's own export is a zip whose manifest hashes match, holding every record."""
    learner_id = _enrol(client)
    clock.now = START + dt.timedelta(days=30)
    _pass_course(client, learner_id)

    response = client.get(f"/learners/{learner_id}/export")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    data = _package(response.content)
    for record_type in ("Learner", "Invoice", "Progress", "Certificate"):
        assert _count(data, record_type) == 1, record_type
    with _open_store(db) as store:
        learner = store.get(Learner, learner_id)
        assert learner is not None
        # Recording progress moved the retention clock on.
        assert learner.last_activity_at == clock.now
        assert ANA["email"].encode() not in db.read_bytes()


def test_erasure_request_erases_the_learner_and_restricts_the_invoice(
    client: TestClient, db: Path
) -> None:
    """Erasure removes contract data, keeps the invoice restricted, and the audit verifies."""
    learner_id = _enrol(client)
    _pass_course(client, learner_id)
    other = _enrol(client, email="ben@example.org", username="ben")

    filed = client.post("/requests", json={"learner_id": learner_id, "type": "erasure"})
    assert filed.status_code == 202
    assert filed.json()["state"] == "in_progress"
    # One month later, to the end of that day (Regulation 1182/71 Art. 3).
    assert filed.json()["due_at"] == "2026-02-12T23:59:59.999999+00:00"
    done = client.post(f"/admin/requests/{filed.json()['id']}/execute", headers=ADMIN)

    assert done.status_code == 200
    assert done.json()["state"] == "completed"
    actions = {(r["record_type"], r["action"], r["article"]) for r in done.json()["records"]}
    assert actions == {
        ("Learner", "erase", "GDPR Art. 17(1)"),
        ("Progress", "erase", "GDPR Art. 17(1)"),
        ("Certificate", "erase", "GDPR Art. 17(1)"),
        ("Invoice", "restrict", "GDPR Art. 17(3)(b)"),
    }
    assert client.get(f"/requests/{filed.json()['id']}").json()["state"] == "completed"
    assert client.post(f"/learners/{learner_id}/progress", json={}).status_code == 422
    assert (
        client.post(
            f"/learners/{learner_id}/progress", json={"course_id": "X", "status": "passed"}
        ).status_code
        == 404
    )
    # What is still held is still exported: the restricted invoice only.
    data = _package(client.get(f"/learners/{learner_id}/export").content)
    assert {t for t in data if _count(data, t)} == {"Invoice"}
    audit = client.get("/admin/audit", headers=ADMIN)
    assert audit.status_code == 200
    assert audit.json()["ok"] is True
    with _open_store(db) as store:
        assert store.get(Learner, learner_id) is None
        left = store.records_of(learner_id, include_restricted=True)
        assert [type(r).__name__ for r in left] == ["Invoice"]
        assert store.records_of(learner_id) == []
        assert store.get(Learner, other) is not None
        assert store.audit.verify()


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"email": "secret-value-not-an-address"}, {"email"}),
        ({"username": "", "family_name": None}, {"username", "family_name"}),
        ({"course_id": "secret-value-course"}, {"course_id"}),
        ({"given_name": "secret-value" * 40}, {"given_name"}),
        ({"unexpected": "secret-value"}, {"unexpected"}),
    ],
)
def test_bad_enrolment_is_a_422_naming_fields_without_echoing_values(
    client: TestClient, db: Path, changes: dict[str, Any], fields: set[str]
) -> None:
    """Invalid input is refused with the field names only, and nothing is stored."""
    body = {**ANA, **changes}
    body = {k: v for k, v in body.items() if v is not None}

    response = client.post("/learners", json=body)

    assert response.status_code == 422
    assert {error["loc"][-1] for error in response.json()["detail"]} == fields
    assert "secret-value" not in response.text
    assert all(set(error) <= {"loc", "type", "msg", "field"} for error in response.json()["detail"])
    with _open_store(db) as store:
        assert store.count(Learner) == 0


def test_a_second_account_with_the_same_email_is_refused(client: TestClient) -> None:
    """The blind index finds the encrypted e-mail address: no duplicate account."""
    _enrol(client)
    response = client.post("/learners", json={**ANA, "email": "ANA.Silva@example.org"})
    assert response.status_code == 409
    assert "example.org" not in response.text


def test_certificate_needs_a_passed_course(client: TestClient) -> None:
    """No certificate for a course the learner has not passed."""
    learner_id = _enrol(client)
    response = client.post(f"/learners/{learner_id}/certificates", json={"course_id": "RGPD-101"})
    assert response.status_code == 409


def test_sweep_dry_run_changes_nothing_then_the_real_run_applies_the_schedule(
    client: TestClient, db: Path
) -> None:
    """19 months after the last activity: progress anonymised, invoice kept, and the account
    restricted (not erased) while the invoice that names it stays."""
    learner_id = _enrol(client)
    _pass_course(client, learner_id)
    later = (START + dt.timedelta(days=19 * 31)).isoformat()

    dry = client.post("/admin/sweep", params={"dry_run": True, "now": later}, headers=ADMIN)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["erased"], dry.json()["anonymised"]) == (0, 1)
    assert dry.json()["restricted"] == 1
    assert dry.json()["dry_run"] is True
    with _open_store(db) as store:
        assert store.get(Learner, learner_id) is not None

    real = client.post("/admin/sweep", params={"dry_run": False, "now": later}, headers=ADMIN)
    assert real.json()["by_type"]["Learner"]["restrict"] == 1
    assert real.json()["by_type"]["Invoice"]["keep"] == 1
    with _open_store(db) as store:
        with pytest.raises(RestrictedRecordError):
            store.get(Learner, learner_id)
        assert store.get(Learner, learner_id, include_restricted=True) is not None
        assert store.count(Progress, anonymised=True) == 1
        assert len(store.query(Invoice, learner_id=learner_id)) == 1
    again = client.post("/admin/sweep", params={"dry_run": False, "now": later}, headers=ADMIN)
    assert again.json()["erased"] == again.json()["anonymised"] == 0


def test_sweep_refuses_a_naive_now(client: TestClient) -> None:
    """A date without a time zone is a 422 naming ``now``."""
    response = client.post("/admin/sweep", params={"now": "2027-09-01T00:00:00"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "now"]


def test_admin_routes_need_the_admin_token(client: TestClient) -> None:
    """Without the right bearer token, every /admin route answers 401."""
    routes = [
        ("post", "/admin/sweep"),
        ("get", "/admin/audit"),
        ("get", "/admin/register"),
        ("post", "/admin/requests/R-1/execute"),
    ]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            assert client.request(method, path, headers=headers).status_code == 401, path
    assert client.get("/admin/audit", headers=ADMIN).status_code == 200


def test_access_request_writes_the_package_into_the_export_folder(
    client: TestClient, tmp_path: Path
) -> None:
    """An executed access request leaves a verified package named after the request."""
    learner_id = _enrol(client)
    filed = client.post("/requests", json={"learner_id": learner_id, "type": "access"}).json()
    done = client.post(f"/admin/requests/{filed['id']}/execute", headers=ADMIN).json()
    assert done["state"] == "completed"
    package = tmp_path / "exports" / done["package"]
    assert _count(_package(package.read_bytes()), "Learner") == 1


def test_an_erasure_removes_the_learners_earlier_packages(
    client: TestClient, tmp_path: Path
) -> None:
    """Attack: an access request's package (the learner's data in clear) stayed in the
    export folder after the learner's erasure request COMPLETED. The erasure removes the
    packages of the learner's earlier requests, and only theirs."""
    ana = _enrol(client)
    ben = _enrol(client, email="ben@example.org", username="ben")
    packages = []
    for learner_id in (ana, ben):
        filed = client.post("/requests", json={"learner_id": learner_id, "type": "access"})
        done = client.post(f"/admin/requests/{filed.json()['id']}/execute", headers=ADMIN)
        packages.append(tmp_path / "exports" / done.json()["package"])
    assert all(p.exists() for p in packages)
    filed = client.post("/requests", json={"learner_id": ana, "type": "erasure"}).json()
    done = client.post(f"/admin/requests/{filed['id']}/execute", headers=ADMIN).json()
    assert done["state"] == "completed"
    assert [p.exists() for p in packages] == [False, True]


def test_exports_leave_no_temporary_file_behind(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed package's temporary copy is removed, after success and after a 404."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    learner_id = _enrol(client)
    assert client.get(f"/learners/{learner_id}/export").status_code == 200
    assert client.get("/learners/L-nobody/export").status_code == 404
    assert list(scratch.iterdir()) == []


def test_unknown_learner_and_request_are_404(client: TestClient) -> None:
    """Unknown learners and requests are 404s."""
    assert client.post("/requests", json={"learner_id": "L-x", "type": "access"}).status_code == 404
    assert client.get("/requests/R-unknown").status_code == 404


def test_register_is_an_html_page_of_the_declared_processing(client: TestClient) -> None:
    """The Art. 30 register lists the controller and the store's purposes."""
    response = client.get("/admin/register", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Mini LMS Formation SAS" in response.text
    assert "P10Y" in response.text
    # The purposes it keeps data for go to nobody outside: no recipient gap for them.
    for purpose in INTERNAL_ONLY:
        assert f"{purpose}: no recipient declared" not in response.text
    # The store's record types the LMS does not keep (funder files, consents, access
    # logs) are not described at all: no entry, no gap.
    for unused in ("Funding", "Consent", "AccessEvent", "Training funding files"):
        assert unused not in response.text


def test_a_tampered_audit_log_is_reported(client: TestClient, db: Path) -> None:
    """Editing an audit entry in the database makes /admin/audit fail, naming the entry."""
    _enrol(client)
    _enrol(client, email="ben@example.org", username="ben")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE lp_audit SET outcome = 'forged' WHERE sequence = 2")
    response = client.get("/admin/audit", headers=ADMIN)
    assert response.status_code == 500
    assert response.json()["ok"] is False
    assert response.json()["sequence"] == 2


def test_master_key_comes_from_the_environment_and_a_wrong_one_fails_at_start(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key argument the app reads LEARNPRIVACY_MASTER_KEY; a wrong key fails early."""
    import base64

    url = f"sqlite:///{db}"
    monkeypatch.delenv("LEARNPRIVACY_MASTER_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="LEARNPRIVACY_MASTER_KEY"):
        create_app(url, export_dir=tmp_path)
    monkeypatch.setenv("LEARNPRIVACY_MASTER_KEY", base64.b64encode(KEY).decode())
    with TestClient(create_app(url, admin_token=TOKEN, export_dir=tmp_path)) as client:
        learner_id = _enrol(client)
    with _open_store(db) as store:
        assert store.get(Learner, learner_id) is not None
    with pytest.raises(WrongMasterKeyError):
        create_app(url, bytes(32), export_dir=tmp_path)


def test_schedule_is_the_policy_of_its_docstring_for_the_types_kept() -> None:
    """The mini-LMS takes the French training organisation preset for the four record
    types it keeps: 18 months for accounts (progress anonymised), five years for
    certificates, ten years from the fiscal year's close for invoices, a compliance
    minimum; nothing for types it does not keep."""
    entries = SCHEDULE.entries
    assert set(entries) == set(RECORD_TYPES)
    (learner,) = entries["Learner"]
    (progress,) = entries["Progress"]
    (certificate,) = entries["Certificate"]
    (invoice,) = entries["Invoice"]
    assert (str(learner.period), learner.action) == ("P18M", Action.ERASE)
    assert (str(progress.period), progress.action) == ("P18M", Action.ANONYMISE)
    assert str(certificate.period) == "P5Y"
    assert (str(invoice.period), invoice.trigger, invoice.minimum, invoice.mode) == (
        "P10Y",
        Trigger.FISCAL_YEAR_END,
        True,
        RetentionMode.COMPLIANCE,
    )
