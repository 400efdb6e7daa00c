"""An in-place erasure or sweep in its own process, killed (SIGKILL) at a chosen moment.

Usage: ``python -m tests.inplace_worker MODE APP_DB KEYS_DB [AUDIT_DB]``. ``erase``:
erase learner ``u1``, commit, and die between the commit and the shredding of the keys.
``sweep``: run the test schedule in batches of one row and die at the second batch's
commit. ``audit-before-move`` and ``audit-after-append`` (audit log in ``AUDIT_DB``):
erase ``u1``, commit, and die before the staged entries reach the audit database, or
once they have but before the outbox row is removed.
"""

from __future__ import annotations

import os
import signal
import sys

from tests import NOW


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
