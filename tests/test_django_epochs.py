"""Key epochs on Django: ``learnprivacy_keys compact`` makes key-store copies useless for
learners erased before it, and loses nothing (SQLite and a real PostgreSQL).

Every test runs the example LMS's ``manage.py`` in processes of their own, with the vault
file named by ``LMS_VAULT``:

* erase a learner, compact, then restore a key-store copy taken before the erasure
  (with the records database of the same moment, the master key and the current vault):
  the erased learner reads nothing, while the live databases read every other learner;
* a writer that opened the key store before a compaction writes new learners after it:
  after a restart every key opens (each write checked the epoch in its transaction);
* a compaction SIGKILLed half-way and run again: every learner reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from learnprivacy.testing.postgres import TemporaryPostgres
from tests.store_fixtures import psql
from tests.test_django_lms import MASTER_KEY, PROJECT, manage, manage_killed, pg_env

pytest.importorskip("django")

LEARNERS = 40
FIRST_ID = 2_051_700_000
ERASED = FIRST_ID

SEED = f"""
import datetime as dt
from django.contrib.auth.models import User
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
for i in range({LEARNERS}):
    u = User.objects.create(id={FIRST_ID} + i, username=f"e{{i}}", last_login=now)
    Profile.objects.create(user=u, phone=f"+33 6 {{u.pk:010d}}", city=f"City {{u.pk}}", joined=now)
"""

ERASE = f"""
import datetime as dt
from learnprivacy.django._privacy import get_privacy
get_privacy().erase_subject({ERASED}, now=dt.datetime(2026, 6, 16, tzinfo=dt.UTC))
"""

# Each profile's phone, or the name of the error reading it raised.
READ = """
import json
from lms.models import Profile
out = {}
try:
    rows = list(Profile.objects.order_by("user_id"))
except Exception as exc:
    print(json.dumps({"open": type(exc).__name__}))
    raise SystemExit(0)
for p in rows:
    try:
        out[str(p.user_id)] = p.phone
    except Exception as exc:
        out[str(p.user_id)] = type(exc).__name__
print(json.dumps(out))
"""

# The attacker's edit of an old key-store copy: make it name the current epoch.
RENAME_EPOCH = """
from django.db import connections
from learnprivacy.django._settings import vault
state = vault("learnprivacy_keys").read()
with connections["learnprivacy_keys"].cursor() as cursor:
    cursor.execute("UPDATE lpdj_key_meta SET value = %s WHERE key = 'wrapping_epochs'",
                   ["|" + state["current"] + "||"])
"""

NOT_UNDER_CURRENT = """
from django.db import connections
from learnprivacy.django._keys import key_store
current, _ = key_store().epochs()
with connections["learnprivacy_keys"].cursor() as cursor:
    cursor.execute("SELECT count(*) FROM lpdj_keys WHERE state <> 'shredded' "
                   "AND master_key_id <> %s", [current])
    print(cursor.fetchone()[0])
"""


def _expected(ids: range) -> dict[str, str]:
    return {str(i): f"+33 6 {i:010d}" for i in ids}


def _shell(code: str, env: dict[str, str]) -> str:
    done = manage("shell", "--no-imports", "-c", code, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _compact(env: dict[str, str], *args: str) -> dict[str, object]:
    done = manage("learnprivacy_keys", "compact", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    return report


class Site:
    """One example LMS: its environment, and copies of its databases."""

    def __init__(
        self,
        env: dict[str, str],
        snapshot: Callable[[str], None],
        restored: Callable[[str], dict[str, str]],
    ) -> None:
        self.env = env
        self.snapshot = snapshot
        self.restored = restored

    def setup(self) -> None:
        assert manage("migrate", "-v", "0", env=self.env).returncode == 0
        done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=self.env)
        assert done.returncode == 0, done.stderr


def _sqlite_site(tmp_path: Path, vault_env: dict[str, str] | None = None) -> Site:
    live = tmp_path / "live"
    live.mkdir()
    vault = vault_env or {"LMS_VAULT": str(tmp_path / "lms.vault")}
    env = {"LMS_DATA_DIR": str(live), **vault}
    copies = tmp_path / "copies"
    copies.mkdir()
    count = [0]

    def snapshot(name: str) -> None:
        # A consistent copy of each database, as a backup would take it.
        for db in ("lms.sqlite3", "lms.keys.sqlite3"):
            code = (
                "import sqlite3; from django.db import connections\n"
                f"alias = {'default' if db == 'lms.sqlite3' else 'learnprivacy_keys'!r}\n"
                "c = connections[alias]; c.ensure_connection()\n"
                f"t = sqlite3.connect({str(copies / f'{name}-{db}')!r})\n"
                "c.connection.backup(t); t.close()"
            )
            _shell(code, env)

    def restored(name: str) -> dict[str, str]:
        count[0] += 1
        target = tmp_path / f"restored-{count[0]}"
        target.mkdir()
        for db in ("lms.sqlite3", "lms.keys.sqlite3"):
            shutil.copyfile(copies / f"{name}-{db}", target / db)
        return {"LMS_DATA_DIR": str(target), **vault}

    return Site(env, snapshot, restored)


def _pg_site(server: TemporaryPostgres, tmp_path: Path) -> Site:
    env, data, keys = pg_env(server, tmp_path / "lms.vault")
    base = {k: v for k, v in env.items() if k not in ("LMS_PG_DB", "LMS_PG_KEYS_DB")}
    count = [0]

    def snapshot(name: str) -> None:
        for source in (data, keys):
            psql(server, "postgres", f"CREATE DATABASE {source}_{name} TEMPLATE {source}")

    def restored(name: str) -> dict[str, str]:
        count[0] += 1
        names = []
        for source in (data, keys):
            target = f"{source}_{name}_{count[0]}"
            psql(server, "postgres", f"CREATE DATABASE {target} TEMPLATE {source}_{name}")
            names.append(target)
        return {**base, "LMS_PG_DB": names[0], "LMS_PG_KEYS_DB": names[1]}

    return Site(env, snapshot, restored)


def _old_copy_reads_nothing_of_the_erased(site: Site) -> None:
    site.setup()
    _shell(SEED, site.env)
    first = _compact(site.env)
    assert first["epoch"] == 1
    site.snapshot("before")
    _shell(ERASE, site.env)
    status = manage("learnprivacy_keys", "status", "--json", env=site.env)
    assert json.loads(status.stdout)["erased_awaiting_compaction"] == 1

    # Control: before compaction, the copies + master key + vault read the erased learner.
    everyone = _expected(range(FIRST_ID, FIRST_ID + LEARNERS))
    assert json.loads(_shell(READ, site.restored("before"))) == everyone

    second = _compact(site.env)
    assert second["epoch"] == 2
    assert second["rewrapped"] == second["live"]

    # The attack: the old copies open nothing (the copy names a destroyed epoch)...
    assert json.loads(_shell(READ, site.restored("before"))) == {"open": "ConfigurationError"}
    # ... and edited to name the current epoch, its keys still open under nothing held.
    edited = site.restored("before")
    _shell(RENAME_EPOCH, edited)
    found = json.loads(_shell(READ, edited))
    # (the store's own system keys are under the destroyed epoch too: nothing opens)
    assert found.get("open", found.get(str(ERASED))) == "WrongMasterKeyError"
    assert "+33" not in json.dumps(found)
    # The live databases read every other learner, and the erased one is gone.
    assert json.loads(_shell(READ, site.env)) == _expected(range(FIRST_ID + 1, FIRST_ID + LEARNERS))
    status = manage("learnprivacy_keys", "status", "--json", env=site.env)
    assert json.loads(status.stdout)["erased_awaiting_compaction"] == 0


@pytest.mark.slow
def test_sqlite_old_key_store_copy_reads_nothing_of_the_erased_after_compaction(
    tmp_path: Path,
) -> None:
    """SQLite: erase, compact, restore the pre-erasure copies: erased unreadable."""
    _old_copy_reads_nothing_of_the_erased(_sqlite_site(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_old_key_store_copy_reads_nothing_of_the_erased_after_compaction(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """The same on a real PostgreSQL (database copies made as templates)."""
    _old_copy_reads_nothing_of_the_erased(_pg_site(postgres_server, tmp_path))


WRITER = f"""
import datetime as dt, os, sys, time
from django.contrib.auth.models import User
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
print(Profile.objects.get(user_id={FIRST_ID + 1}).phone, flush=True)  # opened, epoch loaded
# One new learner's key written now: the writer remembers the epoch row as it was, and
# its next inserts (after the compaction) try the one-statement insert under that stale
# epoch first.
u = User.objects.create(id={FIRST_ID + 999}, username="w-first", last_login=now)
Profile.objects.create(user=u, phone=f"+33 6 {{u.pk:010d}}", city="W", joined=now)
sys.stderr.write("opened\\n"); sys.stderr.flush()
go = os.environ["LMS_GO_FILE"]
while not os.path.exists(go):
    time.sleep(0.05)
for i in range(10):
    u = User.objects.create(id={FIRST_ID + 1000} + i, username=f"w{{i}}", last_login=now)
    Profile.objects.create(user=u, phone=f"+33 6 {{u.pk:010d}}", city="W", joined=now)
print("written", flush=True)
"""


def _writer_opened_before_compaction(site: Site, tmp_path: Path) -> None:
    site.setup()
    _shell(SEED, site.env)
    _compact(site.env)
    go = tmp_path / "go"
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(PROJECT),
        "LEARNPRIVACY_MASTER_KEY": MASTER_KEY,
        "LMS_GO_FILE": str(go),
        **site.env,
    }
    writer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", WRITER],
        cwd=PROJECT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stderr is not None
    deadline = time.monotonic() + 120
    for line in writer.stderr:
        if line.strip() == "opened" or time.monotonic() > deadline:
            break
    # Another process compacts while the writer holds the old epoch key.
    assert _compact(site.env)["epoch"] == 2
    go.touch()
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err[-3000:]
    assert out.strip().endswith("written")
    # After a restart everything opens: the writer's keys were re-wrapped before insert.
    expected = {
        **_expected(range(FIRST_ID, FIRST_ID + LEARNERS)),
        **_expected(range(FIRST_ID + 999, FIRST_ID + 1010)),
    }
    assert json.loads(_shell(READ, site.env)) == expected
    assert _shell(NOT_UNDER_CURRENT, site.env) == "0"
    live, opened = json.loads(_shell(ALL_KEYS_OPEN, site.env))
    assert live == opened > 0


@pytest.mark.slow
def test_sqlite_writer_opened_before_a_compaction_loses_nothing(tmp_path: Path) -> None:
    """SQLite: a writer holding the old epoch key writes after a compaction; all open."""
    _writer_opened_before_compaction(_sqlite_site(tmp_path), tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_writer_opened_before_a_compaction_loses_nothing(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """The same on a real PostgreSQL."""
    _writer_opened_before_compaction(_pg_site(postgres_server, tmp_path), tmp_path)


# Keys of many more learners (keys only, no rows), so that a compaction one key per
# transaction lasts long enough for the kill to land in it on a loaded machine.
MORE_KEYS = """
from learnprivacy.django import prepare_keys
prepare_keys(range(1_900_000_000, 1_900_002_000))
"""

# Unwraps every live data key with the keyring of a freshly started process.
ALL_KEYS_OPEN = """
import json
from learnprivacy.crypto._keystore import KeyState
from learnprivacy.django._keys import key_store
from learnprivacy.django._settings import runtime
keyring = runtime().keyring
live = opened = 0
for entry in key_store().iter_entries():
    if entry.state is KeyState.SHREDDED:
        continue
    live += 1
    keyring._unwrap(entry)
    opened += 1
print(json.dumps([live, opened]))
"""


def _compaction_killed_then_rerun(site: Site) -> None:
    site.setup()
    _shell(SEED, site.env)
    _shell(MORE_KEYS, site.env)
    _compact(site.env)
    live, opened = json.loads(_shell(ALL_KEYS_OPEN, site.env))
    assert live == opened > 6_000
    manage_killed("learnprivacy_keys", "compact", "--batch-size", "1", at="keys: ", env=site.env)
    status = json.loads(manage("learnprivacy_keys", "status", "--json", env=site.env).stdout)
    assert status["compaction_under_way"] is True, "the kill must land in the middle"
    # Half-compacted, the application reads everything.
    everyone = _expected(range(FIRST_ID, FIRST_ID + LEARNERS))
    assert json.loads(_shell(READ, site.env)) == everyone
    dry = _compact(site.env, "--dry-run")
    assert dry["dry_run"] is True
    assert dry["compaction_under_way"] is True
    rerun = _compact(site.env)
    assert rerun["resumed"] is True
    assert rerun["epoch"] == 2
    assert json.loads(_shell(READ, site.env)) == everyone
    assert _shell(NOT_UNDER_CURRENT, site.env) == "0"
    assert json.loads(_shell(ALL_KEYS_OPEN, site.env)) == [live, live]
    status = json.loads(manage("learnprivacy_keys", "status", "--json", env=site.env).stdout)
    assert status["compaction_under_way"] is False


@pytest.mark.slow
def test_sqlite_compaction_killed_and_rerun_loses_nothing(tmp_path: Path) -> None:
    """SQLite: SIGKILL mid-compaction, rerun: resumed, every learner reads."""
    _compaction_killed_then_rerun(_sqlite_site(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_compaction_killed_and_rerun_loses_nothing(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """The same on a real PostgreSQL."""
    _compaction_killed_then_rerun(_pg_site(postgres_server, tmp_path))


HSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
HSM_PIN = "4711-django-pin"


@pytest.fixture
def hsm_env(tmp_path: Path) -> dict[str, str]:
    """A fresh SoftHSM2 token, and the environment naming it as the project's vault."""
    pytest.importorskip("pkcs11")
    if not Path(HSM_MODULE).exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed")
    folder = tmp_path / "softhsm"
    (folder / "tokens").mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n",
        encoding="utf-8",
    )
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "lp-django"),
            *("--pin", HSM_PIN, "--so-pin", "so-" + HSM_PIN),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    return {
        "LMS_VAULT": "pkcs11:django-lms",
        "LEARNPRIVACY_PKCS11_MODULE": HSM_MODULE,
        "LEARNPRIVACY_PKCS11_TOKEN": "lp-django",
        "LEARNPRIVACY_PKCS11_PIN": HSM_PIN,
        "SOFTHSM2_CONF": str(conf),
    }


TOKEN_OBJECTS = """
import hashlib, json
from pkcs11 import Attribute, ObjectClass
from learnprivacy.django._settings import vault
with vault("learnprivacy_keys")._session() as session:
    data = session.get_objects({Attribute.CLASS: ObjectClass.DATA})
    found = [bytes(o[Attribute.VALUE]) for o in data]
print(json.dumps(sorted(hashlib.sha256(v).hexdigest() for v in found)))
"""


@pytest.mark.slow
def test_hsm_vault_epoch_object_destroyed_and_old_copy_reads_nothing(
    tmp_path: Path, hsm_env: dict[str, str]
) -> None:
    """``LEARNPRIVACY["VAULT"] = "pkcs11:<label>"``: the epoch key in a SoftHSM2 token;
    after erase + compact the previous epoch's token object is gone and the pre-erasure
    copies open nothing; the live databases read every other learner."""
    site = _sqlite_site(tmp_path, hsm_env)
    site.setup()
    _shell(SEED, site.env)
    assert _compact(site.env)["epoch"] == 1
    (first,) = json.loads(_shell(TOKEN_OBJECTS, site.env))
    site.snapshot("before")
    _shell(ERASE, site.env)
    assert json.loads(_shell(READ, site.restored("before")))[str(ERASED)].startswith("+33")
    assert _compact(site.env)["epoch"] == 2
    objects = json.loads(_shell(TOKEN_OBJECTS, site.env))
    assert len(objects) == 1
    assert first not in objects
    status = json.loads(manage("learnprivacy_keys", "status", "--json", env=site.env).stdout)
    assert status["epoch_vault"] == "pkcs11:lp-django/django-lms"
    assert not list((tmp_path / "live").glob("*.vault"))
    assert json.loads(_shell(READ, site.restored("before"))) == {"open": "ConfigurationError"}
    assert json.loads(_shell(READ, site.env)) == _expected(range(FIRST_ID + 1, FIRST_ID + LEARNERS))
