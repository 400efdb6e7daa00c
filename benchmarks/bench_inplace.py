"""In-place encryption on an application's own ORM models: insert and load of users.

Run ``python benchmarks/bench_inplace.py`` (``--quick`` for a short run, ``--breakdown``
for where the declared model's CPU time goes, part by part, in µs per user). The same
``users`` model (an id, a last-login date and four personal columns: e-mail, given name,
family name, phone) is written through an ORM session and read back, in four ways, each
on a new SQLite file, interleaved round after round:

* ``plain ORM``: the model without encryption (the reference for the ORM's own cost);
* ``learnprivacy``: the model declared with ``learnprivacy.sqlalchemy`` (tokens under a
  per-learner key bound to table, key and column, a blind index on the e-mail, keys in a
  key database of their own);
* ``sqlalchemy-utils``: ``StringEncryptedType`` with its AES-GCM engine (one application
  key for every value, no binding, no index);
* ``Core floor``: hand-written SQLAlchemy Core inserts and selects of the same rows, with
  AES-GCM tokens under one wrapped key per learner, keys cached (no ORM at all).

A fifth run, ``key of two columns``, is the declared model keyed ``(id, course_id)`` with
the learners' keys already made, against the same model keyed by ``id`` alone (target:
at most 1.15x): what binding tokens to a composite key costs.

Rows: learnprivacy against the plain ORM (target: at most 1.5x its CPU time), against
sqlalchemy-utils (target: at most 1.0x, i.e. at least as fast) and, for information,
against the Core floor. Values are CPU seconds for the whole insert+load of ``USERS``
users (medians of at least five rounds).
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from benchmarks._measure import (
    MIN_ROUNDS,
    bench_main,
    collector_time,
    compare,
    ratio_row,
    timed_calls,
    timing_cost,
)

USERS = 20_000
QUICK_USERS = 2_000
_DAY = dt.datetime(2026, 1, 5, 9, 30)


def _people(count: int) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            f"u{i:06d}",
            f"learner{i}@example.org",
            f"Given{i}",
            f"Family{i}",
            f"+33 6 12 {i % 100:02d} {i % 97:02d} {i % 89:02d}",
        )
        for i in range(count)
    ]


def _plain_model() -> type[Any]:
    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[str] = mapped_column(String(32), primary_key=True)
        email: Mapped[str]
        given_name: Mapped[str]
        family_name: Mapped[str]
        phone: Mapped[str]
        last_login_at: Mapped[dt.datetime | None]

    return User


def _utils_model(key: str) -> type[Any]:
    from sqlalchemy_utils import StringEncryptedType
    from sqlalchemy_utils.types.encrypted.encrypted_type import AesGcmEngine

    def encrypted() -> Any:
        return mapped_column(StringEncryptedType(String, key, AesGcmEngine))

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[str] = mapped_column(String(32), primary_key=True)
        email: Mapped[str] = encrypted()
        given_name: Mapped[str] = encrypted()
        family_name: Mapped[str] = encrypted()
        phone: Mapped[str] = encrypted()
        last_login_at: Mapped[dt.datetime | None]

    return User


def _learnprivacy_model(*, composite: bool = False) -> type[Any]:
    """The declared model; with ``composite``, keyed ``(id, course_id)`` (every row in
    course ``c1``), so that tokens are bound to a key of two columns."""
    import learnprivacy.sqlalchemy as lps
    from learnprivacy import DataCategory, LawfulBasis

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        __privacy__ = lps.Privacy(
            subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="last_login_at"
        )
        id: Mapped[str] = mapped_column(String(32), primary_key=True)
        if composite:
            course_id: Mapped[str] = mapped_column(String(32), primary_key=True)

            def __init__(self, **values: Any) -> None:
                super().__init__(course_id="c1", **values)

        email: Mapped[str] = lps.personal(DataCategory.CONTACT, "E-mail", blind_index=True)
        given_name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Given name")
        family_name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Family name")
        phone: Mapped[str] = lps.personal(DataCategory.CONTACT, "Phone")
        last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login", nullable=True)

    return User


def _orm_run(model: type[Any], url: str, people: list[tuple[str, str, str, str, str]]) -> int:
    """Insert every user in one session, then load them all in a new one."""
    engine = create_engine(url)
    model.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            model(id=i, email=e, given_name=g, family_name=f, phone=p, last_login_at=_DAY)
            for i, e, g, f, p in people
        )
        session.commit()
    seen = 0
    with Session(engine) as session:
        for user in session.scalars(select(model)):
            seen += len(user.email) + len(user.phone) > 0
    engine.dispose()
    if seen != len(people):
        raise AssertionError("not every user was read back")
    return seen


def _core_floor(url: str, people: list[tuple[str, str, str, str, str]], master: AESGCM) -> int:
    """Hand-written Core: a wrapped key per learner (cached), AES-GCM tokens, no ORM."""
    metadata = MetaData()
    users = Table(
        "users",
        metadata,
        Column("id", String(32), primary_key=True),
        Column("email", String),
        Column("given_name", String),
        Column("family_name", String),
        Column("phone", String),
        Column("last_login_at", DateTime),
    )
    wrapped_keys = Table(
        "keys", metadata, Column("subject", String, primary_key=True), Column("wrapped", String)
    )
    engine = create_engine(url)
    metadata.create_all(engine)
    cache: dict[str, AESGCM] = {}
    names = ("email", "given_name", "family_name", "phone")

    def seal(aead: AESGCM, subject: str, name: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, value.encode(), f"{subject}/{name}".encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    rows, keys = [], []
    for subject, *values in people:
        raw = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        keys.append(
            {
                "subject": subject,
                "wrapped": base64.b64encode(nonce + master.encrypt(nonce, raw, None)).decode(),
            }
        )
        aead = cache[subject] = AESGCM(raw)
        row: dict[str, Any] = {"id": subject, "last_login_at": _DAY}
        for name, value in zip(names, values, strict=True):
            row[name] = seal(aead, subject, name, value)
        rows.append(row)
    with engine.begin() as connection:
        connection.execute(insert(wrapped_keys), keys)
        connection.execute(insert(users), rows)
    seen = 0
    with engine.connect() as connection:
        for row in connection.execute(select(users)):
            aead = cache[row.id]
            for name in names:
                blob = base64.urlsafe_b64decode(row._mapping[name])
                aead.decrypt(blob[:12], blob[12:], f"{row.id}/{name}".encode())
            seen += 1
    engine.dispose()
    return seen


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The three ratios, measured in the same run."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.sqlalchemy import LearnPrivacy
    from learnprivacy.sqlalchemy._privacy import prepare_keys

    people = _people(QUICK_USERS if quick else USERS)
    work = Path(tempfile.mkdtemp(prefix="bench-inplace-"))
    plain, utils, ours = _plain_model(), _utils_model("an application key"), _learnprivacy_model()
    # The same declared model again, bound to a key database where every learner already
    # has a key (made before the timed run): the cost once learners are known.
    known = _learnprivacy_model()
    # Keyed by two columns, learners' keys already made: the cost of the composite binding.
    pairs = _learnprivacy_model(composite=True)
    master = AESGCM(AESGCM.generate_key(bit_length=256))
    counter = {"n": 0}
    bound: dict[str, Any] = {}

    def fresh() -> None:
        # A new database (and key database) for every timed run.
        for name in ("privacy", "known", "pairs"):
            if name in bound:
                bound[name].close()
        counter["n"] += 1
        bound["dir"] = work / f"r{counter['n']}"
        bound["dir"].mkdir()
        bound["privacy"] = LearnPrivacy(
            ours.registry,
            keyring=Keyring.generate(),
            keys=f"sqlite:///{bound['dir'] / 'keys.db'}",
            # The key cache holds the learners in use, as the floor's dictionary does.
            cache_size=len(people) + 1,
        )
        bound["known"] = LearnPrivacy(
            known.registry,
            keyring=Keyring.generate(),
            keys=f"sqlite:///{bound['dir'] / 'known-keys.db'}",
            cache_size=len(people) + 1,
        )
        bound["pairs"] = LearnPrivacy(
            pairs.registry,
            keyring=Keyring.generate(),
            keys=f"sqlite:///{bound['dir'] / 'pairs-keys.db'}",
            cache_size=len(people) + 1,
        )
        for name in ("known", "pairs"):
            prepare_keys(bound[name].keyring, {"contract": {p[0] for p in people}})

    def url() -> str:
        return f"sqlite:///{bound['dir'] / 'app.db'}"

    runs: dict[str, Callable[[], Any]] = {
        "plain": lambda: _orm_run(plain, url(), people),
        "learnprivacy": lambda: _orm_run(ours, url(), people),
        "known": lambda: _orm_run(known, url(), people),
        "pairs": lambda: _orm_run(pairs, url(), people),
        "utils": lambda: _orm_run(utils, url(), people),
        "core": lambda: _core_floor(url(), people, master),
    }
    try:
        samples = compare(runs, setup=fresh)
    finally:
        for name in ("privacy", "known", "pairs"):
            if name in bound:
                bound[name].close()
        shutil.rmtree(work, ignore_errors=True)
    size = f"{len(people):,} users x 4 personal columns, insert+load"
    return [
        ratio_row(
            f"ORM in place vs plain ORM ({size})",
            samples["learnprivacy"],
            samples["plain"],
            target=1.5,
        ),
        ratio_row(
            f"ORM in place, learners' keys already made, vs plain ORM ({size})",
            samples["known"],
            samples["plain"],
            target=1.5,
        ),
        ratio_row(
            f"ORM in place, key of two columns, vs one column, keys already made ({size})",
            samples["pairs"],
            samples["known"],
            target=1.15,
        ),
        ratio_row(
            f"ORM in place vs sqlalchemy-utils AES-GCM ({size})",
            samples["learnprivacy"],
            samples["utils"],
            target=1.0,
        ),
        ratio_row(
            f"ORM in place vs Core AES-GCM floor ({size})",
            samples["learnprivacy"],
            samples["core"],
            target=3.0,
        ),
    ]


#: The parts of ``--breakdown``: (owner module path, attribute, label).
_PARTS = (
    ("learnprivacy.sqlalchemy._privacy", "prepare_keys", "key creation (prepare_keys)"),
    ("learnprivacy.crypto:FieldCipher", "encrypt_many", "encryption (encrypt_many)"),
    ("learnprivacy.crypto:FieldCipher", "decrypt_many", "decryption on load (decrypt_many)"),
    ("learnprivacy.crypto:BlindIndex", "compute", "blind index"),
)


def _breakdown(quick: bool) -> list[tuple[str, float]]:
    """Where the time of the declared model goes, in CPU µs per user (medians of
    ``MIN_ROUNDS`` interleaved rounds): the plain ORM, then for new learners and for
    learners whose keys are made, the whole run and its parts (each part's calls timed
    from outside). "the rest" is what is left: the ORM's events and the integration's
    own code around the parts, the side tables (what timing the parts costs is measured
    and taken out). The cyclic garbage collector's time is shown apart for each run: it
    is also inside whichever part allocated when a collection began."""
    import importlib
    import statistics

    # What timing a call costs outside the part it times (left in "the rest").
    spent: dict[str, float] = {}
    per_call = timing_cost()

    from learnprivacy.crypto import Keyring
    from learnprivacy.sqlalchemy import LearnPrivacy
    from learnprivacy.sqlalchemy._privacy import prepare_keys

    people = _people(QUICK_USERS if quick else USERS)
    work = Path(tempfile.mkdtemp(prefix="bench-inplace-"))
    restore = []
    for where, attribute, label in _PARTS:
        module, _, owner = where.partition(":")
        target = importlib.import_module(module)
        restore.append(
            timed_calls(getattr(target, owner) if owner else target, attribute, label, spent)
        )
    plain = _plain_model()
    rounds: dict[str, list[dict[str, float]]] = {"plain": [], "new": [], "known": []}
    stop_counting_collector = collector_time(spent)
    try:
        for number in range(MIN_ROUNDS):
            for mode in rounds:
                folder = work / f"{mode}{number}"
                folder.mkdir()
                model, privacy = plain, None
                if mode != "plain":
                    model = _learnprivacy_model()
                    privacy = LearnPrivacy(
                        model.registry,
                        keyring=Keyring.generate(),
                        keys=f"sqlite:///{folder / 'keys.db'}",
                        cache_size=len(people) + 1,
                    )
                    if mode == "known":
                        prepare_keys(privacy.keyring, {"contract": {p[0] for p in people}})
                spent.clear()
                gc.collect()
                began = time.process_time()
                _orm_run(model, f"sqlite:///{folder / 'app.db'}", people)
                spent["total"] = time.process_time() - began
                rounds[mode].append(dict(spent))
                if privacy is not None:
                    privacy.close()
    finally:
        stop_counting_collector()
        for undo in restore:
            undo()
        shutil.rmtree(work, ignore_errors=True)
    per_user = 1e6 / len(people)

    def median(mode: str, label: str) -> float:
        return statistics.median(r.get(label, 0.0) for r in rounds[mode]) * per_user

    floor = median("plain", "total")
    lines = [
        ("plain ORM", floor),
        ("plain ORM: of which the cyclic collector", median("plain", "gc")),
    ]
    for mode, title in (("new", "new learners"), ("known", "keys already made")):
        total = median(mode, "total")
        parts = [(label, median(mode, label)) for _, _, label in _PARTS]
        lines.append((f"{title}: whole run", total))
        lines.append((f"{title}: added to the plain ORM", total - floor))
        lines.extend((f"{title}:   {label}", value) for label, value in parts if value)
        timing = median(mode, "calls") * per_call
        rest = total - floor - sum(value for _, value in parts) - timing
        lines.append((f"{title}:   the rest (ORM events, integration code)", rest))
        lines.append((f"{title}:   (timing the parts, taken out of the rest)", timing))
        lines.append((f"{title}: of the whole run, the cyclic collector", median(mode, "gc")))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the rows; exit 1 when a target is missed. ``--breakdown``: where the
    declared model's time goes (CPU µs per user), instead of the rows."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--breakdown" in args:
        args.remove("--breakdown")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for name, micros in _breakdown("--quick" in args):
            print(f"{name:62} {micros:7.1f} µs/user")
        return 0
    return bench_main(run, "bench_inplace", args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
