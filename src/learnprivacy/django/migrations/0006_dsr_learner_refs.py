"""The request book and the pending shreds name learners by keyed pseudonym.

``lpdj_dsr_requests.learner_id`` and ``lpdj_dsr_facts.learner_id`` get the learner's
request-book pseudonym (``p1_...``, the SQL book's derivation), each fact re-sealed under
it with the id inside its encrypted body; ``lpdj_pending_shreds.subject`` gets the key
reference (``k1_...``) the key store names the learner by. One transaction; rows to
convert need the master key (``LEARNPRIVACY["MASTER_KEY_ENV"]``), empty tables nothing.
"""

import datetime as dt
from typing import Any

from django.db import migrations


def convert_book(apps: Any, schema_editor: Any) -> None:
    requests = apps.get_model("learnprivacy", "RequestRow").objects.using(
        schema_editor.connection.alias
    )
    facts = apps.get_model("learnprivacy", "RequestFact").objects.using(
        schema_editor.connection.alias
    )
    if not requests.exists() and not facts.exists():
        return
    from learnprivacy.django._requests import DjangoRequestBackend
    from learnprivacy.django._settings import runtime
    from learnprivacy.requests._backend import Fact
    from learnprivacy.requests._bodies import fact_context, fact_from_data

    _secure_delete(schema_editor)
    backend = DjangoRequestBackend(runtime().cipher, using=schema_editor.connection.alias)
    for request_id, learner_id in list(requests.values_list("id", "learner_id")):
        requests.filter(id=request_id).update(learner_id=backend._ref(learner_id))
    for row in list(facts.all()):
        data = backend._open(row.body, *fact_context(row.learner_id, row.kind, row.key))
        fact: Fact = fact_from_data(row.learner_id, row.kind, row.key, data)
        ref, body = backend.sealed_fact_body(fact)
        facts.filter(id=row.id).update(learner_id=ref, body=body, at=fact.at.astimezone(dt.UTC))


def convert_pending(apps: Any, schema_editor: Any) -> None:
    pending = apps.get_model("learnprivacy", "PendingShred").objects.using(
        schema_editor.connection.alias
    )
    if not pending.exists():
        return
    from learnprivacy.django._settings import runtime

    _secure_delete(schema_editor)
    keyring = runtime().keyring
    for row_id, subject in list(pending.values_list("id", "subject")):
        pending.filter(id=row_id).update(subject=keyring.key_ref(subject))


def _secure_delete(schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        # The clear ids must not stay behind in freed pages.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0005_key_refs_end")]

    operations = [
        migrations.RunPython(convert_book, hints={"model_name": "requestrow"}),
        migrations.RunPython(convert_pending, hints={"model_name": "pendingshred"}),
    ]
