"""The built-in marketplace has one stored name, ``market`` (it was ``local``), for both the
provider and its environment."""

from django.db import migrations, models
from django.db.models import Q

OLD, NEW = "local", "market"


def rename(apps, schema_editor, old: str, new: str) -> None:
    HitBatch = apps.get_model("hits", "HitBatch")
    HitBatch.objects.filter(provider=old).update(provider=new)
    HitBatch.objects.filter(environment=old).update(environment=new)
    if schema_editor.connection.vendor == "postgresql":
        # The updates leave deferred foreign-key checks pending, and PostgreSQL will not alter a
        # table with pending trigger events in the same transaction: run the checks now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def forward(apps, schema_editor):
    rename(apps, schema_editor, OLD, NEW)


def backward(apps, schema_editor):
    rename(apps, schema_editor, NEW, OLD)


def constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(Q(provider="mturk") & Q(environment__in=["sandbox", "live"]))
        | (Q(provider=name) & Q(environment=name)),
        name="batch_environment_matches_provider",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("hits", "0006_remove_hitbatch_curation_run"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="hitbatch", name="batch_environment_matches_provider"
        ),
        migrations.RunPython(forward, backward),
        migrations.AlterField(
            model_name="hitbatch",
            name="provider",
            field=models.CharField(
                choices=[("mturk", "Amazon Mechanical Turk"), ("market", "Built-in marketplace")],
                default="market",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="hitbatch",
            name="environment",
            field=models.CharField(
                choices=[("sandbox", "SANDBOX"), ("live", "LIVE"), ("market", "MARKET")],
                default="market",
                max_length=8,
            ),
        ),
        migrations.AddConstraint(model_name="hitbatch", constraint=constraint(NEW)),
    ]
