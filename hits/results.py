"""A batch's results as the researcher downloads them from its page: one CSV with a row per
vote, one with a row per item (its labels, the crowd's label with its confidence, the votes).
Workers appear only as their keyed hashes."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from annotation.exporters import vote_rows
from annotation.models import AggregatedLabel, Item, Vote
from annotation.selectors import preferred_aggregates

from .models import HitBatch
from .planning import hit_item_ids

RESULT_ROWS = ("votes", "items")
ITEM_COLUMNS = [
    "task", "item_id", "name", "given_label", "given_class", "label", "label_class",
    "crowd_label", "crowd_class", "crowd_confidence", "method", "votes", "gold_label",
]  # fmt: skip


class _Echo:
    """A file that hands back what is written: csv.writer's rows, streamed as they come."""

    def write(self, value: str) -> str:
        return value


def _csv(rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    return (writer.writerow(row) for row in rows)


def batch_item_ids(batch: HitBatch) -> list[int]:
    """The items on the batch's HITs (gold included), each once, in HIT order."""
    seen: dict[int, None] = {}
    for items in batch.hits.order_by("number").values_list("items", flat=True).iterator():
        seen.update(dict.fromkeys(hit_item_ids(batch.kind, items)))
    return list(seen)


def item_rows(batch: HitBatch) -> Iterator[list]:
    """The header, then per item of the batch: its labels and the crowd's label for the kind."""
    names = batch.dataset.class_names or []

    def name(label: int | None) -> str:
        return names[label] if label is not None and 0 <= label < len(names) else ""

    ids = batch_item_ids(batch)
    crowd = {
        row[0]: row
        for row in preferred_aggregates(
            AggregatedLabel.objects.filter(item_id__in=ids, kind=batch.kind)
            .order_by("item_id", "created_at", "id")
            .values_list("item_id", "kind", "method", "label", "confidence")
        )
    }
    votes = dict(
        _counted(batch).values("item_id").annotate(n=Count("id")).values_list("item_id", "n")
    )
    yield ITEM_COLUMNS
    fields = ("pk", "index", "name", "given_label", "label", "gold_label")
    items = Item.objects.filter(pk__in=ids).order_by("index").values_list(*fields)
    for pk, index, item_name, given, label, gold in items.iterator(chunk_size=2000):
        _, _, method, crowd_label, confidence = crowd.get(pk, (pk, "", "", None, None))
        crowd_label = None if crowd_label is None or crowd_label < 0 else crowd_label
        yield [
            index, pk, item_name, _blank(given), name(given), _blank(label), name(label),
            _blank(crowd_label), name(crowd_label),
            "" if confidence is None else f"{confidence:.4f}", method, votes.get(pk, 0),
            _blank(gold),
        ]  # fmt: skip


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def _counted(batch: HitBatch):
    """The batch's votes that count (those of unconfirmed assignments do not)."""
    return Vote.objects.counted().filter(assignment__hit__batch=batch)


@staff_member_required
@require_GET
def batch_results_csv(request: HttpRequest, pk: int, rows: str) -> StreamingHttpResponse:
    """``/hits/batches/<pk>/results-<rows>.csv``: ``rows`` is votes or items."""
    if rows not in RESULT_ROWS:
        raise Http404(f"results come as {' or '.join(RESULT_ROWS)}")
    batch = get_object_or_404(HitBatch.objects.select_related("dataset"), pk=pk)
    body = vote_rows(_counted(batch)) if rows == "votes" else item_rows(batch)
    response = StreamingHttpResponse(_csv(body), content_type="text/csv; charset=utf-8")
    filename = f"{slugify(batch.name) or 'batch'}-{batch.pk}-{rows}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
