"""Reads for the annotation app."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, QuerySet

from .aggregation_services import DEFAULT_METHODS
from .models import AggregatedLabel, Dataset, Item, TaskKind, Vote


@dataclass(frozen=True)
class DatasetLabels:
    """Per item, in export order (by ``index``): ids, given, current and aggregated labels.

    Arrays are (N,) int64 with -1 where a label is missing. ``aggregated`` is the newest
    aggregation of a kind that asks for the label itself (verify, select, review);
    ``complementary`` is the newest complementary posterior, which only narrows the classes
    down. ``probs`` is (N, K) float64, the probabilities stored with those aggregations, NaN
    rows where none was stored.
    """

    item_ids: np.ndarray
    given: np.ndarray
    current: np.ndarray
    aggregated: np.ndarray
    complementary: np.ndarray
    probs: np.ndarray

    @property
    def export(self) -> np.ndarray:
        """The label an export reports (-1 if none): a direct aggregated label, else the current
        label, else the given one, else the complementary posterior's guess.

        A complementary posterior from three votes is right far less often than a given label,
        so it fills gaps (e.g. CLImage-style items without labels) but never overrides one.
        """
        out = self.aggregated.copy()
        for fallback in (self.current, self.given, self.complementary):
            out = np.where(out >= 0, out, fallback)
        return out


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
    complementary = np.full(n, -1, dtype=np.int64)
    probs = np.full((n, k), np.nan)
    direct = np.zeros(n, dtype=bool)
    pos = {item_id: i for i, item_id in enumerate(ids.tolist())}
    latest = (
        AggregatedLabel.objects.filter(item__dataset=dataset, label__gte=0)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "kind", "method", "label", "probs")
    )
    for item_id, kind, _method, label, p in preferred_aggregates(latest.iterator(chunk_size=2000)):
        i = pos[item_id]
        is_direct = kind != TaskKind.COMPLEMENTARY
        (aggregated if is_direct else complementary)[i] = label
        if p is not None and len(p) == k and (is_direct or not direct[i]):
            probs[i] = p
        direct[i] |= is_direct
    return DatasetLabels(ids, given, current, aggregated, complementary, probs)


def preferred_aggregates(rows) -> list[tuple]:
    """One row per (item, kind): the kind's preferred method (first in its default list, e.g.
    Dawid-Skene before majority for class labels), the newest among equals; returned in the
    rows' own (time) order, so per item the newest kind comes last."""
    best: dict[tuple[int, str], tuple[int, int, tuple]] = {}
    for seq, row in enumerate(rows):
        ranks = DEFAULT_METHODS.get(row[1], ())
        rank = ranks.index(row[2]) if row[2] in ranks else len(ranks)
        key = (row[0], row[1])
        if key not in best or rank <= best[key][0]:
            best[key] = (rank, seq, row)
    return [row for _, _, row in sorted(best.values(), key=lambda v: v[1])]


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
