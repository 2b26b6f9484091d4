import uuid

from django.db import migrations


def fill_batch_uids(apps, schema_editor):
    HitBatch = apps.get_model('hits', 'HitBatch')
    for batch in HitBatch.objects.filter(uid__isnull=True):
        batch.uid = uuid.uuid4()
        batch.save(update_fields=['uid'])


class Migration(migrations.Migration):
    dependencies = [("hits", "0002_batch_controls")]

    operations = [migrations.RunPython(fill_batch_uids, migrations.RunPython.noop)]
