"""Writes for the hits app: launch, sync, review, lifecycle and the built-in marketplace.

Provider calls (network) never run inside a database transaction: each service reads what it
needs, calls the provider, then writes in a short transaction of its own. Background work is
enqueued with ``transaction.on_commit``.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation.models import Item, Worker
from annotation.services import worker_get_or_create
from annotation.submissions import SubmissionRefused, assignment_submit
from annotation.worker_ids import worker_id_hash

from .answers import answers_json_from_fields
from .exceptions import (
    AssignmentMismatch,
    BatchStateError,
    LaunchRefused,
    MarketRefused,
    ProviderError,
)
from .fees import CostPreview
from .models import (
    Assignment,
    Bonus,
    Environment,
    Hit,
    HitBatch,
    ItemSelection,
    Provider,
    WorkerExclusion,
)
from .planning import hit_item_ids, hit_plan
from .providers import provider_for, provider_get
from .providers.base import (
    ProviderAssignment,
    ProviderHit,
    list_qualification_name,
    parse_annotation,
)
from .providers.local import assignments_tidy, hit_counts
from .selectors import (
    DONE,
    assignment_gold_accuracy,
    assignments_submitted,
    batch_item_vote_counts,
    hit_batch_cost_preview,
)

logger = logging.getLogger(__name__)
LIVE_PERMISSION = "hits.launch_live"
# A launch whose progress has not moved for this long is presumed crashed and is resumed.
STALE_LAUNCH = timedelta(minutes=5)
# How long a periodic sync may hold a batch before another may take it over.
SYNC_LEASE = timedelta(minutes=30)


def _progress(batch: HitBatch, **values) -> None:
    batch.progress = {**batch.progress, **values, "updated_at": timezone.now().isoformat()}
    HitBatch.objects.filter(pk=batch.pk).update(progress=batch.progress)


# --- the shared assignment door (task pages and sync) ----------------------------------------


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


# --- launch ----------------------------------------------------------------------------------


def hit_batch_check(batch: HitBatch) -> None:
    """Refuse settings that cannot launch, before anything is planned or spent."""
    if batch.provider == Provider.MTURK and batch.environment not in (
        Environment.SANDBOX,
        Environment.LIVE,
    ):
        raise LaunchRefused("an MTurk batch runs in the sandbox or live")
    if batch.provider == Provider.LOCAL and batch.environment != Environment.LOCAL:
        raise LaunchRefused("a built-in marketplace batch runs in the local environment")
    if batch.environment == Environment.LIVE and not settings.SITE_URL.startswith("https://"):
        raise LaunchRefused(f"live MTurk needs an HTTPS SITE_URL, not {settings.SITE_URL}")
    if batch.assignments_per_item < 1 or batch.items_per_hit < 1:
        raise LaunchRefused("assignments per item and items per HIT must be at least 1")
    if batch.provider == Provider.MTURK and not (
        30 <= batch.lifetime_seconds <= 31536000
        and 30 <= batch.assignment_duration_seconds <= 31536000
        and batch.auto_approval_delay_seconds <= 2592000
    ):
        raise LaunchRefused(
            "MTurk takes lifetimes and assignment durations of 30 s to 365 days and "
            "auto-approval delays up to 30 days"
        )


def provider_balance(batch: HitBatch) -> Decimal | None:
    """The provider's account balance (a network call for MTurk; None for our marketplace)."""
    return provider_for(batch).balance()


def hit_batch_preview(batch: HitBatch) -> CostPreview:
    """The launch preview: HITs, assignments, rewards, fees, bonuses, balance and budget cap."""
    hit_batch_check(batch)
    return hit_batch_cost_preview(batch, balance=provider_balance(batch))


def hit_batch_launch(batch: HitBatch, *, user=None, confirm_live: bool = False) -> CostPreview:
    """Plan the batch's HITs and start publishing them in the background.

    Refused (LaunchRefused, nothing created) when over the budget cap or the balance, or for a
    live batch without confirmation or the ``hits.launch_live`` permission. A batch already
    launching is resumed: its planned HITs without a provider id get published.
    """
    if batch.status == HitBatch.Status.LAUNCHING or (
        batch.status == HitBatch.Status.FAILED and batch.hits.exists()
    ):
        hit_batch_resume(batch)
        return hit_batch_cost_preview(batch, balance=None)
    if batch.status != HitBatch.Status.DRAFT:
        raise LaunchRefused(f"batch {batch.name} is {batch.get_status_display()}, not a draft")
    if batch.environment == Environment.LIVE:
        if not confirm_live:
            raise LaunchRefused("a live launch spends real money: confirm it explicitly")
        if user is None or not user.has_perm(LIVE_PERMISSION):
            raise LaunchRefused("launching on live MTurk needs the hits.launch_live permission")
    hit_batch_check(batch)
    balance = provider_balance(batch)
    with transaction.atomic():
        locked = HitBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != HitBatch.Status.DRAFT:
            raise LaunchRefused(f"batch {batch.name} is already {locked.get_status_display()}")
        planned = hit_batch_plan(locked)
        if not planned:
            raise LaunchRefused("the batch selects no items")
        preview = hit_batch_cost_preview(locked, balance=balance)
        if not preview.allowed:
            # Rolls back the plan: a refused launch leaves nothing behind.
            raise LaunchRefused(f"launch refused: {preview.refusal()}")
        locked.status = HitBatch.Status.LAUNCHING
        locked.launched_at = timezone.now()
        locked.launched_by = user if getattr(user, "pk", None) else None
        locked.error = ""
        locked.progress = {
            "job": "launch",
            "done": 0,
            "total": planned,
            "updated_at": timezone.now().isoformat(),
        }
        locked.save()
        transaction.on_commit(lambda: _enqueue("hit_batch_publish_task", batch.pk))
    batch.refresh_from_db()
    return preview


def hit_batch_plan(batch: HitBatch) -> int:
    """Write the batch's planned HITs (numbered rows, no provider id yet); idempotent."""
    with transaction.atomic():
        existing = batch.hits.count()
        if existing:
            return existing
        Hit.objects.bulk_create(
            Hit(
                batch=batch,
                number=p.number,
                items=p.items,
                gold_items=p.gold_items,
                max_assignments=p.max_assignments,
            )
            for p in hit_plan(batch)
        )
        return batch.hits.count()


def hit_batch_resume(batch: HitBatch) -> None:
    """Publish what a crashed or failed launch left unpublished."""
    HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.LAUNCHING, error="")
    batch.status = HitBatch.Status.LAUNCHING
    transaction.on_commit(lambda: _enqueue("hit_batch_publish_task", batch.pk))


def hit_batch_publish(batch: HitBatch, *, limit: int | None = None) -> bool:
    """Create provider HITs for planned rows without one, in number order; True when all are.

    Each HIT carries a UniqueRequestToken made of the batch and its number, so a HIT created by
    a run that crashed before recording it is found again, never created twice.
    """
    if batch.status != HitBatch.Status.LAUNCHING:
        return True
    provider = provider_for(batch)
    try:
        if not batch.hit_type_id:
            batch.hit_type_id = provider.ensure_hit_type(batch)
            HitBatch.objects.filter(pk=batch.pk).update(hit_type_id=batch.hit_type_id)
        todo = batch.hits.filter(provider_hit_id="").order_by("number")
        if limit:
            todo = todo[:limit]
        for hit in todo:
            hit.hit_type_id = batch.hit_type_id
            record = provider.create_hit(batch, hit)
            Hit.objects.filter(pk=hit.pk).update(
                provider_hit_id=record.hit_id,
                hit_type_id=batch.hit_type_id,
                status=record.status or Hit.Status.ASSIGNABLE,
                expires_at=record.expires_at,
                published_at=timezone.now(),
            )
            _progress(batch, done=batch.hits.exclude(provider_hit_id="").count())
    except ProviderError as exc:
        HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.FAILED, error=str(exc))
        logger.error("launch of batch %s stopped: %s", batch.pk, exc)
        raise
    remaining = batch.hits.filter(provider_hit_id="").exists()
    if not remaining:
        HitBatch.objects.filter(pk=batch.pk, status=HitBatch.Status.LAUNCHING).update(
            status=HitBatch.Status.OPEN
        )
        _progress(batch, job="launch", done=batch.hits.count(), finished=True)
    return not remaining


def _worker_ids(raw_ids: Iterable[str]) -> list[str]:
    return sorted({r.strip() for r in raw_ids if r and r.strip()})


def hit_batch_worker_lists(
    batch: HitBatch, *, allow: Iterable[str] = (), block: Iterable[str] = ()
) -> dict[str, int]:
    """Set a draft batch's allow and block lists from raw worker ids.

    The raw ids go to the provider (on MTurk: a qualification of ours granted to each listed
    worker, required or excluded by the batch's HIT type) and are otherwise only hashed: the
    batch keeps ``allow_hashes`` / ``block_hashes``, which our marketplace checks. Runs in the
    request, not through the broker, so no raw id sits in a queue.
    """
    if batch.status != HitBatch.Status.DRAFT:
        raise BatchStateError("worker lists are set before launch (the HIT type carries them)")
    provider = provider_for(batch)
    params = dict(batch.qualification_params or {})
    counts = {}
    for which, raw_ids in (("allow", _worker_ids(allow)), ("block", _worker_ids(block))):
        if not raw_ids:
            continue
        type_id = provider.qualify_workers(list_qualification_name(batch, which), raw_ids)
        if type_id:
            params[f"{which}_type_id"] = type_id
        params[f"{which}_hashes"] = sorted({worker_id_hash(r) for r in raw_ids})
        counts[which] = len(raw_ids)
    HitBatch.objects.filter(pk=batch.pk).update(qualification_params=params)
    batch.qualification_params = params
    return counts


# --- sync ------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    hits: int = 0
    new_assignments: int = 0
    votes_reconciled: int = 0
    status_changes: int = 0
    unreadable: list[str] = field(default_factory=list)


def hit_batch_sync(batch: HitBatch) -> SyncResult:
    """Bring our Hit and Assignment rows in line with the provider's records.

    Assignments we never saw are opened (the raw worker id hashed on the spot); submitted work
    whose votes we lack (the page's own submit never reached us) is stored from the provider's
    answer, through the same submission service as the page, so it lands exactly once.
    """
    provider = provider_for(batch)
    result = SyncResult()
    hits = list(_hits_to_sync(batch))
    for n, hit in enumerate(hits, start=1):
        record = provider.get_hit(hit)
        assignments = provider.list_assignments(hit)
        _hit_apply(hit, record, assignments, result)
        result.hits += 1
        _progress(batch, job="sync", done=n, total=len(hits))
    _batch_status_update(batch)
    _progress(
        batch,
        job="sync",
        finished=True,
        synced_at=timezone.now().isoformat(),
        new_assignments=result.new_assignments,
        votes_reconciled=result.votes_reconciled,
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
    return hits.exclude(settled).order_by("number")


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
            ours = assignment_open(hit, pa.assignment_id, pa.worker_id)
            result.new_assignments += 1
        times = {
            "accepted_at": ours.accepted_at or pa.accepted_at,
            "submitted_at": ours.submitted_at or pa.submitted_at,
            "auto_approval_at": pa.auto_approval_at,
        }
        if ours.status in (
            Assignment.Status.ACCEPTED,
            Assignment.Status.ABANDONED,
            Assignment.Status.RETURNED,
        ):
            if ours.status != Assignment.Status.ACCEPTED:
                # The provider has it as submitted: our timeout guess was wrong.
                Assignment.objects.filter(pk=ours.pk).update(status=Assignment.Status.ACCEPTED)
                ours.status = Assignment.Status.ACCEPTED
            result.votes_reconciled += _reconcile_votes(ours, pa, result)
        update = {k: v for k, v in times.items() if v is not None}
        if pa.status in (Assignment.Status.APPROVED, Assignment.Status.REJECTED):
            changed = Assignment.objects.filter(pk=ours.pk, status=Assignment.Status.SUBMITTED)
            if changed.update(status=pa.status, reviewed_at=now, **update):
                result.status_changes += 1
                continue
        Assignment.objects.filter(pk=ours.pk).update(**update)
    # Work accepted at the provider but never submitted and past its time: gone.
    deadline = now - timedelta(seconds=hit.batch.assignment_duration_seconds)
    Assignment.objects.filter(
        hit=hit, status=Assignment.Status.ACCEPTED, accepted_at__lt=deadline
    ).exclude(provider_assignment_id__in=seen).update(status=Assignment.Status.ABANDONED)


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
        new = HitBatch.Status.COMPLETE if done >= wanted else HitBatch.Status.EXPIRED
        HitBatch.objects.filter(pk=batch.pk).update(status=new)
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
            _progress(batch, job="sync", error=str(exc))
        finally:
            HitBatch.objects.filter(pk=batch.pk).update(sync_lease_until=None)
    return out


# --- review ----------------------------------------------------------------------------------


def _assignment_review(
    assignment: Assignment, status: str, call: Callable[[], None], *, feedback: str, note: str
) -> None:
    if assignment.status == status:
        return
    call()
    Assignment.objects.filter(pk=assignment.pk).update(
        status=status, reviewed_at=timezone.now(), feedback=feedback, review_note=note[:200]
    )
    assignment.status = status


def assignment_approve(assignment: Assignment, *, feedback: str = "", note: str = "") -> None:
    """Approve a submitted assignment at the provider, then in our records."""
    provider = provider_for(assignment.hit.batch)
    _assignment_review(
        assignment,
        Assignment.Status.APPROVED,
        lambda: provider.approve(assignment, feedback),
        feedback=feedback,
        note=note,
    )


def assignment_reject(assignment: Assignment, *, message: str, note: str = "") -> None:
    """Reject a submitted assignment with a message the worker sees."""
    if not message.strip():
        raise ProviderError("a rejection needs a message for the worker")
    provider = provider_for(assignment.hit.batch)
    _assignment_review(
        assignment,
        Assignment.Status.REJECTED,
        lambda: provider.reject(assignment, message),
        feedback=message,
        note=note,
    )


def reject_message(template: str, assignment: Assignment, **extra) -> str:
    """A rejection message from a template with {batch}, {hit}, {accuracy}, {seconds}."""
    values = {
        "batch": assignment.hit.batch.title or assignment.hit.batch.name,
        "hit": assignment.hit.number,
        "accuracy": "",
        "seconds": "",
    }
    values.update(extra)
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"message template {template!r} cannot be filled: {exc}") from None


def hit_batch_approve_submitted(batch: HitBatch, *, feedback: str = "") -> int:
    """Approve every submitted assignment of a batch; how many were approved."""
    n = 0
    for a in assignments_submitted(batch):
        assignment_approve(a, feedback=feedback, note="approve all submitted")
        n += 1
        _progress(batch, job="approve", done=n)
    return n


def assignments_reject(ids: Iterable[int], *, template: str) -> int:
    n = 0
    for a in Assignment.objects.filter(pk__in=list(ids), status=Assignment.Status.SUBMITTED):
        assignment_reject(a, message=reject_message(template, a), note="rejected by researcher")
        n += 1
    return n


def assignment_bonus(assignment: Assignment, amount: Decimal, reason: str) -> Bonus:
    """Pay a bonus once: the Bonus row (and its token) is written first, then paid."""
    amount = Decimal(amount)
    if amount <= 0:
        raise ValueError(f"a bonus must be positive, not {amount}")
    if not reason.strip():
        raise ValueError("a bonus needs a reason the worker sees")
    bonus = Bonus.objects.create(
        assignment=assignment, amount=amount, reason=reason, token=uuid.uuid4().hex
    )
    return bonus_pay(bonus)


def bonus_pay(bonus: Bonus) -> Bonus:
    """Send (or re-send, after a crash) an unpaid bonus with its own request token."""
    if bonus.paid_at:
        return bonus
    a = bonus.assignment
    provider_for(a.hit.batch).send_bonus(a, bonus.amount, bonus.reason, bonus.token)
    bonus.paid_at = timezone.now()
    Bonus.objects.filter(pk=bonus.pk).update(paid_at=bonus.paid_at)
    return bonus


def assignment_block_worker(assignment: Assignment, *, reason: str) -> None:
    """Block the assignment's worker at the provider (raw id fetched there, not stored)."""
    provider_for(assignment.hit.batch).block_worker(assignment, reason)
    Worker.objects.filter(pk=assignment.worker_id).update(blocked=True)


def assignment_exclude_worker(assignment: Assignment, *, reason: str) -> WorkerExclusion:
    """Soft-block: the worker gets none of our future HITs; no block on their MTurk record."""
    type_id = provider_for(assignment.hit.batch).exclude_worker(assignment, reason)
    exclusion, _ = WorkerExclusion.objects.update_or_create(
        worker_id=assignment.worker_id,
        defaults={"reason": reason[:200], "qualification_type_id": type_id},
    )
    return exclusion


def hit_batch_notify(batch: HitBatch, *, subject: str, message: str) -> int:
    """Message every worker with submitted or reviewed work in the batch."""
    assignments = list(Assignment.objects.filter(hit__batch=batch, status__in=DONE))
    one_per_worker = list({a.worker_id: a for a in assignments}.values())
    if one_per_worker:
        provider_for(batch).notify(one_per_worker, subject, message)
    return len(one_per_worker)


@dataclass
class ReviewOutcome:
    approved: int = 0
    rejected: int = 0
    excluded: int = 0
    left: int = 0


def hit_batch_auto_review(batch: HitBatch) -> ReviewOutcome:
    """Apply the batch's review rules to its submitted assignments.

    Rules (``HitBatch.review_rules``): ``reject_faster_than_seconds`` (submitted sooner than this
    after accepting), ``reject_gold_below`` and ``soft_block_gold_below`` (gold accuracy under
    the threshold), ``approve_gold_at_least`` (gold accuracy at or above it),
    ``approve_without_gold`` (approve work that had no gold problems), ``reject_message``
    (a template with {accuracy}, {seconds}, {batch}, {hit}). Work no rule decides is left for a
    person.
    """
    rules = batch.review_rules or {}
    out = ReviewOutcome()
    template = rules.get(
        "reject_message",
        "Sorry: your answers on {batch} did not meet the quality bar "
        "(known-answer accuracy {accuracy}, {seconds} s).",
    )
    for a in assignments_submitted(batch):
        accuracy = assignment_gold_accuracy(a)
        seconds = (
            (a.submitted_at - a.accepted_at).total_seconds()
            if a.submitted_at and a.accepted_at
            else None
        )
        facts = {
            "accuracy": "n/a" if accuracy is None else f"{accuracy:.0%}",
            "seconds": "n/a" if seconds is None else f"{seconds:.0f}",
        }
        floor = rules.get("reject_faster_than_seconds")
        too_fast = floor is not None and seconds is not None and seconds < float(floor)
        reject_below = rules.get("reject_gold_below")
        bad_gold = reject_below is not None and accuracy is not None and accuracy < reject_below
        block_below = rules.get("soft_block_gold_below")
        if block_below is not None and accuracy is not None and accuracy < block_below:
            assignment_exclude_worker(a, reason=f"gold accuracy {facts['accuracy']}")
            out.excluded += 1
        if too_fast or bad_gold:
            why = "too fast" if too_fast else "gold accuracy"
            assignment_reject(
                a, message=reject_message(template, a, **facts), note=f"auto-rejected: {why}"
            )
            out.rejected += 1
            continue
        approve_at = rules.get("approve_gold_at_least")
        if (approve_at is not None and accuracy is not None and accuracy >= approve_at) or (
            accuracy is None and rules.get("approve_without_gold")
        ):
            assignment_approve(a, note=f"auto-approved: gold {facts['accuracy']}")
            out.approved += 1
            continue
        out.left += 1
    return out


# --- lifecycle -------------------------------------------------------------------------------


def _published_hits(batch: HitBatch):
    return batch.hits.exclude(provider_hit_id="").exclude(status=Hit.Status.DISPOSED)


def hit_batch_extend(batch: HitBatch, *, seconds: int) -> int:
    """Push every HIT's expiry ``seconds`` past the later of now and its current expiry."""
    if seconds <= 0:
        raise ValueError(f"extend by a positive number of seconds, not {seconds}")
    provider = provider_for(batch)
    now = timezone.now()
    n = 0
    for hit in _published_hits(batch):
        when = max(now, hit.expires_at or now) + timedelta(seconds=seconds)
        provider.set_expiration(hit, when)
        Hit.objects.filter(pk=hit.pk).update(expires_at=when)
        n += 1
    HitBatch.objects.filter(
        pk=batch.pk, status__in=[HitBatch.Status.EXPIRED, HitBatch.Status.COMPLETE]
    ).update(status=HitBatch.Status.OPEN)
    return n


def hit_batch_expire(batch: HitBatch) -> int:
    """Expire every HIT now: no new work is taken; submitted work can still be reviewed."""
    provider = provider_for(batch)
    now = timezone.now()
    n = 0
    for hit in _published_hits(batch).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)):
        provider.set_expiration(hit, now)
        Hit.objects.filter(pk=hit.pk).update(expires_at=now)
        n += 1
    HitBatch.objects.filter(
        pk=batch.pk, status__in=[HitBatch.Status.OPEN, HitBatch.Status.LAUNCHING]
    ).update(status=HitBatch.Status.EXPIRED)
    return n


def hit_add_assignments(hit: Hit, count: int) -> None:
    """Let ``count`` more workers take one HIT (the token names the target total)."""
    target = hit.max_assignments + count
    provider_for(hit.batch).add_assignments(
        hit, count, f"{hit.batch.uid.hex}-{hit.number}-a{target}"
    )
    Hit.objects.filter(pk=hit.pk).update(max_assignments=target, status=Hit.Status.ASSIGNABLE)
    hit.max_assignments, hit.status = target, Hit.Status.ASSIGNABLE


def hit_delete(hit: Hit) -> None:
    """Dispose of a reviewed HIT at the provider (refused while work waits for review)."""
    provider_for(hit.batch).delete_hit(hit)
    Hit.objects.filter(pk=hit.pk).update(status=Hit.Status.DISPOSED)
    hit.status = Hit.Status.DISPOSED


_REPOST_FIELDS = (
    "dataset",
    "kind",
    "params",
    "provider",
    "environment",
    "title",
    "description",
    "keywords",
    "reward",
    "items_per_hit",
    "gold_rate",
    "lifetime_seconds",
    "assignment_duration_seconds",
    "auto_approval_delay_seconds",
    "qualification_preset",
    "qualification_params",
    "budget_cap",
    "review_rules",
    "invite_code",
    "worker_id_param",
    "max_hits_per_worker",
    "completion_code",
    "completion_redirect_url",
)


def hit_batch_repost(batch: HitBatch) -> HitBatch | None:
    """A new draft batch with only the items that still lack votes (None when none do).

    The old batch is expired and synced first, so nothing in flight is counted as missing.
    Its assignments per item is the largest shortfall.
    """
    if batch.status in (HitBatch.Status.OPEN, HitBatch.Status.LAUNCHING):
        hit_batch_expire(batch)
    if batch.hits.exclude(provider_hit_id="").exists():
        hit_batch_sync(batch)
    counts = batch_item_vote_counts(batch)
    shortfall: dict[int, int] = {}
    for hit in batch.hits.all():
        gold = {int(g) for g in hit.gold_items or []}
        for item_id in hit_item_ids(batch.kind, hit.items):
            if item_id not in gold:
                missing = batch.assignments_per_item - counts.get(item_id, 0)
                if missing > 0:
                    shortfall[item_id] = max(shortfall.get(item_id, 0), missing)
    if not shortfall:
        return None
    with transaction.atomic():
        new = HitBatch.objects.create(
            name=f"{batch.name} (re-post)"[:200],
            repost_of=batch,
            item_selection=ItemSelection.EXPLICIT,
            assignments_per_item=max(shortfall.values()),
            **{f: getattr(batch, f) for f in _REPOST_FIELDS},
        )
        new.items.set(Item.objects.filter(pk__in=shortfall))
    return new


@dataclass
class CleanupResult:
    expired: int = 0
    deleted: int = 0
    kept: list[str] = field(default_factory=list)


def hits_orphans_cleanup(provider: str, environment: str) -> CleanupResult:
    """Expire and delete provider HITs of our batches that no Hit row holds (e.g. duplicates
    from a lost answer). HITs of batches this database does not know are left alone: they may
    belong to another deployment sharing the account."""
    prov = provider_get(provider, environment)
    known_ids = set(
        Hit.objects.exclude(provider_hit_id="").values_list("provider_hit_id", flat=True)
    )
    our_batches = set(
        HitBatch.objects.filter(provider=provider, environment=environment).values_list(
            "uid", flat=True
        )
    )
    our_batches = {u.hex for u in our_batches}
    result = CleanupResult()
    for record in list(prov.list_hits()):
        parsed = parse_annotation(record.annotation)
        if parsed is None or parsed[0] not in our_batches or record.hit_id in known_ids:
            continue
        stub = Hit(provider_hit_id=record.hit_id, max_assignments=record.max_assignments)
        if record.status in (Hit.Status.ASSIGNABLE, Hit.Status.UNASSIGNABLE):
            prov.set_expiration(stub, timezone.now())
            result.expired += 1
        try:
            prov.delete_hit(stub)
            result.deleted += 1
        except ProviderError as exc:
            # Work is pending or waits for review: it goes once reviewed.
            result.kept.append(f"{record.hit_id}: {exc}")
    return result


# --- the built-in marketplace ------------------------------------------------------------------


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
    mine = (
        Assignment.objects.filter(hit__batch=batch, worker=worker)
        .exclude(status__in=[Assignment.Status.RETURNED, Assignment.Status.ABANDONED])
        .select_related("hit")
    )
    seen: set[int] = set()
    n = 0
    for a in mine:
        n += 1
        gold = {int(g) for g in a.hit.gold_items or []}
        seen.update(i for i in hit_item_ids(batch.kind, a.hit.items) if i not in gold)
    return seen, n


def market_hit_refusal(hit: Hit, worker: Worker, now=None) -> str:
    """Why the worker may not take this HIT now ('' when they may)."""
    batch = hit.batch
    now = now or timezone.now()
    if batch.provider != Provider.LOCAL or batch.status != HitBatch.Status.OPEN:
        return "This task is not open."
    if not hit.provider_hit_id or (hit.expires_at and hit.expires_at <= now):
        return "This task is no longer available."
    why = market_worker_allowed(batch, worker)
    if why:
        return why
    if Assignment.objects.filter(hit=hit, worker=worker).exists():
        return "You have already worked on this task."
    seen, taken = _market_worker_items(batch, worker)
    if batch.max_hits_per_worker is not None and taken >= batch.max_hits_per_worker:
        return f"You have done the most tasks allowed here ({batch.max_hits_per_worker})."
    if _market_overlap(hit, seen):
        return "You have already seen some of the images in this task."
    assignments_tidy(batch, now, hit)
    pending, completed = hit_counts(hit)
    if pending + completed >= hit.max_assignments:
        return "All places on this task are taken."
    return ""


def _market_overlap(hit: Hit, seen: set[int]) -> bool:
    gold = {int(g) for g in hit.gold_items or []}
    return bool(seen & (set(hit_item_ids(hit.batch.kind, hit.items)) - gold))


def market_available_hits(batch: HitBatch, worker: Worker) -> list[Hit]:
    """The HITs of a batch this worker may take now, in order (a few queries per batch)."""
    now = timezone.now()
    if batch.provider != Provider.LOCAL or batch.status != HitBatch.Status.OPEN:
        return []
    if market_worker_allowed(batch, worker):
        return []
    seen, taken = _market_worker_items(batch, worker)
    if batch.max_hits_per_worker is not None and taken >= batch.max_hits_per_worker:
        return []
    assignments_tidy(batch, now)
    busy = [Assignment.Status.ACCEPTED, *DONE]
    hits = (
        batch.hits.exclude(provider_hit_id="")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(assignments__worker=worker)
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


def market_accept(hit: Hit, raw_worker_id: str) -> Assignment:
    """A marketplace worker takes a HIT: checked and recorded under a lock on the HIT."""
    worker = worker_get_or_create(Provider.LOCAL, raw_worker_id)
    with transaction.atomic():
        hit = Hit.objects.select_for_update().select_related("batch").get(pk=hit.pk)
        why = market_hit_refusal(hit, worker)
        if why:
            raise MarketRefused(why)
        return assignment_open(hit, "LA" + secrets.token_hex(15).upper(), raw_worker_id)


def market_return(assignment: Assignment) -> None:
    """The worker gives an accepted HIT back; its place opens again."""
    Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.ACCEPTED).update(
        status=Assignment.Status.RETURNED
    )


def market_external_submit(provider_assignment_id: str, fields: dict[str, str]) -> Assignment:
    """The marketplace's externalSubmit: the page's answers, recorded as MTurk would.

    Usually the task page has stored the votes already; if not, they are stored here from the
    posted ``answers`` field, once.
    """
    a = (
        Assignment.objects.select_related("hit__batch", "worker")
        .filter(hit__batch__provider=Provider.LOCAL, provider_assignment_id=provider_assignment_id)
        .first()
    )
    if a is None:
        raise MarketRefused("There is no such assignment.")
    if a.status in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
        raise MarketRefused("This task was given back or ran out of time.")
    if a.status == Assignment.Status.ACCEPTED:
        try:
            assignment_submit(a, answers_json_from_fields(fields))
        except SubmissionRefused as exc:
            raise MarketRefused(f"The answers could not be stored: {exc}") from None
    a.refresh_from_db()
    return a


# --- background ------------------------------------------------------------------------------


def _enqueue(task_name: str, *args) -> None:
    from . import tasks

    task: Callable = getattr(tasks, task_name)
    task.delay(*args)


def enqueue_on_commit(task_name: str, *args) -> None:
    """Run a hits task after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _enqueue(task_name, *args))
