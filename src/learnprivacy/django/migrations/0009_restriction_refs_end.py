"""Restricted rows named by keyed reference (3/3): the clear column goes.

Refused while a row is left unconverted (0008 converts them all before this runs).
"""

from typing import Any

from django.db import migrations, models


def check_converted(apps: Any, schema_editor: Any) -> None:
    from learnprivacy.django._restrictions import unconverted_rows
    from learnprivacy.errors import ConfigurationError

    left = unconverted_rows(schema_editor.connection.alias)
    if left:
        raise ConfigurationError(
            f"{left} restricted rows are still named by their key in clear: run migrate again"
        )


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0008_restriction_refs_convert")]

    operations = [
        migrations.RunPython(check_converted, hints={"model_name": "restriction"}),
        migrations.RemoveField(model_name="restriction", name="row_key"),
        migrations.AlterField(
            model_name="restriction",
            name="row_ref",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="restriction",
            constraint=models.UniqueConstraint(
                fields=("table", "row_ref"), name="lpdj_restriction_ref"
            ),
        ),
    ]
