"""The link between a curation run and the HIT batches reviewing it moves to curation: a
ReviewBatch row per batch, filled from HitBatch.curation_run (which hits 0006 then removes)."""

import django.db.models.deletion
from django.db import migrations, models


def links_to_curation(apps, schema_editor):
    HitBatch = apps.get_model("hits", "HitBatch")
    ReviewBatch = apps.get_model("curation", "ReviewBatch")
    pairs = HitBatch.objects.filter(curation_run__isnull=False).values_list("pk", "curation_run_id")
    ReviewBatch.objects.bulk_create(
        [ReviewBatch(batch_id=batch_id, run_id=run_id) for batch_id, run_id in pairs.iterator()],
        batch_size=1000,
    )


def links_to_hits(apps, schema_editor):
    HitBatch = apps.get_model("hits", "HitBatch")
    ReviewBatch = apps.get_model("curation", "ReviewBatch")
    for batch_id, run_id in ReviewBatch.objects.values_list("batch_id", "run_id").iterator():
        HitBatch.objects.filter(pk=batch_id).update(curation_run_id=run_id)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0002_review_loop"),
        ("hits", "0005_batch_sync_lease"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReviewBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "batch",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="curation_review",
                        to="hits.hitbatch",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="review_batches",
                        to="curation.curationrun",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.RunPython(links_to_curation, links_to_hits),
    ]
