"""Verify a label (Clothing-ADC noise estimate): Correct / Not sure / Wrong.

Hit.items: ``[{"item": item_id, "label": shown_label}, ...]`` (20 per HIT by default). The label
is frozen when the HIT is built, so what the worker saw is what the vote records even if the
item's label changes meanwhile. A bare item id is accepted too: it shows the item's current
label (else its given label).
HitBatch.params: ``gold_wrong_label_rate`` (default 0.5): the share of gold problems shown with a
wrong label, so a worker who always answers "Correct" fails them.
Votes: answer 0 correct, 1 not sure, 2 wrong; ``shown_label`` the label asked about.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..aggregation import ANSWER_CORRECT, ANSWER_UNSURE, ANSWER_WRONG
from . import base

CHOICES = ((ANSWER_CORRECT, "Correct"), (ANSWER_UNSURE, "Not sure"), (ANSWER_WRONG, "Wrong"))


def shown_label(entry: Any, item) -> int | None:
    if isinstance(entry, dict) and entry.get("label") is not None:
        return int(entry["label"])
    return base.current_label(item)


def other_label(label: int, num_classes: int, r) -> int:
    """A class other than ``label``, uniformly at random."""
    pick = r.randrange(num_classes - 1)
    return pick + 1 if pick >= label else pick


class Verify(base.FlatKind):
    name = "verify"
    template = "tasks/verify.html"
    default_items_per_hit = 20
    typical_seconds_per_problem = 3.0  # one of three buttons
    default_assignments_per_item = 3

    def build(self, req):
        """HITs of ``{"item", "label"}`` entries; gold problems show a wrong label at
        ``gold_wrong_label_rate``."""
        wrong_rate = float(req.params.get("gold_wrong_label_rate", 0.5))
        unlabelled = [i.pk for i in req.items if base.current_label(i) is None]
        if unlabelled:
            raise ValueError(f"items {unlabelled[:10]} have no label to verify")
        num_classes = req.num_classes()

        def gold_entry(item, r):
            label = item.gold_label
            if num_classes > 1 and r.random() < wrong_rate:
                label = other_label(label, num_classes, r)
            return {"item": item.pk, "label": label}

        return base.build_flat_hits(
            req,
            entry=lambda item: {"item": item.pk, "label": base.current_label(item)},
            gold_entry=gold_entry,
        )

    def needs_item_row(self, hit, entry) -> bool:
        return not (isinstance(entry, dict) and entry.get("label") is not None)

    def allowed_answers(self, hit, assignment, entry, item):
        return [value for value, _ in CHOICES]

    def vote_fields(self, hit, assignment, entry, item, answer):
        return {"shown_label": shown_label(entry, item)}

    def question_html(self, problem, ctx) -> str:
        shown = escape(problem.extra["shown"])
        label = f'<strong class="label">{shown}</strong>'
        return f"This image has been labeled as {label}. Is the label correct?"

    def page_context(self, hit, assignment) -> dict[str, Any]:
        dataset = hit.batch.dataset
        ids = self.item_ids(hit.items)
        rows = base.hit_item_rows(ids)
        problems = []
        for number, (entry, item_id) in enumerate(zip(hit.items, ids, strict=True), start=1):
            item = rows[item_id]
            label = shown_label(entry, item)
            problem = base.problem_for(number, item, shown=base.class_name(dataset, label))
            problem.choices = [base.Choice(str(v), text, str(v + 1)) for v, text in CHOICES]
            problems.append(problem)
        examples = base.examples_by_class(hit, per_class=1)
        pair = None
        classes = sorted(examples)
        if len(classes) >= 2:
            right = base.example_view(examples[classes[0]][0], dataset, size=128)
            wrong = base.example_view(examples[classes[1]][0], dataset, size=128)
            pair = {"right": right, "wrong": wrong, "label": right["name"]}
        return {
            "title": "Is each image's label correct?",
            "problems": problems,
            "pair": pair,
            "num_keys": len(CHOICES),
        }


KIND = Verify()
