"""Select the matching images (Clothing-ADC test set): 20 images share one machine label; the
worker picks the ones that really match, at least ``min_select`` of them.

Hit.items: ``[{"label": k, "items": [item_id, ...]}, ...]``: one object per task (10 tasks per
HIT by default, so ``items_per_hit`` counts tasks here), up to ``group_size`` (20) images each.
An optional ``"attributes"`` ({name: value} or text) on a group overrides the class's attribute
text from ``Dataset.class_attributes``.
HitBatch.params: ``min_select`` (default 4; capped at the group's size), ``group_size`` (20).
Gold items join groups under the group's label: selecting one is right iff its gold label is
the group's label. Votes: one per image seen, answer 1 selected / 0 not, ``shown_label`` the
group's label, ``duration_ms`` the time spent on that task.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError

from ..models import Item
from .base import (
    THUMB_SIZE,
    Answer,
    Kind,
    class_name,
    current_label,
    example_view,
    examples_by_class,
    gold_count,
    hit_item_rows,
    problem_for,
)

DEFAULT_MIN_SELECT = 4
DEFAULT_GROUP_SIZE = 20


def attribute_pairs(value: Any) -> list[tuple[str, str]]:
    """``{"Color": "Navy"}`` or ``"Color: Navy, Material: silk"`` as (name, value) pairs."""
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [(str(k), str(v)) for k, v in value]
    pairs = []
    for part in str(value or "").split(","):
        name, sep, val = part.partition(":")
        if sep and name.strip() and val.strip():
            pairs.append((name.strip(), val.strip()))
        elif part.strip():
            pairs.append(("", part.strip()))
    return pairs


class Select(Kind):
    name = "select"
    template = "tasks/select.html"
    page_mode = "select"
    default_items_per_hit = 10
    typical_seconds_per_problem = 25.0  # a task of up to 20 images, looked at one by one
    default_assignments_per_item = 3

    def item_ids(self, hit_items) -> list[int]:
        return [int(i) for group in hit_items for i in group["items"]]

    def answer_fields(self, hit) -> list[str]:
        """Besides assignmentId: ``answers`` (the JSON list) and ``item_<id>`` (1 or 0)."""
        return ["answers", *(f"item_{i}" for i in self.item_ids(hit.items))]

    def min_select(self, hit, group) -> int:
        wanted = int((hit.batch.params or {}).get("min_select", DEFAULT_MIN_SELECT))
        return max(0, min(wanted, len(group["items"])))

    def build(self, req):
        """Group items by their current label into tasks of ``group_size``, gold mixed into each
        task, and ``items_per_hit`` tasks per HIT."""
        size = int(req.params.get("group_size", DEFAULT_GROUP_SIZE))
        if size < 1:
            raise ValueError(f"group_size must be positive, got {size}")
        r = req.rng
        pool_ids = {g.pk for g in req.gold}
        by_label: dict[int, list] = defaultdict(list)
        unlabelled = []
        for item in req.items:
            if item.pk in pool_ids:
                continue
            label = current_label(item)
            if label is None:
                unlabelled.append(item.pk)
            else:
                by_label[label].append(item)
        if unlabelled:
            raise ValueError(f"items {unlabelled[:10]} have no label to group them by")
        n_gold = gold_count(size, req.gold_rate, len(req.gold))
        per_group = size - n_gold
        groups = [
            (label, members[start : start + per_group])
            for label, members in sorted(by_label.items())
            for start in range(0, len(members), per_group)
        ]
        hits = []
        for start in range(0, len(groups), req.items_per_hit):
            used: set[int] = set()
            tasks, golds = [], []
            for label, members in groups[start : start + req.items_per_hit]:
                ids = [m.pk for m in members]
                for _ in range(n_gold):
                    free = [g for g in req.gold if g.pk not in used]
                    same = [g for g in free if g.gold_label == label]
                    if not free:
                        break
                    pick = r.choice(same if same and r.random() < 0.5 else free)
                    used.add(pick.pk)
                    ids.append(pick.pk)
                    golds.append(pick.pk)
                r.shuffle(ids)
                tasks.append({"label": label, "items": ids})
            hits.append((tasks, golds))
        return hits

    def page_context(self, hit, assignment) -> dict[str, Any]:
        dataset = hit.batch.dataset
        rows = hit_item_rows(self.item_ids(hit.items))
        examples = examples_by_class(hit, per_class=2)
        tasks = []
        for number, group in enumerate(hit.items, start=1):
            label = int(group["label"])
            attrs = group.get("attributes")
            if attrs is None:
                attrs = (dataset.class_attributes or {}).get(class_name(dataset, label), "")
            good = [example_view(i, dataset, size=THUMB_SIZE) for i in examples.get(label, [])]
            bad = [
                example_view(items[0], dataset, size=THUMB_SIZE)
                for cls, items in sorted(examples.items())
                if cls != label
            ][:2]
            tiles = [
                problem_for(n, rows[int(i)], THUMB_SIZE, key=_key_name(n))
                for n, i in enumerate(group["items"], start=1)
            ]
            tasks.append(
                {
                    "number": number,
                    "label": label,
                    "name": class_name(dataset, label),
                    "attributes": attribute_pairs(attrs),
                    "min_select": self.min_select(hit, group),
                    "tiles": tiles,
                    "good": good,
                    "bad": bad,
                }
            )
        return {
            "title": "Select the images that match",
            "tasks": tasks,
            "min_select": max((t["min_select"] for t in tasks), default=0),
        }

    def validate(self, hit, assignment, answers: dict[int, Answer]) -> list[dict[str, Any]]:
        """One vote per image on the HIT (1 selected, 0 not); each task needs its minimum."""
        ids = self.item_ids(hit.items)
        foreign = [i for i in answers if i not in set(ids)]
        if foreign:
            raise ValidationError(f"items {sorted(foreign)[:10]} are not on this HIT")
        existing = set(Item.objects.filter(pk__in=ids).values_list("pk", flat=True))
        gold = {int(g) for g in hit.gold_items or ()}
        votes = []
        for number, group in enumerate(hit.items, start=1):
            chosen = 0
            for i in group["items"]:
                item_id = int(i)
                ans = answers.get(item_id)
                if ans is None:
                    raise ValidationError(f"task {number}: image {item_id} has no answer")
                if ans.answer not in (0, 1):
                    raise ValidationError(
                        f"task {number}: answer {ans.answer} for image {item_id} is not 0 or 1"
                    )
                if item_id not in existing:
                    raise ValidationError(f"task {number}: item {item_id} no longer exists")
                chosen += ans.answer
                votes.append(
                    {
                        "item_id": item_id,
                        "kind": self.name,
                        "answer": ans.answer,
                        "shown_label": int(group["label"]),
                        "is_gold": item_id in gold,
                        "duration_ms": ans.duration_ms,
                    }
                )
            need = self.min_select(hit, group)
            if chosen < need:
                raise ValidationError(
                    f"task {number}: {chosen} images selected, at least {need} needed"
                )
        return votes


def _key_name(n: int) -> str:
    """The shortcut shown on tile ``n`` (1-based): 1..9, 0, then Shift with 1..9, 0."""
    digit = str(n % 10)
    return digit if n <= 10 else f"⇧{digit}"


KIND = Select()
