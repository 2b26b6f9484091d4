"""Workers of the built-in marketplace are stored under its one name, ``market`` (was ``local``)."""

from django.db import migrations, models


def rename(apps, old: str, new: str) -> None:
    apps.get_model("annotation", "Worker").objects.filter(provider=old).update(provider=new)


def forward(apps, schema_editor):
    rename(apps, "local", "market")


def backward(apps, schema_editor):
    rename(apps, "market", "local")


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_consensus_method_name"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
        migrations.AlterField(
            model_name="worker",
            name="provider",
            field=models.CharField(
                choices=[
                    ("mturk", "MTurk"),
                    ("market", "Built-in marketplace"),
                    ("imported", "Imported"),
                ],
                max_length=16,
            ),
        ),
    ]
