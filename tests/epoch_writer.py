"""Write learners in a loop while another process compacts the keys.

Used by tests/test_keys_epoch_writers.py.

Usage: python -m tests.epoch_writer RECORDS_URL KEYS_URL VAULT PREFIX COUNT STOP_FILE
Opens the store once, prints ``ready``, then adds ``COUNT`` learners ``PREFIX-i`` one
small batch at a time (new keys each time) until done, or until ``STOP_FILE`` exists
and at least ``COUNT`` learners are written. Prints ``done N`` at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, learner


def main() -> None:
    records, keys, vault, prefix, count_text, stop_text = sys.argv[1:7]
    count = int(count_text)
    stop = Path(stop_text)
    store = Store(
        records,
        keyring=Keyring.from_master_key(MASTER_KEY),
        keys=keys,
        vault=vault,
        clock=lambda: NOW,
    )
    print("ready", flush=True)
    written = 0
    while written < count or not stop.exists():
        store.add_all([learner(f"{prefix}-{written + i}") for i in range(3)])
        written += 3
        time.sleep(0.005)
        if written > 50 * count:
            break
    store.close()
    print(f"done {written}", flush=True)


if __name__ == "__main__":
    main()
