"""Withdrawing consent applies the policy's own action, and the result is checked.

Prépa Job's keeps only anonymised statistics of progress once its consent-based purpose
ends (seed 003, line 116), JUNIA erases (seed 001, line 53): a withdrawal anonymises or
erases as the rule of each record says, through ``Store.anonymise_records`` /
``Store.erase_records``, and the request reads the store again before it can end
COMPLETED. The attack tests give the executor stores that pretend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from examples.policies import french_engineering_school_moodle as junia
from examples.policies import training_preparation_centre as centre
from sqlalchemy import text

from learnprivacy import Action
from learnprivacy import records as rec
from learnprivacy import requests as dsr
from learnprivacy.basis import LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError, ValidationError
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.retention import Hold, Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from learnprivacy.testing import reidentification_risks
from tests import account, at, days, receive_request, record_of
from tests.store_fixtures import keys_for

UTC = dt.UTC
T = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
RECEIVED = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CENTRE = centre.make_schedule(learner_data="P3Y", statistics="P3Y", security_logs="P6M")


def learner_records(learner: str) -> list[Any]:
    """An account, two progress rows (exact times), a certificate, a login, a consent to
    the statistics and one to training."""
    return [
        account(
            learner,
            family_name="Silvestre",
            created_at=T - days(400),
            last_activity_at=T - days(2),
        ),
        record_of(
            learner, rec.Progress, "P1", course_id="CACES", recorded_at=at(2026, 2, 3, 10, 17, 41)
        ),
        record_of(
            learner,
            rec.Progress,
            "P2",
            course_id="SST",
            status=rec.ProgressStatus.IN_PROGRESS,
            recorded_at=at(2026, 2, 19, 15, 2, 9),
        ),
        record_of(
            learner,
            rec.Certificate,
            "CERT",
            course_id="CACES",
            issued_at=at(2026, 2, 4, 8),
            verification_code="VERIF-7781",
        ),
        record_of(learner, rec.AccessEvent, "A1", at=T - days(2), ip="192.0.2.44"),
        record_of(learner, rec.Consent, "STATS", purpose="statistics", given_at=T - days(90)),
        record_of(learner, rec.Consent, "TRAINING", purpose="training", given_at=T - days(90)),
    ]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store holding learners L0001 and L0002: a SQLite file, then PostgreSQL."""
    with Store(
        store_url, keyring=Keyring.generate(), keys=keys_for(store_url), clock=lambda: T
    ) as opened:
        opened.add_all(learner_records("L0001") + learner_records("L0002"), now=T)
        yield opened


def withdraw(
    store: Store, schedule: Schedule | None, purpose: str, *, holds: Sequence[Hold] = ()
) -> dsr.SubjectRequest:
    """A withdrawal for ``purpose`` received March 2 and executed March 4."""
    book = dsr.RequestBook(SQLBackend(store, cipher=store.cipher))
    executor = dsr.RequestExecutor(book, store=store, schedule=schedule, holds=holds)
    request = receive_request(
        book,
        dsr.RequestType.WITHDRAW_CONSENT,
        learner_id="L0001",
        received_at=RECEIVED,
        channel=dsr.Channel.WEB_FORM,
        requester=dsr.Requester.subject("Ana Silvestre", "l0001@example.org"),
        params=dsr.WithdrawConsentParams(purpose=purpose),
    )
    request = book.verify_identity(request, method=dsr.ProofMethod.AUTHENTICATED_SESSION, now=T)
    return executor.execute(request, now=T)


def outcomes(request: dsr.SubjectRequest) -> dict[str, tuple[Action, str]]:
    """Record id -> (action, article)."""
    return {o.record_id: (o.action, o.article) for o in request.record_outcomes}


def linking_risks(rows: Sequence[dict[str, Any]], known: Sequence[Any]) -> list[str]:
    """The id and exact-timestamp attacks of the re-identification check (a combination
    of one learner's rows is rare by construction here)."""
    risks = reidentification_risks(rows, known, record_type=rec.Progress)
    return [r.attack for r in risks if r.attack != "combination"]


# -- the store's anonymisation -----------------------------------------------------------


def test_anonymise_records_leaves_rows_that_identify_nobody(store: Store, tmp_path: Path) -> None:
    """Store.anonymise_records: the rows leave the learner's records, keep their
    statistics under fresh ids and one person id, dates generalised to the month; the
    re-identification check finds no link; the audit entry replays on a backup (of a
    SQLite store)."""
    backup = tmp_path / "before.db"
    if not store._db.is_postgres:
        store.backup(str(backup))
    known = store.records_of("L0001")
    progress = [r for r in known if isinstance(r, rec.Progress)]
    assert store.anonymise_records(progress, now=T, reason="test") == 2
    assert not [r for r in store.records_of("L0001") if isinstance(r, rec.Progress)]
    rows = list(store.anonymised(rec.Progress))
    assert len(rows) == 2
    assert len({r["learner_id"] for r in rows}) == 1
    assert {r["recorded_at"] for r in rows} == {dt.datetime(2026, 2, 1, tzinfo=UTC)}
    assert linking_risks(rows, known) == []
    assert store.verify_anonymised(known, since=T) == 2
    # Running it again changes nothing: the records are gone from the learner.
    assert store.anonymise_records(progress, now=T, reason="test") == 0
    [entry] = [e for e in store.audit if e.action == "anonymise"]
    assert entry.details["count"] == 2
    if store._db.is_postgres:
        return
    with Store(
        f"sqlite:///{backup}",
        keyring=Keyring.from_master_key(store.keyring.export_master_key()),
        keys=store._key_db,
    ) as restored:
        assert restored.replay_erasures(store.audit, now=T).anonymised == 2
        assert restored.count(rec.Progress, anonymised=True) == 2
        assert restored.get(rec.Progress, "L0001-P1") is None


def test_anonymise_records_restricts_what_a_hold_protects(store: Store) -> None:
    """A hold keeps a record from anonymisation as from erasure: it is restricted."""
    [first, second] = [r for r in store.records_of("L0001") if isinstance(r, rec.Progress)]
    hold = Hold(reason="litigation 2026-17", record_type=rec.Progress, record_id=first.id)
    assert store.anonymise_records([first, second], now=T, reason="test", holds=[hold]) == 1
    kept = store.get(rec.Progress, first.id, include_restricted=True)
    assert kept == first
    assert store.count(rec.Progress, anonymised=True) == 1


def test_anonymise_records_refuses_an_empty_reason(store: Store) -> None:
    """Bad input: a typed error and nothing anonymised."""
    progress = [r for r in store.records_of("L0001") if isinstance(r, rec.Progress)]
    with pytest.raises(ValidationError):
        store.anonymise_records(progress, now=T, reason=" ")
    assert store.count(rec.Progress, anonymised=True) == 0


@pytest.mark.parametrize(
    ("tamper", "defect"),
    [
        ("UPDATE lp_access_event SET ip_token = :token", "AccessEvent.ip keeps its ciphertext"),
        ("UPDATE lp_access_event SET learner_id = 'L0001'", "AccessEvent.learner_id names"),
        ("UPDATE lp_access_event SET at = :at", "AccessEvent.at keeps an exact date"),
    ],
)
def test_verify_anonymised_catches_rows_that_still_identify(
    store: Store, tamper: str, defect: str
) -> None:
    """Attack: after a correct anonymisation, a row gets its ciphertext, its learner id
    or its exact time back (a buggy anonymiser, a restore over it): the re-check raises
    IntegrityError naming the field, never the value."""
    [event] = [r for r in store.records_of("L0001") if isinstance(r, rec.AccessEvent)]
    known = store.records_of("L0001")
    with store.engine.connect() as connection:
        token = connection.execute(
            text("SELECT ip_token FROM lp_access_event WHERE id = 'L0001-A1'")
        ).scalar_one()
    store.anonymise_records([event], now=T, reason="test")
    assert store.verify_anonymised(known) == 1
    with store.engine.begin() as connection:
        connection.execute(
            text(tamper + " WHERE lp_anonymised_at IS NOT NULL"),
            {"token": token, "at": event.at.replace(tzinfo=None)},
        )
    with pytest.raises(IntegrityError, match=defect) as caught:
        store.verify_anonymised(known, since=T)
    assert "192.0.2.44" not in str(caught.value)
    assert "L0001" not in str(caught.value)


def test_anonymise_records_rechecks_what_it_wrote(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack on the store's own path: the row writer "forgets" to empty a ciphertext.
    anonymise_records reads the rows it wrote again and raises IntegrityError naming the
    field, instead of returning a count as if all went well."""
    from sqlalchemy import update

    from learnprivacy.store import _erasure

    real = _erasure.anonymise_rows

    def forgetful(connection: Any, rt: Any, ids: Any, now: Any, **kwargs: Any) -> int:
        count = real(connection, rt, ids, now, **kwargs)
        written = kwargs.get("new_ids") or []
        if rt.name == "AccessEvent" and written:
            connection.execute(
                update(rt.table).where(rt.table.c.id.in_(written)).values(ip_token="v1.left")
            )
        return count

    monkeypatch.setattr(_erasure, "anonymise_rows", forgetful)
    [event] = [r for r in store.records_of("L0001") if isinstance(r, rec.AccessEvent)]
    with pytest.raises(IntegrityError, match=r"AccessEvent\.ip keeps its ciphertext"):
        store.anonymise_records([event], now=T, reason="test")


# -- withdrawal with the seed policies ---------------------------------------------------


def test_withdrawing_prepa_jobs_statistics_consent_anonymises_progress(store: Store) -> None:
    """Prépa Job's: progress rests on the consent to statistics and only anonymised
    statistics may outlive it (line 116). Withdrawing that consent anonymises the
    progress (the old step erased it, leaving no statistics), checked: nothing links the
    rows back to the learner; the account, certificate and training consent stay."""
    known = store.records_of("L0001")
    done = withdraw(store, CENTRE, "statistics")
    assert done.state is dsr.RequestState.COMPLETED
    assert outcomes(done) == {
        "L0001-STATS": (Action.WITHDRAW_CONSENT, "GDPR Art. 7(3)"),
        "L0001-P1": (Action.ANONYMISE, "GDPR Art. 17(1)(b)"),
        "L0001-P2": (Action.ANONYMISE, "GDPR Art. 17(1)(b)"),
    }
    left = {r.id for r in store.records_of("L0001")}
    assert left == {"L0001", "L0001-CERT", "L0001-A1", "L0001-STATS", "L0001-TRAINING"}
    assert store.count(rec.Progress, anonymised=True) == 2
    rows = list(store.anonymised(rec.Progress))
    assert linking_risks(rows, known) == []
    assert store.get(rec.Progress, "L0002-P1") is not None
    consent = store.get(rec.Consent, "L0001-STATS")
    assert consent is not None
    assert consent.withdrawn_at == RECEIVED
    # The letter says so (it used to say every such record was erased).
    letter = dsr.render_letter(done, centre.CONTROLLER, now=T, language="en")
    assert "anonymised where our policy keeps anonymous statistics" in letter
    assert "We have erased the data" not in letter
    french = dsr.render_letter(done, centre.CONTROLLER, now=T, language="fr")
    assert "anonymisées lorsque notre politique" in french


def test_withdrawing_prepa_jobs_training_consent_erases_and_keeps_the_account(
    store: Store,
) -> None:
    """Prépa Job's "training" purpose erases (line 116: « détruits »): the certificate
    goes; the account, which the consents kept as proof still point to, is restricted
    rather than erased, so no record is left without its account."""
    done = withdraw(store, CENTRE, "training")
    assert done.state is dsr.RequestState.COMPLETED
    assert outcomes(done)["L0001-CERT"] == (Action.ERASE, "GDPR Art. 17(1)(b)")
    assert outcomes(done)["L0001"] == (Action.RESTRICT, "GDPR Art. 18")
    assert store.get(rec.Certificate, "L0001-CERT", include_restricted=True) is None
    account = store.get(rec.Learner, "L0001", include_restricted=True)
    assert account is not None
    assert "L0001" not in {r.id for r in store.records_of("L0001")}
    assert store.count(rec.Progress, anonymised=True) == 0


def test_withdrawing_junias_training_consent_erases(store: Store) -> None:
    """JUNIA's rule erases at its end (line 53): withdrawing "training" erases progress,
    certificate and logins, anonymises nothing, and keeps the invoice (legal obligation)."""
    store.add(
        rec.Invoice(
            id="L0001-I1",
            learner_id="L0001",
            billing_name="Ana Silvestre",
            billing_address="1 rue de Lille",
            amount=Decimal("490.00"),
            issued_at=T - dt.timedelta(days=20),
        ),
        now=T,
    )
    done = withdraw(store, junia.SCHEDULE, "training")
    assert done.state is dsr.RequestState.COMPLETED
    for record_id in ("L0001-P1", "L0001-P2", "L0001-CERT", "L0001-A1"):
        assert outcomes(done)[record_id] == (Action.ERASE, "GDPR Art. 17(1)(b)"), record_id
    assert store.count(rec.Progress, anonymised=True) == 0
    assert store.get(rec.Invoice, "L0001-I1") is not None
    assert store.get(rec.Progress, "L0001-P1", include_restricted=True) is None


def test_a_restricted_consent_is_left_untouched_and_reported_restricted(store: Store) -> None:
    """A consent record under restriction (Art. 18) is not written to: the withdrawal
    reports it as restricted (the old step called Store.update on it, which refuses a
    restricted record, and the request FAILED); the data only the consent held still goes."""
    store.restrict(rec.Consent, "L0001-STATS", reason="accuracy contested (Art. 18(1)(a))", now=T)
    done = withdraw(store, CENTRE, "statistics")
    assert done.state is dsr.RequestState.COMPLETED
    assert outcomes(done)["L0001-STATS"] == (Action.RESTRICT, "GDPR Art. 18")
    consent = store.get(rec.Consent, "L0001-STATS", include_restricted=True)
    assert consent is not None
    assert consent.withdrawn_at is None
    assert "L0001-STATS" not in {r.id for r in store.records_of("L0001")}
    assert store.count(rec.Progress, anonymised=True) == 2


def test_consent_expiry_in_a_sweep_anonymises_where_the_rule_says(store: Store) -> None:
    """The sweep's end of a lapsed consent follows the rule's action too: Prépa Job's
    progress is anonymised, not erased, when the statistics consent expired."""
    store.add(
        rec.Consent(
            id="L0002-EXPIRED",
            learner_id="L0002",
            purpose="statistics",
            given_at=T - dt.timedelta(days=400),
            expires_at=T - dt.timedelta(days=10),
        ),
        now=T,
    )
    # L0002's other statistics consent is withdrawn: every one has now ended.
    stats = store.get(rec.Consent, "L0002-STATS")
    assert stats is not None
    store.update(
        rec.Consent(
            id=stats.id,
            learner_id="L0002",
            purpose="statistics",
            given_at=stats.given_at,
            withdrawn_at=T - dt.timedelta(days=1),
        ),
        now=T,
    )
    report = store.sweep(CENTRE, now=T)
    assert report.by_type["Progress"].get("anonymise") == 2
    assert report.decided_by["Progress"]["anonymise: consent ended"] == 2
    assert store.count(rec.Progress, anonymised=True) == 2
    assert store.get(rec.Progress, "L0001-P1") is not None


# -- attacks: stores that pretend --------------------------------------------------------


class IdleStore(Store):
    """Says it anonymised every record and touched nothing."""

    def anonymise_records(self, records: Any, **_kwargs: Any) -> int:
        return len(list(records))


class NameKeepingStore(Store):
    """Anonymises, then puts the learner's name ciphertexts back on the anonymised row."""

    def anonymise_records(self, records: Any, **kwargs: Any) -> int:
        with self.engine.connect() as connection:
            saved = connection.execute(
                text(
                    "SELECT given_name_token, family_name_token FROM lp_learner WHERE id = 'L0001'"
                )
            ).one()
        count = super().anonymise_records(records, **kwargs)
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lp_learner SET given_name_token = :g, family_name_token = :f"
                    " WHERE lp_anonymised_at IS NOT NULL"
                ),
                {"g": saved[0], "f": saved[1]},
            )
        return count


class IdKeepingStore(Store):
    """Anonymises, then writes the learner id back on the progress rows."""

    def anonymise_records(self, records: Any, **kwargs: Any) -> int:
        count = super().anonymise_records(records, **kwargs)
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lp_progress SET learner_id = 'L0001' WHERE lp_anonymised_at IS NOT NULL"
                )
            )
        return count


# Statistics only: the account and its progress are kept anonymous once consent ends.
STATISTICS_ONLY = Schedule(
    dict.fromkeys(
        (rec.Learner, rec.Progress),
        RetentionRule(
            Period.parse("P3Y"),
            Trigger.LAST_ACTIVITY,
            action=Action.ANONYMISE,
            purpose="statistics",
            basis=LawfulBasis.CONSENT,
        ),
    )
)


def _open(cls: type[Store], tmp_path: Path, records: list[Any]) -> Store:
    store = cls(f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring.generate(), clock=lambda: T)
    store.add_all(records, now=T)
    return store


def test_a_store_that_does_nothing_cannot_complete_the_withdrawal(tmp_path: Path) -> None:
    """Attack: anonymise_records reports success and changes nothing. The request reads
    the learner's records again and FAILS at erase_consent_data, naming the store."""
    with _open(IdleStore, tmp_path, learner_records("L0001")) as store:
        done = withdraw(store, CENTRE, "statistics")
        assert done.state is dsr.RequestState.FAILED
        assert done.failure is not None
        assert done.failure.step == "erase_consent_data"
        assert done.failure.component == "learnprivacy_store"
        assert "Progress=2" in done.failure.error


def test_a_store_that_leaves_the_name_cannot_complete_the_withdrawal(tmp_path: Path) -> None:
    """Attack: the account is anonymised but keeps the learner's name (its ciphertexts).
    The request re-checks the anonymised rows and FAILS naming the field; a retry fails
    again while the name is there."""
    records = [r for r in learner_records("L0001") if isinstance(r, rec.Learner | rec.Progress)]
    with _open(NameKeepingStore, tmp_path, records) as store:
        done = withdraw(store, STATISTICS_ONLY, "statistics")
        assert done.state is dsr.RequestState.FAILED
        assert done.failure is not None
        assert done.failure.component == "learnprivacy_store"
        assert "Learner.family_name keeps its ciphertext" in done.failure.error
        assert "Silvestre" not in done.failure.error
        book = dsr.RequestBook(SQLBackend(store, cipher=store.cipher))
        retry = book.retry(done.id, now=T)
        again = dsr.RequestExecutor(book, store=store, schedule=STATISTICS_ONLY).execute(
            retry, now=T
        )
        assert again.state is dsr.RequestState.FAILED


def test_the_same_withdrawal_on_an_honest_store_completes(tmp_path: Path) -> None:
    """The control for the attack above: the real store anonymises the account and
    progress, and the request completes."""
    records = [r for r in learner_records("L0001") if isinstance(r, rec.Learner | rec.Progress)]
    with _open(Store, tmp_path, records) as store:
        done = withdraw(store, STATISTICS_ONLY, "statistics")
        assert done.state is dsr.RequestState.COMPLETED
        assert outcomes(done)["L0001"] == (Action.ANONYMISE, "GDPR Art. 17(1)(b)")
        assert store.count(rec.Progress, anonymised=True) == 2
        assert store.count(rec.Learner, anonymised=True) == 1
        assert store.records_of("L0001") == []


def test_a_store_that_keeps_the_learner_id_cannot_complete_the_withdrawal(
    tmp_path: Path,
) -> None:
    """Attack: the progress rows are anonymised but keep the learner id: FAILED."""
    with _open(IdKeepingStore, tmp_path, learner_records("L0001")) as store:
        done = withdraw(store, CENTRE, "statistics")
        assert done.state is dsr.RequestState.FAILED
        assert done.failure is not None
        assert "Progress.learner_id names" in done.failure.error
