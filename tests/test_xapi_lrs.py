"""send_statements against a real Ralph LRS on 127.0.0.1 (filesystem backend)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from learnprivacy.errors import ConfigurationError, DeliveryError, ValidationError
from learnprivacy.export._xapi import check_statement
from learnprivacy.export.xapi import XapiProfile, send_statements, statements_for
from learnprivacy.records import Certificate, Progress, ProgressStatus, Score
from learnprivacy.testing.lrs import TemporaryRalphLRS

pytestmark = pytest.mark.lrs

T0 = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
PROFILE = XapiProfile(home_page="https://lms.example.org")
STATUSES = [
    ProgressStatus.PASSED,
    ProgressStatus.FAILED,
    ProgressStatus.COMPLETED,
    ProgressStatus.IN_PROGRESS,
]


class _Names:
    """Pseudonyms from the real Pseudonymiser, under a fresh key per test."""

    def __init__(self) -> None:
        from learnprivacy.crypto import Pseudonymiser

        self._inner = Pseudonymiser(uuid.uuid4().bytes * 2, domain=PROFILE.pseudonym_domain)

    def pseudonym(self, identifier: str) -> str:
        return self._inner.pseudonym(identifier)


def _statements(count: int) -> list[dict[str, Any]]:
    """Fresh statements (fresh record ids, so fresh statement ids) of every kind."""
    run = uuid.uuid4().hex[:12]
    records: list[Any] = []
    for i in range(count - 1):
        records.append(
            Progress(
                id=f"P{i}-{run}",
                learner_id="L1",
                course_id=f"C{i % 3}",
                status=STATUSES[i % len(STATUSES)],
                recorded_at=T0 + dt.timedelta(hours=i),
                score=Score(raw=Decimal(i % 20) + Decimal("0.5"), min=0, max=20),
                time_spent=dt.timedelta(minutes=i, seconds=1.25),
            )
        )
    records.append(
        Certificate(
            id=f"CERT1-{run}",
            learner_id="L1",
            course_id="C0",
            issued_at=T0,
            verification_code="X",
        )
    )
    return list(statements_for(records, pseudonyms=_Names(), profile=PROFILE))


def _find(lrs: TemporaryRalphLRS, statement_id: str) -> dict[str, Any] | None:
    """GET one statement back by id, with the standard library only (None if absent)."""
    token = base64.b64encode(":".join(lrs.auth).encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{lrs.endpoint}?statementId={statement_id}",
        headers={"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        document = json.loads(response.read())
    # Ralph wraps a single statement in a StatementResult (empty when the id is unknown).
    if "statements" in document:
        if not document["statements"]:
            return None
        (document,) = document["statements"]
    return dict(document)


def _get(lrs: TemporaryRalphLRS, statement_id: str) -> dict[str, Any]:
    found = _find(lrs, statement_id)
    assert found is not None
    return found


def _stored_count(lrs: TemporaryRalphLRS) -> int:
    if not lrs.statements_file.exists():
        return 0
    return sum(1 for line in lrs.statements_file.read_text("utf-8").splitlines() if line.strip())


def test_statements_are_stored_and_read_back_equal(ralph_lrs: TemporaryRalphLRS) -> None:
    """Every statement sent in batches is stored and comes back with the same content."""
    statements = _statements(12)
    for statement in statements:
        check_statement(statement)
    report = send_statements(statements, ralph_lrs.endpoint, ralph_lrs.auth, batch_size=5)
    assert report.sent == 12
    assert report.delivered == 12
    assert report.batches == 3
    assert report.already_stored == report.retries == report.duplicates == 0
    for sent in statements:
        stored = _get(ralph_lrs, sent["id"])
        for key in ("id", "actor", "verb", "object", "context"):
            assert stored.get(key) == sent.get(key)
        assert dt.datetime.fromisoformat(stored["timestamp"]) == dt.datetime.fromisoformat(
            sent["timestamp"]
        )
        if "result" in sent:
            assert stored["result"].get("score") == sent["result"].get("score")
            assert stored["result"].get("success") == sent["result"].get("success")
            assert stored["result"]["completion"] == sent["result"]["completion"]
        assert stored["authority"] == ralph_lrs.authority


def test_resending_is_idempotent(ralph_lrs: TemporaryRalphLRS) -> None:
    """Sending the same statements again stores nothing new and is not an error."""
    statements = _statements(6)
    first = send_statements(statements, ralph_lrs.endpoint, ralph_lrs.auth, batch_size=4)
    assert first.delivered == 6
    before = _stored_count(ralph_lrs)
    again = send_statements(statements, ralph_lrs.endpoint, ralph_lrs.auth, batch_size=4)
    assert again.delivered == 0
    assert again.already_stored == 6
    mixed = send_statements(
        statements[:3] + _statements(2), ralph_lrs.endpoint, ralph_lrs.auth, batch_size=10
    )
    assert (mixed.delivered, mixed.already_stored) == (2, 3)
    assert _stored_count(ralph_lrs) == before + 2


def test_duplicates_in_the_input_are_sent_once(ralph_lrs: TemporaryRalphLRS) -> None:
    """An LRS refuses a batch holding one id twice: repeats are dropped before sending."""
    statements = _statements(3)
    report = send_statements(
        statements + statements, ralph_lrs.endpoint, ralph_lrs.auth, batch_size=10
    )
    assert (report.sent, report.delivered, report.duplicates) == (3, 3, 3)


def test_a_true_conflict_fails_but_the_rest_of_the_batch_is_delivered(
    ralph_lrs: TemporaryRalphLRS,
) -> None:
    """Same id, different content: DeliveryError counting it failed; the batch's other
    statements are stored and counted delivered."""
    original, fresh = _statements(2)
    send_statements([original], ralph_lrs.endpoint, ralph_lrs.auth)
    altered = json.loads(json.dumps(original))
    altered["verb"] = {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "x"}}
    with pytest.raises(DeliveryError) as caught:
        send_statements([altered, original, fresh], ralph_lrs.endpoint, ralph_lrs.auth)
    assert original["id"] in str(caught.value)
    assert caught.value.status == 409
    assert (caught.value.delivered, caught.value.already_stored, caught.value.failed) == (1, 0, 1)
    assert _get(ralph_lrs, fresh["id"])["verb"] == fresh["verb"]
    assert _get(ralph_lrs, original["id"])["verb"] == original["verb"]


class _FlakyProxy:
    """A loopback HTTP server failing the first ``failures`` requests with 503, then
    forwarding everything to the real LRS."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                proxy.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.requests <= proxy.failures:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "x-experience-api-version")
                }
                request = urllib.request.Request(  # noqa: S310 - the loopback LRS
                    upstream + self.path.removeprefix("/xAPI/statements"),
                    data=body,
                    method=self.command,
                    headers=headers,
                )
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with opener.open(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/xAPI/statements"

    def __enter__(self) -> _FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def flaky(ralph_lrs: TemporaryRalphLRS) -> Iterator[_FlakyProxy]:
    """Two 503 answers in front of the real LRS."""
    with _FlakyProxy(ralph_lrs.endpoint, failures=2) as proxy:
        yield proxy


def test_server_errors_are_retried_with_backoff(
    ralph_lrs: TemporaryRalphLRS, flaky: _FlakyProxy
) -> None:
    """503, 503, then success: two retries waiting backoff, then 2 x backoff."""
    waits: list[float] = []
    statements = _statements(3)
    report = send_statements(
        statements, flaky.endpoint, ralph_lrs.auth, retries=3, backoff=0.25, sleep=waits.append
    )
    assert waits == [0.25, 0.5]
    assert (report.retries, report.delivered) == (2, 3)
    assert flaky.requests == 3
    assert _get(ralph_lrs, statements[0]["id"])["id"] == statements[0]["id"]


def test_retries_run_out(ralph_lrs: TemporaryRalphLRS) -> None:
    """Still 503 after every retry: DeliveryError with the last status; nothing stored."""
    waits: list[float] = []
    statements = _statements(2)
    with (
        _FlakyProxy(ralph_lrs.endpoint, failures=10) as proxy,
        pytest.raises(DeliveryError) as caught,
    ):
        send_statements(
            statements, proxy.endpoint, ralph_lrs.auth, retries=2, backoff=1, sleep=waits.append
        )
    assert caught.value.status == 503
    assert waits == [1, 2]
    assert _find(ralph_lrs, statements[0]["id"]) is None


def test_connection_errors_are_retried_then_reported() -> None:
    """Nothing listening: every attempt fails to connect, then DeliveryError (status None)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(DeliveryError) as caught:
        send_statements(
            _statements(1),
            f"http://127.0.0.1:{port}/xAPI/statements",
            ("u", "p"),
            retries=3,
            backoff=0.1,
            sleep=waits.append,
        )
    assert caught.value.status is None
    assert waits == pytest.approx([0.1, 0.2, 0.4])
    assert isinstance(caught.value, ConnectionError)


def test_refusals_are_typed(ralph_lrs: TemporaryRalphLRS) -> None:
    """Wrong credentials (401) and an invalid statement (422) are DeliveryErrors with the
    status and the counts, never retried; a statement without id is refused before sending."""
    waits: list[float] = []
    with pytest.raises(DeliveryError) as caught:
        send_statements(_statements(2), ralph_lrs.endpoint, ("nobody", "wrong"), sleep=waits.append)
    assert caught.value.status == 401
    assert "credentials" in str(caught.value)
    assert (caught.value.delivered, caught.value.failed) == (0, 2)
    assert waits == []  # a 4xx is final
    broken = _statements(1)[0]
    del broken["actor"]
    with pytest.raises(DeliveryError) as caught:
        send_statements([broken], ralph_lrs.endpoint, ralph_lrs.auth, sleep=waits.append)
    assert caught.value.status in (400, 422)
    assert waits == []
    anonymous = _statements(1)[0]
    del anonymous["id"]
    with pytest.raises(ValidationError):
        send_statements([anonymous], ralph_lrs.endpoint, ralph_lrs.auth)


def test_bad_options_are_refused() -> None:
    """A non-http endpoint or a zero batch size is a configuration error."""
    with pytest.raises(ConfigurationError):
        send_statements([], "ftp://127.0.0.1/xAPI/statements", None)
    with pytest.raises(ConfigurationError):
        send_statements([], "http://127.0.0.1/xAPI/statements", None, batch_size=0)


def test_a_repeated_id_saying_something_else_is_not_a_duplicate(
    ralph_lrs: TemporaryRalphLRS,
) -> None:
    """The second of two statements under one id, with another verb, was dropped as a
    duplicate and the report said every statement was delivered. It is compared with what
    the LRS holds: a conflict, failed, named in the error; true repeats stay duplicates."""
    first, second = _statements(2)
    altered = json.loads(json.dumps(first))
    altered["verb"] = {"id": "http://adlnet.gov/expapi/verbs/failed", "display": {"en-US": "x"}}
    with pytest.raises(DeliveryError) as caught:
        send_statements([first, second, second, altered], ralph_lrs.endpoint, ralph_lrs.auth)
    error = caught.value
    assert (error.delivered, error.already_stored, error.failed) == (2, 0, 1)
    assert first["id"] in str(error)
    assert _get(ralph_lrs, first["id"])["verb"] == first["verb"]
