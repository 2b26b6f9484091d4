"""The automatic loop: a batch's votes → labels → curation → review batch → corrected labels.

A batch with ``auto_loop`` on runs these stages by itself, each a Celery task on the curation
queue, each started by the one before it (by task name, once its record commits):

1. **aggregate** — when the batch turns complete: its kind's default method over the dataset's
   votes of that kind, and (label and review votes) the labels applied to the items;
2. **curate** — a curation run over the batch's items (``HitBatch.loop_curation`` says how);
3. **review** — when the run flags items: a review batch with the batch's provider and
   environment, launched only if its cost fits in what the budget cap leaves;
4. **resolve** — when that review batch turns complete: its votes decide the flagged items,
   and corrected labels become the items' labels (and so the exports').

Each stage is claimed once per batch (``hits.services.loop_stage_claim``) and records its state,
times, result and, when it stops or fails, the reason, which the batch's admin page shows. A
stopped loop starts nothing more.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import transaction

from annotation.aggregated_labels import APPLICABLE_KINDS, labels_apply_aggregated
from annotation.aggregation_services import DEFAULT_METHODS, dataset_aggregate
from annotation.jobs import enqueue_on_commit
from annotation.models import TaskKind
from hits.exceptions import HitsError
from hits.models import HitBatch, LoopStage
from hits.planning import hit_item_ids
from hits.selectors import hit_batch_cost_preview
from hits.services import hit_batch_launch, loop_origin, loop_stage_claim, loop_stage_finish

from ..exceptions import CurationError
from ..models import CurationRun, LabelIssue
from .resolve import curation_run_resolve
from .review import curation_run_review_batch
from .runs import curation_run_create, curation_run_execute

logger = logging.getLogger(__name__)
Stage = LoopStage.Stage
S = LoopStage.State
TASKS = {
    Stage.AGGREGATE: "curation.tasks.auto_loop_aggregate_task",
    Stage.CURATE: "curation.tasks.auto_loop_curate_task",
    Stage.REVIEW: "curation.tasks.auto_loop_review_task",
    Stage.RESOLVE: "curation.tasks.auto_loop_resolve_task",
}
CURATION_KEYS = ("feature_source", "feature_path", "detectors", "params")


class _Stop(Exception):
    """A stage that cannot go on, for a reason the researcher should read (not a failure)."""


def auto_loop_batch_completed(batch_id: int) -> None:
    """The hook hits calls when a batch turns complete: start the stage that waits on it."""
    batch = HitBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return
    if batch.auto_loop:
        enqueue_on_commit(TASKS[Stage.AGGREGATE], batch.pk)
    origin = loop_origin(batch)
    if origin is not None:
        enqueue_on_commit(TASKS[Stage.RESOLVE], origin.pk)


StageBody = Callable[[HitBatch, LoopStage], tuple[dict[str, Any], str | None]]


def _run(batch_id: int, stage: str, after: str | None, body: StageBody) -> str:
    """Claim the stage, run ``body`` (-> result, next stage or None) and record how it ended;
    the next stage starts once the record commits. Returns the stage's state, or why it was
    skipped."""
    row, why = loop_stage_claim(batch_id, stage, after=after)
    if row is None:
        return f"skipped: {why}"
    batch = HitBatch.objects.select_related("dataset").get(pk=batch_id)
    try:
        result, following = body(batch, row)
    except _Stop as exc:
        loop_stage_finish(row, S.STOPPED, result=row.result, reason=str(exc))
        return S.STOPPED
    except Exception as exc:
        # Whatever a stage raises is recorded on its row for the researcher, never re-raised
        # into the submission that completed the batch.
        logger.exception("automatic loop of batch %s: %s stage failed", batch_id, stage)
        loop_stage_finish(row, S.FAILED, reason=f"{type(exc).__name__}: {exc}")
        return S.FAILED
    loop_stage_finish(row, S.DONE, result=result)
    if following is not None:
        enqueue_on_commit(TASKS[following], batch_id)
    return S.DONE


def _aggregate(batch: HitBatch, row: LoopStage) -> tuple[dict[str, Any], str | None]:
    kind = batch.kind
    # Class votes (label, review) take the class-vote default, the label kind's first method.
    method = DEFAULT_METHODS[TaskKind.LABEL if kind in APPLICABLE_KINDS else kind][0]
    outcome = dataset_aggregate(batch.dataset, kind=kind, methods=[method])
    changed = None
    if kind in APPLICABLE_KINDS:
        changed = labels_apply_aggregated(batch.dataset, kind=kind, method=method)
    result = {
        "method": method,
        "items": outcome.num_items,
        "votes": outcome.num_votes,
        "resolved": outcome.resolved.get(method, 0),
        "labels_changed": changed,
    }
    return result, Stage.CURATE


def _batch_item_ids(batch: HitBatch) -> list[int]:
    ids: set[int] = set()
    for items, gold in batch.hits.values_list("items", "gold_items"):
        ids.update(i for i in hit_item_ids(batch.kind, items) if i not in set(gold or []))
    return sorted(ids)


def _curate(batch: HitBatch, row: LoopStage) -> tuple[dict[str, Any], str | None]:
    options = batch.loop_curation or {}
    unknown = sorted(set(options) - set(CURATION_KEYS))
    if unknown:
        raise _Stop(f"loop_curation: unknown keys {unknown}; use {list(CURATION_KEYS)}")
    run = curation_run_create(
        batch.dataset,
        items=_batch_item_ids(batch),
        feature_source=options.get("feature_source", CurationRun.FeatureSource.BUILTIN),
        feature_path=options.get("feature_path", ""),
        detectors=options.get("detectors", ()),
        params=options.get("params"),
    )
    row.result = {"run": run.pk}
    row.save(update_fields=["result"])
    run = curation_run_execute(run)
    if run.status != CurationRun.Status.DONE:
        raise CurationError(f"curation run {run.pk} failed: {run.message}")
    flagged = run.issues.count()
    result = {"run": run.pk, "flagged": flagged, "message": run.message}
    if not flagged:
        result["note"] = "no item flagged: nothing to review"
        return result, None
    return result, Stage.REVIEW


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _review(batch: HitBatch, row: LoopStage) -> tuple[dict[str, Any], str | None]:
    curated = batch.loop_stages.get(stage=Stage.CURATE)
    run = CurationRun.objects.get(pk=curated.result["run"])
    spent = hit_batch_cost_preview(batch, balance=None).total
    left = None if batch.budget_cap is None else batch.budget_cap - spent
    with transaction.atomic():
        review = curation_run_review_batch(
            run,
            provider=batch.provider,
            environment=batch.environment,
            reward=batch.reward,
            name=f"Review of {batch.name}"[:200],
        )
        cost = hit_batch_cost_preview(review, balance=None).total
        result = {"run": run.pk, "cost": _money(cost), "budget_left": _money(left)}
        if left is not None and cost > left:
            row.result = result
            # Rolls the review batch back: the issues stay open for a review by hand.
            transaction.set_rollback(True)
            raise _Stop(
                f"the review batch would cost ${cost:.2f}, but only ${max(left, Decimal(0)):.2f} "
                f"of the ${batch.budget_cap:.2f} budget cap is left (this batch costs "
                f"${spent:.2f}); raise the cap and send the issues to review by hand"
            )
        review.budget_cap = left
        review.save(update_fields=["budget_cap"])
    result["review_batch"] = review.pk
    loop_stage_finish(row, S.RUNNING, result=result, launched_batch=review)
    try:
        hit_batch_launch(review, user=batch.launched_by, confirm_live=True)
    except HitsError as exc:
        raise _Stop(f"review batch {review.pk} was not launched: {exc}") from None
    review.refresh_from_db(fields=["status"])
    result["review_status"] = review.status
    return result, None


def _resolve(batch: HitBatch, row: LoopStage) -> tuple[dict[str, Any], str | None]:
    reviewed = batch.loop_stages.select_related("launched_batch").get(stage=Stage.REVIEW)
    run = CurationRun.objects.get(pk=reviewed.result["run"])
    curation_run_resolve(run, final=True)
    # Counted over the batch's issues, whoever resolved them (the periodic job may have
    # settled some as their votes came in).
    verdicts = Counter(
        run.issues.filter(review_batch_id=reviewed.launched_batch_id).values_list(
            "resolution", flat=True
        )
    )
    R = LabelIssue.Resolution
    return {
        "run": run.pk,
        "review_batch": reviewed.launched_batch_id,
        "corrected": verdicts[R.CONFIRMED],
        "errors": verdicts[R.ERROR],
        "kept": verdicts[R.KEPT],
        "no_consensus": verdicts[R.NO_CONSENSUS],
    }, None


def auto_loop_aggregate(batch_id: int) -> str:
    """Stage 1: aggregate the complete batch's votes and apply the labels."""
    return _run(batch_id, Stage.AGGREGATE, None, _aggregate)


def auto_loop_curate(batch_id: int) -> str:
    """Stage 2: a curation run over the batch's items, on the labels just applied."""
    return _run(batch_id, Stage.CURATE, Stage.AGGREGATE, _curate)


def auto_loop_review(batch_id: int) -> str:
    """Stage 3: the run's flagged items to a review batch, within the budget cap."""
    return _run(batch_id, Stage.REVIEW, Stage.CURATE, _review)


def auto_loop_resolve(batch_id: int) -> str:
    """Stage 4: the review batch's votes correct the flagged items' labels."""
    return _run(batch_id, Stage.RESOLVE, Stage.REVIEW, _resolve)
