"""Assignments the provider has not vouched for, and work it does not know; a worker who returned
or abandoned a HIT may take it again (one live assignment per worker and HIT, not one ever)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hits", "0007_market_name"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="assignment", name="assignment_one_per_worker"),
        migrations.AddField(
            model_name="assignment",
            name="confirmed",
            field=models.BooleanField(
                default=True,
                help_text="The provider vouched for this assignment. Votes of unconfirmed work "
                "count towards no label and no payment until a sync finds the work at the "
                "provider.",
            ),
        ),
        migrations.AddField(
            model_name="assignment",
            name="provider_missing",
            field=models.BooleanField(
                default=False,
                help_text="Submitted here, but the provider's last sync did not list it.",
                verbose_name="missing at provider",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=~models.Q(status__in=["Returned", "Abandoned"]),
                fields=("hit", "worker"),
                name="assignment_one_active_per_worker",
            ),
        ),
    ]
