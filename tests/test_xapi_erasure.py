"""Erasure and rectification reach the LRS: end to end against a real Ralph LRS.

The LRS is :class:`TemporaryRalphLRS`: Ralph's API and filesystem backend, with xAPI's
voiding rule applied to queries (a voided statement is listed by no query and returned
only to ``voidedStatementId``), which Ralph's backends leave out.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from learnprivacy import requests as dsr
from learnprivacy.crypto import Keyring
from learnprivacy.export import export_subject
from learnprivacy.export.xapi import (
    LrsRecipient,
    XapiProfile,
    actor_pseudonyms,
    read_statements,
    reissued_id,
    send_statements,
    statements_for,
)
from learnprivacy.records import Certificate, Learner, Progress, ProgressStatus, Score
from learnprivacy.store import Store
from learnprivacy.testing.lrs import TemporaryRalphLRS
from tests import at, receive_request, sample
from tests.test_xapi_delivery import Server, forward
from tests.test_xapi_delivery import servers as servers  # the fixture

pytestmark = pytest.mark.lrs

T = at(2026, 1, 31, 9)
PROFILE = XapiProfile(home_page="https://campus.example.org", platform="Campus")


@attrs.define
class World:
    store: Store
    keyring: Keyring
    book: dsr.RequestBook
    lrs: TemporaryRalphLRS
    ana: str
    bob: str
    export_dir: Path

    def executor(self, recipient: Any) -> dsr.RequestExecutor:
        return dsr.RequestExecutor(
            self.book,
            store=self.store,
            recipients=dsr.Recipients(notifiers={"lrs": recipient}),
            export_dir=self.export_dir,
        )

    def request(self, kind: dsr.RequestType, params: Any = None) -> dsr.SubjectRequest:
        request = receive_request(
            self.book,
            kind,
            learner_id=self.ana,
            received_at=T,
            channel=dsr.Channel.WEB_FORM,
            requester=dsr.Requester.subject("Ana Silva", "ana@example.org"),
            params=params,
        )
        return self.book.verify_identity(
            request, method=dsr.ProofMethod.AUTHENTICATED_SESSION, now=T
        )

    def rectify(
        self, recipient: Any, record_type: str, record_id: str, field: str, value: str
    ) -> dict[str, str]:
        """Rectify one field of Ana's and return what the LRS recipient reported; the
        request must complete."""
        change = dsr.FieldChange(
            record_type=record_type, record_id=record_id, field=field, value=value
        )
        params = dsr.RectificationParams(changes=(change,))
        done = self.executor(recipient).execute(
            self.request(dsr.RequestType.RECTIFICATION, params), now=T
        )
        assert done.state is dsr.RequestState.COMPLETED, done.failure
        [outcome] = [n for s in done.steps for n in s.notifications]
        return dict(outcome.details)

    def listed(self, learner: str) -> list[dict[str, Any]]:
        """What the LRS lists with the learner's actor (as the live push named it)."""
        name = actor_pseudonyms(self.keyring, PROFILE).pseudonym(learner)
        return list(
            read_statements(
                self.lrs.endpoint, self.lrs.auth, agent=PROFILE.actor(name), page_size=3
            )
        )


def _records(learner: str) -> list[Any]:
    return [
        sample(
            Learner,
            id=learner,
            username=f"u-{learner}",
            email=f"{learner}@example.org",
            created_at=T - dt.timedelta(days=300),
        ),
        *(
            Progress(
                id=f"{learner}-P{i}",
                learner_id=learner,
                course_id=f"C{i % 2}",
                status=(ProgressStatus.PASSED, ProgressStatus.IN_PROGRESS)[i % 2],
                recorded_at=T - dt.timedelta(days=10 - i, hours=3),
                score=Score(raw=12 + i, min=0, max=20),
            )
            for i in range(4)
        ),
        Certificate(
            id=f"{learner}-C",
            learner_id=learner,
            course_id="C0",
            issued_at=T - dt.timedelta(days=2),
            verification_code="SECRET-CODE",
        ),
    ]


@pytest.fixture
def world(tmp_path: Path, ralph_lrs: TemporaryRalphLRS) -> Iterator[World]:
    """Two learners in a store, their statements pushed live with the keyring object the
    LMS passed to Store (not ``store.keyring``)."""
    keyring = Keyring.generate()
    store = Store("sqlite://", keyring=keyring, clock=lambda: T)
    run = uuid.uuid4().hex[:8]
    ana, bob = f"ana-{run}", f"bob-{run}"
    store.add_all(_records(ana) + _records(bob), now=T)
    # Offsets as the LMS wrote them live (+01:00): the store gives them back in UTC.
    live = [
        attrs.evolve(r, recorded_at=r.recorded_at.astimezone(dt.timezone(dt.timedelta(hours=1))))
        if isinstance(r, Progress)
        else r
        for r in _records(ana) + _records(bob)
    ]
    pushed = list(
        statements_for(live, pseudonyms=actor_pseudonyms(keyring, PROFILE), profile=PROFILE, now=T)
    )
    report = send_statements(pushed, ralph_lrs.endpoint, ralph_lrs.auth)
    assert (report.delivered, report.failed) == (10, 0)
    book = dsr.RequestBook(audit_sink=dsr.store_audit_sink(store))
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    yield World(store, keyring, book, ralph_lrs, ana, bob, export_dir)
    store.close()


def test_a_live_push_and_an_export_are_one_statement_per_event(
    world: World, tmp_path: Path
) -> None:
    """The export of the store (UTC timestamps, store.keyring) names the same statements
    as the live push (+01:00, the keyring object passed to Store): all already stored."""
    out = tmp_path / "ana.zip"
    export_subject(world.store, world.ana, out, now=T, xapi_profile=PROFILE)
    exported = list(read_statements(out))
    assert len(exported) == 5
    report = send_statements(exported, world.lrs.endpoint, world.lrs.auth)
    assert (report.delivered, report.already_stored, report.failed) == (0, 5, 0)
    assert len(world.listed(world.ana)) == 5


def test_erasure_voids_the_learners_statements_and_reports_it(world: World) -> None:
    """The erasure request voids Ana's 5 statements in the LRS (no query lists them, each
    answers to voidedStatementId), keeps Bob's, and records per LRS what was voided in
    the request's report, its history and the store's audit log."""
    before = world.listed(world.ana)
    assert len(before) == 5
    recipient = LrsRecipient(world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE)
    done = world.executor(recipient).execute(world.request(dsr.RequestType.ERASURE), now=T)
    assert done.state is dsr.RequestState.COMPLETED, done.failure
    [outcome] = [n for s in done.steps for n in s.notifications]
    assert outcome.status.value == "sent"
    assert outcome.details["found"] == "5"
    assert outcome.details["voided"] == "5"
    assert outcome.details["not_voided"] == "0"
    assert outcome.details["still_listed"] == "0"
    assert outcome.details["deleted"] == "0"
    # Checked independently of the recipient: nothing listed, each one voided.
    assert world.listed(world.ana) == []
    assert len(world.listed(world.bob)) == 5
    for statement in before:
        voided = list(
            read_statements(
                world.lrs.endpoint + f"?voidedStatementId={statement['id']}", world.lrs.auth
            )
        )
        assert [v["id"] for v in voided] == [statement["id"]]
    # The history (audit) and the store's audit log say it.
    facts = [e.detail for e in world.book.history(done) if e.event == "step_completed"]
    assert any(d.get("fact.lrs.voided") == "5" for d in facts)
    entries = [e for e in world.store.audit if e.action == "notify_recipient"]
    assert entries[-1].details["voided"] == "5"
    assert entries[-1].details["location"] == "lrs"
    dumped = json.dumps([attrs.asdict(e) for e in world.store.audit], default=str)
    assert f"{world.ana}@example.org" not in dumped
    assert "SECRET-CODE" not in dumped
    # The letter to the learner says it, in French and in English.
    from learnprivacy import Controller
    from learnprivacy.requests import render_letter

    controller = Controller(name="Campus", contact="dpo@campus.example")
    french = render_letter(done, controller, now=T, language="fr")
    assert "lrs : " in french
    assert "5 traces d’apprentissage sur 5 retirées" in french
    english = render_letter(done, controller, now=T, language="en")
    assert "5 of 5 learning records withdrawn" in english
    # Notifying again voids nothing twice.
    again = recipient(
        dsr.Notification(
            location="lrs",
            component="recipients",
            operation="erasure",
            reference=actor_pseudonyms(world.store, PROFILE).pseudonym(world.ana),
            request_id=done.id,
            at=T,
        )
    )
    assert again["found"] == "0"


def test_an_lrs_that_refuses_voiding_fails_the_request_with_the_counts(
    world: World, servers: list[Server]
) -> None:
    """The LRS lists the statements but refuses the voiding POSTs (403, a read-only
    user): the request FAILS (never COMPLETED), the failure and the audit log say 0 of 5
    voided; a retry with a working recipient voids them and completes."""
    lrs = world.lrs

    def read_only(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if method != "GET":
            return 403, {}, b'{"detail": "read only"}'
        return forward(lrs, method, path, headers, body)

    servers.append(Server(read_only))
    broken = LrsRecipient(servers[0].url(), auth=lrs.auth, profile=PROFILE, retries=0)
    failed = world.executor(broken).execute(world.request(dsr.RequestType.ERASURE), now=T)
    assert failed.state is dsr.RequestState.FAILED
    assert failed.failure is not None
    assert "not_voided=5" in failed.failure.error
    assert " voided=0" in failed.failure.error
    entries = [e for e in world.store.audit if e.action == "notify_recipient"]
    assert entries[-1].outcome == "failed"
    assert entries[-1].details["not_voided"] == "5"
    assert len(world.listed(world.ana)) == 5
    retry = world.book.retry(failed, now=T)
    retry = world.book.verify_identity(retry, method=dsr.ProofMethod.AUTHENTICATED_SESSION, now=T)
    good = LrsRecipient(lrs.endpoint, auth=lrs.auth, profile=PROFILE)
    done = world.executor(good).execute(retry, now=T)
    assert done.state is dsr.RequestState.COMPLETED, done.failure
    assert world.listed(world.ana) == []


def test_rectification_brings_the_lrs_in_line_with_the_store(world: World) -> None:
    """A rectified e-mail address is in no statement: nothing voided. A rectified status
    (passed -> failed): exactly the stale statement is voided and the corrected one sent;
    the unchanged statements stay as they were."""
    recipient = LrsRecipient(
        world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE, store=world.store
    )
    details = world.rectify(recipient, "Learner", world.ana, "email", "a@b.org")
    assert details["found"] == "0"
    before = {s["id"]: s for s in world.listed(world.ana)}
    assert len(before) == 5
    details = world.rectify(recipient, "Progress", f"{world.ana}-P0", "status", "failed")
    assert (details["found"], details["voided"]) == ("1", "1")
    assert details["sent"] == "1"
    after = {s["id"]: s for s in world.listed(world.ana)}
    assert len(after) == 5
    [gone] = set(before) - set(after)
    [new] = set(after) - set(before)
    assert before[gone]["verb"]["id"].endswith("/passed")
    assert after[new]["verb"]["id"].endswith("/failed")
    assert after[new]["object"]["id"] == before[gone]["object"]["id"]


def test_rectification_without_the_store_voids_the_record_types(world: World) -> None:
    """Without the store the recipient cannot tell stale from current: it voids every
    statement of the rectified record type (the certificate's stays) and sends nothing."""
    recipient = LrsRecipient(world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE)
    details = world.rectify(recipient, "Progress", f"{world.ana}-P1", "status", "completed")
    assert (details["voided"], details["sent"]) == ("4", "0")
    left = world.listed(world.ana)
    assert [s["verb"]["id"] for s in left] == ["http://id.tincanapi.com/verb/earned"]


def test_an_access_export_includes_what_the_lrs_holds(world: World) -> None:
    """The access package lists the statements the registered LRS holds about Ana."""
    recipient = LrsRecipient(world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE)
    done = world.executor(recipient).execute(world.request(dsr.RequestType.ACCESS), now=T)
    assert done.state is dsr.RequestState.COMPLETED, done.failure
    [artifact] = [s.artifact for s in done.steps if s.artifact]
    with zipfile.ZipFile(str(artifact)) as archive:
        rows = json.loads(archive.read("data/lrs/LrsStatement.json"))
    records = rows["records"] if isinstance(rows, dict) else rows
    assert len(records) == 5
    assert {r["lrs"] for r in records} == {"127.0.0.1"}


def test_the_keyring_passed_to_store_names_actors_as_the_store_does(world: World) -> None:
    """Store(keyring=k) binds a new keyring to its key table; ``k`` itself now derives the
    store's pseudonyms and blind indexes (before, live pushes made with ``k`` named the
    learner differently from exports and erasure notifications)."""
    assert world.keyring is not world.store.keyring
    for domain in (PROFILE.pseudonym_domain, "employer-report"):
        mine = world.keyring.pseudonymiser(domain).pseudonym(world.ana)
        assert mine == world.store.keyring.pseudonymiser(domain).pseudonym(world.ana)
    assert world.keyring.blind_index().compute(
        "ana@example.org", field="Learner.email"
    ) == world.store.keyring.blind_index().compute("ana@example.org", field="Learner.email")


def test_an_executor_with_only_a_manager_names_the_learner_as_the_store_does(
    world: World,
) -> None:
    """A RequestExecutor given a PrivacyManager built with ``store=`` (no store of its
    own) still derives the LRS reference from that store's keyring, and voids."""
    from learnprivacy.providers import PrivacyManager

    manager = PrivacyManager([], store=world.store, discover=False, timeout=None)
    recipient = LrsRecipient(world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE)
    executor = dsr.RequestExecutor(
        world.book, manager=manager, recipients=dsr.Recipients(notifiers={"lrs": recipient})
    )
    done = executor.execute(world.request(dsr.RequestType.ERASURE), now=T)
    assert done.state is dsr.RequestState.COMPLETED, done.failure
    [outcome] = [n for s in done.steps for n in s.notifications]
    assert outcome.details["voided"] == "5"
    assert world.listed(world.ana) == []
    assert len(world.listed(world.bob)) == 5


def test_an_unreachable_lrs_fails_the_request_and_the_audit_log_says_so(world: World) -> None:
    """Nothing listens at the LRS's address: the erasure request FAILS (the store's part
    is done, the LRS's is not), and the audit log records that nothing was voided."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = LrsRecipient(
        f"http://127.0.0.1:{port}/xAPI/statements", auth=world.lrs.auth, profile=PROFILE, retries=0
    )
    failed = world.executor(gone).execute(world.request(dsr.RequestType.ERASURE), now=T)
    assert failed.state is dsr.RequestState.FAILED
    assert failed.failure is not None
    assert "voided=0" in failed.failure.error
    entries = [e for e in world.store.audit if e.action == "notify_recipient"]
    assert entries[-1].outcome == "failed"
    assert entries[-1].details["voided"] == "0"
    assert len(world.listed(world.ana)) == 5


def _again(world: World) -> dict[str, str]:
    """The LRS recipient notified again of Ana's status rectification (a retry)."""
    return LrsRecipient(
        world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE, store=world.store
    )(
        dsr.Notification(
            location="lrs",
            component="recipients",
            operation="rectification",
            reference=actor_pseudonyms(world.store, PROFILE).pseudonym(world.ana),
            request_id="R-again",
            at=T,
            record_types=("Progress",),
            fields=("status",),
        )
    )


def _live_p0(world: World, untouched: set[str], status: str) -> str:
    """The id of the one live statement about P0: Ana's statements are the untouched
    ones plus exactly one, whose verb says ``status``."""
    listed = {s["id"]: s for s in world.listed(world.ana)}
    assert untouched <= set(listed)
    [p0] = set(listed) - untouched
    assert listed[p0]["verb"]["id"].endswith("/" + status)
    return p0


def test_rectifying_back_and_forth_leaves_one_live_statement(world: World) -> None:
    """passed -> failed -> passed -> failed -> passed. Going back to a value makes the
    statement an earlier rectification voided, which xAPI cannot un-void: it is
    re-issued under the next revision of its id that the LRS does not hold as voided.
    After each request the LRS lists exactly one live statement for P0, with the current
    result (read back before the request completes); notifying again twice voids and
    sends nothing. Before, the second request failed and P0 had no live statement."""
    recipient = LrsRecipient(
        world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE, store=world.store
    )
    original = {s["id"] for s in world.listed(world.ana)}
    lives = []
    for status in ("failed", "passed", "failed", "passed"):
        details = world.rectify(recipient, "Progress", f"{world.ana}-P0", "status", status)
        assert (details["found"], details["voided"], details["sent"]) == ("1", "1", "1")
        assert (details["still_listed"], details["sent_not_listed"]) == ("0", "0")
        if not lives:
            [passed] = original - {s["id"] for s in world.listed(world.ana)}
            untouched = original - {passed}
        lives.append(_live_p0(world, untouched, status))
        for _ in range(2):
            again = _again(world)
            assert (again["found"], again["voided"], again["sent"]) == ("0", "0", "0")
            assert _live_p0(world, untouched, status) == lives[-1]
    failed = lives[0]
    assert lives == [
        failed,
        reissued_id(passed, 1),
        reissued_id(failed, 1),
        reissued_id(passed, 2),
    ]
    # Every earlier one is voided, not merely unlisted.
    for voided in (passed, *lives[:-1]):
        held = read_statements(world.lrs.endpoint + f"?voidedStatementId={voided}", world.lrs.auth)
        assert [s["id"] for s in held] == [voided]


def _back_to_passed(world: World, recipient: Any) -> dsr.SubjectRequest:
    """Rectify P0 to failed (directly at the LRS), then request it back to passed."""
    good = LrsRecipient(world.lrs.endpoint, auth=world.lrs.auth, profile=PROFILE, store=world.store)
    world.rectify(good, "Progress", f"{world.ana}-P0", "status", "failed")
    change = dsr.FieldChange(
        record_type="Progress", record_id=f"{world.ana}-P0", field="status", value="passed"
    )
    params = dsr.RectificationParams(changes=(change,))
    return world.executor(recipient).execute(
        world.request(dsr.RequestType.RECTIFICATION, params), now=T
    )


def test_a_crash_after_the_reissue_is_stored_leaves_one_live_statement(
    world: World, servers: list[Server]
) -> None:
    """The re-issued statement reaches the LRS but the reply is lost (the LMS dies
    before it knows): the request fails. Retrying it, then notifying once more, finds
    the re-issued statement listed: nothing is sent twice, one live statement for P0."""
    lrs = world.lrs
    original = {s["id"] for s in world.listed(world.ana)}

    def lost_reply(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        answer = forward(lrs, method, path, headers, body)
        if method == "POST" and b"/passed" in body:
            return 503, {}, b"{}"  # stored, but the LMS never learns it
        return answer

    servers.append(Server(lost_reply))
    broken = LrsRecipient(
        servers[0].url(), auth=lrs.auth, profile=PROFILE, store=world.store, retries=0
    )
    failed = _back_to_passed(world, broken)
    assert failed.state is dsr.RequestState.FAILED
    retry = world.book.retry(failed, now=T)
    retry = world.book.verify_identity(retry, method=dsr.ProofMethod.AUTHENTICATED_SESSION, now=T)
    good = LrsRecipient(lrs.endpoint, auth=lrs.auth, profile=PROFILE, store=world.store)
    done = world.executor(good).execute(retry, now=T)
    assert done.state is dsr.RequestState.COMPLETED, done.failure
    [outcome] = [n for s in done.steps for n in s.notifications]
    assert (outcome.details["voided"], outcome.details["sent"]) == ("0", "0")
    again = _again(world)
    assert (again["found"], again["sent"]) == ("0", "0")
    listed = world.listed(world.ana)
    assert len(listed) == 5
    live = [s for s in listed if s["id"] not in original]
    assert len(live) == 1
    assert live[0]["verb"]["id"].endswith("/passed")


def test_a_corrected_statement_the_lrs_does_not_hold_fails_the_request(
    world: World, servers: list[Server]
) -> None:
    """passed -> failed: the LRS answers the corrected statement's POST with its id
    (stored, it says) but drops it. Before, the request completed with ``sent: 1``; the
    listing is now read back, the corrected statement is not in it, and the request
    fails saying so. Retried against an honest LRS, it completes with one live one."""
    lrs = world.lrs

    def dropping(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if method == "POST" and b"/failed" in body:
            ids = [s["id"] for s in json.loads(body)]
            return 200, {"Content-Type": "application/json"}, json.dumps(ids).encode()
        return forward(lrs, method, path, headers, body)

    servers.append(Server(dropping))
    liar = LrsRecipient(
        servers[0].url(), auth=lrs.auth, profile=PROFILE, store=world.store, retries=0
    )
    change = dsr.FieldChange(
        record_type="Progress", record_id=f"{world.ana}-P0", field="status", value="failed"
    )
    params = dsr.RectificationParams(changes=(change,))
    done = world.executor(liar).execute(world.request(dsr.RequestType.RECTIFICATION, params), now=T)
    assert done.state is dsr.RequestState.FAILED
    assert done.failure is not None
    assert "sent_not_listed=1" in done.failure.error
    assert len(world.listed(world.ana)) == 4  # P0's passed one voided, the failed one dropped
    retry = world.book.retry(done, now=T)
    retry = world.book.verify_identity(retry, method=dsr.ProofMethod.AUTHENTICATED_SESSION, now=T)
    good = LrsRecipient(lrs.endpoint, auth=lrs.auth, profile=PROFILE, store=world.store)
    assert world.executor(good).execute(retry, now=T).state is dsr.RequestState.COMPLETED
    failed = [s for s in world.listed(world.ana) if s["verb"]["id"].endswith("/failed")]
    assert len(failed) == 1


def test_an_empty_page_with_a_more_link_does_not_end_the_listing(
    world: World, servers: list[Server]
) -> None:
    """An LRS that filters a page after paging (voided or hidden statements) may answer a
    page with no statement and a ``more`` link. The listing used to stop there: the
    erasure found nothing, voided nothing, found nothing still listed, and reported the
    learner's five statements withdrawn while the LRS still listed them."""

    def script(method: str, path: str, headers: dict[str, str], body: bytes):
        if method == "GET" and "agent=" in path and "lp_page=2" not in path:
            page = {"statements": [], "more": path + "&lp_page=2"}
            return 200, {"Content-Type": "application/json"}, json.dumps(page).encode()
        return forward(world.lrs, method, path.replace("&lp_page=2", ""), headers, body)

    servers.append(Server(script))
    recipient = LrsRecipient(servers[0].url(), auth=world.lrs.auth, profile=PROFILE)
    reference = actor_pseudonyms(world.keyring, PROFILE).pseudonym(world.ana)
    erasure = {"location": "lrs", "component": "recipients", "operation": "erasure"}
    notification = dsr.Notification(**erasure, reference=reference, request_id="R1", at=T)
    details = recipient(notification)
    assert (details["found"], details["voided"]) == ("5", "5")
    assert world.listed(world.ana) == []


def test_an_lrs_that_still_lists_voided_statements_fails_the_erasure(
    world: World, servers: list[Server]
) -> None:
    """Stock Ralph stores voiding statements but keeps listing the statements they void.
    Before, the erasure completed and the letter told the learner their learning records
    were withdrawn while any query still returned them; the request now fails with the
    counts (``still_listed=5``), so the controller knows the LRS still publishes them."""
    listings: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def script(method: str, path: str, headers: dict[str, str], body: bytes):
        if method == "GET" and "agent=" in path:
            # The first answer to each listing is replayed: voiding changes nothing.
            if path not in listings:
                listings[path] = forward(world.lrs, method, path, headers, body)
            return listings[path]
        return forward(world.lrs, method, path, headers, body)

    servers.append(Server(script))
    recipient = LrsRecipient(servers[0].url(), auth=world.lrs.auth, profile=PROFILE)
    done = world.executor(recipient).execute(world.request(dsr.RequestType.ERASURE), now=T)
    assert done.state is dsr.RequestState.FAILED
    assert done.failure is not None
    assert "still_listed=5" in done.failure.error
    assert "voided=5" in done.failure.error
