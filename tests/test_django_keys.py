"""``manage.py learnprivacy_keys rotate`` killed half-way loses nothing (SQLite and a
real PostgreSQL).

The example LMS is seeded with a few hundred learners, then its master key is rotated
the documented way (new key in ``LEARNPRIVACY_MASTER_KEY``, old key in
``LEARNPRIVACY_PREVIOUS_MASTER_KEYS``). The rotation is SIGKILLed as soon as it reports
progress; then a plain ``rotate`` is refused, ``rotate --resume`` finishes, and the new
key alone reads every value as it was.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.testing.postgres import TemporaryPostgres
from tests.test_django_lms import MASTER_KEY, manage, manage_killed

pytest.importorskip("django")

NEW_KEY = base64.b64encode(bytes(range(64, 96))).decode()
LEARNERS = 400

SEED = f"""
import datetime as dt
from django.contrib.auth.models import User
from learnprivacy.django import prepare_keys
from learnprivacy.django._privacy import get_privacy
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
users = User.objects.bulk_create(
    [User(username=f"k{{i}}", last_login=now) for i in range({LEARNERS})]
)
prepare_keys([u.pk for u in users])
Profile.objects.bulk_create(
    [Profile(user=u, phone=f"+33 6 {{u.pk:08d}}", city=f"City {{u.pk}}", joined=now)
     for u in users]
)
get_privacy().erase_subject(users[0].pk, now=now)
"""

READ = """
import json
from lms.models import Profile
print(json.dumps([[p.user_id, p.phone, p.city] for p in Profile.objects.order_by("user_id")]))
"""

COUNT = """
import json
from django.db import connections
with connections["learnprivacy_keys"].cursor() as cursor:
    cursor.execute("SELECT master_key_id, count(*) FROM lpdj_keys WHERE state <> 'shredded' "
                   "GROUP BY master_key_id")
    print(json.dumps(dict(cursor.fetchall())))
"""


def _env(base: dict[str, str], master: str, previous: str = "") -> dict[str, str]:
    return {
        **base,
        "LEARNPRIVACY_MASTER_KEY": master,
        "LEARNPRIVACY_PREVIOUS_MASTER_KEYS": previous,
    }


def _shell(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in ``manage.py shell``; its last line of output."""
    done = manage("shell", "--no-imports", "-c", code, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _pg_base(postgres_server: TemporaryPostgres) -> dict[str, str]:
    """The example project's environment on two new databases of ``postgres_server``:
    one for the data, one for the keys."""
    data, keys = postgres_server.create_database(), postgres_server.create_database()
    return {
        "LMS_PG_HOST": postgres_server.host,
        "LMS_PG_PORT": str(postgres_server.port),
        "LMS_PG_USER": postgres_server.user,
        "LMS_PG_DB": data.rsplit("/", 1)[-1],
        "LMS_PG_KEYS_DB": keys.rsplit("/", 1)[-1],
    }


def _rotation_killed_then_resumed(base: dict[str, str]) -> None:
    old_env = _env(base, MASTER_KEY)
    assert manage("migrate", "-v", "0", env=old_env).returncode == 0
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=old_env)
    assert done.returncode == 0, done.stderr
    _shell(SEED, old_env)
    expected = json.loads(_shell(READ, old_env))
    assert len(expected) == LEARNERS - 1
    new_id = Keyring(base64.b64decode(NEW_KEY)).master_key_id
    live = sum(json.loads(_shell(COUNT, old_env)).values())

    rotating = _env(base, NEW_KEY, MASTER_KEY)
    # One key per transaction: the rotation lasts long enough for the kill to land in it,
    # even on a loaded machine.
    manage_killed("learnprivacy_keys", "rotate", "--batch-size", "1", at="keys: ", env=rotating)
    counts = json.loads(_shell(COUNT, rotating))
    assert 0 < counts.get(new_id, 0) < live, "the kill must land in the middle"
    assert sum(counts.values()) == live
    # Half-way, the application (new key, old key as previous) reads everything.
    assert json.loads(_shell(READ, rotating)) == expected

    refused = manage("learnprivacy_keys", "rotate", env=rotating)
    assert refused.returncode != 0
    assert "--resume" in refused.stderr
    resumed = manage("learnprivacy_keys", "rotate", "--resume", "--json", env=rotating)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["resumed"] is True
    assert 0 < report["rewrapped"] < live
    assert json.loads(_shell(COUNT, rotating)) == {new_id: live}

    # The old key is no longer needed: the new key alone reads every value.
    alone = _env(base, NEW_KEY)
    assert json.loads(_shell(READ, alone)) == expected
    assert manage("learnprivacy_keys", "verify", env=alone).returncode == 0
    # And the old key alone reads nothing any more: it is refused, typed.
    stale = manage("shell", "--no-imports", "-c", READ, env=old_env)
    assert stale.returncode != 0
    assert "+33 6" not in stale.stdout + stale.stderr


@pytest.mark.slow
def test_rotation_killed_on_sqlite_resumes_and_reads_everything(tmp_path: Path) -> None:
    """SQLite files: killed rotation, refused rerun, resumed, every value reads."""
    _rotation_killed_then_resumed({"LMS_DATA_DIR": str(tmp_path)})


@pytest.mark.slow
@pytest.mark.postgres
def test_rotation_killed_on_postgres_resumes_and_reads_everything(
    postgres_server: TemporaryPostgres,
) -> None:
    """The same on a real PostgreSQL server (data and keys in two databases)."""
    _rotation_killed_then_resumed(_pg_base(postgres_server))


@pytest.mark.parametrize("action", ["rotate", "compact"])
def test_key_rewrites_refuse_an_empty_batch(tmp_path: Path, action: str) -> None:
    """``--batch-size 0`` is refused before any key is read or written."""
    done = manage(
        "learnprivacy_keys", action, "--batch-size", "0", env={"LMS_DATA_DIR": str(tmp_path)}
    )
    assert done.returncode != 0
    assert "--batch-size must be at least 1" in done.stderr
    assert not list(tmp_path.iterdir())


BATCH_UPDATE = """
import json
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.django._keystore import DjangoKeyStore
store = DjangoKeyStore("learnprivacy_keys")
entry = store.add(KeyEntry(subject="k1_batch", scope="default", key_id="01" * 8,
                           state=KeyState.ACTIVE, master_key_id="ab" * 8, wrapped=b"w" * 60))
seen = {}
with store.batch(["k1_batch"]):
    retired = KeyEntry(subject="k1_batch", scope="default", key_id="01" * 8,
                       state=KeyState.RETIRED, master_key_id="cd" * 8, wrapped=b"v" * 60)
    assert store.update(retired)
    got = store.get("k1_batch", "01" * 8)
    seen["get"] = [got.state.value, got.master_key_id]
    seen["list"] = [[e.state.value, e.master_key_id] for e in store.list_entries("k1_batch")]
got = store.get("k1_batch", "01" * 8)
seen["after"] = [got.state.value, got.master_key_id]
print(json.dumps(seen))
"""


def test_update_inside_a_batch_is_read_back_from_the_batch(tmp_path: Path) -> None:
    """A key updated while a batch holds its subject reads back as updated, inside the
    batch as after it (as ``KeyDatabase.update`` does); the batch used to keep the old
    entry, so a rotation inside a batch read the key it had just replaced."""
    env = _env({"LMS_DATA_DIR": str(tmp_path)}, MASTER_KEY)
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(_shell(BATCH_UPDATE, env))
    updated = ["retired", "cd" * 8]
    assert seen == {"get": updated, "list": [updated], "after": updated}


#: Prepended to the shell scripts below: ``erase(pairs)`` shreds ``(key reference,
#: scope)`` pairs as another process would, on a connection of its own and outside any
#: batch of this thread, and returns once that has committed.
ERASER = """
import threading as _threading


def erase(pairs):
    def shred():
        from django.db import connections
        from learnprivacy.django._keystore import DjangoKeyStore

        DjangoKeyStore("learnprivacy_keys").shred_many(pairs)
        connections.close_all()

    eraser = _threading.Thread(target=shred)
    eraser.start()
    eraser.join()
"""


ERASED_DURING_BATCH = """
import json
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.django._keystore import DjangoKeyStore
from learnprivacy.errors import KeyShreddedError
store = DjangoKeyStore("learnprivacy_keys")
REFS = ("k1_gone", "k1_kept")

seen = {}
try:
    with store.batch(REFS):
        for ref in REFS:
            store.add(KeyEntry(subject=ref, scope="default", key_id="02" * 8,
                               state=KeyState.ACTIVE, master_key_id="ab" * 8, wrapped=b"w" * 60))
        erase([("k1_gone", None)])
    seen["flush"] = "stored"
except KeyShreddedError:
    seen["flush"] = "refused"
seen["live"] = sorted(e.subject for ref in REFS for e in store.list_entries(ref)
                      if e.state is not KeyState.SHREDDED)
seen["shredded"] = store.is_shredded("k1_gone", "default")
print(json.dumps(seen))
"""


def _erased_during_batch(env: dict[str, str]) -> None:
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(_shell(ERASER + ERASED_DURING_BATCH, env))
    # Inserted beside the tombstone, the new key revived the erased learner's scope.
    assert seen == {"flush": "refused", "live": [], "shredded": True}


def test_a_key_buffered_before_an_erasure_is_not_stored_after_it(tmp_path: Path) -> None:
    """A batch prefetched a learner, buffered a new key, and another process erased the
    learner before the batch ended: the flush refuses (nothing of the batch stored)."""
    _erased_during_batch(_env({"LMS_DATA_DIR": str(tmp_path)}, MASTER_KEY))


@pytest.mark.postgres
def test_a_key_buffered_before_an_erasure_is_not_stored_after_it_postgres(
    postgres_server: TemporaryPostgres,
) -> None:
    _erased_during_batch(_env(_pg_base(postgres_server), MASTER_KEY))


PREPARE_REFUSED = """
import datetime as dt
import json
from django.contrib.auth.models import User
from learnprivacy.crypto import Keyring
from learnprivacy.django import prepare_keys
from learnprivacy.django._settings import runtime
from learnprivacy.errors import KeyShreddedError
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
gone, kept = User.objects.bulk_create(
    [User(username="gone", last_login=now), User(username="kept", last_login=now)]
)
ref = runtime().keyring._key_refs([str(gone.pk)])[str(gone.pk)]
made = Keyring._sealers
erased = []

def sealers(self, *args, **kwargs):  # the batch's keys made, then the erasure commits
    made(self, *args, **kwargs)
    if not erased:
        erased.append(1)
        erase([(ref, None)])

Keyring._sealers = sealers
seen = {}
try:
    prepare_keys([gone.pk, kept.pk])
    seen["prepare"] = "done"
except KeyShreddedError:
    seen["prepare"] = "refused"
Keyring._sealers = made
# The application goes on with the learner nobody erased.
Profile.objects.create(user=kept, phone="+33 6 00000001", city="Lyon", joined=now)
print(json.dumps(seen))
"""

READ_KEPT = """
import json
from lms.models import Profile
print(json.dumps([p.phone for p in Profile.objects.all()]))
"""


def test_a_refused_prepare_keys_leaves_no_unstored_key_in_memory(tmp_path: Path) -> None:
    """prepare_keys refused (a learner of the batch erased before its keys were stored):
    the other learners' keys, never stored, are not kept in memory either, so a row saved
    next for one of them is encrypted under a stored key and reads back (it was written
    under a key that existed nowhere, and lost)."""
    env = _env({"LMS_DATA_DIR": str(tmp_path)}, MASTER_KEY)
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(_shell(ERASER + PREPARE_REFUSED, env)) == {"prepare": "refused"}
    assert json.loads(_shell(READ_KEPT, env)) == ["+33 6 00000001"]


SAVE_AFTER_ERASURE = """
import datetime as dt
import json
from django.contrib.auth.models import User
from learnprivacy.django import prepare_keys
from learnprivacy.django._settings import runtime
from learnprivacy.errors import KeyShreddedError
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
ana, bea = User.objects.bulk_create(
    [User(username="ana", last_login=now), User(username="bea", last_login=now)]
)
profile = Profile.objects.create(user=ana, phone="+33 6 00000001", city="Lyon", joined=now)
prepare_keys([bea.pk])  # bea's keys made and cached here
refs = runtime().keyring._key_refs([str(ana.pk), str(bea.pk)])

erase([(ref, None) for ref in refs.values()])
seen = {}
try:
    profile.phone = "+33 6 00000002"
    profile.save()
    seen["save"] = "saved"
except KeyShreddedError:
    seen["save"] = "refused"
try:
    Profile.objects.bulk_create([Profile(user=bea, phone="+33 6 3", city="Nice", joined=now)])
    seen["bulk_create"] = "saved"
except KeyShreddedError:
    seen["bulk_create"] = "refused"
print(json.dumps(seen))
"""


def test_a_save_after_another_process_erased_the_learner_is_refused(tmp_path: Path) -> None:
    """Another process shredded the keys this process holds in memory: a save (and a
    bulk_create) for that learner is refused as in a fresh process (it sealed the values
    under the destroyed cached key and reported the row saved: unreadable, lost)."""
    env = _env({"LMS_DATA_DIR": str(tmp_path)}, MASTER_KEY)
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(_shell(ERASER + SAVE_AFTER_ERASURE, env))
    assert seen == {"save": "refused", "bulk_create": "refused"}


SAVE_IN_TRANSACTIONS = """
import datetime as dt
import json
from django.contrib.auth.models import User
from django.db import transaction
from learnprivacy.django._settings import runtime
from learnprivacy.errors import KeyShreddedError
from lms.models import Profile
now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
ana, bea, cid = User.objects.bulk_create(
    [User(username=n, last_login=now) for n in ("ana", "bea", "cid")]
)
pa, pb, pc = [
    Profile.objects.create(user=u, phone=f"+33 6 0000000{i}", city="Lyon", joined=now)
    for i, u in enumerate((ana, bea, cid))
]
refs = runtime().keyring._key_refs([str(bea.pk), str(cid.pk)])

@transaction.atomic
def rename(profile, phone):  # one Atomic object, reused by every call
    profile.phone = phone
    profile.save()

rename(pa, "+33 6 10")  # a first transaction reads the shred mark, and commits

erase([(ref, None) for ref in refs.values()])
seen = {}
try:
    rename(pb, "+33 6 11")
    seen["next transaction"] = "saved"
except KeyShreddedError:
    seen["next transaction"] = "refused"
try:
    with transaction.atomic():
        rename(pa, "+33 6 12")  # ana's keys live: this transaction reads the mark
        pc.phone = "+33 6 13"
        pc.save()
    seen["same transaction"] = "saved"
except KeyShreddedError:
    seen["same transaction"] = "refused"
print(json.dumps(seen))
"""


def test_each_transaction_reads_the_shred_mark_before_its_writes(tmp_path: Path) -> None:
    """A transaction reads the key store's shred mark once, at its first write of a
    learner with keys cached: a later transaction (the same ``@atomic`` function called
    again) reads it again and sees a shred committed between the two; in a transaction
    begun after the shred, a write of the erased learner is refused too."""
    env = _env({"LMS_DATA_DIR": str(tmp_path)}, MASTER_KEY)
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(_shell(ERASER + SAVE_IN_TRANSACTIONS, env))
    assert seen == {"next transaction": "refused", "same transaction": "refused"}
