"""Key store rows name learners by keyed pseudonym (3/3): the clear column goes.

Refused while a row is left unconverted (0004 converts them all before this runs).
"""

from django.db import migrations, models

from learnprivacy.django.migrations._refs import drop_clear


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0004_key_refs_convert")]

    operations = [
        *drop_clear(
            ["keyentry", "keytombstone"],
            ref="subject_ref",
            clear="subject",
            left="learnprivacy.django._keystore.unconverted_rows",
            rows="key store rows still name their learner in clear",
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
