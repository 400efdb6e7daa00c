"""Restricted rows named by keyed reference (2/3): convert the existing rows.

Each row still holding its clear key gets its reference (``row_ref``) and its clear key
emptied, a batch per transaction: killed at any point, every row is either converted or
intact, and running ``migrate`` again carries on. Rows to convert need the master key
(``LEARNPRIVACY["MASTER_KEY_ENV"]``); an empty register needs nothing. The clear keys
leave no copy behind in the database's files: SQLite overwrites freed space
(``secure_delete``) and truncates its write-ahead log; PostgreSQL rewrites the table
(``VACUUM FULL``), and the request book's tables too: the clear learner ids 0006
replaced (in one transaction, where ``VACUUM`` cannot run) still lie in their dead
tuples until then.
"""

from typing import Any

from django.db import migrations


def convert(apps: Any, schema_editor: Any) -> None:
    from learnprivacy.django._keystore import scrub_tables
    from learnprivacy.django._restrictions import convert_clear_keys

    alias = schema_editor.connection.alias
    convert_clear_keys(alias)
    scrub_tables(
        alias,
        ("lpdj_restrictions", "lpdj_dsr_requests", "lpdj_dsr_facts", "lpdj_pending_shreds"),
    )


class Migration(migrations.Migration):
    # One transaction per batch of rows (inside convert_clear_keys), not one for all.
    atomic = False

    dependencies = [("learnprivacy", "0007_restriction_refs_begin")]

    operations = [migrations.RunPython(convert, hints={"model_name": "restriction"})]
