"""Delivery that cannot lie: redirects, other origins, malformed replies, part-way stops.

Each test puts a small loopback HTTP server (scripted answers, every request recorded) in
front of, or instead of, the real Ralph LRS, and checks what the LRS really holds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import ConfigurationError, ConfigurationWarning, DeliveryError
from learnprivacy.export.xapi import (
    LrsRecipient,
    XapiProfile,
    read_statements,
    send_statements,
    statements_for,
)
from learnprivacy.records import Progress, ProgressStatus
from learnprivacy.testing.lrs import TemporaryRalphLRS
from tests import at

pytestmark = pytest.mark.lrs

T0 = at(2025, 3, 14, 9, 30)
PROFILE = XapiProfile(home_page="https://lms.example.org")

# (status, headers, body) answered to (method, path, headers, body)
Script = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def _statements(count: int, *, profile: XapiProfile = PROFILE) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:12]
    records = [
        Progress(
            id=f"P{i}-{run}",
            learner_id="L1",
            course_id="C1",
            status=ProgressStatus.COMPLETED,
            recorded_at=T0 + dt.timedelta(minutes=i),
        )
        for i in range(count)
    ]
    names = Pseudonymiser(b"k" * 32, domain=profile.pseudonym_domain)
    return list(statements_for(records, pseudonyms=names, profile=profile))


class Server:
    """A loopback HTTP server answering by ``script`` and recording every request."""

    def __init__(self, script: Script, host: str = "127.0.0.1") -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((self.command, self.path, headers, body))
                status, out_headers, payload = script(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/xAPI/statements"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


def forward(lrs: TemporaryRalphLRS, method: str, path: str, headers: dict[str, str], body: bytes):
    keep = {
        k: v
        for k, v in headers.items()
        if k in ("authorization", "content-type", "x-experience-api-version")
    }
    query = path.partition("?")[2]
    request = urllib.request.Request(  # noqa: S310 - the loopback LRS
        lrs.endpoint + (f"?{query}" if query else ""),
        data=body or None,
        method=method,
        headers=keep,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, {"Content-Type": "application/json"}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {"Content-Type": "application/json"}, exc.read()


def _count(lrs: TemporaryRalphLRS, statements: list[dict[str, Any]]) -> int:
    """How many of ``statements`` the LRS holds (every page of a full query)."""
    ids = {s["id"] for s in read_statements(lrs.endpoint, lrs.auth, page_size=500)}
    return sum(1 for s in statements if s["id"] in ids)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_post_is_not_followed_and_not_counted(
    ralph_lrs: TemporaryRalphLRS, servers: list[Server], status: int
) -> None:
    """The http -> https style redirect: the old sender counted 49 already stored while
    the LRS held 0 of 50. Now: DeliveryError, 0 delivered, 50 failed, LRS holds 0."""
    target = ralph_lrs.endpoint
    servers.append(Server(lambda m, p, h, b: (status, {"Location": target}, b"")))
    proxy = servers[0]
    statements = _statements(50)
    with pytest.raises(DeliveryError) as caught:
        send_statements(statements, proxy.url(), ralph_lrs.auth, batch_size=100)
    assert caught.value.status == status
    assert (caught.value.delivered, caught.value.already_stored, caught.value.failed) == (0, 0, 50)
    assert [r[0] for r in proxy.requests] == ["POST"]  # no GET replay, no retry
    assert _count(ralph_lrs, statements) == 0


def test_credentials_never_go_to_another_origin(servers: list[Server]) -> None:
    """A GET redirected to another origin, and a ``more`` link to another origin, are
    refused before the other server receives anything (the old sender sent Basic
    credentials along a 302 to another host)."""
    elsewhere = Server(lambda m, p, h, b: (200, {}, b'{"statements": []}'))
    servers.append(elsewhere)
    other = elsewhere.url(host="localhost")  # another host name: another origin
    redirecting = Server(lambda m, p, h, b: (302, {"Location": other}, b""))
    servers.append(redirecting)
    with pytest.raises(DeliveryError):
        list(read_statements(redirecting.url(), ("user", "secret")))
    page = json.dumps({"statements": [_statements(1)[0]], "more": other}).encode()
    paging = Server(lambda m, p, h, b: (200, {"Content-Type": "application/json"}, page))
    servers.append(paging)
    with pytest.raises(DeliveryError):
        list(read_statements(paging.url(), ("user", "secret")))
    assert elsewhere.requests == []
    # Within the origin a GET redirect is followed, with the credentials.
    hops = Server(
        lambda m, p, h, b: (
            (302, {"Location": "/final"}, b"")
            if p.startswith("/xAPI")
            else (200, {}, b'{"statements": []}')
        )
    )
    servers.append(hops)
    assert list(read_statements(hops.url(), ("user", "secret"))) == []
    assert [r[1] for r in hops.requests] == ["/xAPI/statements", "/final"]
    assert all(r[2].get("authorization", "").startswith("Basic ") for r in hops.requests)


@pytest.mark.parametrize(
    "reply",
    [
        b"{}",  # not a list
        b'"ok"',
        b"[1, 2]",  # not ids
        b'["not-a-uuid"]',
        # An id that was not sent (fixed, so that parallel test runs collect the same ids).
        json.dumps([str(uuid.UUID(int=0x5EED))]).encode(),
        b"<html>moved</html>",
    ],
)
def test_a_reply_of_the_wrong_shape_is_not_a_delivery(servers: list[Server], reply: bytes) -> None:
    """A 200 whose body is not the list of the ids sent counts nothing as delivered."""
    servers.append(Server(lambda m, p, h, b: (200, {"Content-Type": "application/json"}, reply)))
    with pytest.raises(DeliveryError) as caught:
        send_statements(_statements(3), servers[0].url(), None, retries=0)
    assert (caught.value.delivered, caught.value.already_stored, caught.value.failed) == (0, 0, 3)
    assert caught.value.status == 200


def test_a_repeated_id_in_the_reply_is_refused(servers: list[Server]) -> None:
    """Each id at most once: a reply listing one id twice is malformed."""
    statements = _statements(2)
    reply = json.dumps([statements[0]["id"], statements[0]["id"]]).encode()
    servers.append(Server(lambda m, p, h, b: (200, {}, reply)))
    with pytest.raises(DeliveryError):
        send_statements(statements, servers[0].url(), None, retries=0)


def test_stopping_part_way_says_exactly_how_far_it_got(
    ralph_lrs: TemporaryRalphLRS, servers: list[Server]
) -> None:
    """Three batches reach the LRS, then it answers 503 for good: the error carries
    delivered=30 (what the LRS holds), failed=10 (the batch being sent)."""
    posts = [0]

    def script(method: str, path: str, headers: dict[str, str], body: bytes):
        if method == "POST":
            posts[0] += 1
            if posts[0] > 3:
                return 503, {}, b""
        return forward(ralph_lrs, method, path, headers, body)

    servers.append(Server(script))
    statements = _statements(60)
    with pytest.raises(DeliveryError) as caught:
        send_statements(
            statements,
            servers[0].url(),
            ralph_lrs.auth,
            batch_size=10,
            retries=2,
            sleep=lambda s: None,
        )
    error = caught.value
    assert (error.delivered, error.already_stored, error.failed) == (30, 0, 10)
    assert error.status == 503
    assert _count(ralph_lrs, statements) == 30
    # Sending everything again completes the job, counting exactly.
    report = send_statements(statements, ralph_lrs.endpoint, ralph_lrs.auth, batch_size=10)
    assert (report.delivered, report.already_stored, report.failed) == (30, 30, 0)


def test_4xx_answers_are_never_retried(servers: list[Server]) -> None:
    """429 and 408 are 4xx: final, not retried; 5xx are retried."""
    for status in (408, 429, 400):
        server = Server(lambda m, p, h, b, status=status: (status, {}, b""))
        servers.append(server)
        waits: list[float] = []
        with pytest.raises(DeliveryError) as caught:
            send_statements(_statements(1), server.url(), None, retries=3, sleep=waits.append)
        assert caught.value.status == status
        assert waits == []
        assert len(server.requests) == 1
    flaky = Server(lambda m, p, h, b: (502, {}, b""))
    servers.append(flaky)
    waits = []
    with pytest.raises(DeliveryError):
        send_statements(
            _statements(1), flaky.url(), None, retries=2, backoff=0.5, sleep=waits.append
        )
    assert waits == [0.5, 1.0]
    assert len(flaky.requests) == 3


def test_the_version_header_follows_the_profile(servers: list[Server]) -> None:
    """xAPI 2.0 output sends X-Experience-API-Version: 2.0.0."""
    statements = _statements(
        1, profile=XapiProfile(home_page="https://lms.example.org", version="2.0.0")
    )
    reply = json.dumps([statements[0]["id"]]).encode()
    servers.append(Server(lambda m, p, h, b: (200, {}, reply)))
    report = send_statements(statements, servers[0].url(), None, version="2.0.0")
    assert report.delivered == 1
    assert servers[0].requests[0][2]["x-experience-api-version"] == "2.0.0"
    assert "version" not in json.loads(servers[0].requests[0][3])[0]


def test_the_placeholder_home_page_warns(servers: list[Server]) -> None:
    """Statements under https://lms.invalid are sent, with a ConfigurationWarning."""
    statements = _statements(1, profile=XapiProfile())
    reply = json.dumps([statements[0]["id"]]).encode()
    servers.append(Server(lambda m, p, h, b: (200, {}, reply)))
    with pytest.warns(ConfigurationWarning):
        send_statements(statements, servers[0].url(), None)


@pytest.mark.parametrize(
    "answer",
    [(200, b"[]"), (204, b"")],
    ids=["200-empty-list", "204"],
)
def test_statements_an_lrs_claims_to_hold_are_read_back(
    servers: list[Server], answer: tuple[int, bytes]
) -> None:
    """A reply that lists nothing as stored (or a 204) reads as "already held": each such
    statement is asked for by id. An LRS that dropped them (404) fails the call, none of
    them counted as stored. Before, all three were reported ``already_stored``."""
    status, body = answer

    def script(method: str, path: str, headers: dict[str, str], payload: bytes):
        if method == "POST":
            return status, {"Content-Type": "application/json"}, body
        return 404, {"Content-Type": "application/json"}, b"{}"

    servers.append(Server(script))
    with pytest.raises(DeliveryError) as caught:
        send_statements(_statements(3), servers[0].url(), None, retries=0)
    error = caught.value
    assert (error.delivered, error.already_stored, error.failed) == (0, 0, 3)
    assert "does not hold" in str(error)
    assert [m for m, *_ in servers[0].requests] == ["POST", "GET", "GET", "GET"]


def test_a_partial_list_from_ralph_is_checked_against_ralph(
    ralph_lrs: TemporaryRalphLRS, servers: list[Server]
) -> None:
    """In front of the real Ralph: two statements held, then a batch of four whose reply
    lists the two new ones. The two left out are read back from Ralph and count as
    already stored; a proxy that drops a new statement and lists only the other is
    caught."""
    statements = _statements(5)
    send_statements(statements[:2], ralph_lrs.endpoint, ralph_lrs.auth)
    report = send_statements(statements[:4], ralph_lrs.endpoint, ralph_lrs.auth)
    assert (report.delivered, report.already_stored, report.failed) == (2, 2, 0)
    dropped = statements[4]["id"]

    def script(method: str, path: str, headers: dict[str, str], payload: bytes):
        if method == "POST":
            kept = [s for s in json.loads(payload) if s["id"] != dropped]
            status, out, reply = forward(
                ralph_lrs, method, path, headers, json.dumps(kept).encode()
            )
            return status, out, reply
        return forward(ralph_lrs, method, path, headers, payload)

    servers.append(Server(script))
    with pytest.raises(DeliveryError) as caught:
        send_statements(statements, servers[0].url(), ralph_lrs.auth, retries=0)
    error = caught.value
    assert (error.delivered, error.already_stored, error.failed) == (0, 4, 1)
    assert _count(ralph_lrs, statements) == 4


@pytest.mark.parametrize("userinfo", ["ana:s3cret@", "ana@", ":s3cret@"])
def test_credentials_in_the_endpoint_url_are_refused(userinfo: str) -> None:
    """``https://user:password@host/...`` was accepted, and ``repr(LrsRecipient)``, which
    promises never to show credentials, printed the password. Credentials go in ``auth``."""
    endpoint = f"https://{userinfo}lrs.example.org/xAPI/statements"
    for attempt in (
        lambda: LrsRecipient(endpoint),
        lambda: send_statements(_statements(1), endpoint, None, retries=0),
        lambda: list(read_statements(endpoint, None)),
    ):
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        assert "s3cret" not in str(caught.value)
        assert "ana" not in str(caught.value)
