"""Run a retention sweep and SIGKILL itself at a chosen step of a chosen page
(tests/test_store_sweep_kill.py).

Usage: python -m tests.sweep_kill_worker RECORDS_URL STEP PAGE BATCH_SIZE [KEYS_URL PART]
(``KEYS_URL`` and ``PART``, a ``SweepPart`` as JSON: one of several workers on a PostgreSQL
store, tests/test_store_sweep_parts_kill.py). STEP, on the PAGE-th page that shreds keys:

- ``committed``: the page's transaction committed (rows gone, audit entries and outbox
  rows written), none of its keys destroyed yet;
- ``keys-updated``: the key rows overwritten and committed, the key database not yet
  checkpointed (the old key bytes still in its file);
- ``keys-checkpointed``: the key database checkpointed, the outbox rows not yet deleted;
- ``outbox-deleted``: the outbox rows deleted, before the next page;
- ``final``: every page done, before the checkpoint that ends the sweep.

PAGE 0: never killed, and its store's opening applies no outbox row. It stands for a
worker opened before the other's kill: started after it (a loaded machine starts
processes late), its opening would settle what the kill left owed before the test could
look at the databases as the kill left them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from learnprivacy.crypto import Keyring
from learnprivacy.records import Learner
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store, SweepPart, _engine, _keystore
from tests.store_fixtures import MASTER_KEY, NOW

SCHEDULE = Schedule({Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    url, step, page, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pages = {"n": 0}
    keys_type = _keystore.SqlKeyStore
    apply_sent = keys_type.apply_sent

    def counted_apply(self: Any, **options: Any) -> int:
        pages["n"] += 1
        if step == "committed" and pages["n"] == page:
            _die()
        count = apply_sent(self, **options)
        if step == "outbox-deleted" and pages["n"] == page:
            _die()
        return count

    keys_type.apply_sent = counted_apply  # type: ignore[method-assign]
    checkpoint = _engine.Database.checkpoint
    delete_outbox = _keystore._delete_outbox

    def checkpointing(self: _engine.Database, **options: Any) -> None:
        is_keys = str(self.engine.url).endswith(".keys.db")
        if is_keys and step == "keys-updated" and pages["n"] == page:
            _die()
        if not is_keys and step == "final" and pages["n"] >= 1:
            _die()
        checkpoint(self, **options)

    def deleting(connection: Any, ids: list[int]) -> None:
        if step == "keys-checkpointed" and pages["n"] == page:
            _die()
        delete_outbox(connection, ids)

    _engine.Database.checkpoint = checkpointing  # type: ignore[method-assign]
    _keystore._delete_outbox = deleting
    if page == 0:
        keys_type.apply_outbox = lambda _self: 0  # type: ignore[method-assign]
    keys, part = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 5 else (None, None)
    store = Store(url, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW, keys=keys)
    chosen = None if part is None else SweepPart.from_json(json.loads(part))
    store.sweep(SCHEDULE, now=NOW, batch_size=batch_size, compact=False, part=chosen)
    sys.exit(3)  # the kill point was never reached


if __name__ == "__main__":
    main()
