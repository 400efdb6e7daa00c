"""learnprivacy.sqlalchemy on a real PostgreSQL: the app's database and a key database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

import learnprivacy.sqlalchemy as lps
from learnprivacy.crypto import Keyring
from learnprivacy.errors import DecryptionError, KeyShreddedError, PlaintextError
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from tests import NOW
from tests.inplace_models import declarative_models

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

pytestmark = pytest.mark.postgres

UTC = dt.UTC
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=UTC)


@pytest.fixture
def app(postgres_server: TemporaryPostgres) -> Iterator[SimpleNamespace]:
    """Bound models on a fresh PostgreSQL database, keys in another one."""
    app_url = postgres_server.create_database()
    keys_url = postgres_server.create_database()
    models = declarative_models()
    privacy = lps.LearnPrivacy(
        models.Base, keyring=Keyring.from_master_key(bytes(range(32))), keys=keys_url
    )
    engine = create_engine(app_url)
    models.Base.metadata.create_all(engine)
    yield SimpleNamespace(m=models, privacy=privacy, engine=engine, keys=keys_url)
    engine.dispose()


def test_round_trip_lookup_and_binding_on_postgres(app: SimpleNamespace) -> None:
    """Tokens at rest, values on load, blind-index lookups, moved tokens refused."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="u1", email="ana@example.org", name="Ana", last_login_at=LONG_AGO))
        s.add(m.User(id="u2", email="bob@example.org", name="Bob", last_login_at=NOW))
        s.flush()
        s.add(m.Post(author_id="u1", body="hello", posted_at=LONG_AGO))
        s.commit()
        raw = s.execute(text("SELECT email, name FROM users WHERE id='u1'")).one()
        assert all(v.startswith("lp1.") for v in raw)
        assert s.scalars(select(m.Post)).one().body == "hello"
        assert [u.id for u in app.privacy.find(s, m.User.email, "ANA@example.org")] == ["u1"]
    with app.engine.begin() as c:
        c.execute(
            text("UPDATE users SET email=(SELECT email FROM users WHERE id='u1') WHERE id='u2'")
        )
    with Session(app.engine) as s, pytest.raises(DecryptionError, match=r"users\.email"):
        s.get(m.User, "u2")
    with Session(app.engine) as s, pytest.raises(PlaintextError):
        s.scalars(select(m.User).where(m.User.name == "Ana")).all()


def test_erasure_and_sweep_on_postgres(app: SimpleNamespace) -> None:
    """Erasure shreds after commit; a sweep erases the inactive learner's rows."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="u1", email="ana@example.org", name="Ana", last_login_at=LONG_AGO))
        s.add(m.User(id="u2", email="bob@example.org", name="Bob", last_login_at=NOW))
        s.add(m.User(id="u3", email="eve@example.org", name="Eve", last_login_at=NOW))
        s.flush()
        s.add(m.Post(author_id="u1", body="old post", posted_at=LONG_AGO))
        s.add(m.Post(author_id="u3", body="Eve's post", posted_at=NOW))
        s.commit()
        report = app.privacy.erase_subject(s, "u3", now=NOW)
        assert report.erased == 2
        assert not app.privacy.keyring.is_shredded("u3", "contract")
        s.commit()
        assert app.privacy.keyring.is_shredded("u3", "contract")
        schedule = Schedule(
            {
                m.User: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
                m.Post: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            }
        )
        swept = app.privacy.sweep(s, schedule, now=NOW)
        assert swept.erased == 2
        assert app.privacy.sweep(s, schedule, now=NOW).changed == 0
        assert s.get(m.User, "u1") is None
        assert s.get(m.User, "u2").name == "Bob"
        assert app.privacy.audit(s).verify()


def test_a_dump_before_erasure_reads_nothing_after(app: SimpleNamespace) -> None:
    """Rows copied out before an erasure cannot be decrypted once the keys are shredded."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="u1", email="ana@example.org", name="Ana"))
        s.commit()
        copied = s.execute(text("SELECT id, email, name FROM users")).all()
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
        with app.engine.begin() as c:
            c.execute(
                text("INSERT INTO users (id, email, name) VALUES (:i, :e, :n)"),
                {"i": copied[0][0], "e": copied[0][1], "n": copied[0][2]},
            )
    with Session(app.engine) as s, pytest.raises(KeyShreddedError):
        s.get(m.User, "u1")


def test_sqlmodel_models_on_postgres(postgres_server: TemporaryPostgres) -> None:
    """SQLModel models on PostgreSQL: tokens at rest, lookups, erasure after commit."""
    from sqlmodel import Session as SQLModelSession

    from tests.inplace_models import add_sqlmodel_ana, sqlmodel_models

    models = sqlmodel_models()
    privacy = lps.LearnPrivacy(
        models.Base, keyring=Keyring.generate(), keys=postgres_server.create_database()
    )
    engine = create_engine(postgres_server.create_database())
    models.Base.metadata.create_all(engine)
    try:
        with SQLModelSession(engine) as s:
            add_sqlmodel_ana(s, models)
            assert s.execute(text("SELECT body FROM forum_posts")).scalar_one().startswith("lp1.")
            assert [u.name for u in privacy.find(s, models.User.email, "ANA@example.org")] == [
                "Ana"
            ]
            assert privacy.erase_subject(s, "u1", now=NOW).erased == 2
            s.commit()
        assert privacy.keyring.is_shredded("u1", "contract")
    finally:
        privacy.close()
        engine.dispose()


def test_queries_skip_restricted_rows_and_decrypt_columns_on_postgres(
    app: SimpleNamespace,
) -> None:
    """Integer keys (compared as text) are left out once restricted; columns come back clear."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="u1", email="ana@example.org", name="Ana", last_login_at=NOW))
        s.flush()
        s.add_all([m.Post(author_id="u1", body=f"post {i}", posted_at=NOW) for i in range(3)])
        s.commit()
        first = s.scalars(select(m.Post).order_by(m.Post.id)).first()
        assert app.privacy.restrict(s, first, reason="dispute", now=NOW)
        s.commit()
    with Session(app.engine) as s:
        assert s.scalars(select(m.Post.body).order_by(m.Post.id)).all() == ["post 1", "post 2"]
        everything = select(m.Post.body).execution_options(include_restricted=True)
        assert sorted(s.scalars(everything)) == ["post 0", "post 1", "post 2"]
        assert s.scalars(select(m.User.email)).all() == ["ana@example.org"]


def test_audit_log_in_the_key_database_and_epochs_on_postgres(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """audit= the PostgreSQL key database: entries land there once committed; a
    compaction ends what a pg_dump-free copy of the keys (taken as rows) could open."""
    app_url = postgres_server.create_database()
    keys_url = postgres_server.create_database()
    m = declarative_models()
    privacy = lps.LearnPrivacy(
        m.Base,
        keyring=Keyring.from_master_key(bytes(range(32))),
        keys=keys_url,
        audit=keys_url,
        vault=tmp_path / "keys.vault",
    )
    engine = create_engine(app_url)
    m.Base.metadata.create_all(engine)
    keys_engine = create_engine(keys_url)
    try:
        with Session(engine) as s:
            s.add(m.User(id="u1", email="ana@example.org", name="Ana", last_login_at=NOW))
            s.add(m.User(id="u2", email="bob@example.org", name="Bob", last_login_at=NOW))
            s.commit()
            privacy.compact_keys(s, now=NOW)
            with keys_engine.connect() as c:
                before = c.execute(text("SELECT * FROM lpk_keys")).all()
            privacy.erase_subject(s, "u1", now=NOW)
            s.rollback()
            privacy.erase_subject(s, "u1", now=NOW)
            s.commit()
            report = privacy.compact_keys(s, now=NOW)
            assert report["epoch"] == 2
            assert privacy.audit(s).verify()
            actions = [e.action for e in privacy.audit(s).entries()]
        assert actions == ["compact_keys", "erasure_request", "erase", "shred", "compact_keys"]
        with keys_engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM lp_audit")).scalar_one() == 5
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM lp_audit_outbox")).scalar_one() == 0
        # The key rows copied before the erasure: none unwraps under what is held now.
        from cryptography.exceptions import InvalidTag

        from learnprivacy.crypto._master import MasterKey
        from learnprivacy.store._epochs import FileVault

        state = FileVault(tmp_path / "keys.vault").read()
        assert state is not None
        ((epoch_id, wrapped),) = state["epochs"].items()
        import base64

        epoch = MasterKey(bytes(range(32))).unwrap(
            base64.b64decode(wrapped), subject="learnprivacy:vault", scope="epoch", key_id=epoch_id
        )

        def opened(rows: list[Any]) -> int:
            count = 0
            for row in rows:
                values = row._mapping
                if not values["wrapped"]:
                    continue
                for wrapping in (MasterKey(bytes(range(32))), MasterKey(epoch)):
                    try:
                        wrapping.unwrap(
                            bytes(values["wrapped"]),
                            subject=values["subject_ref"],
                            scope=values["scope"],
                            key_id=values["key_id"],
                        )
                    except (InvalidTag, ValueError):  # a key that does not open
                        continue
                    count += 1
            return count

        with keys_engine.connect() as c:
            now_rows = c.execute(text("SELECT * FROM lpk_keys WHERE state <> 'shredded'")).all()
        # Control: today's live keys open with the vault's epoch key, the same way.
        assert opened(now_rows) == len(now_rows) > 0
        assert before
        assert opened(before) == 0
        with Session(engine) as s:
            assert s.scalars(select(m.User.name)).all() == ["Bob"]
    finally:
        privacy.close()
        engine.dispose()
        keys_engine.dispose()
