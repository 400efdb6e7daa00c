"""The Flask LMS example, driven over HTTP, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

flask = pytest.importorskip("flask")

from examples.flask_lms import create_app  # noqa: E402
from examples.flask_lms.app import INTERNAL_ONLY  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

KEY = bytes(range(32))
TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
START = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A settable clock: tests move time on explicitly."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The LMS database and the key database, on SQLite files or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lms.db'}", f"sqlite:///{tmp_path / 'keys.db'}"
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(), server.create_database()


@pytest.fixture
def lms(urls: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    clock = Clock(START)
    app = create_app(
        urls[0], urls[1], KEY, clock=clock, admin_token=TOKEN, export_dir=tmp_path / "exports"
    )
    (tmp_path / "exports").mkdir()
    client = app.test_client()
    client.clock = clock
    client.app = app
    yield client
    app.extensions["lms.privacy"].close()
    app.extensions["lms.engine"].dispose()


def signup(client: Any, email: str, name: str) -> str:
    response = client.post("/signup", json={"email": email, "name": name})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_the_lms_keeps_its_tables_encrypted_and_answers_requests(
    lms: Any, urls: tuple[str, str], tmp_path: Path
) -> None:
    """Sign-up, posts, lookups, export and erasure, all on the LMS's own tables."""
    ana = signup(lms, "ana@example.org", "Ana Silva")
    bob = signup(lms, "bob@example.org", "Bob Martin")
    assert lms.post("/signup", json={"email": "ANA@example.org", "name": "x"}).status_code == 409
    user = {"X-User": ana}
    assert (
        lms.post(
            "/courses/rgpd-101/enrol", json={"employer_note": "paid by ACME"}, headers=user
        ).status_code
        == 201
    )
    assert (
        lms.post(
            "/courses/rgpd-101/posts", json={"body": "Bonjour à tous"}, headers=user
        ).status_code
        == 201
    )
    assert lms.get("/me", headers=user).get_json()["posts"] == ["Bonjour à tous"]

    engine = create_engine(urls[0])
    with engine.connect() as c:
        row = c.execute(text("SELECT email, name FROM users WHERE id=:i"), {"i": ana}).one()
        note = c.execute(text("SELECT employer_note FROM enrolments")).scalar_one()
        body = c.execute(text("SELECT body FROM forum_posts")).scalar_one()
    assert all(v.startswith("lp1.") for v in (*row, note, body))

    found = lms.post("/admin/find", json={"email": "Ana@Example.org"}, headers=ADMIN)
    assert found.get_json()["ids"] == [ana]
    # Attack: the address in the URL, which web servers and proxies write to their access
    # logs, was answered; the lookup takes it from the body only.
    assert lms.get("/admin/find?email=Ana@Example.org", headers=ADMIN).status_code == 405
    exported = lms.post(f"/admin/users/{ana}/export", headers=ADMIN)
    assert exported.status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported.data)) as zf:
        names = set(zf.namelist())
        users = json.loads(zf.read("data/flask_lms/users.json"))
    assert {"manifest.json", "index.html", "data/flask_lms/forum_posts.json"} <= names
    assert "ana@example.org" in json.dumps(users)
    assert "bob@example.org" not in json.dumps(users)

    erased = lms.post(f"/admin/users/{ana}/erase", headers=ADMIN).get_json()
    assert erased == {"completed": True, "errors": []}
    with engine.connect() as c:
        for table, column in (
            ("users", "id"),
            ("forum_posts", "author_id"),
            ("enrolments", "user_id"),
        ):
            count = c.execute(
                text(f"SELECT count(*) FROM {table} WHERE {column}=:i"),
                {"i": ana},
            ).scalar_one()
            assert count == 0
    engine.dispose()
    assert lms.app.extensions["lms.privacy"].keyring.is_shredded(ana, "contract")
    # Attack: the package sent to the administrator stayed in the export directory, in
    # clear, after the learner's erasure (Ana's e-mail address readable in it).
    assert list((tmp_path / "exports").iterdir()) == []
    assert lms.get("/me", headers={"X-User": bob}).get_json()["email"] == "bob@example.org"
    actions = lms.get("/admin/audit", headers=ADMIN).get_json()["actions"]
    assert actions[0] == "erasure_request"
    assert actions[-1] == "shred"

    register = lms.get("/admin/register", headers=ADMIN).get_json()
    assert "forum_posts" in json.dumps(register)
    # The LMS shares nothing outside: every purpose says so, and no recipient gap shows.
    assert {a["purpose"] for a in register["activities"]} == set(INTERNAL_ONLY)
    assert all(a["internal_only"] for a in register["activities"])
    assert [g for g in register["gaps"] if "recipient" in g] == []


def test_retention_sweep_of_the_lms_tables(lms: Any) -> None:
    """Learners inactive for 18 months go, with their posts and enrolments."""
    ana = signup(lms, "ana@example.org", "Ana Silva")
    assert (
        lms.post("/courses/c1/posts", json={"body": "old"}, headers={"X-User": ana}).status_code
        == 201
    )
    lms.clock.now = START + dt.timedelta(days=400)
    bob = signup(lms, "bob@example.org", "Bob Martin")
    lms.post("/login", headers={"X-User": bob})
    lms.clock.now = START + dt.timedelta(days=600)
    report = lms.post("/admin/sweep", headers=ADMIN).get_json()
    assert report["erased"] == 2
    assert lms.get("/me", headers={"X-User": ana}).status_code == 401
    assert lms.get("/me", headers={"X-User": bob}).status_code == 200
    assert lms.post("/admin/sweep", headers=ADMIN).get_json()["erased"] == 0


def test_admin_needs_the_token(lms: Any) -> None:
    """Without the bearer token the admin routes answer 401."""
    assert lms.get("/admin/register").status_code == 401
