"""The built-in marketplace's worker side: who may take which HIT, accept, return, submit.

Our own site is this marketplace, so these services write its records (the provider in
``hits/providers/market.py`` only reads them).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation.models import Worker
from annotation.services import worker_get_or_create
from hits.answers import answers_json_from_fields
from hits.exceptions import MarketRefused, NoMoreTasks
from hits.models import HOSTED_PROVIDERS, Assignment, Hit, HitBatch, WorkerExclusion
from hits.planning import hit_item_ids
from hits.selectors import DONE
from hits.submissions import SubmissionRefused, assignment_submit

from .assignments import assignment_open


def market_assignments_tidy(batch: HitBatch, now: datetime, hit: Hit | None = None) -> None:
    """What time alone does on our marketplace (for one HIT, or all of a batch): overdue work
    is abandoned, work unreviewed past the auto-approval delay is approved."""
    assignments = (
        Assignment.objects.filter(hit=hit) if hit else Assignment.objects.filter(hit__batch=batch)
    )
    assignments.filter(
        status=Assignment.Status.ACCEPTED,
        accepted_at__lte=now - timedelta(seconds=batch.assignment_duration_seconds),
    ).update(status=Assignment.Status.ABANDONED)
    assignments.filter(
        status=Assignment.Status.SUBMITTED,
        submitted_at__lte=now - timedelta(seconds=batch.auto_approval_delay_seconds),
    ).update(status=Assignment.Status.APPROVED, reviewed_at=now, review_note="auto-approved")


def market_worker_allowed(batch: HitBatch, worker: Worker) -> str:
    """Why a worker may not work on a batch ('' when they may)."""
    if worker.blocked:
        return "You cannot take part in these tasks."
    if WorkerExclusion.objects.filter(worker=worker).exists():
        return "There are no tasks for you at the moment."
    params = batch.qualification_params or {}
    if worker.id_hash in set(params.get("block_hashes") or []):
        return "You cannot take part in these tasks."
    allow = params.get("allow_hashes")
    if allow and worker.id_hash not in set(allow):
        return "These tasks are for invited participants only."
    return ""


def _market_worker_items(batch: HitBatch, worker: Worker) -> tuple[set[int], int]:
    """Items (gold excluded) the worker already has in this batch, and their HIT count."""
    mine = _live(worker).filter(hit__batch=batch).select_related("hit")
    seen: set[int] = set()
    n = 0
    for a in mine:
        n += 1
        gold = {int(g) for g in a.hit.gold_items or []}
        seen.update(i for i in hit_item_ids(batch.kind, a.hit.items) if i not in gold)
    return seen, n


def _live(worker: Worker):
    """The worker's assignments that hold a place (returned and abandoned ones do not)."""
    return Assignment.objects.filter(worker=worker).exclude(
        status__in=[Assignment.Status.RETURNED, Assignment.Status.ABANDONED]
    )


def market_hit_refusal(hit: Hit, worker: Worker, now=None) -> str:
    """Why the worker may not take this HIT now ('' when they may): the batch must be open,
    the HIT published and unexpired with a place left, the worker allowed (block and allow
    lists, exclusions), under the batch's cap, and new to the HIT and to its items. A worker
    who returned the HIT, or let its time run out, may take it again."""
    batch = hit.batch
    now = now or timezone.now()
    if batch.provider in HOSTED_PROVIDERS and batch.status == HitBatch.Status.COMPLETE:
        # The last place was done: the batch closed then (see hit_batch_complete_check).
        return "All places on this task are taken."
    if batch.provider not in HOSTED_PROVIDERS or batch.status != HitBatch.Status.OPEN:
        return "This task is not open."
    if not hit.provider_hit_id or (hit.expires_at and hit.expires_at <= now):
        return "This task is no longer available."
    why = market_worker_allowed(batch, worker)
    if why:
        return why
    market_assignments_tidy(batch, now, hit)
    if _live(worker).filter(hit=hit).exists():
        return "You have already worked on this task."
    seen, taken = _market_worker_items(batch, worker)
    if batch.max_hits_per_worker is not None and taken >= batch.max_hits_per_worker:
        return f"You have done the most tasks allowed here ({batch.max_hits_per_worker})."
    if _market_overlap(hit, seen):
        return "You have already seen some of the images in this task."
    taken = hit.assignments.filter(status__in=[Assignment.Status.ACCEPTED, *DONE]).count()
    if taken >= hit.max_assignments:
        return "All places on this task are taken."
    return ""


def _market_overlap(hit: Hit, seen: set[int]) -> bool:
    gold = {int(g) for g in hit.gold_items or []}
    return bool(seen & (set(hit_item_ids(hit.batch.kind, hit.items)) - gold))


def market_available_hits(batch: HitBatch, worker: Worker) -> list[Hit]:
    """The HITs of a batch this worker may take now, in order (a few queries per batch)."""
    now = timezone.now()
    if batch.provider not in HOSTED_PROVIDERS or batch.status != HitBatch.Status.OPEN:
        return []
    if market_worker_allowed(batch, worker):
        return []
    market_assignments_tidy(batch, now)
    seen, taken = _market_worker_items(batch, worker)
    if batch.max_hits_per_worker is not None and taken >= batch.max_hits_per_worker:
        return []
    busy = [Assignment.Status.ACCEPTED, *DONE]
    hits = (
        batch.hits.exclude(provider_hit_id="")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(pk__in=_live(worker).filter(hit__batch=batch).values("hit_id"))
        .annotate(taken=Count("assignments", filter=Q(assignments__status__in=busy)))
        .filter(taken__lt=F("max_assignments"))
        .select_related("batch")
        .order_by("number")
    )
    return [h for h in hits if not _market_overlap(h, seen)]


def market_next_hit(batch: HitBatch, worker: Worker) -> Hit | None:
    """The first HIT of the batch this worker may take."""
    hits = market_available_hits(batch, worker)
    return hits[0] if hits else None


NO_MORE_TASKS = "There are no more tasks for you here. Thank you!"


def market_accept(hit: Hit, raw_worker_id: str, assignment_id: str = "") -> Assignment:
    """A marketplace worker takes a HIT: the only way a marketplace assignment comes to be.

    Checked by ``market_hit_refusal`` and recorded under locks on the worker (their cap across
    the batch's HITs) and the HIT (its places). A refusal (MarketRefused) writes nothing, not even
    the worker's row. ``assignment_id`` names the assignment where the recruiting platform
    already has a name for the place (Prolific's session id); else one is made up.
    """
    with transaction.atomic():
        worker = worker_get_or_create(hit.batch.provider, raw_worker_id)
        worker = Worker.objects.select_for_update().get(pk=worker.pk)
        hit = Hit.objects.select_for_update().select_related("batch").get(pk=hit.pk)
        why = market_hit_refusal(hit, worker)
        if why:
            raise MarketRefused(why)
        aid = assignment_id or "LA" + secrets.token_hex(15).upper()
        return assignment_open(hit, aid, raw_worker_id)


def market_accept_next(batch: HitBatch, raw_worker_id: str, assignment_id: str = "") -> Assignment:
    """The worker takes the first HIT of the batch they may take; NoMoreTasks when none is left
    (nothing written)."""
    with transaction.atomic():
        worker = worker_get_or_create(batch.provider, raw_worker_id)
        hit = market_next_hit(batch, Worker.objects.select_for_update().get(pk=worker.pk))
        if hit is None:
            raise NoMoreTasks(NO_MORE_TASKS)
        return market_accept(hit, raw_worker_id, assignment_id)


def market_return(assignment: Assignment) -> None:
    """The worker gives an accepted HIT back; its place opens again."""
    Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.ACCEPTED).update(
        status=Assignment.Status.RETURNED
    )


def market_external_submit(
    provider_assignment_id: str, fields: dict[str, str], worker: Worker | None
) -> Assignment:
    """The marketplace's externalSubmit: the page's answers, recorded as MTurk would.

    Only the worker who holds the assignment (``worker``, from their signed session) may post it.
    Usually the task page has stored the votes already; if not, they are stored here from the
    posted ``answers`` field, once.
    """
    a = (
        Assignment.objects.select_related("hit__batch", "worker")
        .filter(
            hit__batch__provider__in=HOSTED_PROVIDERS,
            provider_assignment_id=provider_assignment_id,
        )
        .first()
    )
    if a is None:
        raise MarketRefused("There is no such assignment.")
    if worker is None or a.worker_id != worker.pk:
        raise MarketRefused("This assignment belongs to another worker.")
    if a.status in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
        raise MarketRefused("This task was given back or ran out of time.")
    if a.status == Assignment.Status.ACCEPTED:
        try:
            assignment_submit(a, answers_json_from_fields(fields))
        except SubmissionRefused as exc:
            raise MarketRefused(f"The answers could not be stored: {exc}") from None
    a.refresh_from_db()
    return a
