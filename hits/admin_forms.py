"""The HitBatch admin form: items are chosen by id (a dataset may hold tens of thousands, so the
page never lists them), and an explicit choice must come from the batch's dataset."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html

from annotation.kinds.select import DEFAULT_GROUP_SIZE

from .models import HitBatch, ItemSelection
from .services.adaptive import ADAPTIVE_FIELDS, hit_batch_adaptive_refusal

# How many chosen item ids a launched batch's page shows before "and N more".
SHOWN_ITEM_IDS = 20


# What the size fields mean for each kind, in the researcher's words.
SIZE_LABELS = {
    "items_per_hit": (
        "Items per HIT",
        "Images a worker answers on one HIT; for select batches, tasks per HIT (each task shows "
        "up to “images per task” images of one class).",
    ),
    "assignments_per_item": (
        "Votes per item",
        "Distinct workers who answer each item (each HIT has this many places).",
    ),
}


class HitBatchAdminForm(forms.ModelForm):
    """The admin builds the fields (with its overrides) for HitBatch; this adds the checks and
    the fields a kind needs beyond the model's (a select task's size)."""

    images_per_task = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=DEFAULT_GROUP_SIZE,
        help_text=f"Select batches only: images shown in each task (default {DEFAULT_GROUP_SIZE}).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "items" in self.fields:
            # Ids only: the widget shows ids, and loading every chosen Item would not scale.
            self.initial["items"] = list(self.instance.items.values_list("pk", flat=True))
        for name, (label, help_text) in SIZE_LABELS.items():
            if name in self.fields:
                self.fields[name].label, self.fields[name].help_text = label, help_text
        if "images_per_task" in self.fields:
            self.initial["images_per_task"] = (self.instance.params or {}).get("group_size")

    def clean_images_per_task(self):
        n = self.cleaned_data.get("images_per_task")
        kind = self.cleaned_data.get("kind") or self.data.get("kind")
        if n is not None and kind != "select":
            raise forms.ValidationError("Only select batches show tasks of several images.")
        return n

    def _post_clean(self):
        # Before the model's own checks: a select task's size lives in the batch's params.
        n = self.cleaned_data.get("images_per_task")
        if n is not None:
            self.cleaned_data["params"] = {
                **(self.cleaned_data.get("params") or {}),
                "group_size": n,
            }
        super()._post_clean()

    def clean_loop_curation(self):
        # Left out of a form (older clients), the loop's curation options are "the defaults".
        value = self.cleaned_data.get("loop_curation") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError(
                'Give the curation options as a JSON object, e.g. {"detectors": ["knn"]}.'
            )
        return value

    def clean(self):
        data = super().clean()
        # Fields read-only on a launched batch keep the batch's own values.
        names = ("kind", "assignments_per_item", *ADAPTIVE_FIELDS)
        values = {f: data.get(f) if f in self.fields else getattr(self.instance, f) for f in names}
        why = hit_batch_adaptive_refusal(HitBatch(**values))
        if why and "max_votes" in self.fields:
            self.add_error("max_votes", f"Adaptive overlap: {why}.")
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
