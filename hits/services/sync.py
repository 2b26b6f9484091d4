"""Sync: bring our Hit and Assignment rows (and votes) in line with the provider's records."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q
from django.utils import timezone

from hits.answers import answers_json_from_fields
from hits.exceptions import AssignmentMismatch, ProviderError
from hits.models import Assignment, Hit, HitBatch, Provider
from hits.providers import provider_for
from hits.providers.base import ProviderAssignment, ProviderHit
from hits.selectors import DONE
from hits.submissions import SubmissionRefused, assignment_submit

from .assignments import assignment_open
from .launch import hit_batch_resume
from .progress import hit_batch_progress

logger = logging.getLogger(__name__)
# A launch whose progress has not moved for this long is presumed crashed and is resumed.
STALE_LAUNCH = timedelta(minutes=5)
# How long a periodic sync may hold a batch before another may take it over.
SYNC_LEASE = timedelta(minutes=30)


@dataclass
class SyncResult:
    hits: int = 0
    new_assignments: int = 0
    votes_reconciled: int = 0
    status_changes: int = 0
    missing: int = 0
    """Submitted assignments of ours the provider did not list (flagged ``provider_missing``)."""
    unreadable: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Provider assignment ids not taken in (the worker holds other submitted work there)."""


def hit_batch_sync(batch: HitBatch) -> SyncResult:
    """Bring our Hit and Assignment rows in line with the provider's records.

    Assignments we never saw are opened (the raw worker id hashed on the spot); submitted work
    whose votes we lack (the page's own submit never reached us) is stored from the provider's
    answer, through the same submission service as the page, so it lands exactly once. What the
    provider lists is confirmed; work submitted here that it does not list is flagged
    ``provider_missing``.
    """
    provider = provider_for(batch)
    result = SyncResult()
    # At most HITS_SYNC_MAX_PER_RUN HITs a run, the longest unsynced first: MTurk throttles a
    # requester who polls thousands of HITs a minute, and the next run takes the rest.
    hits = list(_hits_to_sync(batch)[: settings.HITS_SYNC_MAX_PER_RUN])
    for n, hit in enumerate(hits, start=1):
        record = provider.get_hit(hit)
        assignments = provider.list_assignments(hit)
        _hit_apply(hit, record, assignments, result)
        result.hits += 1
        hit_batch_progress(batch, job="sync", done=n, total=len(hits))
    if batch.provider == Provider.PROLIFIC and batch.hit_type_id:
        from .prolific import prolific_study_sync

        prolific_study_sync(batch)
    _batch_status_update(batch)
    hit_batch_progress(
        batch,
        job="sync",
        finished=True,
        synced_at=timezone.now().isoformat(),
        new_assignments=result.new_assignments,
        votes_reconciled=result.votes_reconciled,
        missing_at_provider=result.missing,
    )
    return result


def _hits_to_sync(batch: HitBatch):
    """Published HITs whose provider record can still change.

    Settled (skipped): reviewable at the last sync, none of our assignments accepted or
    awaiting review, and either expired by then or with every place done. Extending a batch or
    adding assignments moves a HIT out of this state.
    """
    open_work = [Assignment.Status.ACCEPTED, Assignment.Status.SUBMITTED]
    hits = (
        batch.hits.exclude(provider_hit_id="")
        .exclude(status=Hit.Status.DISPOSED)
        .annotate(
            open_work=Count("assignments", filter=Q(assignments__status__in=open_work)),
            done=Count("assignments", filter=Q(assignments__status__in=DONE)),
        )
    )
    settled = Q(status=Hit.Status.REVIEWABLE, open_work=0, synced_at__isnull=False) & (
        Q(expires_at__lte=F("synced_at")) | Q(done__gte=F("max_assignments"))
    )
    return hits.exclude(settled).order_by(F("synced_at").asc(nulls_first=True), "number")


def _hit_apply(
    hit: Hit, record: ProviderHit, assignments: list[ProviderAssignment], result: SyncResult
) -> None:
    now = timezone.now()
    Hit.objects.filter(pk=hit.pk).update(
        status=record.status,
        expires_at=record.expires_at,
        max_assignments=record.max_assignments,
        synced_at=now,
    )
    seen = set()
    for pa in assignments:
        seen.add(pa.assignment_id)
        ours = Assignment.objects.filter(hit=hit, provider_assignment_id=pa.assignment_id).first()
        if ours is None:
            if pa.worker_id is None:
                continue
            try:
                ours = assignment_open(hit, pa.assignment_id, pa.worker_id)
            except AssignmentMismatch as exc:
                _conflict(result, pa, str(exc))
                continue
            result.new_assignments += 1
        # The provider lists it: the work is real, whatever the task page could tell.
        times = {
            "accepted_at": ours.accepted_at or pa.accepted_at,
            "submitted_at": ours.submitted_at or pa.submitted_at,
            "auto_approval_at": pa.auto_approval_at,
        }
        update = {k: v for k, v in times.items() if v is not None}
        update.update(confirmed=True, provider_missing=False)
        # Closed here as returned or abandoned, yet the provider has it submitted: our guess
        # was wrong, and the assignment is reopened to take its answer.
        closed = ours.status in (Assignment.Status.ABANDONED, Assignment.Status.RETURNED)
        if closed and not _revive(ours):
            _conflict(result, pa, "the worker holds other work on this HIT here")
            Assignment.objects.filter(pk=ours.pk).update(**update)
            continue
        if ours.status == Assignment.Status.ACCEPTED:
            result.votes_reconciled += _reconcile_votes(ours, pa, result)
        if pa.status in (Assignment.Status.APPROVED, Assignment.Status.REJECTED):
            changed = Assignment.objects.filter(pk=ours.pk, status=Assignment.Status.SUBMITTED)
            if changed.update(status=pa.status, reviewed_at=now, **update):
                result.status_changes += 1
                continue
        Assignment.objects.filter(pk=ours.pk).update(**update)
    # Work accepted at the provider but never submitted and past its time: gone.
    deadline = now - timedelta(seconds=hit.batch.assignment_duration_seconds)
    unlisted = Assignment.objects.filter(hit=hit).exclude(provider_assignment_id__in=seen)
    unlisted.filter(status=Assignment.Status.ACCEPTED, accepted_at__lt=deadline).update(
        status=Assignment.Status.ABANDONED
    )
    # Work submitted here that the provider does not know: flagged for a person, and its votes
    # (unconfirmed) count for nothing until a later sync finds it.
    result.missing += unlisted.filter(status__in=DONE).update(provider_missing=True)


def _revive(ours: Assignment) -> bool:
    """Reopen an assignment we had closed as returned or abandoned (the provider has it
    submitted), so its answer can be stored; False where the worker holds other submitted work
    on the HIT here."""
    others = Assignment.objects.filter(hit_id=ours.hit_id, worker_id=ours.worker_id).exclude(
        pk=ours.pk
    )
    if others.filter(status__in=DONE).exists():
        return False
    # A worker holds one assignment per HIT at a time: one we still had open was given up.
    others.filter(status=Assignment.Status.ACCEPTED).update(status=Assignment.Status.RETURNED)
    Assignment.objects.filter(pk=ours.pk).update(status=Assignment.Status.ACCEPTED)
    ours.status = Assignment.Status.ACCEPTED
    return True


def _conflict(result: SyncResult, pa: ProviderAssignment, why: str) -> None:
    result.conflicts.append(pa.assignment_id)
    logger.warning("assignment %s at the provider not taken in: %s", pa.assignment_id, why)


def _reconcile_votes(ours: Assignment, pa: ProviderAssignment, result: SyncResult) -> int:
    """Store the provider's copy of an answer as votes; the number of votes created."""
    answers = answers_json_from_fields(pa.answer_fields) if pa.answer_fields else ""
    try:
        outcome = assignment_submit(ours, answers)
    except SubmissionRefused as exc:
        # Keep what the provider has, unparsed, for a person to look at; no votes from it.
        Assignment.objects.filter(pk=ours.pk, status=Assignment.Status.ACCEPTED).update(
            status=Assignment.Status.SUBMITTED,
            submitted_at=pa.submitted_at or timezone.now(),
            raw_answer=json.dumps(pa.answer_fields),
            review_note=f"answer unreadable: {exc}"[:200],
        )
        result.unreadable.append(pa.assignment_id)
        logger.warning("assignment %s: provider answer unreadable (%s)", ours.pk, exc)
        return 0
    if pa.submitted_at:
        Assignment.objects.filter(pk=ours.pk).update(submitted_at=pa.submitted_at)
    return outcome.votes_created


def _batch_status_update(batch: HitBatch) -> None:
    batch.refresh_from_db(fields=["status"])
    if batch.status != HitBatch.Status.OPEN:
        return
    hits = batch.hits.all()
    now = timezone.now()
    if not hits.exclude(status__in=[Hit.Status.REVIEWABLE, Hit.Status.DISPOSED]).exists():
        done = Assignment.objects.filter(hit__batch=batch, status__in=DONE).count()
        wanted = sum(hits.values_list("max_assignments", flat=True))
        if done >= wanted:
            # Imported here: adaptive reaches this module again through lifecycle. It adds
            # places where the votes are unsure, else marks the batch complete (and says so).
            from .adaptive import hit_batch_votes_arrived

            hit_batch_votes_arrived(batch)
        else:
            HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.EXPIRED)
    elif not hits.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exists():
        HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.EXPIRED)


def hit_batches_sync() -> dict[int, SyncResult]:
    """The periodic job: sync every open batch, resume launches that stopped moving."""
    out = {}
    stale_before = timezone.now() - STALE_LAUNCH
    for batch in HitBatch.objects.filter(status=HitBatch.Status.LAUNCHING):
        updated = batch.progress.get("updated_at", "")
        if not updated or updated < stale_before.isoformat():
            hit_batch_resume(batch)
    now = timezone.now()
    live = [HitBatch.Status.OPEN, HitBatch.Status.EXPIRED, HitBatch.Status.COMPLETE]
    for batch in HitBatch.objects.filter(status__in=live):
        # A lease, taken by one conditional update: a sync still running (here or on another
        # machine) keeps the batch, so runs never pile up.
        taken = (
            HitBatch.objects.filter(pk=batch.pk)
            .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
            .update(sync_lease_until=now + SYNC_LEASE)
        )
        if not taken:
            continue
        try:
            out[batch.pk] = hit_batch_sync(batch)
        except ProviderError as exc:
            logger.error("sync of batch %s failed: %s", batch.pk, exc)
            hit_batch_progress(batch, job="sync", error=str(exc))
        finally:
            HitBatch.objects.filter(pk=batch.pk).update(sync_lease_until=None)
    return out
