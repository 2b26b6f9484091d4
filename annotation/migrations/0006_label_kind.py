"""A fifth vote kind, ``label``: the class a worker picked for an image (choices only)."""

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
        ("annotation", "0005_worker_provider_market"),
    ]

    operations = [
        migrations.AlterField(
            model_name="aggregatedlabel",
            name="kind",
            field=models.CharField(choices=KINDS, max_length=16),
        ),
        migrations.AlterField(
            model_name="aggregationrun",
            name="kind",
            field=models.CharField(choices=KINDS, max_length=16),
        ),
        migrations.AlterField(
            model_name="vote",
            name="kind",
            field=models.CharField(choices=KINDS, max_length=16),
        ),
    ]
