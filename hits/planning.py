"""Which items a batch covers and how they are cut into HITs (through the task-kind registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from annotation import kinds
from annotation.models import Item

from .models import HitBatch, ItemSelection

# Item selections supplied by an app above hits: name -> fn(batch, items), returning the batch's
# items out of ``items`` (the dataset's) and raising ValueError when it cannot select them. The
# curation app registers ItemSelection.CURATION (a curation run's issues) when it loads.
ItemSelector = Callable[[HitBatch, QuerySet[Item]], QuerySet[Item]]
_ITEM_SELECTIONS: dict[str, ItemSelector] = {}


def item_selection_register(name: str, fn: ItemSelector) -> None:
    """Let another app choose the items of batches whose item_selection is ``name``."""
    _ITEM_SELECTIONS[name] = fn


@dataclass(frozen=True)
class PlannedHit:
    number: int
    items: list
    gold_items: list[int]
    max_assignments: int


def batch_items(batch: HitBatch) -> QuerySet[Item]:
    """The items a batch asks votes for, in dataset order."""
    items = Item.objects.filter(dataset_id=batch.dataset_id)
    selection = batch.item_selection
    if selection == ItemSelection.ALL:
        pass
    elif selection == ItemSelection.NEEDING_VOTES:
        items = items.annotate(
            n=Count("votes", filter=Q(votes__kind=batch.kind, votes__is_gold=False))
        ).filter(n__lt=batch.assignments_per_item)
    elif selection == ItemSelection.CURATION:
        select = _ITEM_SELECTIONS.get(selection)
        if select is None:
            raise ValueError("item selection 'curation' needs a curation run (no app provides it)")
        items = select(batch, items)
    elif selection == ItemSelection.EXPLICIT:
        items = items.filter(batches=batch)
    else:
        raise ValueError(f"unknown item selection {selection!r}")
    return items.order_by("index").distinct()


def gold_pool(batch: HitBatch, *, fields: tuple[str, ...] = ()) -> list[Item]:
    """Items with a known answer that gold problems are drawn from (none at gold rate 0);
    ``fields`` limits what is loaded of each."""
    if batch.gold_rate <= 0:
        return []
    pool = Item.objects.filter(dataset_id=batch.dataset_id, gold_label__isnull=False)
    if fields:
        pool = pool.only(*fields)
    return list(pool.order_by("index"))


# What building HITs reads of an item: loading only these keeps planning a 50,000-item batch
# from decoding every item's JSON fields.
PLAN_FIELDS = ("id", "dataset_id", "index", "label", "given_label", "gold_label")


def hit_plan(batch: HitBatch) -> list[PlannedHit]:
    """The HITs a batch will publish, numbered from 1; the same batch always plans the same."""
    kind = kinds.get(batch.kind)
    built = kind.build_hits(
        list(batch_items(batch).only(*PLAN_FIELDS)),
        items_per_hit=batch.items_per_hit,
        gold_items=gold_pool(batch, fields=PLAN_FIELDS),
        gold_rate=batch.gold_rate,
        params=batch.params or {},
        rng=batch.uid.int % (2**63),
    )
    return [
        PlannedHit(number, items, [int(g) for g in gold], batch.assignments_per_item)
        for number, (items, gold) in enumerate(built, start=1)
    ]


def hit_item_ids(batch_kind: str, hit_items: list) -> list[int]:
    """The item ids on a HIT, in page order (gold included)."""
    return kinds.get(batch_kind).item_ids(hit_items)
