"""Restricted rows named by keyed reference (1/3): room for the reference.

``lpdj_restrictions.row_key`` held each kept row's primary key, which for a learner's
account is the learner id. ``row_ref`` is added (empty until 0008 fills it), the unique
constraint on the clear key goes and ``row_key`` may be emptied row by row. Nothing is
lost: 0008 converts, 0009 drops the clear column once every row is converted.
"""

from django.db import migrations

from learnprivacy.django.migrations._refs import make_room


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0006_dsr_learner_refs")]

    operations = [
        migrations.RemoveConstraint(model_name="restriction", name="lpdj_restriction_row"),
        *make_room(["restriction"], ref="row_ref", clear="row_key"),
    ]
