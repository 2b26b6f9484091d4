"""Review: approve, reject, bonus, block, exclude and message workers; the batch's rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from annotation.models import Worker
from hits.exceptions import ProviderError
from hits.models import Assignment, Bonus, HitBatch, WorkerExclusion, WorkerNotice
from hits.providers import provider_for
from hits.selectors import (
    assignment_gold_accuracy,
    assignments_submitted,
    hit_batch_spend,
    hit_batch_stats,
)

from .progress import hit_batch_progress


def _assignment_review(assignment: Assignment, status: str, *, feedback: str, note: str) -> None:
    """Approve or reject at the provider, then in our records (nothing to do when done)."""
    if assignment.status == status:
        return
    provider = provider_for(assignment.hit.batch)
    if status == Assignment.Status.APPROVED:
        provider.approve(assignment, feedback)
    else:
        provider.reject(assignment, feedback)
    Assignment.objects.filter(pk=assignment.pk).update(
        status=status, reviewed_at=timezone.now(), feedback=feedback, review_note=note[:200]
    )
    assignment.status = status


def assignment_approve(assignment: Assignment, *, feedback: str = "", note: str = "") -> None:
    """Approve a submitted assignment at the provider, then in our records."""
    _assignment_review(assignment, Assignment.Status.APPROVED, feedback=feedback, note=note)


def assignment_reject(assignment: Assignment, *, message: str, note: str = "") -> None:
    """Reject a submitted assignment with a message the worker sees."""
    if not message.strip():
        raise ProviderError("a rejection needs a message for the worker")
    _assignment_review(assignment, Assignment.Status.REJECTED, feedback=message, note=note)


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
        hit_batch_progress(batch, job="approve", done=n)
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
    batch = assignment.hit.batch
    if batch.budget_cap is not None:
        # The provider's fee is per payment (MTurk: 20%, at least $0.01 each), so many small
        # bonuses cost more than their sum's 20%: each one is checked as it is paid.
        cost = hit_batch_spend(batch, 0, [amount])
        projected = hit_batch_stats(batch).projected
        if projected + cost > batch.budget_cap:
            raise ValueError(
                f"a ${amount} bonus costs ${cost} with its fee; with the ${projected} this batch "
                f"costs already it would pass the budget cap ${batch.budget_cap}"
            )
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
    """Message every worker whose work in the batch was approved; how many were messaged.

    The provider sends ``NOTIFY_CHUNK`` workers per call and tries every chunk; when some fail,
    the rest are still sent and recorded, and a ProviderError then names the failed chunks (the
    batch's progress keeps the same summary).
    """
    approved = Assignment.objects.filter(
        hit__batch=batch, status=Assignment.Status.APPROVED
    ).order_by("worker_id", "pk")
    one_per_worker = list({a.worker_id: a for a in approved}.values())
    if not one_per_worker:
        return 0
    failures = provider_for(batch).notify(one_per_worker, subject, message)
    unsent = {pk for f in failures for pk in f.worker_pks}
    sent = [a.worker_id for a in one_per_worker if a.worker_id not in unsent]
    # Our record of what was sent; the built-in marketplace shows it on the next visit.
    WorkerNotice.objects.bulk_create(
        WorkerNotice(worker_id=pk, subject=subject, message=message) for pk in sent
    )
    summary = "; ".join(str(f) for f in failures)
    hit_batch_progress(
        batch, job="notify", done=len(sent), total=len(one_per_worker), finished=True, error=summary
    )
    if failures:
        raise ProviderError(
            f"messaged {len(sent)} of {len(one_per_worker)} worker(s); not sent: {summary}",
            code="NotifyIncomplete",
        )
    return len(sent)


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
