"""The shared assignment door: our record of a provider assignment (task pages and sync)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.services import worker_get_or_create
from hits.exceptions import AssignmentMismatch
from hits.models import Assignment, Hit


def assignment_open(hit: Hit, provider_assignment_id: str, raw_worker_id: str) -> Assignment:
    """Our record of a provider assignment, created on first sight (task page or sync).

    The raw worker id is hashed here and not kept. Presenting a known assignment id with another
    worker raises AssignmentMismatch.
    """
    provider = hit.batch.provider
    worker = worker_get_or_create(provider, raw_worker_id)
    existing = Assignment.objects.filter(
        hit__batch__provider=provider, provider_assignment_id=provider_assignment_id
    ).first()
    if existing is not None:
        if existing.worker_id != worker.pk or existing.hit_id != hit.pk:
            raise AssignmentMismatch(
                f"assignment {provider_assignment_id} belongs to another worker or HIT"
            )
        return existing
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                hit=hit,
                provider_assignment_id=provider_assignment_id,
                worker=worker,
                status=Assignment.Status.ACCEPTED,
                accepted_at=timezone.now(),
            )
    except IntegrityError:
        existing = Assignment.objects.filter(
            hit=hit, provider_assignment_id=provider_assignment_id
        ).first()
        if existing is None:
            raise AssignmentMismatch(
                f"this worker already has another assignment on HIT {hit.pk}"
            ) from None
        if existing.worker_id != worker.pk:
            raise AssignmentMismatch(
                f"assignment {provider_assignment_id} belongs to another worker"
            ) from None
        return existing
