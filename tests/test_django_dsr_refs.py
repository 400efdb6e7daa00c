"""The Django request book and pending shreds name no learner in clear.

The example LMS (SQLite files) runs an erasure request for a learner whose id is long
and distinctive; the records database's raw bytes (file, journal, write-ahead log) are
then searched for it. A book written before keyed references (clear ``learner_id``
columns, facts sealed under the id, a pending shred naming the learner) is converted
by ``migrate``: every request and fact reads as before, no clear id is left. A clear id
written back into the book makes the next erasure request fail its
``verify_request_book`` step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.store_fixtures import raw_bytes
from tests.test_django_lms import manage

pytest.importorskip("django")

LEARNER = 2_073_611_117  # distinctive, within an int column
OTHER = LEARNER + 1

PRELUDE = """
import datetime as dt, json
from decimal import Decimal
from django.contrib.auth.models import User
from learnprivacy.django._privacy import get_privacy
from learnprivacy.requests import Channel, ProofMethod, Requester, RequestType
from lms.models import Invoice, Profile
NOW = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
privacy = get_privacy()
executor = privacy.request_executor()
book = executor.book

def erase(pk, name):
    request = book.receive(
        RequestType.ERASURE, learner_id=str(pk), received_at=NOW, channel=Channel.WEB_FORM,
        requester=Requester.subject(name, "x" + str(pk) + "@example.org"),
    )
    book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=NOW)
    done = executor.execute(request.id, now=NOW)
    failed = done.failure.step if done.failure else None
    return done.state.value, failed
"""

ERASE = (
    PRELUDE
    + f"""
for pk in ({LEARNER}, {OTHER}):
    user = User.objects.create(id=pk, username=f"u{{pk - {LEARNER}}}", last_login=NOW)
    Profile.objects.create(user=user, phone="+33 6 12", city="Lyon", joined=NOW)
    # Kept (restricted) by law: the erasure completes, the user row restricted.
    Invoice.objects.create(user=user, billing_name="Ana Silva", amount=Decimal(1), issued_at=NOW)
state, failed = erase({LEARNER}, "Ana Silva")
left = list(book.backend.find_in_clear("{LEARNER}"))
print(json.dumps({{"state": state, "failed": failed, "left": left}}))
"""
)

TAMPER_THEN_ERASE = (
    PRELUDE
    + f"""
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("UPDATE lpdj_dsr_requests SET learner_id = %s", ["{OTHER}"])
print(json.dumps(erase({OTHER}, "Bea Costa")))
"""
)


def _records_bytes(directory: Path) -> bytes:
    """The records database's raw bytes (file, journal, write-ahead log)."""
    return raw_bytes(f"sqlite:///{directory / 'lms.sqlite3'}")


def _shell(code: str, env: dict[str, str]) -> str:
    done = manage("shell", "--no-imports", "-c", code, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_erasure_request_leaves_no_learner_id_in_the_records_database(tmp_path: Path) -> None:
    env = {"LMS_DATA_DIR": str(tmp_path)}
    for database in ("default", "learnprivacy_keys"):
        done = manage("migrate", "--database", database, "-v", "0", env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(_shell(ERASE, env))
    assert outcome == {"state": "completed", "failed": None, "left": []}
    data = _records_bytes(tmp_path)
    # Controls: the scan reads the records database itself, the register of kept rows
    # included (it lists the account by a keyed reference, not by the learner id).
    assert b"lpdj_dsr_requests" in data
    assert b"kept, anonymised: 1 lms_invoice row(s)" in data
    assert str(LEARNER).encode() not in data
    # A clear id written back into the book: the next erasure fails its check.
    state, failed = json.loads(_shell(TAMPER_THEN_ERASE, env))
    assert failed == "verify_request_book"
    assert state != "completed"


# A book and a pending shred as written before keyed references: the learner id in the
# ``learner_id`` columns and in ``subject``, the fact sealed under the id.
SEED_OLD = f"""
import datetime as dt
from django.db import connection
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import runtime
from learnprivacy.requests import Channel, Requester, RequestType
from learnprivacy.requests._bodies import canonical_json, fact_context
NOW = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
cipher = runtime().cipher
cipher.encrypt("x", subject="{LEARNER}", context="probe", scope="default")
book = get_privacy().request_book()
book.receive(
    RequestType.ACCESS, learner_id="{LEARNER}", received_at=NOW, channel=Channel.EMAIL,
    requester=Requester.subject("Ana Silva", "ana@example.org"),
)
subject, context = fact_context("{LEARNER}", "objection", "marketing")
body = cipher.encrypt(
    canonical_json({{"at": NOW.isoformat(), "data": {{"reason": "moved abroad"}}}}),
    subject=subject,
    context=context,
)
with connection.cursor() as cursor:
    cursor.execute("UPDATE lpdj_dsr_requests SET learner_id = %s", ["{LEARNER}"])
    cursor.execute(
        "INSERT INTO lpdj_dsr_facts (learner_id, kind, key, at, body) VALUES (%s, %s, %s, %s, %s)",
        ["{LEARNER}", "objection", "marketing", NOW, body],
    )
    cursor.execute(
        "INSERT INTO lpdj_pending_shreds (subject, scope, mode, created_at) "
        "VALUES (%s, %s, %s, %s)",
        ["{LEARNER}", "default", "tombstone", NOW],
    )
print("seeded")
"""

READ_CONVERTED = f"""
import json
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import runtime
from learnprivacy.django.models import PendingShred
privacy = get_privacy()
book = privacy.request_book()
subjects = list(PendingShred.objects.values_list("subject", flat=True))
requests = book.requests(learner_id="{LEARNER}")
fact = book.backend.get_fact("{LEARNER}", "objection", "marketing")
facts = book.backend.list_facts("objection")
done = privacy.reconcile()
print(json.dumps({{
    "requests": [(r.learner_id, r.requester.name) for r in requests],
    "fact": [fact.learner_id, dict(fact.data)],
    "listed": [f.learner_id for f in facts],
    "pending": [s[:3] for s in subjects],
    "reconciled": done,
    "shredded": runtime().keyring.is_shredded("{LEARNER}", "default"),
    "left": list(book.backend.find_in_clear("{LEARNER}")),
}}))
"""

#: What READ_CONVERTED prints once a book seeded by SEED_OLD is converted.
CONVERTED_BOOK = {
    "requests": [[str(LEARNER), "Ana Silva"]],
    "fact": [str(LEARNER), {"reason": "moved abroad"}],
    "listed": [str(LEARNER)],
    "pending": ["k1_"],
    "reconciled": 1,
    "shredded": True,
    "left": [],
}


@pytest.mark.slow
def test_a_book_written_in_clear_is_converted_by_migrate(tmp_path: Path) -> None:
    env = {"LMS_DATA_DIR": str(tmp_path)}
    done = manage("migrate", "--database", "learnprivacy_keys", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    done = manage("migrate", "learnprivacy", "0005", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _shell(SEED_OLD, env) == "seeded"
    # Control: the old rows name the learner in clear.
    data = _records_bytes(tmp_path)
    assert str(LEARNER).encode() in data
    done = manage("migrate", "learnprivacy", "0006", "-v", "0", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = _records_bytes(tmp_path)
    assert str(LEARNER).encode() not in data
    outcome = json.loads(_shell(READ_CONVERTED, env))
    assert outcome == CONVERTED_BOOK
