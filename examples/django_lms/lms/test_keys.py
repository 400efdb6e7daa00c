"""``learnprivacy_keys rotate`` and ``backup`` on the example LMS.

The rotation follows Django's ``SECRET_KEY_FALLBACKS`` pattern: the new master key in
``LEARNPRIVACY_MASTER_KEY``, the old one in ``LEARNPRIVACY_PREVIOUS_MASTER_KEYS``, then
``rotate`` rewraps every data key. Attacks: a master key the settings do not hold, a
second rotation over an interrupted one, a resume with nothing to resume, a backup over
an existing file. The SIGKILL test is in the repository's ``tests/test_django_keys.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from unittest import mock

from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.db import connections
from django.test import TransactionTestCase

from learnprivacy.crypto import Keyring
from learnprivacy.django._keys import ROTATION, key_store
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import reset_runtime, runtime
from lms.models import Profile
from lms.tests import command_json

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
NEW_KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(200, 232))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def keys(*, master: bytes, previous: list[bytes] | None = None) -> mock._patch_dict:
    """Environment holding ``master`` as the master key and ``previous`` as fallbacks."""
    return mock.patch.dict(
        os.environ,
        {
            "LEARNPRIVACY_MASTER_KEY": b64(master),
            "LEARNPRIVACY_PREVIOUS_MASTER_KEYS": ",".join(b64(k) for k in previous or []),
        },
    )


def run(*args: str) -> dict[str, object]:
    """What ``manage.py learnprivacy_keys ARGS --json`` reports."""
    result: dict[str, object] = command_json("learnprivacy_keys", *args)
    return result


def wrapped_under() -> dict[str, int]:
    with connections["learnprivacy_keys"].cursor() as cursor:
        cursor.execute(
            "SELECT master_key_id, count(*) FROM lpdj_keys WHERE state <> 'shredded' "
            "GROUP BY master_key_id"
        )
        return {str(k): int(n) for k, n in cursor.fetchall()}


class RotationTests(TransactionTestCase):
    """Master-key rotation: nothing lost, nothing half-done, every value still reads."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        reset_runtime()
        self.old = base64.b64decode(os.environ["LEARNPRIVACY_MASTER_KEY"])
        self.users = []
        for i in range(6):
            user = User.objects.create(username=f"r{i}", last_login=NOW)
            Profile.objects.create(user=user, phone=f"+33 6 00 00 0{i}", city="Nantes", joined=NOW)
            self.users.append(user)
        get_privacy().erase_subject(self.users[0].pk, now=NOW)

    def tearDown(self) -> None:
        reset_runtime()

    def phones(self) -> list[str]:
        runtime().keyring.clear_cache()
        return [p.phone for p in Profile.objects.order_by("user_id")]

    def test_rotation_rewraps_every_key_and_old_key_is_then_unneeded(self) -> None:
        """New key + old as previous: everything reads; rotate rewraps all live keys
        (shredded ones stay shredded); then the new key alone reads everything."""
        before = self.phones()
        assert len(before) == 5
        live = sum(wrapped_under().values())
        with keys(master=NEW_KEY, previous=[self.old]):
            reset_runtime()
            assert self.phones() == before
            dry = run("rotate", "--dry-run")
            assert dry["to_rewrap"] == live
            assert sum(wrapped_under().values()) == live
            assert Keyring(NEW_KEY).master_key_id not in wrapped_under()
            report = run("rotate", "--batch-size=2")
            assert report["rewrapped"] == live
            assert wrapped_under() == {Keyring(NEW_KEY).master_key_id: live}
            assert key_store().read_meta().get(ROTATION) is None
        with keys(master=NEW_KEY):
            reset_runtime()
            assert self.phones() == before
            run("verify")
            # Run again: nothing left to do.
            assert run("rotate")["rewrapped"] == 0
        # The erased learner's key stayed shredded.
        assert runtime().keyring.is_shredded(str(self.users[0].pk), "contract")

    def test_unknown_wrapping_key_is_refused_before_any_change(self) -> None:
        """A new key without the old one as previous: refused, typed, nothing changed."""
        before = wrapped_under()
        with keys(master=OTHER_KEY):
            reset_runtime()
            with self.assertRaises(CommandError) as caught:
                run("rotate")
        assert "WrongMasterKeyError" in str(caught.exception)
        assert wrapped_under() == before

    def test_interrupted_rotation_needs_resume_and_resume_needs_a_rotation(self) -> None:
        """A rotation recorded under way (killed half-way): a plain rotate is refused,
        --resume finishes it; --resume with none under way is refused."""
        with keys(master=NEW_KEY, previous=[self.old]):
            reset_runtime()
            with self.assertRaises(CommandError) as caught:
                run("rotate", "--resume")
            assert "no interrupted rotation" in str(caught.exception)
            store = key_store()
            store.write_meta(
                {ROTATION: json.dumps({"to": Keyring(NEW_KEY).master_key_id, "started_at": ""})}
            )
            with self.assertRaises(CommandError) as caught:
                run("rotate")
            assert "--resume" in str(caught.exception)
            assert run("status")["rotation_under_way"] is True
            report = run("rotate", "--resume")
            assert report["resumed"] is True
            assert run("status")["rotation_under_way"] is False
        with keys(master=OTHER_KEY, previous=[NEW_KEY]):
            reset_runtime()
            # An interrupted rotation to NEW_KEY cannot be continued with another key.
            key_store().write_meta(
                {ROTATION: json.dumps({"to": Keyring(NEW_KEY).master_key_id, "started_at": ""})}
            )
            with self.assertRaises(CommandError) as caught:
                run("rotate", "--resume")
            assert "put that key back" in str(caught.exception)
            key_store().write_meta({ROTATION: None})

    def test_previous_keys_variable_errors_name_it_only(self) -> None:
        """A malformed previous key is a configuration error naming the variable."""
        with mock.patch.dict(os.environ, {"LEARNPRIVACY_PREVIOUS_MASTER_KEYS": "not*base64"}):
            reset_runtime()
            with self.assertRaises(CommandError) as caught:
                run("status")
        assert "LEARNPRIVACY_PREVIOUS_MASTER_KEYS" in str(caught.exception)
        assert "not*base64" not in str(caught.exception)


class BackupTests(TransactionTestCase):
    """``learnprivacy_keys backup PATH``: a consistent copy of a SQLite key store."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        reset_runtime()

    def test_backup_copies_the_keys_and_refuses_to_overwrite(self) -> None:
        """The copy holds the same keys; an existing file is never overwritten; a dry
        run writes nothing; PostgreSQL key stores are pointed to pg_dump."""
        user = User.objects.create(username="b", last_login=NOW)
        Profile.objects.create(user=user, phone="+33 6 99", city="Lille", joined=NOW)
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "keys.sqlite3"
            if connections["learnprivacy_keys"].vendor != "sqlite":
                with self.assertRaises(CommandError) as caught:
                    run("backup", str(target))
                assert "pg_dump" in str(caught.exception)
                return
            dry = run("backup", str(target), "--dry-run")
            assert dry["dry_run"] is True
            assert not target.exists()
            data = run("backup", str(target))
            assert data["active"] >= 1
            copy = sqlite3.connect(target)
            try:
                copied = copy.execute("SELECT count(*) FROM lpdj_keys").fetchone()[0]
            finally:
                copy.close()
            assert copied == sum(wrapped_under().values())
            before = target.read_bytes()
            with self.assertRaises(CommandError) as caught:
                run("backup", str(target))
            assert "refusing to overwrite" in str(caught.exception)
            assert target.read_bytes() == before
