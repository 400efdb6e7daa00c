"""A key database restored from a backup older than a worker's cached keys, then the
erasures replayed (the documented recovery): the worker must not keep using the keys of a
learner erased since.

Attack: the backup is taken before Ana's key exists, so its shred mark is the very mark
the worker later dated Ana's cached key with (nothing was shredded in between). Ana is
erased; the key database is restored from the backup, where Ana has no key at all, and
the erasure is replayed: a tombstone shred, which finds no key to destroy. Before, only
a shred that destroyed a key changed the mark, so the mark stayed the one the worker
held: it skipped the look-up and went on opening Ana's records from a restored copy.
A freshly written tombstone now changes the mark too.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_shred_mark import ANA, cache_keys, restored, two_workers


def test_a_replayed_erasure_on_a_restored_key_database_reaches_cached_keys(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as (worker, eraser, path):
        cache_keys(eraser, "learner-carol")
        backup = tmp_path / "keys-backup.db"
        eraser.store.backup(str(backup))  # type: ignore[attr-defined]
        cache_keys(worker, ANA)  # made after the backup, dated with the backup's mark
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is not None
        assert eraser.shred(ANA) == 1
        restarted = restored(worker, eraser, backup, path)
        try:
            # replay_erasures' shred of Ana: a tombstone, no key left to destroy.
            assert restarted.shred(ANA) == 0
            assert restarted.is_shredded(ANA)
            worker._drop_stale([ANA])
            assert worker._cache.get(ANA) is None
            # A tombstone already there changes nothing: the mark stays.
            mark = restarted.store.shred_mark()  # type: ignore[attr-defined]
            restarted.shred(ANA)
            assert restarted.store.shred_mark() == mark  # type: ignore[attr-defined]
        finally:
            restarted.store.close()  # type: ignore[attr-defined]
