"""Review batches: send a run's open issues to the crowd as a review (or verify) HIT batch."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from annotation.models import TaskKind
from hits.models import Environment, HitBatch, ItemSelection, Provider
from hits.services import hit_batch_launch

from ..exceptions import ReviewBatchRefused
from ..models import CurationRun, LabelIssue, ReviewBatch

R = LabelIssue.Resolution
# k of n: how many of the votes an item is meant to get must agree on one answer.
DEFAULT_RULES = {TaskKind.REVIEW: (3, 5), TaskKind.VERIFY: (2, 3)}
RULES = {"3of5": (3, 5), "4of5": (4, 5), "5of5": (5, 5), "2of3": (2, 3), "3of3": (3, 3)}
# What workers are told about a batch of each kind this app launches: (title, description).
BATCH_TEXT = {
    TaskKind.REVIEW: (
        "Which label fits each image?",
        "Look at each image and choose the label that fits it.",
    ),
    TaskKind.VERIFY: (
        "Is the label right?",
        "Look at each image and say whether its label is correct.",
    ),
}


def curation_run_review_batch(
    run: CurationRun,
    *,
    top_n: int | None = None,
    min_score: float | None = None,
    kind: str = TaskKind.REVIEW,
    provider: str = Provider.MARKET,
    environment: str | None = None,
    assignments_per_item: int | None = None,
    items_per_hit: int | None = None,
    reward: Decimal | str | None = None,
    name: str = "",
    launch: bool = False,
    user=None,
):
    """A HIT batch asking the crowd about the run's open issues (all, the top N by score, and/or
    those scoring at least min_score); those issues go ``in_review``.

    A batch over every open issue selects items "curation" (the run's issues in review); a part
    of them is an explicit item list, so a later batch can take the rest. ``launch`` launches a
    built-in marketplace batch at once; MTurk batches stay drafts for the launch preview. The
    batch is linked to the run by a ReviewBatch (``run.review_batches``).
    """
    if kind not in (TaskKind.REVIEW, TaskKind.VERIFY):
        raise ReviewBatchRefused(f"kind must be review or verify, got {kind!r}")
    if run.status != CurationRun.Status.DONE:
        raise ReviewBatchRefused(f"run {run.pk} is {run.get_status_display()}, not done")
    if top_n is not None and int(top_n) < 1:
        raise ReviewBatchRefused(f"top_n must be at least 1, got {top_n}")
    if provider not in Provider.values:
        raise ReviewBatchRefused(f"provider must be one of {Provider.values}, got {provider!r}")
    environment = environment or (
        Environment.MARKET if provider == Provider.MARKET else Environment.SANDBOX
    )
    default_k, default_n = DEFAULT_RULES[kind]
    with transaction.atomic():
        open_issues = run.issues.select_for_update().filter(resolution=R.OPEN)
        chosen = open_issues.order_by("-score", "item__index")
        if min_score is not None:
            chosen = chosen.filter(score__gte=float(min_score))
        ids = list(chosen.values_list("id", flat=True))
        if top_n is not None:
            ids = ids[: int(top_n)]
        if not ids:
            raise ReviewBatchRefused(f"run {run.pk} has no open issues matching the selection")
        everything = (
            len(ids) == open_issues.count()
            and not run.issues.filter(resolution=R.IN_REVIEW).exists()
        )
        batch = HitBatch.objects.create(
            name=name or f"{kind} of curation run {run.pk}",
            dataset=run.dataset,
            kind=kind,
            params={"curation_run": run.pk} if kind == TaskKind.REVIEW else {},
            item_selection=ItemSelection.CURATION if everything else ItemSelection.EXPLICIT,
            provider=provider,
            environment=environment,
            title=BATCH_TEXT[kind][0],
            description=BATCH_TEXT[kind][1],
            reward=Decimal(str(reward)) if reward is not None else Decimal("0.05"),
            assignments_per_item=assignments_per_item or default_n,
            items_per_hit=items_per_hit or (10 if kind == TaskKind.REVIEW else 20),
        )
        ReviewBatch.objects.create(run=run, batch=batch)
        issues = LabelIssue.objects.filter(pk__in=ids)
        if not everything:
            batch.items.set(list(issues.values_list("item_id", flat=True)))
        issues.update(resolution=R.IN_REVIEW, review_batch=batch)
    if launch and provider == Provider.MARKET:
        hit_batch_launch(batch, user=user)
        batch.refresh_from_db()
    return batch
