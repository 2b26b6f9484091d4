"""The hits side of a batch's automatic loop: the batch-complete hook, the stage records, stop.

What runs the stages (aggregation, curation, review) lives in the app above, which registers
itself in ``hits.hooks``: hits never imports it. Each stage is claimed by
one row per (batch, stage), taken under a lock on the batch, so a retried or duplicated stage
does nothing twice; a stopped loop claims nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from hits.hooks import hit_batch_complete_notify
from hits.models import Hit, HitBatch, LoopStage
from hits.selectors import DONE

# A stage still running after this long is taken to have died with its worker.
STAGE_LEASE = timedelta(hours=6)
S = LoopStage.State


# Work the provider has vouched for (MTurk's after a sync): only it completes a HIT.
CONFIRMED_DONE = Q(assignments__status__in=DONE, assignments__confirmed=True)


def hits_waiting(batch: HitBatch):
    """The batch's published HITs (not disposed) annotated with ``done``: confirmed submitted
    work."""
    return (
        batch.hits.exclude(provider_hit_id="")
        .exclude(status=Hit.Status.DISPOSED)
        .annotate(done=Count("assignments", filter=CONFIRMED_DONE))
    )


def hit_batch_complete_check(batch: HitBatch) -> bool:
    """Mark an open batch complete once every HIT has all its places done; True if it turned
    complete now (the hooks are then told, once)."""
    if batch.hits.filter(provider_hit_id="").exists():
        return False
    hits = list(hits_waiting(batch).values_list("done", "max_assignments"))
    if not hits or any(done < wanted for done, wanted in hits):
        return False
    with transaction.atomic():
        turned = HitBatch.objects.filter(pk=batch.pk, status=HitBatch.Status.OPEN).update(
            status=HitBatch.Status.COMPLETE
        )
        if turned:
            hit_batch_complete_notify(batch.pk)
    return bool(turned)


def hit_batch_loop_stop(batch: HitBatch) -> bool:
    """Stop the batch's automatic loop: no further stage starts. False if already stopped."""
    stopped = HitBatch.objects.filter(pk=batch.pk, loop_stopped_at__isnull=True).update(
        loop_stopped_at=timezone.now()
    )
    batch.refresh_from_db(fields=["loop_stopped_at"])
    return bool(stopped)


def loop_stage_claim(
    batch_id: int, stage: str, *, after: str | None = None
) -> tuple[LoopStage | None, str]:
    """Take a stage of a batch's loop: (the row, '') for the caller to run it, or (None, why)
    when it must not run: the loop is off or stopped, the stage ``after`` is not done, or this
    stage is already running or done. A failed stage may be taken again, and a running one
    older than ``STAGE_LEASE``."""
    with transaction.atomic():
        batch = HitBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or not batch.auto_loop:
            return None, "the batch's automatic loop is off"
        if batch.loop_stopped_at is not None:
            return None, "the loop was stopped"
        if after and not batch.loop_stages.filter(stage=after, state=S.DONE).exists():
            return None, f"the {after} stage is not done"
        try:
            with transaction.atomic():
                row, created = LoopStage.objects.get_or_create(batch=batch, stage=stage)
        except IntegrityError:
            return None, f"the {stage} stage is already taken"
        if created:
            return row, ""
        # A failed stage may run again, and so may one whose worker died mid-way (running
        # past the lease): the conditional update lets one taker through.
        stale = timezone.now() - STAGE_LEASE
        retried = (
            LoopStage.objects.filter(pk=row.pk)
            .filter(Q(state=S.FAILED) | Q(state=S.RUNNING, started_at__lt=stale))
            .update(state=S.RUNNING, reason="", finished_at=None, started_at=timezone.now())
        )
        if retried:
            row.refresh_from_db()
            return row, ""
        return None, f"the {stage} stage is already {row.state}"


def loop_stage_finish(
    row: LoopStage,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    reason: str = "",
    launched_batch: HitBatch | None = None,
) -> LoopStage:
    """Record how a claimed stage ended (done, stopped with a reason, or failed)."""
    row.state = state
    row.result = result or {}
    row.reason = reason[:2000]
    row.finished_at = timezone.now()
    fields = ["state", "result", "reason", "finished_at"]
    if launched_batch is not None:
        row.launched_batch = launched_batch
        fields.append("launched_batch")
    row.save(update_fields=fields)
    return row


def loop_origin(batch: HitBatch) -> HitBatch | None:
    """The loop batch whose review stage launched ``batch``, if any."""
    row = LoopStage.objects.filter(launched_batch=batch).select_related("batch").first()
    return None if row is None else row.batch
