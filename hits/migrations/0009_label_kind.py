"""Batches of the ``label`` (classify) task kind (choices only)."""

from django.db import migrations, models

KINDS = [
    ("complementary", "Complementary label"),
    ("verify", "Verify label"),
    ("select", "Select matching images"),
    ("review", "Review label error"),
    ("label", "Classify (which of K classes)"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("hits", "0008_assignment_integrity"),
    ]

    operations = [
        migrations.AlterField(
            model_name="hitbatch",
            name="kind",
            field=models.CharField(choices=KINDS, max_length=16),
        ),
    ]
