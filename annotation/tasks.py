"""Celery tasks of the annotation app: thin wrappers around one service each."""

from pathlib import Path

from celery import shared_task


@shared_task
def dataset_export_task(dataset_id: int, fmt: str, output: str, **options) -> str:
    from .exporters import dataset_export
    from .models import Dataset

    dataset = Dataset.objects.get(pk=dataset_id)
    return str(dataset_export(dataset, fmt, Path(output), **options))
