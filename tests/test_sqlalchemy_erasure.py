"""Erasure, retention sweeps and exports on the application's own tables (in place)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

import learnprivacy.sqlalchemy as lps
from learnprivacy import Action, Controller
from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    ConfigurationError,
    IntegrityError,
    KeyShreddedError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.export import read_package
from learnprivacy.providers import (
    MemoryWriter,
    PrivacyManager,
)
from learnprivacy.retention import Hold, Period, RetentionRule, Schedule, Trigger
from learnprivacy.testing._mailer import Mailer
from tests import NOW, names
from tests.inplace_models import add_invoice, declarative_models
from tests.inplace_worker import run_killed

UTC = dt.UTC
LONG_AGO = dt.datetime(2023, 1, 10, 9, 0, tzinfo=UTC)
MASTER = bytes(range(32))


def bind(models: SimpleNamespace, keys: str, **options: object) -> lps.LearnPrivacy:
    return lps.LearnPrivacy(
        models.Base, keyring=Keyring.from_master_key(MASTER), keys=keys, **options
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Bound models on an SQLite app database, keys in a database of their own."""
    models = declarative_models()
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    privacy = bind(models, keys, sessions=sessionmaker(engine))
    models.Base.metadata.create_all(engine)
    yield SimpleNamespace(m=models, privacy=privacy, engine=engine, path=tmp_path, keys=keys)
    privacy.close()
    engine.dispose()


def populate(engine: Engine, m: SimpleNamespace) -> None:
    """Ana (``u1``), not seen since long ago, with two old posts; Bob (``u2``), seen three
    days ago, with a post of today; both signed up long ago."""
    accounts = [
        ("u1", "ana@example.org", "Ana Silva", LONG_AGO),
        ("u2", "bob@example.org", "Bob Martin", NOW - dt.timedelta(days=3)),
    ]
    with Session(engine) as s:
        for uid, email, name, seen in accounts:
            s.add(m.User(id=uid, email=email, name=name, created_at=LONG_AGO, last_login_at=seen))
        s.add_all(
            [
                m.Post(author_id="u1", body="Ana's first post", posted_at=LONG_AGO),
                m.Post(author_id="u1", body="Ana again", posted_at=LONG_AGO),
                m.Post(author_id="u2", body="Bob writes", posted_at=NOW),
            ]
        )
        s.commit()


def audit_actions(app: SimpleNamespace) -> list[str]:
    with Session(app.engine) as s:
        log = app.privacy.audit(s)
        assert log.verify()
        return [e.action for e in log.entries()]


def test_erasure_runs_in_the_callers_transaction_and_shreds_after_commit(
    app: SimpleNamespace,
) -> None:
    """Rows go, audit entries are written with them, keys are shredded once committed."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, "u1", now=NOW)
        assert (report.erased, report.restricted) == (3, 0)
        # No invoice: the learner's "legal" scope is shredded too, so no key survives.
        assert report.shredded_scopes == ("contract", "legal")
        # Not committed yet: the keys are alive.
        assert not app.privacy.keyring.is_shredded("u1", "contract")
        s.commit()
    assert app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1") is None
        assert s.scalar(text("SELECT count(*) FROM forum_posts WHERE author_id='u1'")) == 0
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0
        assert s.get(app.m.User, "u2").email == "bob@example.org"
    assert audit_actions(app) == ["erasure_request", "erase", "erase", "shred"]


def test_rollback_loses_nothing(app: SimpleNamespace) -> None:
    """An erasure rolled back with the caller's transaction leaves data, keys and log."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.rollback()
    assert not app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").email == "ana@example.org"
        assert s.scalar(text("SELECT count(*) FROM lp_audit")) == 0
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0


def _erased_keys_owed(app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`populate`, then Ana erased with the shredding failing after the commit:
    her keys alive, owed in ``lp_pending_shreds`` (contract, legal)."""
    populate(app.engine, app.m)
    real = app.privacy._shred

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("key database unreachable")

    monkeypatch.setattr(app.privacy, "_shred", crash)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    assert not app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 2
    monkeypatch.setattr(app.privacy, "_shred", real)


def test_a_crash_between_commit_and_shred_is_reconciled(
    app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If shredding fails after the commit, the next call shreds what was pending."""
    _erased_keys_owed(app, monkeypatch)
    # A later process (a fresh binding on the same databases) makes it good on any call.
    again = bind(declarative_models(), app.keys)
    with Session(app.engine) as s:
        again.find(s, again.spec("users").model.email, "bob@example.org")
        s.commit()
    assert app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0


def test_a_dry_run_sweep_shreds_no_key_owed_by_a_crash(
    app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: keys left owed by a crash between an erasure's commit and its shred were
    shredded by a dry-run sweep (its opening reconciles), so a dry run changed the key
    store. A dry run now leaves them owed; the next real call shreds them."""
    _erased_keys_owed(app, monkeypatch)
    with Session(app.engine) as s:
        app.privacy.sweep(s, schedule(app.m), now=NOW, dry_run=True)
        s.rollback()
    assert not app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 2
        app.privacy.sweep(s, schedule(app.m), now=NOW)
    assert app.privacy.keyring.is_shredded("u1", "contract")


def test_a_backup_taken_before_erasure_reads_nothing_afterwards(app: SimpleNamespace) -> None:
    """A copy of the app database plus the master key cannot read an erased learner."""
    populate(app.engine, app.m)
    app.engine.dispose()
    backup = app.path / "backup.db"
    shutil.copyfile(app.path / "app.db", backup)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    restored = declarative_models()
    privacy = bind(restored, app.keys)
    engine = create_engine(f"sqlite:///{backup}")
    with Session(engine) as s:
        with pytest.raises(KeyShreddedError, match=r"users\.(email|name)"):
            s.get(restored.User, "u1")
        assert s.get(restored.User, "u2").name == "Bob Martin"
    assert privacy.keyring.is_shredded("u1", "contract")
    engine.dispose()


def with_invoice(app: SimpleNamespace) -> None:
    """The test app's learners, and an invoice of u1's inside its legal minimum."""
    populate(app.engine, app.m)
    add_invoice(app.engine, app.m, "F-1", "90.00", LONG_AGO)


def test_legal_minimums_and_holds_restrict(app: SimpleNamespace) -> None:
    """Invoices under legal obligation are kept restricted, with the account they refer to."""
    with_invoice(app)
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    outcomes = {(o.record_type, o.action) for o in report.outcomes}
    assert ("Invoice", Action.RESTRICT) in outcomes
    assert ("User", Action.RESTRICT) in outcomes
    assert ("Post", Action.ERASE) in outcomes
    assert set(report.kept_scopes) == {"contract", "legal"}
    assert report.shredded_scopes == ()
    with Session(app.engine) as s:
        # Kept, restricted: ordinary queries no longer see it, an explicit opt-in does.
        assert s.get(app.m.Invoice, "F-1") is None
        invoice = s.get(app.m.Invoice, "F-1", execution_options={"include_restricted": True})
        assert invoice.billing_name == "Ana Silva"
        invoice.billing_name = "Someone else"
        with pytest.raises(RestrictedRecordError, match="invoices"):
            s.flush()
        s.rollback()
        before = audit_actions(app)
        # A second request finds nothing more to do and records nothing.
        second = app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
        assert second.erased == 0
    assert audit_actions(app) == before


def test_a_hold_restricts_instead_of_erasing(app: SimpleNamespace) -> None:
    """Rows a legal hold covers are restricted, not erased."""
    populate(app.engine, app.m)
    hold = Hold("litigation 2026-3", subject="u1", record_type=app.m.Post)
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, "u1", now=NOW, holds=[hold])
        s.commit()
    assert {o.action for o in report.outcomes if o.record_type == "Post"} == {Action.RESTRICT}
    with Session(app.engine) as s:
        query = select(app.m.Post).where(app.m.Post.author_id == "u1")
        assert s.scalars(query).all() == []
        restricted = s.scalars(query.execution_options(include_restricted=True))
        assert sorted(p.body for p in restricted) == ["Ana again", "Ana's first post"]


def schedule(m: SimpleNamespace) -> Schedule:
    return Schedule(
        {
            m.User: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            m.Post: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            m.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
        }
    )


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as c:
        return {
            t: sorted(tuple(r) for r in c.execute(text(f"SELECT * FROM {t}")))
            for t in ("users", "forum_posts", "invoices", "lp_row_states")
        }


def test_sweep_applies_the_schedule_and_is_idempotent(app: SimpleNamespace) -> None:
    """Inactive learners' rows go (posts first, then the account); a rerun changes nothing."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        dry = app.privacy.sweep(s, schedule(app.m), now=NOW, dry_run=True)
        assert (dry.erased, dry.dry_run) == (3, True)
        assert s.get(app.m.User, "u1") is not None
        report = app.privacy.sweep(s, schedule(app.m), now=NOW, batch_size=1)
    assert report.erased == 3
    assert report.by_type["Post"]["erased"] == 2
    assert report.shredded >= 1
    assert not app.privacy.keyring.is_shredded("u1", "contract")  # keys destroyed, no tombstone
    entries = list(
        app.privacy.keyring.store.list_entries(app.privacy.keyring.key_ref("u1"), "contract")
    )
    assert entries
    assert all(e.state.value == "shredded" for e in entries)
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1") is None
        assert s.get(app.m.User, "u2").email == "bob@example.org"
        # Shredded at commit, not left pending for the next call to reconcile.
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0
    entries = audit_actions(app)
    after = snapshot(app.engine)
    with Session(app.engine) as s:
        again = app.privacy.sweep(s, schedule(app.m), now=NOW)
    assert again.changed == 0
    assert snapshot(app.engine) == after
    assert audit_actions(app) == entries


def test_a_sweep_killed_half_way_ends_like_a_clean_one(
    tmp_path: Path, app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupt a sweep after its first batch, run it again: same end state as one run."""
    populate(app.engine, app.m)
    app.engine.dispose()
    copy = tmp_path / "copy.db"
    shutil.copyfile(app.path / "app.db", copy)
    with Session(app.engine) as s:
        app.privacy.sweep(s, schedule(app.m), now=NOW, batch_size=1)
    clean = snapshot(app.engine)

    other = declarative_models()
    privacy = lps.LearnPrivacy(
        other.Base, keyring=Keyring.from_master_key(MASTER), keys=f"sqlite:///{tmp_path / 'k2.db'}"
    )
    engine = create_engine(f"sqlite:///{copy}")
    calls = {"n": 0}
    real = Session.commit

    def dying_commit(self: Session) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        real(self)

    monkeypatch.setattr(Session, "commit", dying_commit)
    with Session(engine) as s, pytest.raises(KeyboardInterrupt):
        privacy.sweep(s, schedule(other), now=NOW, batch_size=1)
    monkeypatch.setattr(Session, "commit", real)
    with Session(engine) as s:
        privacy.sweep(s, schedule(other), now=NOW, batch_size=1)
    assert snapshot(engine) == clean
    engine.dispose()


def _anonymise_posts(m: SimpleNamespace) -> Schedule:
    return Schedule(
        {m.Post: RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.ANONYMISE)}
    )


def _ghost_posts(tmp_path: Path) -> tuple[SimpleNamespace, Engine, lps.LearnPrivacy]:
    """:func:`populate`'d models whose posts go, anonymised, to the placeholder account
    ``ghost`` (their learner column cannot be NULL), with that account."""
    m = declarative_models()
    m.Post.__privacy__ = attrs.evolve(m.Post.__privacy__, anonymous="ghost")
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    privacy = bind(m, f"sqlite:///{tmp_path / 'keys.db'}")
    m.Base.metadata.create_all(engine)
    populate(engine, m)
    with Session(engine) as s:
        s.add(m.User(id="ghost", email="ghost@example.invalid", name="Former learner"))
        s.commit()
    return m, engine, privacy


def test_sweep_anonymises_when_the_rule_says_so(tmp_path: Path) -> None:
    """ANONYMISE clears personal columns, hands the row to the declared placeholder
    account (its learner column cannot be NULL), keeps the rest, and is not repeated."""
    m, engine, privacy = _ghost_posts(tmp_path)
    with engine.connect() as c:
        posts = [r[0] for r in c.execute(text("SELECT id FROM forum_posts WHERE author_id='u1'"))]
    with Session(engine) as s:
        report = privacy.sweep(s, _anonymise_posts(m), now=NOW)
    assert report.anonymised == 2
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT id, author_id, body, posted_at FROM forum_posts WHERE author_id <> 'u2'")
        ).all()
    # The learner is gone from the rows; body is NOT NULL: it holds the "erased" marker,
    # which reads back as "".
    assert sorted(r[0] for r in rows) == sorted(posts)
    assert all(r[1:3] == ("ghost", "lp1.erased") and r[3] is not None for r in rows)
    with Session(engine) as s:
        bodies = [p.body for p in s.scalars(select(m.Post).where(m.Post.author_id == "ghost"))]
        assert bodies == ["", ""]
        assert [
            row for spec, row in privacy.iter_rows(s, "u1") if spec.table == "forum_posts"
        ] == []
        assert privacy.sweep(s, _anonymise_posts(m), now=NOW).anonymised == 0
    privacy.close()
    engine.dispose()


@pytest.mark.parametrize("kept", ["author_id", "body"])
def test_an_anonymisation_the_database_undid_is_not_reported(tmp_path: Path, kept: str) -> None:
    """Attack: a trigger (a guard that keeps a post's author, or its text, as written)
    puts the column back right after the anonymising UPDATE, which still counts its
    rows. The sweep reported the posts anonymised while they kept Ana's id, or her
    token (whose key then stayed alive, the scope still in use). The rows are read back
    after the statement: any that does not hold what was written fails the sweep, and
    its transaction, audit entries included, is rolled back."""
    m, engine, privacy = _ghost_posts(tmp_path)
    with engine.begin() as c:
        c.execute(
            text(
                f"CREATE TRIGGER keep AFTER UPDATE OF {kept} ON forum_posts BEGIN "
                f"UPDATE forum_posts SET {kept} = OLD.{kept} WHERE id = NEW.id; END"
            )
        )
    before = snapshot(engine)
    with Session(engine) as s, pytest.raises(IntegrityError, match="forum_posts") as caught:
        privacy.sweep(s, _anonymise_posts(m), now=NOW)
    assert "Ana" not in str(caught.value)
    assert "u1" not in str(caught.value)
    assert snapshot(engine) == before
    privacy.close()
    engine.dispose()


@pytest.mark.parametrize("dry_run", [False, True])
def test_anonymising_rows_that_would_keep_their_learner_is_refused(
    app: SimpleNamespace, dry_run: bool
) -> None:
    """The attack: forum_posts.author_id cannot be NULL and no placeholder is declared.
    The old code cleared the body, kept ``author_id='u1'`` and reported the rows
    anonymised; now the sweep is refused before anything is written, naming table and
    column, never a value."""
    populate(app.engine, app.m)
    before = snapshot(app.engine)
    with Session(app.engine) as s, pytest.raises(ConfigurationError) as refused:
        app.privacy.sweep(s, _anonymise_posts(app.m), now=NOW, dry_run=dry_run)
    assert "forum_posts.author_id" in str(refused.value)
    assert "u1" not in str(refused.value)
    assert snapshot(app.engine) == before


def test_export_is_the_store_package(app: SimpleNamespace) -> None:
    """export_subject writes a verified package of the learner's rows, decrypted."""
    populate(app.engine, app.m)
    out = app.path / "ana.zip"
    with Session(app.engine) as s:
        result = app.privacy.export_subject(s, "u1", out, now=NOW)
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        users = json.loads(zf.read("data/lms/users.json"))
        assert "index.html" in zf.namelist()
    assert {f["path"] for f in manifest["files"]} >= {"data/lms/users.json", "csv/forum_posts.csv"}
    text_all = json.dumps(users)
    assert "ana@example.org" in text_all
    assert "bob@example.org" not in text_all
    package = read_package(out)
    assert package.manifest == result.manifest


def test_provider_runs_in_the_callers_thread_next_to_others(app: SimpleNamespace) -> None:
    """A PrivacyManager exports and erases through the provider, in the calling thread."""
    import threading

    populate(app.engine, app.m)
    seen: list[str] = []
    factory = sessionmaker(app.engine)

    def sessions() -> Session:
        seen.append(threading.current_thread().name)
        return factory()

    privacy_provider = app.privacy.provider_for(sessions)
    manager = PrivacyManager([privacy_provider], discover=False)
    writer = MemoryWriter()
    assert manager.export_user_data("u1", writer).completed
    assert len(writer.rows[("lms", "forum_posts")]) == 2
    assert manager.delete_data_for_user("u1").completed
    assert set(seen) == {threading.current_thread().name}
    assert app.privacy.keyring.is_shredded("u1", "contract")
    # Idempotent: nothing left, nothing done.
    assert manager.delete_data_for_user("u1").completed


def test_manager_deletion_accepts_and_reports_what_the_law_keeps(app: SimpleNamespace) -> None:
    """Through a PrivacyManager, an invoice under its legal minimum (and the account it
    refers to) stay restricted: the deletion completes and its outcome counts them as
    kept (it FAILED, "invoices (1), users (1)" remaining, before the provider said what
    the law keeps). Attack: a row written after the erasure, unrestricted, still fails
    the check and is not passed off as kept."""
    with_invoice(app)
    manager = PrivacyManager([app.privacy.provider_for(sessionmaker(app.engine))], discover=False)
    result = manager.delete_data_for_user("u1")
    assert result.completed, result.outcomes
    assert dict(result.outcomes[0].kept) == {"invoices": 1, "users": 1}
    assert result.outcomes[0].to_dict()["kept"] == {"invoices": 1, "users": 1}
    with Session(app.engine) as s:
        assert app.privacy.kept_by_law(s, "u1") == {"invoices": 1, "users": 1}
        assert app.privacy.kept_by_law(s, "u2") == {}
        s.add(app.m.Post(id=99, author_id="u1", body="written after", posted_at=NOW))
        s.commit()
    # A provider whose deletion does nothing leaves the new post unrestricted: the
    # check fails on it and does not count it among what the law keeps.
    lazy = app.privacy.provider_for(sessionmaker(app.engine))
    lazy.delete_data_for_user = lambda approved: None  # type: ignore[method-assign]
    outcome = PrivacyManager([lazy], discover=False).delete_data_for_user("u1").outcomes[0]
    assert not outcome.completed
    assert dict(outcome.remaining) == {"forum_posts": 1}
    assert dict(outcome.kept) == {}
    again = manager.delete_data_for_user("u1")
    assert again.completed, again.outcomes
    assert dict(again.outcomes[0].kept) == {"invoices": 1, "users": 1}


def test_provider_errors_name_the_component_and_the_message(app: SimpleNamespace) -> None:
    """A failure inside the provider is reported with its component and message."""
    provider = lps.LearnPrivacy.provider_for(app.privacy, None)
    result = PrivacyManager([provider], discover=False).delete_data_for_user("u1")
    outcome = result.outcomes[0]
    assert outcome.component == "lms"
    assert "sessions" in (outcome.error or "")


def test_register_lists_every_declared_table(app: SimpleNamespace) -> None:
    """The Art. 30 register is built from the declarations (and the schedule)."""
    controller = Controller(
        name="Formations SA", address="1 rue de Paris, Paris", contact="dpo@example.org"
    )
    register = app.privacy.register(controller)
    text_all = register.to_json()
    for needle in ("users", "forum_posts", "invoices", "E-mail address", "gdpr_art_6_1_c"):
        assert needle in text_all


def test_flask_app_context_works_inside_the_provider(app: SimpleNamespace) -> None:
    """Sessions taken from Flask's current_app work: the provider runs in this thread."""
    flask = pytest.importorskip("flask")
    populate(app.engine, app.m)
    web = flask.Flask("lms")
    web.extensions["sessions"] = sessionmaker(app.engine)

    def sessions() -> Session:
        return flask.current_app.extensions["sessions"]()

    manager = PrivacyManager([app.privacy.provider_for(sessions)], discover=False)
    outside = manager.export_user_data("u1", MemoryWriter())
    assert not outside.completed
    # Outside an app context Flask's own message is reported, with the component.
    assert outside.outcomes[0].component == "lms"
    assert "application context" in (outside.outcomes[0].error or "")
    with web.app_context():
        writer = MemoryWriter()
        assert manager.export_user_data("u1", writer).completed
        assert manager.delete_data_for_user("u1").completed
    assert len(writer.rows[("lms", "users")]) == 1
    assert app.privacy.keyring.is_shredded("u1", "contract")


def test_a_process_killed_after_commit_is_reconciled(app: SimpleNamespace) -> None:
    """SIGKILL between the erasure's commit and the shred: the next call shreds."""
    populate(app.engine, app.m)
    run_killed("erase", app)
    assert not app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1") is None
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 2
        app.privacy.find(s, app.m.User.email, "bob@example.org")
        s.commit()
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0
    assert app.privacy.keyring.is_shredded("u1", "contract")
    assert audit_actions(app) == ["erasure_request", "erase", "erase", "shred"]


def test_a_sweep_process_killed_half_way_ends_like_a_clean_one(
    tmp_path: Path, app: SimpleNamespace
) -> None:
    """SIGKILL during a sweep's second batch, then a rerun: the end state of one clean run."""
    populate(app.engine, app.m)
    app.engine.dispose()
    clean_db = tmp_path / "clean.db"
    shutil.copyfile(app.path / "app.db", clean_db)
    run_killed("sweep", app)
    with Session(app.engine) as s:
        app.privacy.sweep(s, schedule(app.m), now=NOW, batch_size=1)
    other = declarative_models()
    privacy = lps.LearnPrivacy(
        other.Base, keyring=Keyring.from_master_key(MASTER), keys=f"sqlite:///{tmp_path / 'k.db'}"
    )
    clean = create_engine(f"sqlite:///{clean_db}")
    with Session(clean) as s:
        privacy.sweep(s, schedule(other), now=NOW, batch_size=1)
    assert snapshot(app.engine) == snapshot(clean)
    assert audit_actions(app).count("erase") == 3
    clean.dispose()


def test_the_applications_own_deletions_are_audited(app: SimpleNamespace) -> None:
    """A row the application deletes through the ORM gets an audit entry in its transaction."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        post = s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u2")).one()
        s.delete(post)
        s.flush()
        s.rollback()
    assert audit_actions(app) == []
    with Session(app.engine) as s:
        post = s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u2")).one()
        s.delete(post)
        s.commit()
    with Session(app.engine) as s:
        entries = list(app.privacy.audit(s).entries())
    assert [(e.action, e.record_type, e.details["reason"]) for e in entries] == [
        ("erase", "Post", "deleted by the application")
    ]
    assert entries[0].subject_ref == app.privacy.subject_ref("u2")
    assert not names(json.dumps(entries[0].details), "Bob")


def test_an_erasure_in_a_rolled_back_savepoint_shreds_nothing(app: SimpleNamespace) -> None:
    """Erased inside a savepoint that rolls back, then the outer commit: keys stay."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        savepoint = s.begin_nested()
        app.privacy.erase_subject(s, "u1", now=NOW)
        savepoint.rollback()
        s.get(app.m.User, "u2").name = "Bob M."
        s.commit()
    assert not app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").email == "ana@example.org"
        assert s.get(app.m.User, "u2").name == "Bob M."


def test_a_later_savepoint_rollback_does_not_drop_the_shred(app: SimpleNamespace) -> None:
    """Erase, then a savepoint that fails and rolls back: the commit still shreds."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        savepoint = s.begin_nested()
        s.get(app.m.User, "u2").name = "Bob M."
        savepoint.rollback()
        s.commit()
    assert app.privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.scalar(text("SELECT count(*) FROM lp_pending_shreds")) == 0


def test_register_internal_only_purposes(app: SimpleNamespace) -> None:
    """``register(internal_only=...)``: a purpose shared internally only shows no
    "no recipient declared" gap; an external recipient under it (from another
    component passed in ``providers``) is a gap, an internal one is not."""
    controller = Controller(
        name="Formations SA", address="1 rue de Paris, Paris", contact="dpo@example.org"
    )
    plain = app.privacy.register(controller)
    purposes = [a.purpose for a in plain.activities]
    assert "billing" in purposes
    assert any(g.startswith("billing: no recipient declared") for g in plain.gaps)

    inside = app.privacy.register(controller, internal_only=purposes)
    assert all(a.internal_only for a in inside.activities)
    assert [g for g in inside.gaps if "recipient" in g] == []

    internal = app.privacy.register(
        controller, internal_only=purposes, providers=[Mailer(internal=True)]
    )
    assert [g for g in internal.gaps if "recipient" in g] == []
    external = app.privacy.register(
        controller, internal_only=purposes, providers=[Mailer(internal=False)]
    )
    assert [g for g in external.gaps if "recipient" in g] == [
        "billing: promised to be shared internally only, but Mailjet SAS is an external recipient"
    ]
    with pytest.raises(ValidationError):
        app.privacy.register(controller, internal_only="billing")


@pytest.mark.parametrize("collector_on", [True, False])
def test_a_flush_refused_for_a_shredded_learner_gives_the_collector_back(
    app: SimpleNamespace, collector_on: bool
) -> None:
    """New learners' keys are made with the cyclic collector paused: a flush the key
    store refuses (the learner's keys were shredded) leaves it as it found it, and
    writes nothing."""
    populate(app.engine, app.m)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    was = gc.isenabled()
    try:
        if not collector_on:
            gc.disable()
        with Session(app.engine) as s:
            s.add(app.m.User(id="u1", email="again@example.org", name="Ana"))
            with pytest.raises(KeyShreddedError):
                s.flush()
        assert gc.isenabled() is collector_on
    finally:
        if was:
            gc.enable()
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1") is None


def test_an_erasure_whose_delete_the_database_skipped_is_not_reported(
    app: SimpleNamespace,
) -> None:
    """Attack: a trigger makes SQLite skip the DELETE of Ana's posts (a rule or a
    row-level security policy does the same on PostgreSQL). The erasure reported them
    erased, and shredded her keys, while the posts stayed with her id in clear. A
    statement that removes fewer rows than planned now raises, and the caller's
    transaction is rolled back: no entry written, no key shredded."""
    populate(app.engine, app.m)
    before = audit_actions(app)
    with app.engine.begin() as c:
        c.execute(
            text("CREATE TRIGGER keep BEFORE DELETE ON forum_posts BEGIN SELECT RAISE(IGNORE); END")
        )
    with Session(app.engine) as s, pytest.raises(IntegrityError, match="forum_posts"):
        app.privacy.erase_subject(s, "u1", now=NOW)
    assert audit_actions(app) == before
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").email == "ana@example.org"
        assert len(s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u1")).all()) == 2
