"""Images two classes claim within the review margin: one review batch asks the crowd which of
the two (or both, or neither) the image shows; an agreed class keeps the image for it."""

from __future__ import annotations

from django.db import transaction

from annotation.aggregation import REVIEW_GIVEN, REVIEW_SUGGESTED
from annotation.models import Item, TaskKind, Vote
from hits.exceptions import LaunchRefused
from hits.models import HitBatch
from hits.services import hit_batch_launch

from ..exceptions import RetrievalRefused
from ..models import RetrievalCandidate, RetrievalRun
from .retrieval_rounds import retrieval_batch_create
from .review import DEFAULT_RULES

C = RetrievalCandidate.State


def retrieval_review_launch(run: RetrievalRun, *, user=None) -> HitBatch:
    """One review batch (given = the best class, suggested = the runner-up) over the images
    set aside as claimed by two classes, on the built-in marketplace."""
    if run.status == RetrievalRun.Status.PENDING:
        raise RetrievalRefused(f"run {run.pk} is not ranked yet")
    if run.review_batch is not None:
        raise RetrievalRefused(f"run {run.pk} already has review batch {run.review_batch.name}")
    claimed = list(run.candidates.filter(state=C.REVIEW))
    if not claimed:
        raise RetrievalRefused(f"run {run.pk} has no images claimed by two classes")
    agree, votes = DEFAULT_RULES[TaskKind.REVIEW]
    with transaction.atomic():
        batch = retrieval_batch_create(
            run,
            TaskKind.REVIEW,
            claimed,
            state=C.REVIEWING,
            name=f"retrieval run {run.pk} review",
            params={"suggested": {str(c.item_id): c.runner_up for c in claimed}},
            assignments_per_item=votes,
            items_per_hit=10,
        )
        run.review_batch = batch
        run.save(update_fields=["review_batch"])
    try:
        hit_batch_launch(batch, user=user)
    except LaunchRefused as exc:
        raise RetrievalRefused(f"review batch {batch.name} was not launched: {exc}") from None
    return batch


def retrieval_review_fold(run: RetrievalRun, *, force: bool = False) -> dict[str, int]:
    """Fold the review votes back: 3 of 5 agreeing on one class keep the image for it; both,
    neither or no agreement drop it. Refused while votes are missing, unless ``force``.
    Returns the count of images kept and dropped."""
    batch = run.review_batch
    reviewing = list(run.candidates.filter(state=C.REVIEWING))
    if batch is None or not reviewing:
        raise RetrievalRefused(f"run {run.pk} has no review out")
    agree, votes_needed = DEFAULT_RULES[TaskKind.REVIEW]
    counts: dict[int, dict[str, int]] = {c.item_id: {} for c in reviewing}
    votes = Vote.objects.counted().filter(
        assignment__hit__batch=batch, kind=TaskKind.REVIEW, is_gold=False
    )
    for item_id, answer in votes.values_list("item_id", "answer"):
        if item_id in counts:
            counts[item_id][str(answer)] = counts[item_id].get(str(answer), 0) + 1
    short = [c for c in reviewing if sum(counts[c.item_id].values()) < votes_needed]
    if short and not force:
        raise RetrievalRefused(
            f"review: {len(short)} of {len(reviewing)} images still lack votes; wait for the "
            "workers (or fold with force)"
        )
    out = {"kept": 0, "dropped": 0}
    with transaction.atomic():
        for c in reviewing:
            tally = counts[c.item_id]
            c.votes = tally
            if tally.get(str(REVIEW_GIVEN), 0) >= agree:
                c.state = C.REVIEW_KEPT
            elif tally.get(str(REVIEW_SUGGESTED), 0) >= agree and c.runner_up is not None:
                c.label, c.runner_up = c.runner_up, c.label
                c.state = C.REVIEW_KEPT
            else:
                c.state = C.REVIEW_DROPPED
            out["kept" if c.state == C.REVIEW_KEPT else "dropped"] += 1
            Item.objects.filter(pk=c.item_id).update(
                label=c.label if c.state == C.REVIEW_KEPT else None
            )
        RetrievalCandidate.objects.bulk_update(reviewing, ["votes", "state", "label", "runner_up"])
    return out
