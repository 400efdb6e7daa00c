"""No decrypted leftovers: an export killed outright leaves its staging folder, and the
next export to the same target removes it (never the folder of an export still running)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from learnprivacy.export import export_subject
from learnprivacy.export._subject import remove_stale_staging
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    PrivacyManager,
)
from learnprivacy.records import Learner
from tests import UserContextProvider, sample

EMAIL = "stale.secret@example.org"

# A provider that writes the learner's account (personal values in clear in the staging
# folder), then blocks until the process is killed.
_KILLED_EXPORT = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from learnprivacy.export import export_subject
    from learnprivacy.providers import Context, ContextList, PrivacyManager
    from learnprivacy.records import Learner

    class Blocking:
        component = "blocking"

        def get_metadata(self, collection):
            return collection.add_database_table(
                "Learner", {"email": "E-mail"}, "Accounts", basis="gdpr_art_6_1_b"
            )

        def get_contexts_for_userid(self, user_id):
            return ContextList([Context.user(user_id)], component=self.component)

        def export_user_data(self, approved, writer):
            learner = Learner(
                id="L1", username="ana", email=sys.argv[2], given_name="Ana",
                family_name="Silva", created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            )
            writer.write_records(self.component, [learner])
            print("ready", flush=True)
            time.sleep(600)

        def delete_data_for_user(self, approved):
            return None

        def delete_data_for_all_users_in_context(self, context):
            return None

    manager = PrivacyManager([Blocking()], discover=False, timeout=None)
    export_subject(manager, "L1", sys.argv[1], now=dt.datetime(2026, 6, 15, tzinfo=dt.UTC),
                   pseudonym_key=bytes(32))
    """
)


class Accounts(UserContextProvider):
    """The learner's account, nothing else."""

    component = "accounts"
    table = ("Learner", {"email": "E-mail"}, "Accounts")

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        learner = sample(Learner, created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        writer.write_records(self.component, [learner])


def _staging(target: Path) -> list[Path]:
    return [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]


def _holds(folder: Path, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in folder.rglob("*") if path.is_file())


def test_a_killed_export_leaves_staging_that_the_next_export_removes(tmp_path: Path) -> None:
    """SIGKILL half-way: the decrypted staging stays (nothing can run in a killed process);
    the next export to the same target removes it and succeeds."""
    target = tmp_path / "ana.zip"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_EXPORT, str(target), EMAIL],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    (left,) = _staging(target)
    assert str(child.pid) in left.name
    assert not target.exists()
    # The attack: without the clean-up, the staged package (records in clear, as far as
    # they were flushed before the kill) stays beside the target for good.
    assert any(path.is_file() for path in left.rglob("*"))

    export_subject(
        PrivacyManager([Accounts()], discover=False),
        "L1",
        target,
        now=dt.datetime(2026, 6, 15, tzinfo=dt.UTC),
        pseudonym_key=bytes(32),
    )
    assert target.is_file()
    assert _staging(target) == []


def test_staging_of_a_running_export_is_left_alone(tmp_path: Path) -> None:
    """A staging folder whose process still runs belongs to a concurrent export: kept."""
    target = tmp_path / "ana.zip"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".{target.name}.{sleeper.pid}.abc123.partial"
        live.mkdir()
        (live / "records.jsonl").write_text(EMAIL, encoding="utf-8")
        assert remove_stale_staging(target) == 0
        assert live.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=60)
    assert remove_stale_staging(target) == 1
    assert not live.exists()


def test_only_this_targets_staging_is_touched(tmp_path: Path) -> None:
    """Other files beside the target, and other targets' staging, are never removed."""
    target = tmp_path / "ana.zip"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    others = [
        tmp_path / f".bob.zip.{pid}.x.partial",
        tmp_path / f".{target.name}.notapid.x.partial",
        tmp_path / f".{target.name}.{pid}.x.kept",
        tmp_path / "ana.zip.partial",
    ]
    for path in others:
        path.mkdir()
    stale = tmp_path / f".{target.name}.{pid}.x.partial"
    stale.mkdir()
    assert remove_stale_staging(target) == 1
    assert not stale.exists()
    assert all(path.is_dir() for path in others)
