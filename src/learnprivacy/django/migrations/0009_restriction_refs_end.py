"""Restricted rows named by keyed reference (3/3): the clear column goes.

Refused while a row is left unconverted (0008 converts them all before this runs).
"""

from django.db import migrations, models

from learnprivacy.django.migrations._refs import drop_clear


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0008_restriction_refs_convert")]

    operations = [
        *drop_clear(
            ["restriction"],
            ref="row_ref",
            clear="row_key",
            left="learnprivacy.django._restrictions.unconverted_rows",
            rows="restricted rows are still named by their key in clear",
        ),
        migrations.AddConstraint(
            model_name="restriction",
            constraint=models.UniqueConstraint(
                fields=("table", "row_ref"), name="lpdj_restriction_ref"
            ),
        ),
    ]
