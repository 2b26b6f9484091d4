import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("hits", "0003_fill_batch_uids")]

    operations = [
        migrations.AlterField(
            model_name="hitbatch",
            name="uid",
            field=models.UUIDField(
                default=uuid.uuid4,
                editable=False,
                help_text="Names this batch at the provider (request tokens, requester annotations).",
                unique=True,
            ),
        ),
    ]
