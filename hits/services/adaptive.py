"""Adaptive overlap: as a batch's votes arrive, the posterior decides which items get another vote.

A batch with ``min_votes``, ``max_votes`` and ``confidence_target`` starts with its
``assignments_per_item`` places per HIT. When the HITs have all their places done, the batch's
votes so far are aggregated (the default method) and
:func:`annotation.aggregation.adaptive.items_needing_votes` ranks the items still short of the
target; each HIT that holds one of them gets one more place (MTurk:
CreateAdditionalAssignmentsForHIT; the built-in marketplace: one more place on the HIT), most
urgent first, as long as the budget cap allows. Once no HIT gets another place, the batch is
complete.

The policy decides by rounds: when every HIT of the batch has its places done. A latent-class
posterior fitted while most of a round is missing judges workers on a handful of votes (with two
workers and a few items it is not even identifiable); a complete round gives every item its
votes and every worker their record before any item is judged settled.
"""

from __future__ import annotations

import logging

import numpy as np

from annotation import aggregation as agg
from annotation.aggregation.adaptive import items_needing_votes
from annotation.aggregation_services import DEFAULT_METHODS
from annotation.models import TaskKind, Vote
from hits.exceptions import ProviderError
from hits.models import Assignment, HitBatch
from hits.planning import hit_item_ids
from hits.selectors import hit_batch_cost_preview, hit_batch_spend

from .lifecycle import hit_add_assignments
from .loop import hit_batch_complete_check, hits_waiting

logger = logging.getLogger(__name__)
ADAPTIVE_FIELDS = ("min_votes", "max_votes", "confidence_target")
ERROR_PREFIX = "adaptive overlap: "


def hit_batch_adaptive_refusal(batch: HitBatch) -> str:
    """Why the batch's adaptive-overlap settings cannot run ('' when they can or are unset)."""
    values = [getattr(batch, f) for f in ADAPTIVE_FIELDS]
    if all(v is None for v in values):
        return ""
    if any(v is None for v in values):
        return "adaptive overlap needs min votes, max votes and a confidence target, all three"
    if batch.kind != TaskKind.LABEL:
        return f"adaptive overlap needs class votes (a label batch), not {batch.kind}"
    if not 0 < batch.confidence_target <= 1:
        return f"the confidence target must lie in (0, 1], got {batch.confidence_target}"
    if batch.max_votes < max(batch.min_votes, 1):
        return f"max votes ({batch.max_votes}) must be at least min votes ({batch.min_votes})"
    if (batch.assignments_per_item or 0) > batch.max_votes:
        return (
            f"assignments per item ({batch.assignments_per_item}) is above max votes "
            f"({batch.max_votes})"
        )
    return ""


def _affordable(batch: HitBatch) -> int | None:
    """How many more places the budget cap allows (None: no cap)."""
    if batch.budget_cap is None:
        return None
    left = batch.budget_cap - hit_batch_cost_preview(batch, balance=None).total
    per_place = hit_batch_spend(batch, 1, [])
    if per_place <= 0:
        return None
    return max(0, int(left / per_place)) if left > 0 else 0


def _posteriors(batch: HitBatch, item_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) posteriors of the batch's items from its class votes so far, and (N,) counts."""
    k = batch.dataset.num_classes
    pos = {item_id: i for i, item_id in enumerate(item_ids)}
    rows = (
        Vote.objects.counted()
        .filter(assignment__hit__batch=batch, kind=TaskKind.LABEL, is_gold=False)
        .exclude(assignment__status=Assignment.Status.REJECTED)
        .filter(answer__gte=0, answer__lt=k, item_id__in=item_ids)
        .order_by("id")
        .values_list("item_id", "worker_id", "answer")
    )
    table = np.asarray([(pos[i], w, a) for i, w, a in rows], dtype=np.int64).reshape(-1, 3)
    counts = np.bincount(table[:, 0], minlength=len(item_ids))
    if table.shape[0] == 0:
        return np.full((len(item_ids), k), 1.0 / k), counts
    workers = np.unique(table[:, 1], return_inverse=True)[1]
    votes = agg.VoteTable.from_arrays(table[:, 0], workers, table[:, 2], num_items=len(item_ids))
    method = DEFAULT_METHODS[TaskKind.LABEL][0]
    return agg.aggregate_by_name(votes, method, num_classes=k).probs, counts


def hit_batch_adapt(batch: HitBatch) -> dict[int, int]:
    """Once every HIT's places are done (a round), give one more place to each HIT holding an
    item the posterior is not sure of.

    Returns {HIT number: its new number of places}; empty when adaptive overlap is off,
    nothing needs a vote or the budget allows none.
    """
    if hit_batch_adaptive_refusal(batch) or batch.min_votes is None:
        return {}
    hits = list(hits_waiting(batch).order_by("number"))
    if any(h.done < h.max_assignments for h in hits):
        # A round is still open: wait for its votes, which also inform every worker's quality.
        return {}
    gold = {h.pk: {int(g) for g in h.gold_items or []} for h in hits}
    on_hit = {
        h.pk: [i for i in hit_item_ids(batch.kind, h.items) if i not in gold[h.pk]] for h in hits
    }
    item_ids = sorted({i for ids in on_hit.values() for i in ids})
    if not item_ids:
        return {}
    posteriors, counts = _posteriors(batch, item_ids)
    order = items_needing_votes(
        posteriors,
        counts,
        min_votes=batch.min_votes,
        max_votes=batch.max_votes,
        target=batch.confidence_target,
    )
    hit_of = {i: h for h in hits for i in on_hit[h.pk]}
    places = _affordable(batch)
    added: dict[int, int] = {}
    for pos in order.tolist():
        hit = hit_of.get(item_ids[pos])
        if hit is None or hit.number in added:
            continue
        if hit.max_assignments >= batch.max_votes:
            continue
        if places is not None and places < 1:
            logger.info("batch %s: the budget cap allows no more votes", batch.pk)
            break
        hit_add_assignments(hit, 1)
        added[hit.number] = hit.max_assignments
        if places is not None:
            places -= 1
    return added


def hit_batch_votes_arrived(batch: HitBatch) -> dict[str, object]:
    """A HIT of the batch has all its places done: adapt the overlap, then mark the batch
    complete if nothing more is coming."""
    batch.refresh_from_db()
    if batch.status != HitBatch.Status.OPEN:
        return {"added": {}, "complete": False}
    try:
        added = hit_batch_adapt(batch)
    except ProviderError as exc:
        # Not complete while places may still be added: the next sync tries again. The batch's
        # page shows why meanwhile.
        logger.error("adaptive overlap of batch %s: %s", batch.pk, exc)
        HitBatch.objects.filter(pk=batch.pk).update(error=f"{ERROR_PREFIX}{exc}")
        return {"added": {}, "complete": False, "error": str(exc)}
    HitBatch.objects.filter(pk=batch.pk, error__startswith=ERROR_PREFIX).update(error="")
    return {"added": added, "complete": hit_batch_complete_check(batch)}
