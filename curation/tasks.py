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
