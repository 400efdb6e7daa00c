"""Key store rows name learners by keyed pseudonym (2/3): convert the existing rows.

Each row still naming its learner in clear gets the learner's key reference, its data
key re-wrapped for that name (the wrapping binds the name), and its clear name emptied,
a batch per transaction: killed at any point, every row is either converted or intact,
and running ``migrate`` again carries on. Rows to convert need the master key
(``LEARNPRIVACY["MASTER_KEY_ENV"]``); an empty key store (a new project, the test
databases) needs nothing.
"""

from typing import Any

from django.db import migrations


def convert(apps: Any, schema_editor: Any) -> None:
    from learnprivacy.django._keystore import convert_clear_subjects
    from learnprivacy.django._settings import keys_alias

    alias = schema_editor.connection.alias
    if alias == keys_alias():
        convert_clear_subjects(alias)


class Migration(migrations.Migration):
    # One transaction per batch of rows (inside convert_clear_subjects), not one for all.
    atomic = False

    dependencies = [("learnprivacy", "0003_key_refs_begin")]

    operations = [migrations.RunPython(convert, hints={"model_name": "keyentry"})]
