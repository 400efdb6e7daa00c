from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("learnprivacy", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="KeyMeta",
            fields=[
                ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("value", models.TextField()),
            ],
            options={"db_table": "lpdj_key_meta"},
        ),
    ]
