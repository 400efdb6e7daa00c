"""A sweep in its own process, for the crash and concurrency tests of the store.

Usage: ``python -m tests.store_worker URL KEYS_URL MASTER_KEY_HEX NOW_ISO BATCH_SIZE ACTOR``; prints
the report's counts as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import sys


def main(argv: list[str]) -> int:
    """Sweep the store at ``argv[0]`` with the test schedule."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store
    from tests.store_fixtures import retention_schedule

    url, keys, master, now, batch_size, actor = argv
    store = Store(
        url, keys=keys, keyring=Keyring.from_master_key(bytes.fromhex(master)), actor=actor
    )
    report = store.sweep(
        retention_schedule(), now=dt.datetime.fromisoformat(now), batch_size=int(batch_size)
    )
    counts = {
        name: getattr(report, name)
        for name in ("erased", "anonymised", "restricted", "review", "kept", "shredded")
    }
    print(json.dumps(counts), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
