"""An in-place erasure or sweep in its own process, killed (SIGKILL) at a chosen moment.

Usage: ``python -m tests.inplace_worker MODE APP_DB KEYS_DB [AUDIT_DB]``. ``erase``:
erase learner ``u1``, commit, and die between the commit and the shredding of the keys.
``sweep``: run the test schedule in batches of one row and die at the second batch's
commit. ``audit-before-move`` and ``audit-after-append`` (audit log in ``AUDIT_DB``):
erase ``u1``, commit, and die before the staged entries reach the audit database, or
once they have but before the outbox row is removed. ``convert``: open the binding on
a row-states table written with keys in clear and die half-way through its conversion.
``migrate-encrypt``: encrypt ``users`` in batches of five rows and die once two are
committed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import NOW


def run_killed(mode: str, app: Any, *audit: str) -> None:
    """Run ``mode`` in a worker process on ``app`` (the in-place test app: its ``path``
    holds app.db, its ``keys`` URL the keys; ``audit`` the audit database's URL, if any)
    after closing the app's own connections, and check that the worker was killed."""
    app.engine.dispose()
    database = f"sqlite:///{app.path / 'app.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "tests.inplace_worker", mode, database, app.keys, *audit],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Run ``mode`` on the databases and get killed half-way."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import learnprivacy.sqlalchemy as lps
    from learnprivacy.crypto import Keyring
    from tests.inplace_models import declarative_models
    from tests.test_sqlalchemy_erasure import schedule

    mode, app_db, keys_db, *audit = argv
    models = declarative_models()
    privacy = lps.LearnPrivacy(
        models.Base,
        keyring=Keyring.from_master_key(bytes(range(32))),
        keys=keys_db,
        audit=audit[0] if audit else None,
    )
    engine = create_engine(app_db)
    with Session(engine) as session:
        if mode.startswith("audit-"):
            from learnprivacy.sqlalchemy._auditdb import AuditDatabase

            privacy.erase_subject(session, "u1", now=NOW)
            if mode == "audit-before-move":
                AuditDatabase.drain = _die  # type: ignore[method-assign]
            else:
                # After the audit database committed the entries, before the outbox
                # row is removed.
                engine.begin = _die  # type: ignore[method-assign]
            session.commit()
        elif mode == "convert":
            from learnprivacy.sqlalchemy import _states

            real_batch = _states._insert_batch
            batches = {"n": 0}

            def dying_batch(*args: Any) -> None:
                # The table emptied and its first batch written again, in the transaction.
                batches["n"] += 1
                if batches["n"] == 2:
                    _die()
                real_batch(*args)

            _states._insert_batch = dying_batch  # type: ignore[assignment]
            privacy.find(session, models.User.email, "ana@example.org")
        elif mode == "migrate-encrypt":

            def dying(_table: str, done: int, _total: int) -> None:
                if done >= 10:
                    _die()

            lps.migrate_encrypt(privacy, engine, models.User, batch_size=5, progress=dying)
        elif mode == "erase":
            privacy._shred = _die  # type: ignore[method-assign]
            privacy.erase_subject(session, "u1", now=NOW)
            session.commit()
        else:
            real = Session.commit
            calls = {"n": 0}

            def dying_commit(self: Session) -> None:
                calls["n"] += 1
                if calls["n"] == 2:
                    _die()
                real(self)

            Session.commit = dying_commit  # type: ignore[method-assign]
            privacy.sweep(session, schedule(models), now=NOW, batch_size=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
