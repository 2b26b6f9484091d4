"""Reads for the hits app: cost previews and the watch figures of a batch."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count

from annotation.models import Vote
from annotation.prepared import Prepared

from .fees import CostPreview, assignment_fee, bonus_fee, cost_preview
from .models import Assignment, Bonus, Hit, HitBatch, Provider
from .planning import hit_item_ids, hit_plan
from .qualifications import qualification_requirements, requires_masters

DONE = [Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED]
# The columns a task page and its submit read of an assignment, its HIT, batch, dataset and
# worker: 30 of the join's 84 (a batch row alone has 44), which saves each about 0.2 ms of CPU
# building and reading the query. Any other field still loads when first read.
_TASK_FIELDS = (
    "provider_assignment_id",
    "worker_id",
    "status",
    "accepted_at",
    "submitted_at",
    "confirmed",
    "hit__batch_id",
    "hit__provider_hit_id",
    "hit__items",
    "hit__gold_items",
    "hit__max_assignments",
    "hit__status",
    "hit__expires_at",
    "hit__batch__dataset_id",
    "hit__batch__kind",
    "hit__batch__params",
    "hit__batch__provider",
    "hit__batch__status",
    "hit__batch__assignment_duration_seconds",
    "hit__batch__max_hits_per_worker",
    "hit__batch__dataset__name",
    "hit__batch__dataset__class_names",
    "hit__batch__dataset__class_attributes",
    "worker__id_hash",
)


def assignments_for_task():
    """Assignments with their HIT, batch, dataset and worker, in one query, as a task page and
    its submit read them."""
    return Assignment.objects.select_related("hit__batch__dataset", "worker").only(*_TASK_FIELDS)


# The two reads of every task page and submit, compiled once per connection.
_OF_HIT = Prepared(
    Assignment,
    lambda hit_pk, provider_id: assignments_for_task().filter(
        hit_id=hit_pk, provider_assignment_id=provider_id
    )[:1],
)
_BY_PK = Prepared(
    Assignment, lambda pk, hit_pk: assignments_for_task().filter(pk=pk, hit_id=hit_pk)[:1]
)


def task_assignment_of_hit(hit_pk: int, provider_assignment_id: str) -> Assignment | None:
    """The assignment with this marketplace id on this HIT (``assignments_for_task``)."""
    found = _OF_HIT(int(hit_pk), str(provider_assignment_id))
    return found[0] if found else None


def task_assignment(pk: int, hit_pk: int) -> Assignment | None:
    """Our assignment ``pk`` if it is on this HIT (``assignments_for_task``)."""
    found = _BY_PK(int(pk), int(hit_pk))
    return found[0] if found else None


def batch_uses_masters(batch: HitBatch) -> bool:
    if batch.provider != Provider.MTURK:
        return False
    reqs = qualification_requirements(
        batch.qualification_preset, batch.qualification_params, batch.environment
    )
    return requires_masters(reqs)


def hit_batch_cost_preview(batch: HitBatch, *, balance: Decimal | None) -> CostPreview:
    """What launching the batch costs: from its planned HITs, else from a fresh plan."""
    planned = list(batch.hits.values_list("max_assignments", flat=True))
    if not planned:
        planned = [h.max_assignments for h in hit_plan(batch)]
    return _batch_cost(batch, planned, bonus_total=batch.bonus_budget, balance=balance)


def _batch_cost(
    batch: HitBatch,
    max_assignments_per_hit: list[int],
    *,
    bonus_total: Decimal,
    balance: Decimal | None = None,
) -> CostPreview:
    """The batch's provider's fees on these assignments and bonuses (MTurk's commission,
    Prolific's service fee and VAT, none on the built-in marketplace)."""
    if batch.provider == Provider.PROLIFIC:
        return cost_preview(
            max_assignments_per_hit,
            reward=batch.reward,
            masters=False,
            bonus_total=bonus_total,
            balance=balance,
            budget_cap=batch.budget_cap,
            service_fee_rate=Decimal(str(settings.PROLIFIC_SERVICE_FEE_RATE)),
            vat_rate=Decimal(str(settings.PROLIFIC_VAT_RATE)),
        )
    return cost_preview(
        max_assignments_per_hit,
        reward=batch.reward,
        masters=batch_uses_masters(batch),
        bonus_total=bonus_total,
        balance=balance,
        budget_cap=batch.budget_cap,
        charges_fees=batch.provider == Provider.MTURK,
    )


def hit_batch_spend(batch: HitBatch, assignments: int, bonuses: list[Decimal]) -> Decimal:
    """What ``assignments`` paid places and these paid bonuses cost with the provider's fees."""
    if batch.provider == Provider.PROLIFIC:
        # Prolific's fee is a flat rate on the rewards and bonuses, VAT on the fee.
        return _batch_cost(batch, [assignments], bonus_total=sum(bonuses, Decimal("0"))).total
    # MTurk charges per assignment (rate by the batch's assignment count) and per bonus.
    fees = batch.provider == Provider.MTURK
    per_assignment = batch.reward
    if fees:
        per_assignment += assignment_fee(
            batch.reward,
            max_assignments=batch.assignments_per_item,
            masters=batch_uses_masters(batch),
        )
    total = per_assignment * assignments
    for amount in bonuses:
        total += amount + (bonus_fee(amount) if fees else Decimal("0"))
    return total


@dataclass(frozen=True)
class BatchStats:
    """The watch figures of a batch."""

    hits_by_status: dict[str, int]
    assignments_by_status: dict[str, int]
    hits: int
    assignments_wanted: int
    votes_collected: int
    votes_needed: int
    spent: Decimal
    projected: Decimal
    median_seconds: float | None

    def percent(self, part: int | Decimal, whole: int | Decimal) -> int:
        return 0 if not whole else min(100, round(100 * float(part) / float(whole)))

    @property
    def votes_percent(self) -> int:
        return self.percent(self.votes_collected, self.votes_needed)

    @property
    def assignments_done(self) -> int:
        return sum(self.assignments_by_status.get(s, 0) for s in DONE)

    @property
    def assignments_percent(self) -> int:
        return self.percent(self.assignments_done, self.assignments_wanted)

    @property
    def published(self) -> int:
        return self.hits - self.hits_by_status.get(Hit.Status.PLANNED, 0)

    @property
    def published_percent(self) -> int:
        return self.percent(self.published, self.hits)

    @property
    def spend_percent(self) -> int:
        return self.percent(self.spent, self.projected)


def hit_batch_stats(batch: HitBatch) -> BatchStats:
    hits = list(batch.hits.only("status", "items", "gold_items", "max_assignments"))
    hits_by_status: dict[str, int] = {}
    votes_needed = 0
    wanted = 0
    for h in hits:
        hits_by_status[h.status] = hits_by_status.get(h.status, 0) + 1
        regular = len(hit_item_ids(batch.kind, h.items)) - len(h.gold_items or [])
        votes_needed += regular * h.max_assignments
        wanted += h.max_assignments
    assignments = Assignment.objects.filter(hit__batch=batch)
    by_status = dict(
        assignments.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    votes = (
        Vote.objects.counted()
        .filter(assignment__hit__batch=batch, is_gold=False)
        .exclude(assignment__status=Assignment.Status.REJECTED)
    )
    paid = list(
        Bonus.objects.filter(assignment__hit__batch=batch, paid_at__isnull=False).values_list(
            "amount", flat=True
        )
    )
    approved = by_status.get(Assignment.Status.APPROVED, 0)
    outstanding = max(0, wanted - approved - by_status.get(Assignment.Status.REJECTED, 0))
    spent = hit_batch_spend(batch, approved, paid)
    projected = hit_batch_spend(batch, approved + outstanding, paid)
    durations = [
        (s - a).total_seconds()
        for a, s in assignments.filter(
            status__in=DONE, accepted_at__isnull=False, submitted_at__isnull=False
        ).values_list("accepted_at", "submitted_at")
    ]
    return BatchStats(
        hits_by_status=hits_by_status,
        assignments_by_status=by_status,
        hits=len(hits),
        assignments_wanted=wanted,
        votes_collected=votes.count(),
        votes_needed=votes_needed,
        spent=spent,
        projected=projected,
        median_seconds=statistics.median(durations) if durations else None,
    )


def assignment_gold_accuracy(assignment: Assignment) -> float | None:
    """Share of the assignment's gold problems answered right; None without gold problems."""
    golds = list(
        assignment.votes.filter(is_gold=True, item__gold_label__isnull=False).select_related("item")
    )
    if not golds:
        return None
    return sum(gold_vote_correct(v) for v in golds) / len(golds)


def gold_vote_correct(vote: Vote) -> bool:
    """Whether a vote on a gold item agrees with the item's known label, by task kind."""
    gold = vote.item.gold_label
    if vote.kind == "verify":
        return vote.answer == (0 if vote.shown_label == gold else 2)
    if vote.kind == "complementary":
        return vote.answer != gold
    if vote.kind == "select":
        return bool(vote.answer) == (vote.shown_label == gold)
    if vote.kind == "review":
        shown, suggested = vote.shown_label, vote.suggested_label
        return {
            0: gold == shown and gold != suggested,
            1: gold == suggested and gold != shown,
            2: gold in (shown, suggested),
            3: gold not in (shown, suggested),
        }.get(vote.answer, False)
    return False


def assignments_submitted(batch: HitBatch):
    """Submitted work waiting for review; unconfirmed work waits for sync first."""
    return Assignment.objects.filter(
        hit__batch=batch, status=Assignment.Status.SUBMITTED, confirmed=True
    ).select_related("hit__batch", "worker")


def batch_item_vote_counts(batch: HitBatch) -> dict[int, int]:
    """Per item on the batch's HITs: non-gold votes from assignments not rejected."""
    rows = (
        Vote.objects.counted()
        .filter(assignment__hit__batch=batch, is_gold=False)
        .exclude(assignment__status=Assignment.Status.REJECTED)
        .values("item_id")
        .annotate(n=Count("id"))
    )
    return {r["item_id"]: r["n"] for r in rows}
