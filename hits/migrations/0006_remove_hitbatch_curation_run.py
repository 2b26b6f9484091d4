"""HitBatch.curation_run goes: curation keeps the link (curation.ReviewBatch, filled by curation
0003 from this field), so hits no longer refers to curation."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("hits", "0005_batch_sync_lease"),
        ("curation", "0003_reviewbatch"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="hitbatch",
            name="curation_run",
        ),
    ]
