"""A restored backup must not bring a withdrawn consent back.

Attack: the records are backed up, then the learner withdraws their consent (the
request workflow writes ``withdrawn_at`` on the Consent record, a rectification), then
the backup is restored and the live store's audit log replayed, as the documentation
says to. Before, ``replay_erasures`` re-applied erasures, anonymisations, restrictions
and shreds but no rectification: the consent came back as given and never withdrawn, and
everything resting on it (the newsletter, the analytics) would process the learner
again. Now a rectification's changed dates (not personal values, so the audit entry may
carry them) are re-applied; a rectification of personal values, which the log cannot
carry, is counted in ``ReplayReport.rectifications_left`` so that it can be redone.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from learnprivacy.crypto import Keyring
from learnprivacy.records import Consent, Learner
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, day

CONSENT = "L1-CONS1"


def _restored(live: Store, backup: Path) -> Store:
    return Store(
        f"sqlite:///{backup}",
        keyring=Keyring.from_master_key(MASTER_KEY),
        keys=live._key_db,
        clock=lambda: NOW,
    )


def test_a_withdrawal_is_not_undone_by_restoring_a_backup(
    file_store: Store, tmp_path: Path
) -> None:
    backup = tmp_path / "before.db"
    file_store.backup(str(backup))
    consent = file_store.get(Consent, CONSENT)
    assert consent is not None
    assert consent.withdrawn_at is None
    withdrawn = attrs.evolve(consent, withdrawn_at=day(2026, 5, 1))
    file_store.update(withdrawn, now=NOW)
    with _restored(file_store, backup) as restored:
        report = restored.replay_erasures(file_store.audit, now=NOW)
        assert restored.get(Consent, CONSENT) == withdrawn
        assert report.rectified == 1
        assert report.rectifications_left == 0
        # Replaying again changes nothing more.
        restored.replay_erasures(file_store.audit, now=NOW)
        assert restored.get(Consent, CONSENT) == withdrawn


def test_a_rectified_personal_value_is_reported_left_to_redo(
    file_store: Store, tmp_path: Path
) -> None:
    backup = tmp_path / "before.db"
    file_store.backup(str(backup))
    ana = file_store.get(Learner, "L1")
    assert ana is not None
    file_store.update(attrs.evolve(ana, email="ana.new@example.org"), now=NOW)
    with _restored(file_store, backup) as restored:
        report = restored.replay_erasures(file_store.audit, now=NOW)
        assert report.rectifications_left == 1
        assert report.rectified == 0
        assert "ana.new" not in repr(report)
