"""Operations shared by the migrations that move a clear column to a keyed reference.

Two tables moved from a clear identifier to a keyed reference in three steps each (key
store rows: 0003-0005; restricted rows: 0007-0009): room for the reference, conversion,
then the clear column dropped once every row is converted. The first and last steps are
the same operations on other names; they are built here. Django does not load this
module as a migration (its name starts with an underscore), and the operations are
exactly those the migrations held before, so the schema is unchanged.
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.db import migrations, models


def make_room(models_: Sequence[str], *, ref: str, clear: str) -> list[Any]:
    """Step 1: add the nullable reference column ``ref`` to each model, then let the
    clear column ``clear`` be emptied row by row."""
    return [
        *(
            migrations.AddField(
                model_name=model, name=ref, field=models.CharField(max_length=64, null=True)
            )
            for model in models_
        ),
        *(
            migrations.AlterField(
                model_name=model, name=clear, field=models.CharField(max_length=255, null=True)
            )
            for model in models_
        ),
    ]


def drop_clear(models_: Sequence[str], *, ref: str, clear: str, left: str, rows: str) -> list[Any]:
    """Step 3: refuse to go on while a row is left unconverted (``left``, the dotted
    path of a function counting them in a database alias; ``rows`` says what they are),
    drop the clear column of each model, and make the reference required."""
    return [
        migrations.RunPython(_check_converted(left, rows), hints={"model_name": models_[0]}),
        *(migrations.RemoveField(model_name=model, name=clear) for model in models_),
        *(
            migrations.AlterField(model_name=model, name=ref, field=models.CharField(max_length=64))
            for model in models_
        ),
    ]


def _check_converted(left: str, rows: str) -> Callable[[Any, Any], None]:
    def check_converted(apps: Any, schema_editor: Any) -> None:
        from django.utils.module_loading import import_string

        from learnprivacy.errors import ConfigurationError

        count = import_string(left)(schema_editor.connection.alias)
        if count:
            raise ConfigurationError(f"{count} {rows}: run migrate again")

    return check_converted
