"""Celery tasks of the hits app: thin wrappers, one service each."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


def _batch(batch_id: int):
    from .models import HitBatch

    return HitBatch.objects.get(pk=batch_id)


@shared_task
def hit_batch_publish_task(batch_id: int) -> bool:
    """Publish one chunk of a launching batch, then queue the next chunk."""
    from .services import hit_batch_publish

    done = hit_batch_publish(_batch(batch_id), limit=settings.HITS_LAUNCH_CHUNK)
    if not done:
        hit_batch_publish_task.delay(batch_id)
    return done


@shared_task
def hit_batch_sync_task(batch_id: int) -> dict:
    from .services import hit_batch_sync

    r = hit_batch_sync(_batch(batch_id))
    return {"new_assignments": r.new_assignments, "votes_reconciled": r.votes_reconciled}


@shared_task
def hit_batches_sync_task() -> int:
    """The beat job: sync every open batch and resume stalled launches."""
    from .services import hit_batches_sync

    return len(hit_batches_sync())


@shared_task
def hit_batch_approve_submitted_task(batch_id: int, feedback: str = "") -> int:
    from .services import hit_batch_approve_submitted

    return hit_batch_approve_submitted(_batch(batch_id), feedback=feedback)


@shared_task
def hit_batch_auto_review_task(batch_id: int) -> dict:
    from .services import hit_batch_auto_review

    return vars(hit_batch_auto_review(_batch(batch_id)))


@shared_task
def assignment_approve_task(assignment_id: int, feedback: str = "") -> None:
    from .models import Assignment
    from .services import assignment_approve

    assignment_approve(Assignment.objects.get(pk=assignment_id), feedback=feedback)


@shared_task
def assignments_reject_task(assignment_ids: list[int], template: str) -> int:
    from .services import assignments_reject

    return assignments_reject(assignment_ids, template=template)


@shared_task
def assignment_bonus_task(assignment_id: int, amount: str, reason: str) -> int:
    from decimal import Decimal

    from .models import Assignment
    from .services import assignment_bonus

    return assignment_bonus(Assignment.objects.get(pk=assignment_id), Decimal(amount), reason).pk


@shared_task
def assignment_block_worker_task(assignment_id: int, reason: str) -> None:
    from .models import Assignment
    from .services import assignment_block_worker

    assignment_block_worker(Assignment.objects.get(pk=assignment_id), reason=reason)


@shared_task
def assignment_exclude_worker_task(assignment_id: int, reason: str) -> None:
    from .models import Assignment
    from .services import assignment_exclude_worker

    assignment_exclude_worker(Assignment.objects.get(pk=assignment_id), reason=reason)


@shared_task
def hit_batch_extend_task(batch_id: int, seconds: int) -> int:
    from .services import hit_batch_extend

    return hit_batch_extend(_batch(batch_id), seconds=seconds)


@shared_task
def hit_batch_expire_task(batch_id: int) -> int:
    from .services import hit_batch_expire

    return hit_batch_expire(_batch(batch_id))


@shared_task
def hit_batch_notify_task(batch_id: int, subject: str, message: str) -> int:
    from .services import hit_batch_notify

    return hit_batch_notify(_batch(batch_id), subject=subject, message=message)


@shared_task
def hits_orphans_cleanup_task(provider: str, environment: str) -> dict:
    from .services import hits_orphans_cleanup

    r = hits_orphans_cleanup(provider, environment)
    return {"expired": r.expired, "deleted": r.deleted, "kept": r.kept}


@shared_task
def hit_batch_votes_arrived_task(batch_id: int) -> dict:
    """A HIT's places are all done: more places where votes are unsure, or the batch's end."""
    from .services import hit_batch_votes_arrived

    return hit_batch_votes_arrived(_batch(batch_id))
