"""The rights each seed policy promises, exercised on a real store under its schedule.

Every test here runs once for each policy module whose ``PROMISES`` cite it (so a new
promise is tested as soon as it is written, and a promise citing a right the library
does not keep fails): the request goes through the policy's own request book
(``RIGHTS.book()``: its identity proofs and holiday calendar) and executor, and the test
reads the store or the package afterwards.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import PolicyError, RequestStateError, ValidationError
from learnprivacy.export import read_package
from learnprivacy.requests import (
    Channel,
    FieldChange,
    ObjectionParams,
    ProofMethod,
    RectificationParams,
    RefusalGrounds,
    RequestBook,
    Requester,
    RequesterRole,
    RequestExecutor,
    RequestState,
    RequestType,
    SubjectRequest,
    render_letter,
)
from learnprivacy.requests._vocabulary import IDENTITY_PROOFS
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.retention import Schedule
from learnprivacy.store import Store
from tests import account, days, paid_and_logged_in, receive_request, record_of
from tests.test_policy_conformance import MODULES

UTC = dt.UTC
T = dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
EMAIL = "ana.silva@example.org"
OTHER_EMAIL = "bob.martin@example.org"


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"examples.policies.{name}")


def citing(test: str) -> list[str]:
    """The policy modules one of whose promises names ``test`` of this file."""
    target = f"tests/test_policy_rights.py::{test}"
    return [name for name in MODULES if any(p.test == target for p in _module(name).PROMISES)]


def schedule_of(module: ModuleType) -> Schedule:
    """The policy's schedule (with figures chosen for the test where it states none)."""
    if hasattr(module, "SCHEDULE"):
        schedule: Schedule = module.SCHEDULE
        return schedule
    if module.__name__.endswith("training_preparation_centre"):
        return module.make_schedule(learner_data="P3Y", statistics="P3Y", security_logs="P6M")
    return module.make_schedule(
        after_contract="P3M", invoices="P10Y", security_logs="P1Y", consent_proof="P5Y"
    )


def learner(learner_id: str, email: str) -> list[Any]:
    """An account, a scored progress row, a certificate, an invoice and a login."""
    return [
        account(learner_id, email=email, created_at=T - days(200), last_activity_at=T - days(1)),
        record_of(
            learner_id,
            rec.Progress,
            "P1",
            course_id="SST-2026",
            recorded_at=T - days(3),
            score=rec.Score(raw=17, min=0, max=20),
        ),
        record_of(
            learner_id,
            rec.Certificate,
            "C1",
            course_id="SST-2026",
            issued_at=T - days(2),
            verification_code=f"VERIF-{learner_id}",
        ),
        *paid_and_logged_in(learner_id, T),
    ]


@attrs.define
class World:
    """A store holding L1 and L2, the policy's request book and an executor."""

    module: ModuleType
    store: Store
    book: RequestBook
    executor: RequestExecutor

    @property
    def proof(self) -> ProofMethod:
        """A proof of identity the policy accepts."""
        accepted = self.module.RIGHTS.identity_proofs
        for method in (ProofMethod.AUTHENTICATED_SESSION, ProofMethod.ID_DOCUMENT_SIGHTED):
            if method in accepted:
                return method
        return next(iter(sorted(accepted, key=lambda m: m.value)))

    def receive(self, kind: RequestType, params: Any = None, at: dt.datetime = T) -> Any:
        """A request of L1, received at ``at``."""
        return receive_request(
            self.book,
            kind,
            received_at=at,
            requester=Requester.subject("Ana Silva", EMAIL),
            params=params,
        )

    def run(self, kind: RequestType, params: Any = None) -> SubjectRequest:
        """Receive, verify with an accepted proof and execute."""
        request = self.book.verify_identity(self.receive(kind, params), method=self.proof, now=T)
        return self.executor.execute(request, now=T)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The world of the policy module named by the test's parameter."""
    module = _module(request.param)
    store = Store(f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring.generate(), clock=lambda: T)
    store.add_all(learner("L1", EMAIL) + learner("L2", OTHER_EMAIL), now=T)
    book = module.RIGHTS.book(SQLBackend(store, cipher=store.cipher))
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    executor = RequestExecutor(
        book, store=store, schedule=schedule_of(module), export_dir=export_dir
    )
    yield World(module, store, book, executor)
    store.close()


def _package_text(request: SubjectRequest) -> tuple[list[str], str]:
    artifact = request.steps[0].artifact
    assert artifact is not None
    read_package(artifact)  # every file matches the manifest
    with zipfile.ZipFile(artifact) as archive:
        names = archive.namelist()
        text = "".join(archive.read(n).decode("utf-8", "replace") for n in names)
    return names, text


@pytest.mark.parametrize("world", citing("test_right_of_access"), indirect=True)
def test_right_of_access(world: World) -> None:
    """An access request ends COMPLETED with a verified package holding the learner's
    own data (account, progress with its score, certificate), and nobody else's."""
    done = world.run(RequestType.ACCESS)
    assert done.state is RequestState.COMPLETED
    _names, text = _package_text(done)
    for value in (EMAIL, "L1-P1", "SST-2026", "VERIF-L1"):
        assert value in text, value
    for value in (OTHER_EMAIL, "L2-P1", "VERIF-L2"):
        assert value not in text, value


@pytest.mark.parametrize("world", citing("test_right_to_rectification"), indirect=True)
def test_right_to_rectification(world: World) -> None:
    """A rectification replaces the value in the store (re-encrypted), and only it."""
    change = FieldChange(record_type="Learner", record_id="L1", field="family_name", value="Sá")
    done = world.run(RequestType.RECTIFICATION, RectificationParams(changes=[change]))
    assert done.state is RequestState.COMPLETED
    account = world.store.get(rec.Learner, "L1")
    assert account is not None
    assert account.family_name == "Sá"
    other = world.store.get(rec.Learner, "L2")
    assert other is not None
    assert other.family_name == "Silva"


@pytest.mark.parametrize("world", citing("test_right_to_erasure"), indirect=True)
def test_right_to_erasure(world: World) -> None:
    """An erasure leaves nothing of the learner's training, scores, certificate or
    logins (checked in the store, restricted rows included); what the law keeps stays
    restricted, never readable as usual; the other learner is untouched."""
    done = world.run(RequestType.ERASURE)
    assert done.state is RequestState.COMPLETED
    left = world.store.records_of("L1", include_restricted=True)
    assert not [r for r in left if isinstance(r, rec.Progress | rec.Certificate | rec.AccessEvent)]
    assert world.store.records_of("L1") == []
    assert len(world.store.records_of("L2")) == 5


@pytest.mark.parametrize("world", citing("test_right_to_restriction"), indirect=True)
def test_right_to_restriction(world: World) -> None:
    """A restriction takes every record of the learner out of normal processing (reads
    leave them out, updates are refused) while keeping them."""
    done = world.run(RequestType.RESTRICTION)
    assert done.state is RequestState.COMPLETED
    assert world.store.records_of("L1") == []
    assert len(world.store.records_of("L1", include_restricted=True)) == 5
    assert len(world.store.records_of("L2")) == 5


@pytest.mark.parametrize("world", citing("test_right_to_portability"), indirect=True)
def test_right_to_portability(world: World) -> None:
    """Portability gives a structured, machine-readable package: JSON and CSV files that
    parse, holding the learner's progress and score."""
    done = world.run(RequestType.PORTABILITY)
    assert done.state is RequestState.COMPLETED
    names, text = _package_text(done)
    assert any(n.endswith(".json") and n.startswith("data/") for n in names)
    assert any(n.endswith(".csv") for n in names)
    artifact = done.steps[0].artifact
    assert artifact is not None
    with zipfile.ZipFile(artifact) as archive:
        for name in names:
            if name.endswith(".json"):
                json.loads(archive.read(name))
    assert "L1-P1" in text
    assert OTHER_EMAIL not in text


@pytest.mark.parametrize("world", citing("test_right_to_object"), indirect=True)
def test_right_to_object(world: World) -> None:
    """An objection to the security logging (legitimate interests) stops it: the
    learner's logins are restricted, their other records are not."""
    done = world.run(RequestType.OBJECTION, ObjectionParams(purpose="security-logging"))
    assert done.state is RequestState.COMPLETED
    visible = {r.id for r in world.store.records_of("L1")}
    assert "L1-A1" not in visible
    assert "L1-P1" in visible
    assert world.store.get(rec.AccessEvent, "L1-A1", include_restricted=True) is not None


#: The policies that ask for a particular proof, and a proof they must refuse.
STRICT = {
    "french_engineering_school_moodle": ProofMethod.EMAIL_CONFIRMATION,
    "educational_publisher": ProofMethod.EMAIL_CONFIRMATION,
}


@pytest.mark.parametrize(
    "world", citing("test_identity_is_proven_as_the_policy_says"), indirect=True
)
def test_identity_is_proven_as_the_policy_says(world: World) -> None:
    """No request is carried out before the identity is proven: an unverified request
    cannot run (nothing exported), a proof that is not one of identity (a mandate) is
    refused, and where the policy names its proof (JUNIA: an identity document; SEJER:
    the platform's authentication) a weaker one (an e-mail confirmation) is refused.
    The accepted proof lets the request run."""
    request = world.receive(RequestType.ACCESS)
    with pytest.raises(RequestStateError):
        world.executor.execute(request, now=T)
    assert not list((world.executor.env.export_dir or Path()).iterdir())
    refused = {ProofMethod.MANDATE_SIGHTED} | (IDENTITY_PROOFS - world.book.identity_proofs)
    name = world.module.__name__.rpartition(".")[2]
    if name in STRICT:
        assert STRICT[name] in refused
    for method in sorted(refused, key=lambda m: m.value):
        with pytest.raises(PolicyError):
            world.book.verify_identity(request, method=method, now=T)
    assert world.book.current(request).state is RequestState.RECEIVED
    verified = world.book.verify_identity(request, method=world.proof, now=T)
    assert world.executor.execute(verified, now=T).state is RequestState.COMPLETED


#: A receipt whose one-month deadline falls on a public holiday of the policy's country
#: (July 14 in France, July 21 in Belgium), and the day it rolls over to.
HOLIDAY_DEADLINES = {
    "FR": (dt.datetime(2026, 6, 14, 9, tzinfo=UTC), dt.date(2026, 7, 15)),
    "BE": (dt.datetime(2026, 6, 21, 9, tzinfo=UTC), dt.date(2026, 7, 22)),
}


#: Where each controller is established: its holidays, not the library's default.
COUNTRY = {
    "belgian_b2b_lms": "BE",
    "educational_publisher": "FR",
    "french_engineering_school_moodle": "FR",
    "saas_lms_processor": "FR",
    "training_preparation_centre": "FR",
}


@pytest.mark.parametrize("world", citing("test_answer_within_one_month"), indirect=True)
def test_answer_within_one_month(world: World) -> None:
    """The deadline is one month after receipt, at the end of the day, rolled over the
    public holidays of the policy's country; an answer after it is recorded as late, one
    before it is not."""
    name = world.module.__name__.rpartition(".")[2]
    received, due = HOLIDAY_DEADLINES[COUNTRY[name]]
    request = world.receive(RequestType.ACCESS, at=received)
    assert request.due_at.date() == due
    assert request.due_at - received < dt.timedelta(days=32)
    verified = world.book.verify_identity(request, method=world.proof, now=received)
    on_time = world.executor.execute(verified, now=received + dt.timedelta(days=3))
    assert on_time.state is RequestState.COMPLETED
    assert not on_time.completed_late
    late = world.receive(RequestType.ACCESS, at=received)
    late = world.book.verify_identity(late, method=world.proof, now=received)
    after = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(9), tzinfo=UTC)
    assert world.executor.execute(late, now=after).completed_late


#: Line 92's two cases and the reason the centre writes for each (free text, French).
REFUSALS = (
    (
        RefusalGrounds.RIGHTS_OF_OTHERS,
        "Le dossier contient l'évaluation d'un autre stagiaire, qui refuse sa divulgation",
        "divulguerait des données personnelles d’une autre personne",
    ),
    (
        RefusalGrounds.LEGAL_RESTRICTION,
        "Une enquête judiciaire en cours interdit cette communication",
        "une restriction prévue par la loi",
    ),
)


@pytest.mark.parametrize("world", citing("test_refusal_states_its_reasons"), indirect=True)
@pytest.mark.parametrize(("grounds", "reason", "grounds_text"), REFUSALS)
def test_refusal_states_its_reasons(
    world: World, grounds: RefusalGrounds, reason: str, grounds_text: str
) -> None:
    """An access the centre cannot give (another person's data, a legal restriction) is
    refused with its reasons: the refusal carries them, and the letter to the learner
    states the grounds, the article and the centre's own reason. Refusing without a
    reason is a ``ValidationError`` that leaves the request open; the rights of others
    cannot be invoked against an erasure (``PolicyError``); nothing is exported."""
    request = world.receive(RequestType.ACCESS)
    for blank in ("", "   "):
        with pytest.raises(ValidationError):
            world.book.refuse(request, grounds=grounds, reason=blank, now=T)
    assert world.book.current(request).state is RequestState.RECEIVED
    assert world.book.current(request).refusal is None
    refused = world.book.refuse(request, grounds=grounds, reason=reason, now=T)
    assert refused.state is RequestState.REFUSED
    assert refused.refusal is not None
    assert refused.refusal.reason == reason
    letter = render_letter(refused, world.module.CONTROLLER, now=T)
    assert reason in letter
    assert grounds_text in letter
    assert grounds.article.removeprefix("GDPR Art. ") in letter
    assert world.book.get(refused.id) == refused
    assert not list((world.executor.env.export_dir or Path()).iterdir())
    erasure = world.receive(RequestType.ERASURE)
    if grounds is RefusalGrounds.RIGHTS_OF_OTHERS:
        with pytest.raises(PolicyError):
            world.book.refuse(erasure, grounds=grounds, reason=reason, now=T)
        assert world.book.current(erasure).state is RequestState.RECEIVED


#: The identity proofs each text asks for: JUNIA a copy of an identity document (001
#: line 72), SEJER its platform's authentication; the other three name no kind of proof
#: (Job Access « pourra être requise », Prépa Job's « il se peut », Onlineformapro
#: nothing), so every proof of identity the library accepts, and nothing else.
PROOFS_OF = {
    "belgian_b2b_lms": IDENTITY_PROOFS,
    "educational_publisher": frozenset({ProofMethod.AUTHENTICATED_SESSION}),
    "french_engineering_school_moodle": frozenset({ProofMethod.ID_DOCUMENT_SIGHTED}),
    "saas_lms_processor": IDENTITY_PROOFS,
    "training_preparation_centre": IDENTITY_PROOFS,
}


@pytest.mark.parametrize("name", MODULES)
def test_identity_proofs_are_what_the_text_says(name: str) -> None:
    """Each policy's request book accepts exactly the proofs its text names (or, where
    it names none, the library's proofs of identity) and never a mandate for a learner
    asking for themselves."""
    book = _module(name).RIGHTS.book()
    assert book.identity_proofs == PROOFS_OF[name]
    assert ProofMethod.MANDATE_SIGHTED not in book.identity_proofs


@pytest.mark.parametrize(
    "world", citing("test_abusive_requests_are_refused_with_reasons"), indirect=True
)
def test_abusive_requests_are_refused_with_reasons(world: World) -> None:
    """A manifestly abusive request (repeated, systematic) may be refused under
    Art. 12(5), only with the controller's reason, which the letter states with the
    article; a blank reason is a ``ValidationError`` and the request stays open."""
    request = world.receive(RequestType.ACCESS)
    with pytest.raises(ValidationError):
        world.book.refuse(request, grounds=RefusalGrounds.EXCESSIVE, reason=" ", now=T)
    assert world.book.current(request).state is RequestState.RECEIVED
    reason = "Douze demandes identiques en un mois"
    refused = world.book.refuse(request, grounds=RefusalGrounds.EXCESSIVE, reason=reason, now=T)
    assert refused.state is RequestState.REFUSED
    letter = render_letter(refused, world.module.CONTROLLER, now=T)
    assert reason in letter
    assert "12(5)" in letter
    assert "excessive" in letter


@pytest.mark.parametrize(
    "world", citing("test_every_answer_names_the_supervisory_authority"), indirect=True
)
def test_every_answer_names_the_supervisory_authority(world: World) -> None:
    """The answer to a request, completed or refused, tells the learner they may
    complain to the supervisory authority of the controller's country (the CNIL for a
    French school), with its address for complaints."""
    done = world.run(RequestType.ACCESS)
    refused = world.book.refuse(
        world.receive(RequestType.ACCESS),
        grounds=RefusalGrounds.EXCESSIVE,
        reason="Demande répétée",
        now=T,
    )
    for request in (done, refused):
        letter = render_letter(request, world.module.CONTROLLER, now=T)
        assert "CNIL" in letter
        assert "cnil.fr" in letter


@pytest.mark.parametrize(
    "world", citing("test_heirs_have_the_death_taken_into_account"), indirect=True
)
def test_heirs_have_the_death_taken_into_account(world: World) -> None:
    """An heir may have the learner's death taken into account (the account erased):
    only on a death certificate and a proof of heirship; the dead learner's own
    session, or the certificate alone, is refused and nothing is erased. The other
    learner is untouched."""
    heir = Requester(role=RequesterRole.HEIR, name="Marta Silva", email="marta@example.org")
    request = receive_request(
        world.book, RequestType.ERASURE, received_at=T, channel=Channel.POST, requester=heir
    )
    for method, also in (
        (ProofMethod.AUTHENTICATED_SESSION, ()),
        (ProofMethod.DEATH_CERTIFICATE_SIGHTED, ()),
        (ProofMethod.HEIRSHIP_PROOF_SIGHTED, ()),
    ):
        with pytest.raises(PolicyError):
            world.book.verify_identity(request, method=method, also=also, now=T)
    assert world.book.current(request).state is RequestState.RECEIVED
    assert len(world.store.records_of("L1")) == 5
    verified = world.book.verify_identity(
        request,
        method=ProofMethod.DEATH_CERTIFICATE_SIGHTED,
        also=[ProofMethod.HEIRSHIP_PROOF_SIGHTED],
        now=T,
    )
    done = world.executor.execute(verified, now=T)
    assert done.state is RequestState.COMPLETED
    left = world.store.records_of("L1", include_restricted=True)
    assert not [r for r in left if isinstance(r, rec.Progress | rec.Certificate | rec.AccessEvent)]
    assert len(world.store.records_of("L2")) == 5


@pytest.mark.parametrize(
    "world", citing("test_objection_to_prospecting_is_absolute"), indirect=True
)
def test_objection_to_prospecting_is_absolute(world: World) -> None:
    """An objection to prospecting (direct marketing) is simple and always upheld
    (Art. 21(3)): no compelling grounds can be recorded against it (``PolicyError``),
    and once executed the LMS is told to stop (``is_objected``); the other learner is not
    concerned."""
    params = ObjectionParams(purpose="prospecting", direct_marketing=True)
    request = world.receive(RequestType.OBJECTION, params)
    with pytest.raises(PolicyError):
        world.book.record_compelling_grounds(request, reasons="Commercial interest", now=T)
    assert not world.book.is_objected("L1", "prospecting")
    verified = world.book.verify_identity(request, method=world.proof, now=T)
    done = world.executor.execute(verified, now=T)
    assert done.state is RequestState.COMPLETED
    assert world.book.is_objected("L1", "prospecting")
    assert not world.book.is_objected("L2", "prospecting")
