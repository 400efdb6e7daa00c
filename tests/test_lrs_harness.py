"""The Ralph LRS harness: a real Ralph server started, used over HTTP and stopped by the tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learnprivacy.errors import ConfigurationError
from learnprivacy.testing import lrs as lrs_module
from learnprivacy.testing.lrs import LRSStartError, LRSUnavailable, TemporaryRalphLRS

httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.lrs

XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture
def lrs(ralph_lrs: TemporaryRalphLRS) -> TemporaryRalphLRS:
    """The session's shared server (conftest); tests use fresh statement ids to stay apart."""
    return ralph_lrs


@pytest.fixture
def client(lrs: TemporaryRalphLRS) -> Iterator[Any]:
    # trust_env=False: a proxy set in the environment must not see loopback traffic.
    with httpx.Client(auth=lrs.auth, headers=XAPI_HEADERS, trust_env=False, timeout=30) as c:
        yield c


def _statement(**overrides: Any) -> dict[str, Any]:
    """A minimal valid xAPI 1.0.3 statement with a fresh id and a pseudonymous actor."""
    statement: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://lms.example.org", "name": "p-7f3a9c"},
        },
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en": "completed"}},
        "object": {"objectType": "Activity", "id": "https://lms.example.org/course/42"},
        "timestamp": "2024-03-01T10:00:00+01:00",
    }
    statement.update(overrides)
    return statement


def _stored_ids(lrs: TemporaryRalphLRS) -> list[str]:
    lines = lrs.statements_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines if line.strip()]


def test_posted_statement_is_stored_and_read_back_by_id(
    lrs: TemporaryRalphLRS, client: Any
) -> None:
    """A statement POSTed with Basic auth is stored on disk and returned by GET statementId."""
    from ralph.models.xapi.base.statements import BaseXapiStatement

    statement = _statement()
    BaseXapiStatement.model_validate(statement)  # The test sends a valid statement.

    posted = client.post(lrs.endpoint, json=[statement])
    assert posted.status_code == 200
    assert posted.json() == [statement["id"]]

    fetched = client.get(lrs.endpoint, params={"statementId": statement["id"]})
    assert fetched.status_code == 200
    (stored,) = fetched.json()["statements"]
    for key in ("id", "actor", "verb", "object", "timestamp"):
        assert stored[key] == statement[key]
    assert stored["authority"] == lrs.authority
    assert statement["id"] in _stored_ids(lrs)
    assert lrs.statements_file.is_relative_to(lrs.directory)
    assert lrs.startup_seconds is not None
    assert lrs.startup_seconds > 0


def test_every_post_is_stored_not_only_the_first(lrs: TemporaryRalphLRS, client: Any) -> None:
    """Successive POSTs all land in the store (Ralph's file backend would refuse the second)."""
    first, second, third = _statement(), _statement(), _statement()
    assert client.post(lrs.endpoint, json=[first]).status_code == 200
    response = client.post(lrs.endpoint, json=[second, third])
    assert response.status_code == 200
    assert response.json() == [second["id"], third["id"]]
    for statement in (first, second, third):
        fetched = client.get(lrs.endpoint, params={"statementId": statement["id"]})
        assert [s["id"] for s in fetched.json()["statements"]] == [statement["id"]]


def test_reposting_an_identical_statement_stores_it_once(
    lrs: TemporaryRalphLRS, client: Any
) -> None:
    """Re-sending the same statement answers 204 and adds no copy; only new ids come back."""
    statement, newcomer = _statement(), _statement()
    assert client.post(lrs.endpoint, json=[statement]).status_code == 200

    again = client.post(lrs.endpoint, json=[statement])
    assert again.status_code == 204
    mixed = client.post(lrs.endpoint, json=[statement, newcomer])
    assert mixed.status_code == 200
    assert mixed.json() == [newcomer["id"]]
    assert _stored_ids(lrs).count(statement["id"]) == 1


def test_a_different_statement_with_a_known_id_is_refused(
    lrs: TemporaryRalphLRS, client: Any
) -> None:
    """A statement reusing a stored id with other content is a 409 conflict, not stored."""
    statement = _statement()
    assert client.post(lrs.endpoint, json=[statement]).status_code == 200
    changed = {**statement, "result": {"completion": True}}

    response = client.post(lrs.endpoint, json=[changed])

    assert response.status_code == 409
    fetched = client.get(lrs.endpoint, params={"statementId": statement["id"]})
    assert "result" not in fetched.json()["statements"][0]


def test_wrong_or_missing_credentials_are_refused(lrs: TemporaryRalphLRS) -> None:
    """The generated user is the only way in: a wrong password or no auth gets 401."""
    username, _ = lrs.auth
    statement = _statement()
    with httpx.Client(headers=XAPI_HEADERS, trust_env=False, timeout=30) as anonymous:
        wrong = anonymous.post(lrs.endpoint, json=[statement], auth=(username, "not-it"))
        missing = anonymous.post(lrs.endpoint, json=[statement])
    assert wrong.status_code == 401
    assert missing.status_code == 401


def test_server_listens_on_loopback_address_only(lrs: TemporaryRalphLRS) -> None:
    """The socket is bound to 127.0.0.1, so another address of the host cannot reach it."""
    assert lrs.base_url == f"http://127.0.0.1:{lrs.port}"
    with socket.create_connection(("127.0.0.1", lrs.port), timeout=5):
        pass
    if sys.platform != "linux":
        pytest.skip("only Linux routes all of 127.0.0.0/8 to this host")
    # A server bound to 0.0.0.0 would answer on 127.0.0.2 too.
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.2", lrs.port), timeout=5),
    ):
        pass


def test_repr_and_lifecycle_errors_never_show_the_password(lrs: TemporaryRalphLRS) -> None:
    """repr() names the port only, and starting twice is refused with a typed error."""
    _, password = lrs.auth
    assert password not in repr(lrs)
    assert str(lrs.port) in repr(lrs)
    with pytest.raises(ConfigurationError, match="already started") as caught:
        lrs.start()
    assert password not in str(caught.value)


def test_stop_ends_the_process_and_leaves_nothing_behind(
    ralph_lrs: TemporaryRalphLRS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the with-block the process is gone, the port closed and the directory deleted.

    The caller's RALPH_* settings do not leak into the server, and nothing is written to
    the working directory or the home directory.
    """
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # Settings that would break the harness if they reached the server.
    monkeypatch.setenv("RALPH_RUNSERVER_BACKEND", "es")
    monkeypatch.setenv("RALPH_AUTH_FILE", str(workdir / "auth.json"))
    monkeypatch.setenv("RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH", str(workdir))
    monkeypatch.setenv("RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT", "not-a-number")

    # ralph_lrs is requested only to skip where Ralph is missing; this test needs its own.
    with TemporaryRalphLRS() as server:
        pid, port, directory = server.pid, server.port, server.directory
        assert server.running
        with httpx.Client(auth=server.auth, headers=XAPI_HEADERS, trust_env=False) as client:
            assert client.post(server.endpoint, json=[_statement()]).status_code == 200
        assert server.statements_file.is_file()

    assert not server.running
    assert not directory.exists()
    if os.name == "posix":
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(ConfigurationError, match="not running"):
        _ = server.endpoint
    server.stop()  # Idempotent.
    assert list(workdir.iterdir()) == []
    assert list(home.iterdir()) == []


def test_a_server_that_does_not_answer_in_time_is_a_start_error(
    ralph_lrs: TemporaryRalphLRS, tmp_path: Path
) -> None:
    """A start timeout raises LRSStartError (not a skip) and still cleans everything up."""
    # No server answers within a millisecond of its launch: the interpreter alone takes longer.
    server = TemporaryRalphLRS(start_timeout=0.001, base_dir=tmp_path)
    with pytest.raises(LRSStartError, match=r"did not answer(.|\n)*server log tail"):
        server.start()
    assert not server.running
    assert list(tmp_path.iterdir()) == []
    assert not issubclass(LRSStartError, LRSUnavailable)


def test_missing_ralph_raises_lrs_unavailable_naming_the_package() -> None:
    """Where ralph cannot be imported, start() raises LRSUnavailable, a ConfigurationError."""
    # A real interpreter that cannot see the installed packages: site-packages is taken
    # off sys.path after learnprivacy itself is imported.
    program = """
import json, sys, sysconfig
from learnprivacy.testing.lrs import LRSUnavailable, TemporaryRalphLRS
from learnprivacy.errors import ConfigurationError
site = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
sys.path[:] = [entry for entry in sys.path if entry not in site]
try:
    TemporaryRalphLRS().start()
except LRSUnavailable as exc:
    print(json.dumps({"message": str(exc), "config": isinstance(exc, ConfigurationError)}))
else:
    print(json.dumps({"message": None}))
"""
    source_root = Path(lrs_module.__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source_root), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["message"] is not None
    assert "'ralph'" in outcome["message"]
    assert "ralph-malph[cli,lrs]" in outcome["message"]
    assert outcome["config"] is True
