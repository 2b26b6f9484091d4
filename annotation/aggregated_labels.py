"""Items' current labels from aggregated labels: what exports read as the label."""

from __future__ import annotations

from django.db import transaction

from .exceptions import AggregationError
from .models import AggregatedLabel, Dataset, Item, LabelChange, TaskKind

# Kinds whose aggregated label is a class of the dataset (verify/select: -1 or the shown label).
APPLICABLE_KINDS = (TaskKind.LABEL, TaskKind.REVIEW)


def labels_apply_aggregated(dataset: Dataset, *, kind: str, method: str) -> int:
    """Set each item's current label (``Item.label``) to its resolved aggregated label of
    (``kind``, ``method``), recording a LabelChange ``aggregation:<method>`` where it changes.

    Unresolved (-1) labels leave the item as it is. Returns how many items changed.
    """
    if kind not in APPLICABLE_KINDS:
        raise AggregationError(f"{kind} labels are not classes; apply label or review labels")
    rows = AggregatedLabel.objects.filter(
        item__dataset=dataset, kind=kind, method=method, label__gte=0
    ).values_list("item_id", "label")
    new = dict(rows)
    if not new:
        raise AggregationError(
            f"dataset {dataset.name} has no resolved {kind} labels of method {method!r}"
        )
    changed = []
    with transaction.atomic():
        items = Item.objects.select_for_update().filter(pk__in=new.keys()).only("id", "label")
        for item in items:
            if item.label != new[item.pk]:
                changed.append(
                    LabelChange(
                        item=item, old_label=item.label, new_label=new[item.pk],
                        reason=f"aggregated {kind} votes ({method})",
                        source=f"aggregation:{method}"[:64],
                    )
                )  # fmt: skip
                item.label = new[item.pk]
        Item.objects.bulk_update([c.item for c in changed], ["label"], batch_size=1000)
        LabelChange.objects.bulk_create(changed, batch_size=1000)
    return len(changed)
