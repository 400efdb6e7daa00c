"""Django on SQLite: a write guarded by a restriction check holds the database from
before the check, on a file database in WAL mode with two connections.

Each write path of a declared model checks that its rows are not restricted (GDPR
Art. 18), then writes. Another connection restricts the row right after the check (the
check is wrapped to start it there and wait for it). In WAL mode a read does not block
a writer: before, the restriction committed in that gap and the write that followed
failed with SQLite's untyped ``database is locked``. Now the check runs after the write
lock is taken, as ``BEGIN IMMEDIATE`` would take it: the restriction waits, the write
that was checked commits, and the restriction is listed after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("django")

from tests.test_django_lms import manage

RACE = """
import datetime as dt, json, threading
from unittest import mock
from django.contrib.auth.models import User
from django.db import connections
from learnprivacy.django import _bind
from learnprivacy.django._restrictions import restrict
from lms.models import Profile

NOW = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)
with connections["default"].cursor() as cursor:
    cursor.execute("PRAGMA journal_mode=WAL")
    assert cursor.fetchone()[0] == "wal"


def upsert(p):
    row = Profile(user_id=p.user_id, phone="+33 6 00 00 00 00", city="Nice", joined=LATER)
    Profile.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["user"], update_fields=["joined"]
    )


def bulk_update(p):
    p.joined = LATER
    Profile.objects.bulk_update([p], ["joined"])


def save(p):
    p.joined = LATER
    p.save()


WRITES = {
    "update": lambda p: Profile.objects.filter(pk=p.pk).update(joined=LATER),
    "bulk_update": bulk_update,
    "save": save,
    "delete": lambda p: p.delete(),
    "upsert": upsert,
}


def restricting(pk, order):
    # In a thread, so in a connection of its own; notes "restricted" or its error.
    def run():
        said = "restricted"
        try:
            restrict("lms_profile", [(pk, "p1_test", "legal hold")], now=NOW, using="default")
        except Exception as error:
            said = type(error).__name__
        order.append(said)
        connections.close_all()
    return threading.Thread(target=run)


outcome = {}
for n, (name, write) in enumerate(WRITES.items()):
    user = User.objects.create(username=f"u{n}", last_login=NOW)
    p = Profile.objects.create(user=user, phone="+33 6 12 34 56 78", city="Lyon", joined=NOW)
    p = Profile.objects.get(pk=p.pk)
    order, started = [], []

    def after_check(check):
        def checked(*args, **kwargs):
            result = check(*args, **kwargs)
            if not started:
                # Another connection restricts the row between the check and the write.
                started.append(restricting(p.pk, order))
                started[0].start()
                started[0].join(timeout=1.5)
                if order:
                    order.append("during")
            return result
        return checked

    checks = [
        mock.patch.object(_bind, name, after_check(getattr(_bind, name)))
        for name in ("any_restricted", "check_held")
    ]
    with checks[0], checks[1]:
        try:
            write(p)
            order.append("written")
        except Exception as error:
            order.append(type(error).__name__)
    for thread in started:
        thread.join()
    left = list(Profile.objects.filter(pk=p.pk).values_list("joined", flat=True))
    outcome[name] = {"order": order, "left": [str(j) for j in left]}
print(json.dumps(outcome))
"""


@pytest.mark.slow
def test_sqlite_writes_hold_the_database_from_before_their_restriction_check(
    tmp_path: Path,
) -> None:
    env = {"LMS_DATA_DIR": str(tmp_path)}
    for database in ("default", "learnprivacy_keys"):
        done = manage("migrate", "--database", database, "-v", "0", env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    done = manage("shell", "--no-imports", "-c", RACE, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    later = "2026-06-16 00:00:00+00:00"
    # The checked write commits first; the restriction waited for it, then was listed.
    assert outcome == {
        "update": {"order": ["written", "restricted"], "left": [later]},
        "bulk_update": {"order": ["written", "restricted"], "left": [later]},
        "save": {"order": ["written", "restricted"], "left": [later]},
        "delete": {"order": ["written", "restricted"], "left": []},
        "upsert": {"order": ["written", "restricted"], "left": [later]},
    }
