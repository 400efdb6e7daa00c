"""Key epochs for the SQLAlchemy integration: compaction ends what old key copies open.

The threat (docs/security.md): copies of the application's database and of the key
database taken before an erasure, the master key and the current vault. Before
compaction they still read the erased learner (asserted below as a control); after
``LearnPrivacy.compact_keys`` they read nothing of them, while every other learner stays
readable from the current databases.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

import learnprivacy.sqlalchemy as lps
from learnprivacy.crypto import Keyring
from learnprivacy.crypto._master import MasterKey
from learnprivacy.errors import ConfigurationError, KeyShreddedError
from learnprivacy.keys import KeyDatabase
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store._epochs import FileVault
from tests import NOW, sqlite_copy
from tests.inplace_models import add_users, declarative_models

MASTER = bytes(range(32))


def _bind(keys: Any, **options: object) -> tuple[SimpleNamespace, lps.LearnPrivacy]:
    """New :func:`declarative_models` bound to the key database (or key store) ``keys``."""
    models = declarative_models()
    privacy = lps.LearnPrivacy(
        models.Base, keyring=Keyring.from_master_key(MASTER), keys=keys, **options
    )
    return models, privacy


def _fill(engine_url: str, m: SimpleNamespace) -> None:
    engine = create_engine(engine_url)
    m.Base.metadata.create_all(engine)
    add_users(engine, m, "Ana's post", last_login_at=NOW)
    engine.dispose()


def _filled(
    tmp_path: Path, **options: object
) -> tuple[str, str, SimpleNamespace, lps.LearnPrivacy, Engine]:
    """An app bound to the key database ``keys.db`` in ``tmp_path`` (with ``options``),
    its database ``app.db`` filled by :func:`_fill`: the two URLs, the models, the
    binding and an engine on the app's database."""
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    app_url = f"sqlite:///{tmp_path / 'app.db'}"
    m, privacy = _bind(keys_url, **options)
    _fill(app_url, m)
    return keys_url, app_url, m, privacy, create_engine(app_url)


def _read(app_url: str, keys: str, vault: Path, subject: str) -> str | None:
    """The name of ``subject`` read from ``app_url`` with ``keys``, the master key and
    ``vault`` (a new binding each time, as an attacker with the copies would do)."""
    models, privacy = _bind(keys, vault=vault)
    engine = create_engine(app_url)
    try:
        with Session(engine) as s:
            user = s.get(models.User, subject, execution_options={"include_restricted": True})
            return None if user is None else str(user.name)
    finally:
        privacy.close()
        engine.dispose()


def test_an_old_key_copy_reads_nothing_of_a_learner_erased_before_compaction(
    tmp_path: Path,
) -> None:
    """Erase, compact, restore a pre-erasure key database copy: the erased learner is
    unreadable, the others read from the current databases."""
    vault = tmp_path / "keys.vault"
    keys_url, app_url, _m, privacy, engine = _filled(tmp_path)
    with Session(engine) as s:
        first = privacy.compact_keys(s, now=NOW)  # the key database moves to epochs
    assert first["epoch"] == 1
    assert vault.exists()
    assert privacy.vault is not None
    # The backups an operator keeps: both databases, before the erasure.
    engine.dispose()
    shutil.copyfile(tmp_path / "app.db", tmp_path / "app-before.db")
    privacy.keyring.store.backup(str(tmp_path / "keys-before.db"))  # type: ignore[attr-defined]
    with Session(engine) as s:
        privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    assert privacy.key_epoch_status()["erased_awaiting_compaction"] == 1
    # Control: before compaction, the old copies + master key + vault read the learner.
    old_app = sqlite_copy(tmp_path / "app-before.db", tmp_path / "a1.db")
    old_keys = sqlite_copy(tmp_path / "keys-before.db", tmp_path / "k1.db")
    assert _read(old_app, old_keys, vault, "u1") == "Ana Silva"
    with Session(engine) as s:
        report = privacy.compact_keys(s, now=NOW)
        assert report["epoch"] == 2
        assert report["rewrapped"] > 0
        entries = [e for e in privacy.audit(s).entries() if e.action == "compact_keys"]
        assert len(entries) == 2
        assert entries[-1].subject_ref is None
        assert set(entries[-1].details) == {
            "epoch",
            "rewrapped",
            "live_keys",
            "erased_subjects",
            "resumed",
        }
        assert privacy.audit(s).verify()
    status = privacy.key_epoch_status()
    assert (status["epoch"], status["erased_awaiting_compaction"]) == (2, 0)
    ana_ref = privacy.keyring.key_ref("u1")
    privacy.close()
    engine.dispose()
    # The attack: fresh copies of the old copies, the master key, the current vault.
    old_app = sqlite_copy(tmp_path / "app-before.db", tmp_path / "a2.db")
    old_keys = sqlite_copy(tmp_path / "keys-before.db", tmp_path / "k2.db")
    # The old copy names an epoch the vault no longer holds: it is refused at once.
    with pytest.raises(ConfigurationError, match="epoch"):
        _read(old_app, old_keys, vault, "u1")
    # Nor at a lower level: no key of the old copy unwraps under the master key or the
    # epoch key the vault holds now.
    state = FileVault(vault).read()
    assert state is not None
    assert len(state["epochs"]) == 1
    ((epoch_id, wrapped_epoch),) = state["epochs"].items()
    epoch = MasterKey(MASTER).unwrap(
        base64.b64decode(wrapped_epoch),
        subject="learnprivacy:vault",
        scope="epoch",
        key_id=epoch_id,
    )
    old = KeyDatabase(old_keys)
    try:
        learner_entries = [e for e in old.iter_entries() if e.subject == ana_ref and e.wrapped]
        assert learner_entries
        for entry in learner_entries:
            for wrapping in (MasterKey(MASTER), MasterKey(epoch)):
                with pytest.raises((InvalidTag, ValueError)):
                    wrapping.unwrap(
                        entry.wrapped,
                        subject=entry.subject,
                        scope=entry.scope,
                        key_id=entry.key_id,
                    )
    finally:
        old.close()
    # The old application copy with the current key database: shredded, not readable.
    with pytest.raises(KeyShreddedError):
        _read(sqlite_copy(tmp_path / "app-before.db", tmp_path / "a3.db"), keys_url, vault, "u1")
    # Every other learner reads from the current databases, after reopening.
    assert _read(app_url, keys_url, vault, "u2") == "Bob"
    assert _read(app_url, keys_url, vault, "u1") is None


def test_new_learners_after_a_compaction_are_readable_after_reopening(tmp_path: Path) -> None:
    """Keys made after a compaction are wrapped under the new epoch and open again."""
    keys_url, app_url, m, privacy, engine = _filled(tmp_path)
    with Session(engine) as s:
        privacy.compact_keys(s, now=NOW)
        s.add(m.User(id="u3", email="eve@example.org", name="Eve", last_login_at=NOW))
        s.commit()
    privacy.close()
    engine.dispose()
    assert _read(app_url, keys_url, tmp_path / "keys.vault", "u3") == "Eve"
    assert _read(app_url, keys_url, tmp_path / "keys.vault", "u1") == "Ana Silva"


def test_a_binding_opened_before_another_compacts_keeps_writing_keys_that_open(
    tmp_path: Path,
) -> None:
    """Two processes' bindings on one key database: one compacts twice while the other,
    bound before, keeps making learners' keys. Nothing needs restarting: after each
    compaction the writer wraps its new keys under the current epoch, so a fresh binding
    (a restart) reads every learner, and none is wrapped under a destroyed epoch key."""
    vault = tmp_path / "keys.vault"
    keys_url, app_url, writer_models, writer, engine = _filled(tmp_path)
    with Session(engine) as s:
        writer.compact_keys(s, now=NOW)  # the key database moves to epochs
    _compactor_models, compactor = _bind(keys_url, vault=vault)
    names = {}
    for epoch in (2, 3):
        with Session(engine) as s:
            assert compactor.compact_keys(s, now=NOW)["epoch"] == epoch
        subject = f"n{epoch}"
        names[subject] = f"New learner {epoch}"
        with Session(engine) as s:  # the writer still holds the epoch key it began with
            s.add(
                writer_models.User(
                    id=subject,
                    email=f"{subject}@example.org",
                    name=names[subject],
                    last_login_at=NOW,
                )
            )
            s.commit()
    writer.close()
    compactor.close()
    engine.dispose()
    assert _read(app_url, keys_url, vault, "u1") == "Ana Silva"
    for subject, name in names.items():
        assert _read(app_url, keys_url, vault, subject) == name


def test_a_key_database_on_epochs_refuses_to_bind_without_its_vault(tmp_path: Path) -> None:
    """Once on epochs, binding with the vault elsewhere is a clear configuration error."""
    keys_url, app_url, _m, privacy, engine = _filled(tmp_path, vault=tmp_path / "elsewhere.vault")
    with Session(engine) as s:
        privacy.compact_keys(s, now=NOW)
    privacy.close()
    engine.dispose()
    assert not (tmp_path / "keys.vault").exists()
    with pytest.raises(ConfigurationError, match="vault"):
        _bind(keys_url)
    assert _read(app_url, keys_url, tmp_path / "elsewhere.vault", "u2") == "Bob"


def test_vault_needs_a_key_database(tmp_path: Path) -> None:
    """vault= with an in-memory key store is refused; compaction too."""
    from learnprivacy.crypto import InMemoryKeyStore

    with pytest.raises(ConfigurationError, match="vault"):
        _bind(InMemoryKeyStore(), vault=tmp_path / "v.vault")
    models, privacy = _bind(InMemoryKeyStore())
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    try:
        with Session(engine) as s, pytest.raises(ConfigurationError, match="key database"):
            privacy.compact_keys(s, now=NOW)
    finally:
        privacy.close()


def test_a_sweep_can_end_with_a_compaction(tmp_path: Path) -> None:
    """sweep(compact=True) compacts once it erased something; a dry run never does."""
    _keys_url, _app_url, m, privacy, engine = _filled(tmp_path)
    with engine.begin() as c:
        c.execute(text("DELETE FROM forum_posts WHERE author_id='u1'"))
        c.execute(text("UPDATE users SET last_login_at='2020-01-01 00:00:00' WHERE id='u1'"))
    schedule = Schedule({m.User: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    try:
        with Session(engine) as s:
            dry = privacy.sweep(s, schedule, now=NOW, dry_run=True, compact=True)
            assert dry.erased == 1
            assert privacy.key_epoch_status()["epoch"] == 0
            report = privacy.sweep(s, schedule, now=NOW, compact=True)
            assert report.erased == 1
            assert privacy.key_epoch_status()["epoch"] == 1
            assert s.scalars(select(m.User.name)).all() == ["Bob"]
    finally:
        privacy.close()
        engine.dispose()
