"""``Store.backup`` and ``KeyDatabase.backup`` never write over an existing file.

Attack (a careless caller): ``store.backup("lms.keys.db")``. SQLite's backup API
replaces the whole target, so the live key database became a copy of the records:
every learner's key was destroyed and nothing could be read again (``no such table:
lpk_keys``). The same for a key backup written over the records, or over an older
backup. Now the target is created exclusively: an existing file raises
``ConfigurationError`` and is left as it was; a backup that fails leaves no file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from learnprivacy.errors import ConfigurationError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from tests.store_fixtures import NOW, learner


def _refused(write: Callable[[str], None], target: Path) -> None:
    before = target.read_bytes()
    with pytest.raises(ConfigurationError, match="exists"):
        write(str(target))
    assert target.read_bytes() == before


def test_a_records_backup_never_replaces_the_key_database(
    file_store: Store, tmp_path: Path
) -> None:
    _refused(file_store.backup, tmp_path / "lms.keys.db")
    file_store.keyring.clear_cache("L1")
    assert file_store.get(Learner, "L1") == learner("L1")


def test_a_key_backup_never_replaces_the_records(file_store: Store, tmp_path: Path) -> None:
    _refused(file_store._key_db.backup, tmp_path / "lms.db")
    assert file_store.get(Learner, "L1") == learner("L1")


def test_a_backup_never_replaces_an_earlier_one(file_store: Store, tmp_path: Path) -> None:
    earlier = tmp_path / "monday.db"
    file_store.backup(str(earlier))
    file_store.erase_subject("L1", now=NOW)
    _refused(file_store.backup, earlier)
    key_copy = tmp_path / "keys-monday.db"
    file_store._key_db.backup(str(key_copy))
    _refused(file_store._key_db.backup, key_copy)


def test_a_backup_that_fails_leaves_no_file(file_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "missing-directory" / "copy.db"
    with pytest.raises(ConfigurationError):
        file_store.backup(str(target))
    assert not target.exists()
