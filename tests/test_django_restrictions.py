"""The register of restricted rows names no learner, on SQLite and PostgreSQL.

``lpdj_restrictions`` named each kept row by its primary key; a learner's account kept
after an erasure (an invoice refers to it) has the learner id as key, so the register
held the id in clear. It now holds a keyed reference; migrations 0007 to 0009 convert a
register written before, resumably. Checked on the raw bytes: the SQLite file with its
journal and write-ahead log, PostgreSQL's relation files after a CHECKPOINT.

Attacks: the conversion killed half-way (``os._exit`` inside a batch) and finished by
running ``migrate`` again; the converted register still guards its rows (writing the kept
account is refused) and still counts them as kept by law. The request book's conversion
(0006) is run on PostgreSQL as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learnprivacy.testing.postgres import TemporaryPostgres
from tests.store_fixtures import raw_bytes, relation_files
from tests.test_django_dsr_refs import (
    CONVERTED_BOOK,
    LEARNER,
    OTHER,
    READ_CONVERTED,
    SEED_OLD,
)
from tests.test_django_dsr_refs import _shell as shell
from tests.test_django_lms import manage, pg_env

pytest.importorskip("django")

ID = str(LEARNER).encode()

# A register as written before keyed references: the kept account listed by its key
# (the learner id) and the kept invoice by its own key.
SEED_REGISTER = f"""
import datetime as dt
from decimal import Decimal
from django.contrib.auth.models import User
from django.db import connection
from lms.models import Invoice
NOW = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
user = User.objects.create(id={LEARNER}, username="u0", last_login=NOW)
invoice = Invoice.objects.create(user=user, billing_name="x", amount=Decimal(1), issued_at=NOW)
with connection.cursor() as cursor:
    for table, key in (("auth_user", user.pk), ("lms_invoice", invoice.pk)):
        cursor.execute(
            'INSERT INTO lpdj_restrictions ("table", row_key, subject_ref, reason, created_at) '
            "VALUES (%s, %s, %s, %s, %s)",
            [table, str(key), "p1_seeded", "erasure request", NOW],
        )
print("seeded")
"""

# The conversion dies (as a killed process does) inside its second batch.
KILLED_CONVERSION = """
import os
import learnprivacy.django._restrictions as register
real, calls = register.row_ref, [0]
def dying(table, key):
    calls[0] += 1
    if calls[0] > 1:
        os._exit(9)
    return real(table, key)
register.row_ref = dying
register.convert_clear_keys("default", batch_size=1)
"""

READ_REGISTER = f"""
import json
from django.contrib.auth.models import User
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._restrictions import unconverted_rows
from learnprivacy.django.models import Restriction
from learnprivacy.errors import RestrictedRecordError
user = User.objects.get(pk={LEARNER})
user.first_name = "changed"
try:
    user.save()
    refused = False
except RestrictedRecordError:
    refused = True
print(json.dumps({{
    "refs": sorted(r[:3] for r in Restriction.objects.values_list("row_ref", flat=True)),
    "refused": refused,
    "kept": get_privacy().kept_by_law("{LEARNER}"),
    "unconverted": unconverted_rows("default"),
}}))
"""

UNCONVERTED = """
from learnprivacy.django._restrictions import unconverted_rows
print(unconverted_rows("default"))
"""

CONVERTED = {
    "refs": ["p1_", "p1_"],
    "refused": True,
    "kept": {"auth_user": 1, "lms_invoice": 1},
    "unconverted": 0,
}


def _sqlite_bytes(directory: Path) -> bytes:
    return raw_bytes(f"sqlite:///{directory / 'lms.sqlite3'}")


def _migrate(env: dict[str, str], *target: str) -> None:
    done = manage("migrate", *target, "--noinput", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def _keys_then_old_register(env: dict[str, str]) -> None:
    """The key store migrated; the records database as it was at 0006, seeded."""
    _migrate(env, "--database", "learnprivacy_keys")
    _migrate(env, "learnprivacy", "0006")
    _migrate(env, "lms")
    assert shell(SEED_REGISTER, env) == "seeded"


@pytest.mark.slow
def test_sqlite_register_conversion_killed_then_resumed(tmp_path: Path) -> None:
    """A register in clear, its conversion killed after one row, ``migrate`` again: every
    row converted, no id left in the file, the rows still guarded and counted."""
    env = {"LMS_DATA_DIR": str(tmp_path)}
    _keys_then_old_register(env)
    assert ID in _sqlite_bytes(tmp_path)  # control: the old register names the learner
    _migrate(env, "learnprivacy", "0007")
    killed = manage("shell", "--no-imports", "-c", KILLED_CONVERSION, env=env)
    assert killed.returncode == 9
    # One row converted and committed, the other intact.
    assert shell(UNCONVERTED, env) == "1"
    _migrate(env)
    assert json.loads(shell(READ_REGISTER, env)) == CONVERTED
    assert ID not in _sqlite_bytes(tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_register_conversion_killed_then_resumed(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """PostgreSQL: the same conversion, killed and resumed; the relation files hold
    no learner id after a CHECKPOINT (the table is rewritten: no dead tuple keeps it)."""
    env, database, _keys = pg_env(postgres_server, tmp_path / "lms.vault")
    _keys_then_old_register(env)
    assert ID in relation_files(postgres_server, database)  # control
    _migrate(env, "learnprivacy", "0007")
    killed = manage("shell", "--no-imports", "-c", KILLED_CONVERSION, env=env)
    assert killed.returncode == 9
    _migrate(env)
    assert json.loads(shell(READ_REGISTER, env)) == CONVERTED
    assert ID not in relation_files(postgres_server, database)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_request_book_conversion(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """PostgreSQL: a request book and a pending shred written in clear (before 0006)
    are converted by ``migrate``; everything reads as before and the relation files
    hold no learner id after a CHECKPOINT."""
    env, database, _keys = pg_env(postgres_server, tmp_path / "lms.vault")
    _migrate(env, "--database", "learnprivacy_keys")
    _migrate(env, "learnprivacy", "0005")
    assert shell(SEED_OLD, env) == "seeded"
    assert ID in relation_files(postgres_server, database)  # control
    _migrate(env)
    assert ID not in relation_files(postgres_server, database)
    assert json.loads(shell(READ_CONVERTED, env)) == CONVERTED_BOOK
    assert str(OTHER).encode() not in relation_files(postgres_server, database)
