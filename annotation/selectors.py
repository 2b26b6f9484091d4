"""Reads for the annotation app."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, QuerySet

from .models import AggregatedLabel, Dataset, Item, Vote


@dataclass(frozen=True)
class DatasetLabels:
    """Per item, in export order (by ``index``): ids, given, current and aggregated labels.

    Arrays are (N,) int64 with -1 where a label is missing; ``probs`` is (N, K) float64, the
    latest aggregation's probabilities, NaN rows where none was stored.
    """

    item_ids: np.ndarray
    given: np.ndarray
    current: np.ndarray
    aggregated: np.ndarray
    probs: np.ndarray

    @property
    def export(self) -> np.ndarray:
        """The label an export reports: aggregated, else current, else given (-1 if none)."""
        out = np.where(self.aggregated >= 0, self.aggregated, self.current)
        return np.where(out >= 0, out, self.given)


def dataset_labels(dataset: Dataset) -> DatasetLabels:
    rows = list(
        Item.objects.filter(dataset=dataset)
        .order_by("index")
        .values_list("id", "given_label", "label")
    )
    n, k = len(rows), dataset.num_classes
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    given = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64)
    current = np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64)
    aggregated = np.full(n, -1, dtype=np.int64)
    probs = np.full((n, k), np.nan)
    pos = {item_id: i for i, item_id in enumerate(ids.tolist())}
    latest = (
        AggregatedLabel.objects.filter(item__dataset=dataset, label__gte=0)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "label", "probs")
    )
    for item_id, label, p in latest.iterator(chunk_size=2000):
        i = pos[item_id]
        aggregated[i] = label
        if p is not None and len(p) == k:
            probs[i] = p
    return DatasetLabels(ids, given, current, aggregated, probs)


def dataset_counts(dataset: Dataset) -> dict[str, int]:
    items = Item.objects.filter(dataset=dataset)
    votes = Vote.objects.filter(item__dataset=dataset)
    return {
        "items": items.count(),
        "labelled_items": items.filter(given_label__isnull=False).count(),
        "votes": votes.count(),
        "voted_items": items.filter(votes__isnull=False).distinct().count(),
        "workers": votes.values("worker").distinct().count(),
    }


def item_list(
    dataset: Dataset, *, label: int | None = None, status: str | None = None
) -> QuerySet[Item]:
    """Items of a dataset; ``status`` is ``voted``, ``unvoted`` or ``aggregated``."""
    qs = Item.objects.filter(dataset=dataset).order_by("index")
    if label is not None:
        qs = qs.filter(label=label)
    if status == "voted":
        qs = qs.annotate(nv=Count("votes")).filter(nv__gt=0)
    elif status == "unvoted":
        qs = qs.annotate(nv=Count("votes")).filter(nv=0)
    elif status == "aggregated":
        qs = qs.filter(Q(aggregated__isnull=False)).distinct()
    return qs
