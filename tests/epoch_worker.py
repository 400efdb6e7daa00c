"""Run a key compaction and SIGKILL itself at a chosen point (tests/test_keys_epochs.py).

Usage: python -m tests.epoch_worker RECORDS_URL POINT [BATCH_SIZE]
POINT: ``progress:N`` (at the Nth key examined), ``vault:W:S`` (during vault write W,
after slot write S: 0 torn half-way, 1 after the first slot), ``meta`` (after the key
database switched to the new epoch, before the vault dropped the old one).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store, _epochs
from tests.store_fixtures import MASTER_KEY, NOW


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _KillAt:
    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0

    def expect(self, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.seen += n
        if self.seen >= self.at:
            _die()


def main() -> None:
    url, point = sys.argv[1], sys.argv[2]
    progress: Any = None
    if point.startswith("progress:"):
        progress = _KillAt(int(point.split(":")[1]))
    elif point.startswith("vault:"):
        _, write_at, slot_at = point.split(":")
        calls = {"n": 0}
        original = _epochs.FileVault._write_slots

        def write_slots(self: Any, sequence: int, payload: bytes, *, first: int) -> None:
            calls["n"] += 1
            if calls["n"] != int(write_at):
                original(self, sequence, payload, first=first)
                return
            slot = _epochs._make_slot(sequence, payload)
            fd = os.open(self.path, os.O_RDWR)
            if slot_at == "0":
                os.pwrite(fd, slot[: len(slot) // 3], first * _epochs._SLOT)
            else:
                os.pwrite(fd, slot, first * _epochs._SLOT)
            os.fsync(fd)
            _die()

        _epochs.FileVault._write_slots = write_slots  # type: ignore[method-assign]
    elif point == "meta":
        # The key database switched to the new epoch; the vault still holds both.
        def trim(*_args: Any) -> None:
            _die()

        _epochs._trim_vault = trim  # type: ignore[assignment]
    store = Store(url, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW)
    batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    store.compact_keys(now=NOW, progress=progress, batch_size=batch_size)
    sys.exit(3)  # the kill point was never reached


if __name__ == "__main__":
    main()
