"""The Django example LMS, run by Django's own test runner in a process of its own.

Django is configured once per process, so the example's test suite (``lms/tests.py``:
fields, erasure, sweeps, exports, encryption of existing rows, attack tests) runs in a
subprocess: once on SQLite files, once on the real PostgreSQL server the session
starts. ``manage.py check`` is run the same way against models that break the rules.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from learnprivacy.testing.postgres import TemporaryPostgres

pytest.importorskip("django")

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "django_lms"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def _environment(env: dict[str, str]) -> dict[str, str]:
    """A clean, explicit environment for ``manage.py``: ``env`` over the defaults."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(PROJECT)),
        "LEARNPRIVACY_MASTER_KEY": MASTER_KEY,
        **env,
    }


def manage(
    *args: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` of the example with a clean, explicit environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage_killed(*args: str, at: str, env: dict[str, str]) -> None:
    """Start ``manage.py ARGS`` and SIGKILL it at its first line on stderr starting with
    ``at``; check that it died of the kill (not earlier, nor by finishing)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(at):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL


def pg_env(server: TemporaryPostgres, vault: Path | None = None) -> tuple[dict[str, str], str, str]:
    """The example's environment on two fresh databases of ``server`` (records, keys),
    and their names; ``vault`` is where the epoch keys' vault file goes."""
    data = server.create_database().rsplit("/", 1)[-1]
    keys = server.create_database().rsplit("/", 1)[-1]
    env = {
        "LMS_PG_HOST": server.host,
        "LMS_PG_PORT": str(server.port),
        "LMS_PG_USER": server.user,
        "LMS_PG_DB": data,
        "LMS_PG_KEYS_DB": keys,
    }
    if vault is not None:
        env["LMS_VAULT"] = str(vault)
    return env, data, keys


@pytest.mark.slow
def test_example_suite_on_sqlite(tmp_path: Path) -> None:
    """The example's Django tests pass on SQLite (data and keys in two databases)."""
    done = manage("test", "lms", "-v", "2", env={"LMS_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-4000:]
    assert "OK" in done.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_example_suite_on_postgres(postgres_server: TemporaryPostgres, tmp_path: Path) -> None:
    """The same tests pass on the real PostgreSQL server (two databases on it)."""
    env = {
        "LMS_VAULT": str(tmp_path / "lms_django_keys.vault"),
        "LMS_PG_HOST": postgres_server.host,
        "LMS_PG_PORT": str(postgres_server.port),
        "LMS_PG_USER": postgres_server.user,
        "LMS_PG_DB": "lms_django",
        "LMS_PG_KEYS_DB": "lms_django_keys",
    }
    done = manage("test", "lms", "--noinput", "-v", "2", env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "OK" in done.stderr


def test_check_passes_on_the_example(tmp_path: Path) -> None:
    """The example project's declarations pass ``manage.py check``."""
    done = manage("check", env={"LMS_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "learnprivacy" not in done.stdout + done.stderr


def test_check_flags_undeclared_personal_fields(tmp_path: Path) -> None:
    """Undeclared personal-looking fields warn (W001); a declared model with an
    undeclared field is an error (E001) naming table and column, never a value."""
    env = {"LMS_DATA_DIR": str(tmp_path), "LMS_CHECKS_APP": "1"}
    done = manage("check", env=env)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "learnprivacy.E001" in output
    assert "lms_checks_note.mood" in output
    assert "learnprivacy.W001" in output
    assert "lms_checks_contact.email" in output
    assert "lms_checks_contact.ip_address" in output
    assert "lms_checks_contact.created" not in output
    # Other spellings of the same words are flagged too (camelCase, plurals, a digit, a
    # personal name given to the column only); a neutral name is not.
    spellings = ("phoneNumber", "contactEmail", "home_addresses", "email2", "mobile")
    # Special categories (GDPR Art. 9) and other identifying words.
    words = ("ethnicity", "religion", "sex", "postal_code", "client_ipv6", "birthplace")
    for column in spellings + words:
        assert f"lms_checks_contact.{column} looks like personal data" in output
    assert "lms_checks_contact.ranking" not in output
    # A model declared with declare() (as auth.User is): a personal-looking field left
    # out of the declaration is neither exported nor blanked by erasure, so it is flagged.
    assert "lms_checks_account.email looks like personal data" in output
    for column in ("username", "created", "is_staff"):
        assert f"lms_checks_account.{column}" not in output


def test_check_refuses_keys_in_the_data_database(tmp_path: Path) -> None:
    """Keys apart from data: naming the default database as the key store is an error."""
    done = manage("check", env={"LMS_DATA_DIR": str(tmp_path), "LMS_KEYS_ALIAS": "default"})
    assert done.returncode != 0
    assert "learnprivacy.E002" in done.stdout + done.stderr


def test_migrate_puts_keys_in_their_own_database(tmp_path: Path) -> None:
    """``migrate`` creates the key tables only with ``--database <KEYS alias>``."""
    import sqlite3

    env = {"LMS_DATA_DIR": str(tmp_path)}
    assert manage("migrate", "-v", "0", env=env).returncode == 0
    assert manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env).returncode == 0
    with sqlite3.connect(tmp_path / "lms.sqlite3") as data:
        data_tables = {r[0] for r in data.execute("SELECT name FROM sqlite_master")}
    with sqlite3.connect(tmp_path / "lms.keys.sqlite3") as keys:
        key_tables = {r[0] for r in keys.execute("SELECT name FROM sqlite_master")}
    assert "lpdj_keys" in key_tables
    assert "lpdj_keys" not in data_tables
    assert "lpdj_audit" in data_tables
    assert "lpdj_audit" not in key_tables
    assert "lms_profile" in data_tables
    assert "lms_profile" not in key_tables


def test_importing_learnprivacy_does_not_import_django() -> None:
    """``import learnprivacy`` loads no Django; ``learnprivacy.django`` is opt-in."""
    code = "import sys, learnprivacy; print('django' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
