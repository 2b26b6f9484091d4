"""Celery tasks of the curation app (routed to the ``curation`` queue): one service each.

Nothing here imports torch at module level; curation_run_execute imports the engine when it runs.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def curation_run_execute_task(run_id: int) -> str:
    """Run the engine over a run's items; the run records progress, timings and any failure."""
    from .models import CurationRun
    from .services import curation_run_execute

    run = CurationRun.objects.filter(pk=run_id).first()
    if run is None or run.status == CurationRun.Status.DONE:
        return "skipped"
    return curation_run_execute(run).status


@shared_task
def curation_runs_resolve_task() -> dict:
    """The beat job: resolve every run whose review batches have enough votes."""
    from .services import curation_runs_resolve

    return {str(k): v for k, v in curation_runs_resolve().items()}


@shared_task(acks_late=True)
def auto_loop_aggregate_task(batch_id: int) -> str:
    """The automatic loop's first stage: the complete batch's votes become labels."""
    from .services import auto_loop_aggregate

    return auto_loop_aggregate(batch_id)


@shared_task(acks_late=True)
def auto_loop_curate_task(batch_id: int) -> str:
    """The loop's curation run over the batch's items."""
    from .services import auto_loop_curate

    return auto_loop_curate(batch_id)


@shared_task(acks_late=True)
def auto_loop_review_task(batch_id: int) -> str:
    """The loop's review batch for the flagged items, within the budget cap."""
    from .services import auto_loop_review

    return auto_loop_review(batch_id)


@shared_task(acks_late=True)
def auto_loop_resolve_task(batch_id: int) -> str:
    """The loop's last stage: the review votes correct the labels."""
    from .services import auto_loop_resolve

    return auto_loop_resolve(batch_id)


@shared_task(acks_late=True)
def retrieval_run_rank_task(run_id: int) -> str:
    """Embed and rank a retrieval run's pool (resuming a stored embedding after a crash)."""
    from .services.retrieval import retrieval_run_rank_background

    return retrieval_run_rank_background(run_id)
