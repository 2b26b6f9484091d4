"""A batch's progress record (the admin and the API show it while a job runs)."""

from __future__ import annotations

from django.utils import timezone

from hits.models import HitBatch


def hit_batch_progress(batch: HitBatch, **values) -> None:
    """Merge ``values`` into the batch's progress, stamped with the time of the update."""
    batch.progress = {**batch.progress, **values, "updated_at": timezone.now().isoformat()}
    HitBatch.objects.filter(pk=batch.pk).update(progress=batch.progress)
