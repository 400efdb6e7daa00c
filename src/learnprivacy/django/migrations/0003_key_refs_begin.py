"""Key store rows name learners by keyed pseudonym (1/3): room for the pseudonym.

The old constraints on ``subject`` go, ``subject_ref`` is added (empty until 0004 fills
it) and ``subject`` may be emptied row by row. Nothing is lost: 0004 converts, 0005
drops the clear column once every row is converted.
"""

from django.db import migrations

from learnprivacy.django.migrations._refs import make_room


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0002_keymeta")]

    operations = [
        migrations.RemoveConstraint(model_name="keyentry", name="lpdj_keys_id"),
        migrations.RemoveConstraint(model_name="keyentry", name="lpdj_keys_one_active"),
        migrations.RemoveIndex(model_name="keyentry", name="lpdj_keys_subject_scope"),
        migrations.RemoveConstraint(model_name="keytombstone", name="lpdj_tombstones_pair"),
        *make_room(["keyentry", "keytombstone"], ref="subject_ref", clear="subject"),
    ]
