"""Key store rows name learners by keyed pseudonym (3/3): the clear column goes.

Refused while a row is left unconverted (0004 converts them all before this runs).
"""

from typing import Any

from django.db import migrations, models


def check_converted(apps: Any, schema_editor: Any) -> None:
    from learnprivacy.django._keystore import unconverted_rows
    from learnprivacy.errors import ConfigurationError

    left = unconverted_rows(schema_editor.connection.alias)
    if left:
        raise ConfigurationError(
            f"{left} key store rows still name their learner in clear: run migrate again"
        )


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0004_key_refs_convert")]

    operations = [
        migrations.RunPython(check_converted, hints={"model_name": "keyentry"}),
        migrations.RemoveField(model_name="keyentry", name="subject"),
        migrations.RemoveField(model_name="keytombstone", name="subject"),
        migrations.AlterField(
            model_name="keyentry",
            name="subject_ref",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="keytombstone",
            name="subject_ref",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="keyentry",
            constraint=models.UniqueConstraint(
                fields=("subject_ref", "key_id"), name="lpdj_keys_ref_id"
            ),
        ),
        migrations.AddConstraint(
            model_name="keyentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "active")),
                fields=("subject_ref", "scope"),
                name="lpdj_keys_ref_one_active",
            ),
        ),
        migrations.AddIndex(
            model_name="keyentry",
            index=models.Index(fields=["subject_ref", "scope"], name="lpdj_keys_ref_scope"),
        ),
        migrations.AddConstraint(
            model_name="keytombstone",
            constraint=models.UniqueConstraint(
                fields=("subject_ref", "scope"), name="lpdj_tombstones_ref"
            ),
        ),
    ]
