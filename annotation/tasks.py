"""Celery tasks of the annotation app: thin wrappers around one service each."""

from pathlib import Path

from celery import shared_task


@shared_task
def dataset_export_task(dataset_id: int, fmt: str, output: str, **options) -> str:
    from .exporters import dataset_export
    from .models import Dataset

    dataset = Dataset.objects.get(pk=dataset_id)
    return str(dataset_export(dataset, fmt, Path(output), **options))


@shared_task
def aggregate_votes_task(run_id: int) -> str:
    from .aggregation_services import aggregation_run_execute

    return aggregation_run_execute(run_id).status
