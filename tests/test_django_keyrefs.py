"""The Django key store names no learner: keyed references only (SQLite and a real
PostgreSQL).

The example LMS is seeded with learners whose ids are long and distinctive, one is
erased, and the key database's raw bytes (the SQLite file and its write-ahead log; on
PostgreSQL the key database's relation files after a CHECKPOINT) are searched for every
learner id. Key stores written before key references (subjects in clear) are converted
by ``migrate``: the conversion is SIGKILLed half-way, ``migrate`` finishes it, every
value reads as before, the erased learner stays erased, and no clear id is left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learnprivacy.testing.postgres import TemporaryPostgres
from tests.store_fixtures import psql, relation_files
from tests.test_django_lms import manage, manage_killed, pg_env

pytest.importorskip("django")

LEARNERS = 120
FIRST_ID = 2_073_600_000  # distinctive, and within an int column
IDS = [str(FIRST_ID + i) for i in range(LEARNERS)]

SEED = f"""
import datetime as dt
from django.contrib.auth.models import User
from learnprivacy.django import prepare_keys
from learnprivacy.django._privacy import get_privacy
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
users = User.objects.bulk_create(
    [User(id={FIRST_ID} + i, username=f"u{{i}}", last_login=now) for i in range({LEARNERS})]
)
prepare_keys([u.pk for u in users[:{LEARNERS // 2}]])
Profile.objects.bulk_create(
    [Profile(user=u, phone=f"+33 6 {{u.pk:010d}}", city=f"City {{u.pk}}", joined=now)
     for u in users[:{LEARNERS // 2}]]
)
for u in users[{LEARNERS // 2}:]:
    Profile.objects.create(user=u, phone=f"+33 6 {{u.pk:010d}}", city=f"City {{u.pk}}", joined=now)
get_privacy().erase_subject(users[0].pk, now=now)
"""

READ = """
import json
from lms.models import Profile
print(json.dumps([[p.user_id, p.phone, p.city] for p in Profile.objects.order_by("user_id")]))
"""

# The same learners written the way key stores were before key references: the keyring
# over an in-memory store (subjects in clear), its rows then copied into the key tables
# as they stood at migration 0002 (column ``subject``).
SEED_OLD = (
    """
from learnprivacy.crypto import Keyring
from learnprivacy.crypto._keystore import InMemoryKeyStore
from learnprivacy.django import _settings
from learnprivacy.django._settings import Runtime, _master_key
memory = InMemoryKeyStore()
_settings._runtime = Runtime(Keyring(_master_key("LEARNPRIVACY_MASTER_KEY"), store=memory))
"""
    + SEED.replace("prepare_keys([u.pk for u in users[:60]])\n", "")
    + """
from django.db import connections
with connections["learnprivacy_keys"].cursor() as cursor:
    for e in memory.list_entries():
        cursor.execute(
            "INSERT INTO lpdj_keys (subject, scope, key_id, state, master_key_id, wrapped) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [e.subject, e.scope, e.key_id, e.state.value, e.master_key_id, e.wrapped],
        )
    for subject, scope in memory._tombstones:
        cursor.execute(
            "INSERT INTO lpdj_key_tombstones (subject, scope) VALUES (%s, %s)",
            [subject, "*" if scope is None else scope],
        )
"""
    + READ
)

ERASED = f"""
import json
from learnprivacy.django._bind import bound_models
from learnprivacy.django._settings import runtime
from learnprivacy.errors import KeyShreddedError
scopes = sorted({{b.spec.scope for b in bound_models() if b.encrypted}})
keyring = runtime().keyring
shredded = [keyring.is_shredded("{IDS[0]}", s) for s in scopes]
try:
    runtime().cipher.encrypt("x", subject="{IDS[0]}", context="probe", scope=scopes[0])
    refused = False
except KeyShreddedError:
    refused = True
print(json.dumps({{"shredded": all(shredded), "refused": refused}}))
"""

CONVERT = """
import sys
from learnprivacy.django._keystore import convert_clear_subjects
def progress(done, total):
    sys.stderr.write(f"converted: {done}/{total}\\n")
    sys.stderr.flush()
convert_clear_subjects("learnprivacy_keys", batch_size=1, progress=progress)
"""

CLEAR_LEFT = """
from django.db import connections
with connections["learnprivacy_keys"].cursor() as cursor:
    cursor.execute("SELECT count(*) FROM lpdj_keys WHERE subject_ref IS NULL")
    print(cursor.fetchone()[0])
"""


def _shell(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in ``manage.py shell``; its last line of output."""
    done = manage("shell", "--no-imports", "-c", code, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _migrate(env: dict[str, str], *target: str) -> None:
    done = manage("migrate", *target, "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def _ids_found(data: bytes) -> list[str]:
    return [i for i in IDS if i.encode() in data]


def _sqlite_key_bytes(directory: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        path = directory / f"lms.keys.sqlite3{suffix}"
        if path.exists():
            data += path.read_bytes()
    return data


def _pg_env(server: TemporaryPostgres) -> tuple[dict[str, str], str]:
    env, _data, keys = pg_env(server)
    return env, keys


def _fresh_writes_name_no_learner(env: dict[str, str], key_bytes: object) -> None:
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    _migrate(env)
    _shell(SEED, env)
    # Control: the ids are really in the records database.
    rows = json.loads(_shell(READ, env))
    assert [str(r[0]) for r in rows] == IDS[1:]
    assert all(r[1] == f"+33 6 {r[0]:010d}" for r in rows)
    assert json.loads(_shell(ERASED, env)) == {"shredded": True, "refused": True}
    found = _ids_found(key_bytes())  # type: ignore[operator]
    assert found == [], f"{len(found)} learner ids in clear in the key database"


@pytest.mark.slow
def test_sqlite_key_database_names_no_learner_after_writes_and_erasure(tmp_path: Path) -> None:
    """Raw bytes of the SQLite key database (file and WAL): no learner id, erased or not."""
    _fresh_writes_name_no_learner(
        {"LMS_DATA_DIR": str(tmp_path)}, lambda: _sqlite_key_bytes(tmp_path)
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_key_database_names_no_learner_after_writes_and_erasure(
    postgres_server: TemporaryPostgres,
) -> None:
    """The key database's relation files on a real PostgreSQL: no learner id."""
    env, keys = _pg_env(postgres_server)
    _fresh_writes_name_no_learner(env, lambda: relation_files(postgres_server, keys))


def _old_key_store_converted(
    env: dict[str, str], key_bytes: object, analyse: object = None
) -> None:
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    _migrate(env, "learnprivacy", "0002")
    expected = json.loads(_shell(SEED_OLD, env))
    assert len(expected) == LEARNERS - 1
    # Control: the old key store names its learners in clear.
    assert len(_ids_found(key_bytes())) == LEARNERS  # type: ignore[operator]
    if analyse is not None:
        analyse()  # type: ignore[operator]

    _migrate(env, "learnprivacy", "0003")
    total = int(_shell(CLEAR_LEFT, env))
    # One row per transaction, killed at its first report.
    manage_killed("shell", "--no-imports", "-c", CONVERT, at="converted: ", env=env)
    left = int(_shell(CLEAR_LEFT, env))
    assert 0 < left < total, "the kill must land in the middle"
    # Half-converted, then finished by migrate: every value reads as before.
    _migrate(env)
    assert json.loads(_shell(READ, env)) == expected
    assert json.loads(_shell(ERASED, env)) == {"shredded": True, "refused": True}
    found = _ids_found(key_bytes())  # type: ignore[operator]
    assert found == [], f"{len(found)} learner ids left in clear by the conversion"
    # New learners go on working after the conversion.
    done = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth.models import User\n"
        "import datetime as dt\n"
        "from lms.models import Profile\n"
        "now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)\n"
        "u = User.objects.create(username='late', last_login=now)\n"
        "Profile.objects.create(user=u, phone='+33 7 1', city='Late', joined=now)\n"
        "print(Profile.objects.get(user=u).phone)",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("+33 7 1")


@pytest.mark.slow
def test_sqlite_old_key_store_converted_after_a_kill(tmp_path: Path) -> None:
    """A SQLite key store naming learners in clear: conversion killed, migrate finishes,
    everything reads, the erased learner stays erased, no clear id left in the file."""
    _old_key_store_converted({"LMS_DATA_DIR": str(tmp_path)}, lambda: _sqlite_key_bytes(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_old_key_store_converted_after_a_kill(
    postgres_server: TemporaryPostgres,
) -> None:
    """The same on a real PostgreSQL: the key database's relation files keep no clear id
    (the conversion rewrites its tables, dead row versions included). Attack: the old
    table was analysed first (as autovacuum does on its own), so ``pg_statistic`` held
    up to a hundred learner ids as histogram bounds; the scrub replaces them."""
    env, keys = _pg_env(postgres_server)
    _old_key_store_converted(
        env,
        lambda: relation_files(postgres_server, keys),
        lambda: psql(postgres_server, keys, "ANALYZE lpdj_keys"),
    )
    # Control that the scan sees the key rows at all: their references are there.
    refs = psql(postgres_server, keys, "SELECT subject_ref FROM lpdj_keys LIMIT 1")
    assert refs[0][0].encode() in relation_files(postgres_server, keys)


def test_the_scan_helpers_see_clear_ids() -> None:
    """The byte scan finds an id when one is there (so an empty result means something)."""
    assert _ids_found(b"xx" + IDS[5].encode() + b"yy") == [IDS[5]]
