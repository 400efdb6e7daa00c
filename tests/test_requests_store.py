"""End to end: every request type on a real Store (SQLite file), with the request book in
the same database, Art. 19 notifications and the store's audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import text

from learnprivacy import Action, Controller, LawfulBasis
from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import RestrictedRecordError
from learnprivacy.export import read_package
from learnprivacy.providers import (
    ApprovedContextList,
    MetadataCollection,
    PrivacyManager,
)
from learnprivacy.providers.writer import ContentWriter
from learnprivacy.requests import (
    Channel,
    DeathAction,
    Executor,
    FieldChange,
    Notification,
    ObjectionParams,
    PostMortemDirective,
    ProofMethod,
    Recipients,
    RectificationParams,
    RequestBook,
    Requester,
    RequestExecutor,
    RequestState,
    RequestType,
    RestrictionGrounds,
    RestrictionParams,
    SubjectRequest,
    WithdrawConsentParams,
    render_letter,
    store_audit_sink,
)
from learnprivacy.requests._executor import ExecutorNotice
from learnprivacy.requests._outcomes import NotificationStatus
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.store import Store
from tests import (
    UserContextProvider,
    account,
    days,
    names,
    paid_and_logged_in,
    receive_request,
    record_of,
    sample,
)

UTC = dt.UTC
T = dt.datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
DEATH_CERT = ProofMethod.DEATH_CERTIFICATE_SIGHTED
EMAIL = "ana.silva@example.org"


class EmployerFeed(UserContextProvider):
    """A provider holding nothing itself but sending progress to the employer."""

    component = "employer_feed"

    def __init__(self) -> None:
        self.broken = False

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Declares the employer as an external location."""
        return collection.add_external_location_link(
            "employer", {"progress": "Course progress"}, "Progress reports to the employer"
        )

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Nothing kept locally."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Drops the subscription, unless the feed's database is down."""
        if self.broken:
            raise ConnectionError("feed database down")


@attrs.define
class World:
    """A store with two learners, the book in the same database, and the executor."""

    store: Store
    book: RequestBook
    executor: RequestExecutor
    feed: EmployerFeed
    sent: list[Notification]
    export_dir: Path

    def request(self, kind: RequestType, params: Any = None, learner: str = "L1") -> SubjectRequest:
        """A request received at T from a logged-in learner."""
        request = receive_request(
            self.book,
            kind,
            learner_id=learner,
            received_at=T,
            channel=Channel.WEB_FORM,
            requester=Requester.subject("Ana Silva", EMAIL),
            params=params,
        )
        return self.book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=T)

    def run(self, kind: RequestType, params: Any = None, learner: str = "L1") -> SubjectRequest:
        """Receive and execute a request."""
        return self.executor.execute(self.request(kind, params, learner), now=T)


def records(learner: str, email: str) -> list[Any]:
    """A learner with progress (contract and consent), an invoice, a consent, a login."""
    return [
        account(learner, email=email, created_at=T - days(400)),
        record_of(learner, rec.Progress, "P1", recorded_at=T - days(30)),
        record_of(
            learner,
            rec.Progress,
            "P2",
            course_id="C2",
            status=rec.ProgressStatus.IN_PROGRESS,
            recorded_at=T - days(5),
            basis=LawfulBasis.CONSENT,
        ),
        record_of(learner, rec.Consent, "C1", purpose="learning-tracking", given_at=T - days(60)),
        *paid_and_logged_in(learner, T),
    ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh SQLite store with learners L1 (Ana) and L2 (Bob), wired to a request book."""
    store = Store("sqlite://", keyring=Keyring.generate(), clock=lambda: T)
    store.add_all(records("L1", EMAIL) + records("L2", "bob@example.org"), now=T)
    book = RequestBook(SQLBackend(store, cipher=store.cipher), audit_sink=store_audit_sink(store))
    feed = EmployerFeed()
    manager = PrivacyManager([feed], store=store, discover=False, timeout=None)
    sent: list[Notification] = []
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    executor = RequestExecutor(
        book,
        store=store,
        manager=manager,
        recipients=Recipients(pseudonym_key=b"r" * 32, notifiers={"employer": sent.append}),
        export_dir=export_dir,
        export_key=b"e" * 32,
    )
    yield World(store, book, executor, feed, sent, export_dir)
    store.close()


def outcomes(request: SubjectRequest) -> dict[str, tuple[Action, str]]:
    """Record id -> (action, article)."""
    return {o.record_id: (o.action, o.article) for o in request.record_outcomes}


def assert_no_personal_values_in_audit(world: World) -> None:
    """Neither the store's audit log nor the request histories hold a personal value."""
    assert world.store.audit.verify()
    dumped = json.dumps([attrs.asdict(e) for e in world.store.audit], default=str)
    for request in world.book.requests():
        assert world.book.verify(request)
        dumped += json.dumps([e.to_dict() for e in world.book.history(request)])
    for value in (
        "Ana",
        "Silva",
        EMAIL,
        "192.0.2.7",
        "rue de la Paix",
        "ana.new",
        "Dupont",
        "frère",
    ):
        assert not names(dumped, value), value


# -- access and portability --------------------------------------------------------------


def test_access_produces_a_verified_package(world: World) -> None:
    """ACCESS writes the whole package; the recorded SHA-256 is the archive's."""
    request = world.run(RequestType.ACCESS)
    assert request.state is RequestState.COMPLETED
    step = request.step("export")
    assert step is not None
    assert step.artifact is not None
    archive = Path(step.artifact)
    assert step.facts["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    package = read_package(archive)
    assert package.scope == "access"
    types = {type(r).__name__ for r in package.records()}
    assert {"Learner", "Progress", "Invoice", "Consent", "AccessEvent"} <= types
    assert all(getattr(r, "learner_id", r.id) == "L1" for r in package.records())
    letter = render_letter(request, Controller(name="Acme", contact="dpo@acme.example"), now=T)
    assert step.facts["sha256"] in letter
    assert_no_personal_values_in_audit(world)


def test_portability_leaves_out_legal_obligation_records(world: World) -> None:
    """PORTABILITY exports consent and contract data only (no invoice, no security log)."""
    request = world.run(RequestType.PORTABILITY)
    step = request.step("export")
    assert step is not None
    assert step.artifact is not None
    types = {type(r).__name__ for r in read_package(step.artifact).records()}
    assert "Invoice" not in types
    assert "AccessEvent" not in types
    assert "Learner" in types


def test_access_for_unknown_learner_answers_no_data(world: World) -> None:
    """Access for someone the store does not know completes with 'no data held'."""
    request = world.run(RequestType.ACCESS, learner="nobody")
    assert request.state is RequestState.COMPLETED
    step = request.step("export")
    assert step is not None
    assert step.artifact is None
    assert step.facts["records"] == "0"
    letter = render_letter(request, Controller(name="Acme", contact="dpo@acme.example"), now=T)
    assert "Nous ne détenons aucune donnée personnelle vous concernant" in letter


# -- erasure -----------------------------------------------------------------------------


def test_erasure_erases_restricts_legal_records_and_notifies(world: World) -> None:
    """ERASURE: erased per Art. 17(1), the invoice restricted per 17(3)(b), employer told."""
    request = world.run(RequestType.ERASURE)
    assert request.state is RequestState.COMPLETED
    result = outcomes(request)
    assert result["L1"] == (Action.ERASE, "GDPR Art. 17(1)")
    assert result["L1-P1"] == (Action.ERASE, "GDPR Art. 17(1)")
    assert result["L1-I1"] == (Action.RESTRICT, "GDPR Art. 17(3)(b)")
    assert world.store.get(rec.Learner, "L1") is None
    with pytest.raises(RestrictedRecordError):
        world.store.get(rec.Invoice, "L1-I1")
    assert world.store.get(rec.Invoice, "L1-I1", include_restricted=True) is not None
    assert len(world.store.records_of("L2")) == 6
    [notification] = world.sent
    assert notification.operation == "erasure"
    assert notification.location == "employer"
    assert "L1" not in json.dumps(attrs.asdict(notification), default=str)
    assert notification.reference == Recipients(pseudonym_key=b"r" * 32).reference("employer", "L1")
    letter = render_letter(
        request, Controller(name="Acme", contact="dpo@acme.example"), now=T, language="en"
    )
    assert "| Invoice L1-I1 | kept, processing restricted | GDPR Art. 17(3)(b) |" in letter
    assert "employer: informed" in letter
    assert_no_personal_values_in_audit(world)
    actions = [(e.action, e.outcome) for e in world.store.audit]
    assert ("erasure_request", "done") in actions
    assert ("subject_request", "completed") in actions


def test_erasure_resumes_after_a_crash_and_still_reports_everything(world: World) -> None:
    """Killed after erasing but before recording: the rerun reports the erased records."""
    from learnprivacy.requests import _steps

    request = world.request(RequestType.ERASURE)
    env = world.executor.env
    request = world.book.record_step(request, _steps.plan_erasure(env, request, T), now=T)
    # The erasure runs, then the process dies before the step is recorded.
    world.store.erase_subject("L1", now=T)
    assert world.book.get(request).state is RequestState.IN_PROGRESS
    done = world.executor.execute(request, now=T)
    assert done.state is RequestState.COMPLETED
    result = outcomes(done)
    assert result["L1"] == (Action.ERASE, "GDPR Art. 17(1)")
    assert result["L1-A1"] == (Action.ERASE, "GDPR Art. 17(1)")
    assert result["L1-I1"][0] is Action.RESTRICT


def test_failing_provider_fails_the_request_and_a_retry_finishes(world: World) -> None:
    """A provider failure: FAILED naming it, never COMPLETED; the retry resumes."""
    world.feed.broken = True
    failed = world.run(RequestType.ERASURE)
    assert failed.state is RequestState.FAILED
    assert failed.failure is not None
    assert failed.failure.component == "employer_feed"
    assert failed.failure.step == "erase_providers"
    assert "feed database down" not in failed.failure.error
    assert world.store.get(rec.Learner, "L1") is None  # the store's part was done
    assert world.sent == []
    assert world.book.overdue(T + dt.timedelta(days=40)) == (failed,)
    world.feed.broken = False
    retry = world.book.retry(failed, now=T)
    finished = world.executor.execute(retry, now=T)
    assert finished.state is RequestState.COMPLETED
    assert [s.name for s in finished.steps] == [
        "plan:erase",
        "erase_store",
        "erase_providers",
        "remove_packages",
        "verify_request_book",
        "notify:employer_feed/employer",
    ]
    assert outcomes(finished)["L1-I1"][0] is Action.RESTRICT
    assert world.book.get(failed).state is RequestState.FAILED
    assert world.book.overdue(T + dt.timedelta(days=40)) == ()


def test_failing_recipient_fails_and_only_the_notification_is_retried(world: World) -> None:
    """A notifier that raises is recorded as a failure; the retry only notifies."""
    calls: list[Notification] = []

    def flaky(notification: Notification) -> None:
        calls.append(notification)
        if len(calls) == 1:
            raise TimeoutError("employer API timeout")

    assert world.executor.env.recipients is not None
    world.executor.env.recipients.register("employer", flaky)
    failed = world.run(RequestType.ERASURE)
    assert failed.state is RequestState.FAILED
    assert failed.failure is not None
    assert failed.failure.component == "employer"
    assert failed.failure.error == "notifier raised TimeoutError"
    finished = world.executor.execute(world.book.retry(failed, now=T), now=T)
    assert finished.state is RequestState.COMPLETED
    assert len(calls) == 2
    assert finished.notifications[0].status is NotificationStatus.SENT


# -- restriction and objection -----------------------------------------------------------


def test_restriction_of_some_record_types(world: World) -> None:
    """RESTRICTION of Progress only: progress leaves normal reads, the rest stays."""
    params = RestrictionParams(
        grounds=RestrictionGrounds.ACCURACY_CONTESTED, record_types=("Progress",)
    )
    request = world.run(RequestType.RESTRICTION, params)
    assert request.state is RequestState.COMPLETED
    assert outcomes(request) == {
        "L1-P1": (Action.RESTRICT, "GDPR Art. 18(1)(a)"),
        "L1-P2": (Action.RESTRICT, "GDPR Art. 18(1)(a)"),
    }
    assert not world.store.query(rec.Progress, id="L1-P1")
    assert world.store.get(rec.Learner, "L1") is not None
    assert world.store.get(rec.Progress, "L2-P1") is not None
    assert world.sent[0].operation == "restriction"


def test_objection_restricts_legitimate_interest_processing(world: World) -> None:
    """OBJECTION to security logging: the flag is set, access events restricted."""
    request = world.run(RequestType.OBJECTION, ObjectionParams(purpose="security-logging"))
    assert request.state is RequestState.COMPLETED
    assert world.book.is_objected("L1", "security-logging")
    assert not world.book.is_objected("L2", "security-logging")
    assert outcomes(request) == {"L1-A1": (Action.UPHOLD_OBJECTION, "GDPR Art. 21(1)")}
    assert not world.store.query(rec.AccessEvent, id="L1-A1")
    assert world.store.get(rec.AccessEvent, "L2-A1") is not None


def test_objection_overridden_by_compelling_grounds(world: World) -> None:
    """With compelling grounds recorded, nothing is restricted and the flag is lifted."""
    request = world.request(RequestType.OBJECTION, ObjectionParams(purpose="security-logging"))
    world.book.record_compelling_grounds(
        request, reasons="An intrusion on the account is under investigation.", now=T
    )
    done = world.executor.execute(request, now=T)
    assert done.state is RequestState.COMPLETED
    assert not world.book.is_objected("L1", "security-logging")
    assert world.store.get(rec.AccessEvent, "L1-A1") is not None
    letter = render_letter(done, Controller(name="Acme", contact="dpo@acme.example"), now=T)
    assert "motifs légitimes et impérieux" in letter
    assert "intrusion on the account is under investigation." in letter


# -- consent withdrawal ------------------------------------------------------------------


def _withdraw_tracking(world: World) -> tuple[SubjectRequest, rec.Consent]:
    """Ana withdraws her learning-tracking consent: the request, completed, and her
    consent record afterwards, withdrawn at ``T``."""
    request = world.run(
        RequestType.WITHDRAW_CONSENT, WithdrawConsentParams(purpose="learning-tracking")
    )
    assert request.state is RequestState.COMPLETED
    consent = world.store.get(rec.Consent, "L1-C1")
    assert consent is not None
    assert consent.withdrawn_at == T
    return request, consent


def test_withdrawing_consent_keeps_proof_and_erases_consent_only_data(world: World) -> None:
    """WITHDRAW_CONSENT: withdrawn_at set (no retroactive effect), consent-based data erased."""
    request, consent = _withdraw_tracking(world)
    assert consent.is_active(T - dt.timedelta(days=1))
    assert not consent.is_active(T)
    assert world.store.get(rec.Progress, "L1-P2", include_restricted=True) is None
    assert world.store.get(rec.Progress, "L1-P1") is not None
    assert world.store.get(rec.Progress, "L2-P2") is not None
    assert outcomes(request) == {
        "L1-C1": (Action.WITHDRAW_CONSENT, "GDPR Art. 7(3)"),
        "L1-P2": (Action.ERASE, "GDPR Art. 17(1)(b)"),
    }
    assert world.sent[0].record_types == ("Progress",)
    assert world.store.audit.verify()
    # Running it again changes nothing (the request is closed; a new one finds no data).
    _withdraw_tracking(world)


def test_withdrawal_erasure_uses_the_store_audit_and_replays_on_a_backup(
    world: World, tmp_path: Path
) -> None:
    """The consent-only data erased on withdrawal goes through Store.erase_records: one
    'erase' entry naming the rule and the row, under the learner's reference, which
    replay_erasures applies again to a backup taken before. Request transitions reach
    the same log through AuditLog.record, under the same reference."""
    backup = tmp_path / "before.db"
    world.store.backup(str(backup))
    world.run(RequestType.WITHDRAW_CONSENT, WithdrawConsentParams(purpose="learning-tracking"))
    ref = world.store.audit.subject_ref("L1")
    [erase] = [e for e in world.store.audit if e.action == "erase"]
    assert erase.record_type == "Progress"
    assert erase.subject_ref == ref
    # Record ids (which spell the learner id) are never in the log: references are.
    assert erase.details["record_refs"] == [world.store.audit.record_ref("Progress", "L1-P2")]
    assert "ids" not in erase.details
    assert erase.details["reason"] == "consent withdrawn (GDPR Art. 17(1)(b))"
    transitions = [e for e in world.store.audit if e.action == "subject_request"]
    assert transitions
    assert {e.subject_ref for e in transitions} == {ref}
    assert ("subject_request", "completed") in [(e.action, e.outcome) for e in transitions]
    master = world.store.keyring.export_master_key()
    with Store(
        f"sqlite:///{backup}",
        keyring=Keyring.from_master_key(master),
        keys=world.store._key_db,
    ) as restored:
        assert restored.get(rec.Progress, "L1-P2") is not None
        report = restored.replay_erasures(world.store.audit, now=T)
        assert report.erased == 1
        assert restored.get(rec.Progress, "L1-P2", include_restricted=True) is None
        assert restored.get(rec.Progress, "L1-P1") is not None


def test_sql_backend_shares_the_store_engine(world: World) -> None:
    """SQLBackend(store) writes through the store's public engine, next to its tables."""
    backend = SQLBackend(world.store)
    assert backend.engine is world.store.engine
    assert backend.engine is world.store._db.engine


# -- rectification -----------------------------------------------------------------------


def test_rectification_reencrypts_and_notifies_field_names(world: World) -> None:
    """RECTIFICATION updates the value (new token), lookups follow, employer told."""
    with world.store._db.engine.connect() as connection:
        before = connection.execute(
            text("SELECT email_token FROM lp_learner WHERE id = 'L1'")
        ).scalar_one()
    changes = [
        FieldChange(
            record_type="Learner", record_id="L1", field="email", value="ana.new@example.org"
        ),
        FieldChange(record_type="Learner", record_id="L1", field="family_name", value="Silva-Roux"),
    ]
    request = world.run(RequestType.RECTIFICATION, RectificationParams(changes=changes))
    assert request.state is RequestState.COMPLETED
    learner = world.store.get(rec.Learner, "L1")
    assert learner is not None
    assert learner.email == "ana.new@example.org"
    assert learner.family_name == "Silva-Roux"
    found = world.store.find_learner(email="ana.new@example.org")
    assert found is not None
    assert found.id == "L1"
    with world.store._db.engine.connect() as connection:
        after = connection.execute(
            text("SELECT email_token FROM lp_learner WHERE id = 'L1'")
        ).scalar_one()
    assert after != before
    assert "ana.new" not in after
    assert outcomes(request) == {"L1": (Action.RECTIFY, "GDPR Art. 16")}
    assert world.sent[0].fields == ("email", "family_name")
    assert_no_personal_values_in_audit(world)


def test_invalid_rectification_fails_with_the_field_and_changes_nothing(world: World) -> None:
    """One bad value: FAILED naming the field, and the valid change is not applied either."""
    changes = [
        FieldChange(record_type="Learner", record_id="L1", field="given_name", value="Anna"),
        FieldChange(record_type="Learner", record_id="L1", field="email", value="not-an-email"),
    ]
    request = world.run(RequestType.RECTIFICATION, RectificationParams(changes=changes))
    assert request.state is RequestState.FAILED
    assert request.failure is not None
    assert "Learner.email" in request.failure.error
    assert "not-an-email" not in request.failure.error
    learner = world.store.get(rec.Learner, "L1")
    assert learner is not None
    assert learner.given_name == "Ana"
    assert world.sent == []


def test_rectifying_another_learners_record_is_refused(world: World) -> None:
    """A change aimed at someone else's record fails as if the record did not exist."""
    change = FieldChange(record_type="Learner", record_id="L2", field="given_name", value="X")
    request = world.run(RequestType.RECTIFICATION, RectificationParams(changes=[change]))
    assert request.state is RequestState.FAILED
    assert request.failure is not None
    assert "NotFoundError" in request.failure.error
    bob = world.store.get(rec.Learner, "L2")
    assert bob is not None
    assert bob.given_name == "Ana"


# -- post-mortem directives --------------------------------------------------------------


def register(world: World, directive: PostMortemDirective) -> SubjectRequest:
    """Register Ana's directive and check it is in force."""
    request = world.run(RequestType.POST_MORTEM_DIRECTIVE, directive)
    assert request.state is RequestState.COMPLETED
    registered = world.book.directive_of("L1")
    assert registered is not None
    assert registered.directive == directive
    return request


def test_directive_erase_with_export_for_the_executor(world: World) -> None:
    """On death: export for the executor first, then erasure, then the executor told."""
    executor = Executor(name="Jean Dupont", email="jean.dupont@example.org")
    directive = PostMortemDirective(
        on_death=DeathAction.ERASE,
        communicate_export=True,
        executor=executor,
        instructions="Envoyer mes attestations à mon frère.",
    )
    registration = register(world, directive)
    letter = render_letter(registration, Controller(name="Acme", contact="dpo@acme.example"), now=T)
    assert "Jean" not in letter
    assert "Dupont" not in letter
    assert "désigné une personne" in letter
    notices: list[ExecutorNotice] = []
    world.executor.executor_notifier = notices.append
    died, recorded = T + dt.timedelta(days=10), T + dt.timedelta(days=12)
    report = world.executor.record_death("L1", at=died, now=recorded, proof=DEATH_CERT)
    assert report.complete
    assert report.export is not None
    assert report.export.state is RequestState.COMPLETED
    assert report.erasure is not None
    assert report.erasure.state is RequestState.COMPLETED
    package = report.export.steps[0].artifact
    assert package is not None
    assert {type(r).__name__ for r in read_package(package).records()} >= {"Learner", "Invoice"}
    assert world.store.get(rec.Learner, "L1") is None
    assert world.store.get(rec.Invoice, "L1-I1", include_restricted=True) is not None
    [notice] = notices
    assert notice.executor == executor
    assert notice.package == package
    assert notice.actions == ("export", "erasure")
    death = world.book.death_of("L1")
    assert death is not None
    assert death.died_at == died
    again = world.executor.record_death(
        "L1", at=died, now=recorded + dt.timedelta(days=1), proof=DEATH_CERT
    )
    assert again.export == report.export
    assert again.erasure == report.erasure
    assert len(notices) == 1
    assert_no_personal_values_in_audit(world)


def test_directive_keep_then_erase(world: World) -> None:
    """KEEP_THEN_ERASE: nothing erased at death; erased once the keeping period ends."""
    register(world, PostMortemDirective(on_death=DeathAction.KEEP_THEN_ERASE, keep_for="P6M"))
    died = dt.datetime(2026, 8, 31, 18, 0, tzinfo=UTC)
    report = world.executor.record_death(
        "L1", at=died, now=died + dt.timedelta(days=2), proof=DEATH_CERT
    )
    assert report.erasure is None
    assert report.scheduled is not None
    # Aug 31 + 6 months: no Feb 31, so the end of Feb 28.
    assert report.scheduled.due_at == dt.datetime(2027, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC)
    assert world.executor.run_scheduled_erasures(now=dt.datetime(2027, 2, 28, tzinfo=UTC)) == ()
    assert world.store.get(rec.Learner, "L1") is not None
    [erasure] = world.executor.run_scheduled_erasures(now=dt.datetime(2027, 3, 1, tzinfo=UTC))
    assert erasure.state is RequestState.COMPLETED
    assert erasure.type is RequestType.ERASURE
    assert world.store.get(rec.Learner, "L1") is None
    assert world.book.scheduled_erasures() == ()
    assert world.executor.run_scheduled_erasures(now=dt.datetime(2027, 4, 1, tzinfo=UTC)) == ()


def test_failed_executor_notice_is_retried(world: World) -> None:
    """A notifier failure is recorded (not dropped) and the next call sends it."""
    register(
        world,
        PostMortemDirective(on_death=DeathAction.KEEP_UNDER_RETENTION, executor=Executor(name="J")),
    )
    calls: list[ExecutorNotice] = []

    def flaky(notice: ExecutorNotice) -> None:
        calls.append(notice)
        if len(calls) == 1:
            raise OSError("mail server down")

    world.executor.executor_notifier = flaky
    first = world.executor.record_death("L1", at=T, now=T, proof=DEATH_CERT)
    assert first.executor_notified is NotificationStatus.FAILED
    assert not first.complete
    second = world.executor.record_death("L1", at=T, now=T, proof=DEATH_CERT)
    assert second.executor_notified is NotificationStatus.SENT
    assert world.store.get(rec.Learner, "L1") is not None


def test_death_without_directive_changes_nothing(world: World) -> None:
    """Without a directive, the death is recorded and the ordinary schedule stays in charge."""
    report = world.executor.record_death("L2", at=T, now=T, proof=DEATH_CERT)
    assert report.directive is None
    assert world.book.death_of("L2") is not None
    assert len(world.store.records_of("L2")) == 6


def test_withdrawal_follows_the_purposes_of_the_schedule_and_counts_from_receipt(
    world: World,
) -> None:
    """JUNIA's schedule declares the purpose "training" on consent for accounts, progress
    and logins. Withdrawing it, received March 2 and executed March 4, ends the consent on
    March 2 and erases what only that consent held (the old step matched built-in purpose
    names and record bases, erased nothing and said COMPLETED); the invoice, kept for
    billing under a legal obligation, stays."""
    from examples.policies import french_engineering_school_moodle as junia

    received = dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    executed = dt.datetime(2026, 3, 4, 9, tzinfo=UTC)
    world.store.add(
        sample(
            rec.Consent, id="L1-TRAINING", purpose="training", given_at=T - dt.timedelta(days=90)
        ),
        now=T,
    )
    executor = RequestExecutor(world.book, store=world.store, schedule=junia.SCHEDULE)
    request = receive_request(
        world.book,
        RequestType.WITHDRAW_CONSENT,
        received_at=received,
        channel=Channel.WEB_FORM,
        requester=Requester.subject("Ana Silva", EMAIL),
        params=WithdrawConsentParams(purpose="training"),
    )
    request = world.book.verify_identity(
        request, method=ProofMethod.AUTHENTICATED_SESSION, now=executed
    )
    done = executor.execute(request, now=executed)
    assert done.state is RequestState.COMPLETED
    consent = world.store.get(rec.Consent, "L1-TRAINING")
    assert consent is not None
    assert consent.withdrawn_at == received
    assert not consent.is_active(dt.datetime(2026, 3, 3, tzinfo=UTC))
    for kind, record_id in (
        (rec.Progress, "L1-P1"),
        (rec.Progress, "L1-P2"),
        (rec.AccessEvent, "L1-A1"),
    ):
        assert world.store.get(kind, record_id, include_restricted=True) is None, record_id
    assert world.store.get(rec.Invoice, "L1-I1", include_restricted=True) is not None
    assert world.store.get(rec.Progress, "L2-P1") is not None


def test_consent_records_are_only_erased_or_anonymised() -> None:
    """The workflow's one way into ``Store.erase_records``/``anonymise_records`` takes
    no other action (a RESTRICT passed there would end records the law keeps), and an
    empty list touches no store at all."""
    from learnprivacy.errors import ValidationError
    from learnprivacy.requests._adapters import end_records

    for action in (Action.RESTRICT, Action.KEEP, Action.REVIEW):
        with pytest.raises(ValidationError):
            end_records(object(), action, [object()], now=T, reason="consent withdrawn")
    for action in (Action.ERASE, Action.ANONYMISE):
        assert end_records(object(), action, [], now=T, reason="consent withdrawn") == 0


def test_an_erasure_removes_a_package_whatever_its_request_id(world: World) -> None:
    """Attack: the LMS files requests under its own ids. An access request filed as
    ``ticket-7-death-export`` kept its package (Ana's data in clear) after her erasure
    COMPLETED: the package owed to a post-mortem executor was told apart by that text
    anywhere in an id. Only the request a directive of the learner made keeps it."""
    filed = receive_request(
        world.book,
        RequestType.ACCESS,
        learner_id="L1",
        received_at=T,
        requester=Requester.subject("Ana Silva", EMAIL),
        request_id="ticket-7-death-export",
    )
    filed = world.book.verify_identity(filed, method=ProofMethod.AUTHENTICATED_SESSION, now=T)
    step = world.executor.execute(filed, now=T).step("export")
    assert step is not None
    assert step.artifact is not None
    package = Path(step.artifact)
    assert package.exists()
    assert world.run(RequestType.ERASURE).state is RequestState.COMPLETED
    assert not package.exists()
