"""The key store's shred mark (see ``learnprivacy.crypto._keystore``).

One row of ``lpdj_key_meta`` (``shred_mark``), given a new random value in the same
transaction as every shred: a keyring that holds unwrapped keys in memory reads it once
per fetch of rows and looks its keys up again only when it changed. The first shred
would create it: it is made here so that shreds never race to insert it.
"""

from typing import Any

from django.db import migrations


def start(apps: Any, schema_editor: Any) -> None:
    meta = apps.get_model("learnprivacy", "KeyMeta")
    alias = schema_editor.connection.alias
    meta.objects.using(alias).get_or_create(key="shred_mark", defaults={"value": ""})


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0009_restriction_refs_end")]

    operations = [
        migrations.RunPython(start, migrations.RunPython.noop, hints={"model_name": "keymeta"})
    ]
