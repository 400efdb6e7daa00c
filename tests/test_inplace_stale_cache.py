"""Another process's erasure is final for this one too, in ``learnprivacy.sqlalchemy``.

Two ``LearnPrivacy`` on the same application and key databases stand for two worker
processes, each with its own keyring (its own cache of unwrapped keys). One erases a
learner; the application database is then restored from a copy taken before the erasure.
The other, whose cache still holds the erased learner's keys, must read nothing of that
learner: the key database, not its memory, says which keys are alive.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import learnprivacy.sqlalchemy as lps
from learnprivacy.crypto import Keyring
from learnprivacy.errors import KeyShreddedError
from tests import NOW
from tests.inplace_models import declarative_models

MASTER = bytes(range(32))


def _worker_pair(keys: str) -> tuple[SimpleNamespace, lps.LearnPrivacy, lps.LearnPrivacy]:
    """The worker's models and binding, and another process's binding: each its own
    keyring (its own cache of unwrapped keys), on the same key database."""
    mine, theirs = declarative_models(), declarative_models()
    worker = lps.LearnPrivacy(mine.Base, keyring=Keyring.from_master_key(MASTER), keys=keys)
    other = lps.LearnPrivacy(theirs.Base, keyring=Keyring.from_master_key(MASTER), keys=keys)
    return mine, worker, other


#: Each way of reading the erased learner back through the ORM.
READS: dict[str, Callable[[Session, SimpleNamespace], object]] = {
    "get": lambda s, m: s.get(m.User, "u1").email,
    "select": lambda s, m: [u.name for u in s.scalars(select(m.User))],
    "yield_per": lambda s, m: [
        u.name for u in s.scalars(select(m.User).execution_options(yield_per=1))
    ],
    "posts": lambda s, m: [p.body for p in s.scalars(select(m.Post))],
    # Personal columns selected on their own are opened by the query listener, not the
    # load event: the same check applies.
    "column": lambda s, m: s.scalars(select(m.User.email).where(m.User.id == "u1")).all(),
    "columns": lambda s, m: s.execute(select(m.User.id, m.User.name)).all(),
    "column_yield_per": lambda s, m: s.execute(
        select(m.User.email).execution_options(yield_per=1)
    ).all(),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_sqlalchemy_worker_with_cached_keys_reads_nothing_of_a_restored_copy(
    tmp_path: Path, read: str
) -> None:
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    live, copy = tmp_path / "app.db", tmp_path / "copy.db"
    engine = create_engine(f"sqlite:///{live}")
    mine, worker, other = _worker_pair(keys)
    try:
        mine.Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all(
                [
                    mine.User(id="u1", email="ana@example.org", name="Ana Silva", created_at=NOW),
                    mine.User(id="u2", email="bob@example.org", name="Bob Martin", created_at=NOW),
                    mine.Post(author_id="u1", body="Ana's post", posted_at=NOW),
                ]
            )
            s.commit()
        with Session(engine) as s:  # the worker has read Ana: her keys are in its cache
            assert s.get(mine.User, "u1").email == "ana@example.org"
            assert [p.body for p in s.scalars(select(mine.Post))] == ["Ana's post"]
        engine.dispose()
        shutil.copy(live, copy)
        with Session(engine) as s:
            assert other.erase_subject(s, "u1", now=NOW).erased > 0
            s.commit()
        engine.dispose()
        shutil.copy(copy, live)  # the application database restored from the copy
        with Session(engine) as s, pytest.raises(KeyShreddedError):
            READS[read](s, mine)
        with Session(engine) as s:  # every other learner reads as before
            assert s.get(mine.User, "u2").email == "bob@example.org"
    finally:
        worker.close()
        other.close()
        engine.dispose()


#: Each way of writing the erased learner's personal values through the ORM.
WRITES: dict[str, Callable[[Session, SimpleNamespace], None]] = {
    "insert": lambda s, m: s.add(m.Post(author_id="u1", body="Ana's new post", posted_at=NOW)),
    "update": lambda s, m: setattr(s.get(m.User, "u1"), "email", "ana@example.com"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_sqlalchemy_worker_with_cached_keys_writes_nothing_under_a_shredded_key(
    tmp_path: Path, write: str
) -> None:
    """Another process shredded the keys this worker holds in memory: a flush writing
    the learner's personal values is refused as in a new process (they were sealed under
    the destroyed cached key and committed: reported saved, never readable)."""
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    mine, worker, other = _worker_pair(keys)
    try:
        mine.Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add(mine.User(id="u1", email="ana@example.org", name="Ana Silva", created_at=NOW))
            s.add(mine.Post(author_id="u1", body="Ana's post", posted_at=NOW))
            s.commit()
        other._keyring.shred("u1")

        def attempt() -> None:
            with Session(engine) as s:
                WRITES[write](s, mine)
                s.commit()

        with pytest.raises(KeyShreddedError):
            attempt()
    finally:
        worker.close()
        other.close()
        engine.dispose()
