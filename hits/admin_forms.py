"""The HitBatch admin form: items are chosen by id (a dataset may hold tens of thousands, so the
page never lists them), and an explicit choice must come from the batch's dataset."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html

from .models import HitBatch, ItemSelection

# How many chosen item ids a launched batch's page shows before "and N more".
SHOWN_ITEM_IDS = 20


class HitBatchAdminForm(forms.ModelForm):
    """The admin builds the fields (with its overrides) for HitBatch; this adds the checks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "items" in self.fields:
            # Ids only: the widget shows ids, and loading every chosen Item would not scale.
            self.initial["items"] = list(self.instance.items.values_list("pk", flat=True))

    def clean(self):
        data = super().clean()
        items, dataset = data.get("items"), data.get("dataset")
        if items is None or dataset is None or data.get("item_selection") != ItemSelection.EXPLICIT:
            return data
        foreign = list(
            items.exclude(dataset_id=dataset.pk).order_by("pk").values_list("pk", flat=True)[:10]
        )
        if foreign:
            self.add_error(
                "items",
                f"Items {', '.join(map(str, foreign))} are not in dataset {dataset.name}: "
                "choose items of the batch's own dataset.",
            )
        return data


def hit_batch_items_html(batch: HitBatch | None) -> str:
    """A launched batch's explicit items: how many, and the first few ids (never every one)."""
    if batch is None or batch.pk is None:
        return "—"
    ids = list(batch.items.order_by("pk").values_list("pk", flat=True)[: SHOWN_ITEM_IDS + 1])
    if not ids:
        return "none"
    total = len(ids) if len(ids) <= SHOWN_ITEM_IDS else batch.items.count()
    shown = ", ".join(map(str, ids[:SHOWN_ITEM_IDS]))
    more = f", and {total - SHOWN_ITEM_IDS} more" if total > SHOWN_ITEM_IDS else ""
    return format_html("{} item(s), ids {}{}", total, shown, more)
