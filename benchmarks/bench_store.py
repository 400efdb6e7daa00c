"""Store throughput against hand-written SQL doing the same work, in the same run.

``python benchmarks/bench_store.py`` (``--quick`` for a short run) measures three things
(the retention sweep and its memory are ``bench_sweep``):

* **ingest**: ``Store.add_all`` of N learners (100,000; 10,000 with ``--quick``) into a
  new SQLite file, against a hand-written ``sqlite3`` floor doing the same work: per
  learner a random data key wrapped with AES-GCM under the master key and inserted in a
  key table, four fields encrypted with AES-GCM (random nonce, associated data binding
  learner and field) and base64-encoded, two keyed HMAC blind indexes, one
  ``executemany`` per table in one transaction, the same indexes as the store's learner
  table, ``secure_delete`` on, and one audit row. Target: within 2x of the floor.
* **read-back**: ``Store.query(Learner)`` of every learner (decrypted records) against a
  ``sqlite3`` select that unwraps each learner's key and decrypts the four fields.
  Target: within 2x of the floor (ingest too).
* **peer**: the same ingest and read-back with SQLAlchemy ORM and sqlalchemy-utils
  ``StringEncryptedType`` (AES-GCM engine, one application key, no blind index). Target:
  the store at least twice as fast (time ratio at most 0.5).
``value``/``floor`` are records per second; ``ratio`` is the
time ratio, store over floor. Each timing is the median CPU time of five interleaved rounds.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import hmac
import json
import os
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks._measure import MIN_ROUNDS, cpu_seconds
from learnprivacy.crypto import Keyring
from learnprivacy.records import Learner
from learnprivacy.store import Store

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
MASTER = bytes(range(32))
TARGET = 3.0
#: Ingest and read-back against the hand-written floor (issue target: 2x).
INGEST_TARGET = 2.0
#: Against SQLAlchemy + sqlalchemy-utils: at least twice as fast (time ratio 0.5).
PEER_TARGET = 0.5


def learners(count: int) -> list[Learner]:
    """``count`` learners; last activity spread so that about half are expired at NOW."""
    start = dt.datetime(2023, 6, 1, tzinfo=UTC)
    return [
        Learner(
            id=f"L{i:07d}",
            username=f"user{i}",
            email=f"user{i}@example.org",
            given_name=f"Given{i % 997}",
            family_name=f"Family{i % 991}",
            created_at=start,
            last_activity_at=start + dt.timedelta(days=i % 1_100, seconds=i % 86_400),
        )
        for i in range(count)
    ]


# -- ingest ---------------------------------------------------------------------------------


def ingest_store(path: Path, records: list[Learner]) -> float:
    """Seconds ``Store.add_all`` takes for ``records`` into a new store at ``path``."""
    store = Store(f"sqlite:///{path}", keyring=Keyring.from_master_key(MASTER), clock=lambda: NOW)
    gc.collect()
    started = cpu_seconds()
    store.add_all(records)
    elapsed = cpu_seconds() - started
    store.close()
    return elapsed


_FLOOR_SCHEMA = """
CREATE TABLE keys (subject TEXT NOT NULL, key_id TEXT NOT NULL, scope TEXT NOT NULL,
    state TEXT NOT NULL, master_key_id TEXT NOT NULL, wrapped BLOB NOT NULL,
    PRIMARY KEY (subject, key_id));
CREATE INDEX keys_subject_scope ON keys (subject, scope);
CREATE UNIQUE INDEX keys_active ON keys (subject, scope) WHERE state = 'active';
CREATE TABLE learners (id TEXT PRIMARY KEY, username_token TEXT, username_bidx TEXT,
    email_token TEXT, email_bidx TEXT, given_name_token TEXT, family_name_token TEXT,
    created_at TEXT NOT NULL, last_activity_at TEXT, organisation_id TEXT,
    contract_end_at TEXT, basis TEXT NOT NULL);
CREATE INDEX learners_username ON learners (username_bidx);
CREATE INDEX learners_email ON learners (email_bidx);
CREATE INDEX learners_created ON learners (created_at);
CREATE INDEX learners_activity ON learners (last_activity_at);
CREATE INDEX learners_contract ON learners (contract_end_at);
CREATE TABLE audit (sequence INTEGER PRIMARY KEY, at TEXT, action TEXT, details TEXT);
"""


def _floor_connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings the store uses, so both pay for the same guarantees:
    deleted content zeroed, WAL with durable commits, the same page cache."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "secure_delete = ON",
        "cache_size = -32768",
        "journal_mode = WAL",
        "synchronous = FULL",
        "wal_autocheckpoint = 10000",
    ):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def _stamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def ingest_floor(path: Path, records: list[Learner]) -> float:
    """Seconds hand-written ``sqlite3`` takes to store the same learners, encrypted."""
    connection = _floor_connect(path)
    connection.executescript(_FLOOR_SCHEMA)
    master = AESGCM(MASTER)
    index_key = os.urandom(32)
    gc.collect()
    started = cpu_seconds()
    connection.execute("BEGIN IMMEDIATE")
    keys, rows = [], []
    for learner in records:
        subject = learner.id
        data_key, key_id, nonce = os.urandom(32), os.urandom(8), os.urandom(12)
        wrapped = nonce + master.encrypt(nonce, data_key, subject.encode() + b"contract")
        keys.append((subject, key_id.hex(), "contract", "active", "0" * 16, wrapped))
        aead = AESGCM(data_key)
        tokens = []
        for field in ("username", "email", "given_name", "family_name"):
            nonce = os.urandom(12)
            context = f"Learner/{subject}/{field}".encode()
            body = aead.encrypt(nonce, getattr(learner, field).encode(), context)
            tokens.append("lp1." + base64.urlsafe_b64encode(key_id + nonce + body).decode())
        indexes = [
            base64.urlsafe_b64encode(
                hmac.new(index_key, field + value.lower().encode(), hashlib.sha256).digest()[:16]
            ).decode()
            for field, value in ((b"username", learner.username), (b"email", learner.email))
        ]
        rows.append(
            (
                subject,
                tokens[0],
                indexes[0],
                tokens[1],
                indexes[1],
                tokens[2],
                tokens[3],
                _stamp(learner.created_at),
                _stamp(learner.last_activity_at),
                None,
                None,
                "contract",
            )
        )
    connection.executemany("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?)", keys)
    connection.executemany("INSERT INTO learners VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    connection.execute(
        "INSERT INTO audit (at, action, details) VALUES (?, 'add', ?)",
        (_stamp(NOW), json.dumps({"count": len(rows)})),
    )
    connection.execute("COMMIT")
    elapsed = cpu_seconds() - started
    connection.close()
    return elapsed


def _peer_model() -> tuple[type[Any], Any]:
    """An ORM model of the learner with sqlalchemy-utils ``StringEncryptedType`` columns.

    The AES-GCM engine with one application key for every value: no key per learner, no
    binding of a value to its row and field, no blind index (the peer does less).
    """
    from sqlalchemy import DateTime, String
    from sqlalchemy.orm import DeclarativeBase, mapped_column
    from sqlalchemy_utils import StringEncryptedType
    from sqlalchemy_utils.types.encrypted.encrypted_type import AesGcmEngine

    key = base64.b64encode(MASTER).decode()

    def encrypted() -> Any:
        return mapped_column(StringEncryptedType(String, key, AesGcmEngine))

    class Base(DeclarativeBase):
        pass

    class PeerLearner(Base):
        __tablename__ = "learners"
        id = mapped_column(String(64), primary_key=True)
        username = encrypted()
        email = encrypted()
        given_name = encrypted()
        family_name = encrypted()
        created_at = mapped_column(DateTime(timezone=True))
        last_activity_at = mapped_column(DateTime(timezone=True))
        basis = mapped_column(String(32))

    return PeerLearner, Base.metadata


def ingest_peer(path: Path, records: list[Learner]) -> float:
    """Seconds SQLAlchemy ORM + sqlalchemy-utils take to store the same learners."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    model, metadata = _peer_model()
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    gc.collect()
    started = cpu_seconds()
    with Session(engine) as session:
        session.add_all(
            model(
                id=r.id,
                username=r.username,
                email=r.email,
                given_name=r.given_name,
                family_name=r.family_name,
                created_at=r.created_at,
                last_activity_at=r.last_activity_at,
                basis="contract",
            )
            for r in records
        )
        session.commit()
    elapsed = cpu_seconds() - started
    engine.dispose()
    return elapsed


def read_store(path: Path) -> tuple[float, int]:
    """CPU seconds to read every learner back (decrypted records) from the store."""
    store = Store(f"sqlite:///{path}", keyring=Keyring.from_master_key(MASTER), clock=lambda: NOW)
    gc.collect()
    started = cpu_seconds()
    found = store.query(Learner)
    elapsed = cpu_seconds() - started
    count = sum(1 for r in found if r.email)
    store.close()
    return elapsed, count


def read_floor(path: Path) -> tuple[float, int]:
    """The floor: ``sqlite3`` select, unwrap each learner's key, decrypt four fields."""
    connection = _floor_connect(path)
    master = AESGCM(MASTER)
    gc.collect()
    started = cpu_seconds()
    found = []
    query = (
        "SELECT l.id, k.wrapped, l.username_token, l.email_token, l.given_name_token, "
        "l.family_name_token, l.created_at, l.last_activity_at, l.basis FROM learners l "
        "JOIN keys k ON k.subject = l.id AND k.state = 'active'"
    )
    fields = ("username", "email", "given_name", "family_name")
    for subject, wrapped, *tokens, created, last, basis in connection.execute(query):
        aead = AESGCM(master.decrypt(wrapped[:12], wrapped[12:], subject.encode() + b"contract"))
        values = []
        for field, token in zip(fields, tokens, strict=True):
            raw = base64.urlsafe_b64decode(token[4:])
            context = f"Learner/{subject}/{field}".encode()
            values.append(aead.decrypt(raw[8:20], raw[20:], context).decode())
        found.append((subject, *values, created, last, basis))
    elapsed = cpu_seconds() - started
    connection.close()
    return elapsed, sum(1 for row in found if row[2])


def read_peer(path: Path) -> tuple[float, int]:
    """SQLAlchemy ORM + sqlalchemy-utils: load every learner, values decrypted."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    model, _ = _peer_model()
    engine = create_engine(f"sqlite:///{path}")
    gc.collect()
    started = cpu_seconds()
    with Session(engine) as session:
        found = session.scalars(select(model)).all()
        count = sum(1 for r in found if r.email)
    elapsed = cpu_seconds() - started
    engine.dispose()
    return elapsed, count


# -- the runner -----------------------------------------------------------------------------


def _row(
    name: str, value: float, floor: float, ratio: float, unit: str, target: float = TARGET
) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "floor": floor,
        "ratio": ratio,
        "target": f"<= {target:g}x",
        "ok": ratio <= target,
        "unit": unit,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure ingest and read-back, against the floor and the peer: one row each."""
    count = 10_000 if quick else 100_000
    repeat = MIN_ROUNDS
    rows: list[dict[str, Any]] = []
    records = learners(count)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as name:
        tmp = Path(name)
        store_times, floor_times, peer_times = [], [], []
        for attempt in range(repeat):
            for path in (tmp / f"store{attempt}.db", tmp / f"floor{attempt}.db"):
                path.unlink(missing_ok=True)
            (tmp / f"peer{attempt}.db").unlink(missing_ok=True)
            floor_times.append(ingest_floor(tmp / f"floor{attempt}.db", records))
            store_times.append(ingest_store(tmp / f"store{attempt}.db", records))
            peer_times.append(ingest_peer(tmp / f"peer{attempt}.db", records))
        store_time, floor_time = statistics.median(store_times), statistics.median(floor_times)
        peer_time = statistics.median(peer_times)
        rows.append(
            _row(
                f"store ingest, {count:,} learners (SQLite)",
                count / store_time,
                count / floor_time,
                store_time / floor_time,
                "learners/s",
                target=INGEST_TARGET,
            )
        )
        rows.append(
            _row(
                f"store ingest vs SQLAlchemy ORM + sqlalchemy-utils, {count:,} learners (SQLite)",
                count / store_time,
                count / peer_time,
                store_time / peer_time,
                "learners/s",
                target=PEER_TARGET,
            )
        )
        reads: dict[str, list[float]] = {"store": [], "floor": [], "peer": []}
        readers = {"store": read_store, "floor": read_floor, "peer": read_peer}
        for _ in range(repeat):
            for kind, reader in readers.items():
                elapsed, found = reader(tmp / f"{kind}0.db")
                if found != count:
                    raise AssertionError(f"{kind} read back {found} learners of {count}")
                reads[kind].append(elapsed)
        read = {kind: statistics.median(values) for kind, values in reads.items()}
        rows.append(
            _row(
                f"store read-back, {count:,} learners (SQLite)",
                count / read["store"],
                count / read["floor"],
                read["store"] / read["floor"],
                "learners/s",
                target=INGEST_TARGET,
            )
        )
        rows.append(
            _row(
                f"store read-back vs SQLAlchemy ORM + sqlalchemy-utils, {count:,} learners",
                count / read["store"],
                count / read["peer"],
                read["store"] / read["peer"],
                "learners/s",
                target=PEER_TARGET,
            )
        )
    return rows


def main(argv: list[str]) -> int:
    """Run the benchmark, or one of its subprocess steps."""
    for row in run(quick="--quick" in argv):
        print(
            f"{row['name']}: {row['value']:,.1f} {row['unit']}, floor {row['floor']:,.1f}, "
            f"ratio {row['ratio']:.2f} (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
