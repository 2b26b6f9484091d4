"""Complementary labels (CLImage): pick any one label the image is NOT, among 4 shown.

Hit.items: ``[item_id, ...]`` (10 per HIT by default).
HitBatch.params: ``num_candidates`` (default 4).
Per (assignment, item) the candidates are 4 distinct classes drawn uniformly at random from all
K and shown in random order, derived from an HMAC of the pair with the site secret so a reload
shows the same; they are stored with the vote, in display order, in ``Vote.candidates``.
"""

from __future__ import annotations

import random
from typing import Any

from django.utils.crypto import salted_hmac

from .base import (
    EXAMPLE_SIZE,
    Choice,
    FlatKind,
    build_flat_hits,
    class_name,
    example_view,
    examples_by_class,
    hit_item_rows,
    problem_for,
)

QUESTION_HTML = 'Choose any one <em class="neg">incorrect</em> label for this image'
QUESTION = QUESTION_HTML.replace('<em class="neg">', "").replace("</em>", "")
GALLERY_MAX_CLASSES = 20


def candidates(key: str, item_id: int, num_classes: int, k: int = 4) -> list[int]:
    """``min(k, num_classes)`` distinct labels in display order, the same for the same key."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    digest = salted_hmac("annotation.kinds.complementary", f"{key}:{item_id}").digest()
    return random.Random(int.from_bytes(digest[:16], "big")).sample(
        range(num_classes), min(k, num_classes)
    )


class Complementary(FlatKind):
    name = "complementary"
    template = "tasks/complementary.html"
    page_per_assignment = True  # each assignment has its own choices
    default_items_per_hit = 10
    typical_seconds_per_problem = 4.0  # one of four classes
    default_assignments_per_item = 3

    def build(self, req):
        """HITs of item ids."""
        return build_flat_hits(req, entry=lambda item: item.pk)

    def candidates_for(self, hit, assignment, item_id: int) -> list[int]:
        k = int((hit.batch.params or {}).get("num_candidates", 4))
        key = f"a{assignment.pk}" if assignment is not None else f"preview-h{hit.pk}"
        return candidates(key, item_id, hit.batch.dataset.num_classes, k)

    def needs_item_row(self, hit, entry) -> bool:
        return False  # the candidates come from the assignment and the item's id

    def allowed_answers(self, hit, assignment, entry, item):
        return self.candidates_for(hit, assignment, item.pk)

    def vote_fields(self, hit, assignment, entry, item, answer):
        return {"candidates": self.candidates_for(hit, assignment, item.pk)}

    def question_html(self, problem, ctx) -> str:
        return QUESTION_HTML

    def page_context(self, hit, assignment) -> dict[str, Any]:
        dataset = hit.batch.dataset
        ids = self.item_ids(hit.items)
        rows = hit_item_rows(ids)
        problems = []
        for number, item_id in enumerate(ids, start=1):
            problem = problem_for(number, rows[item_id])
            problem.choices = [
                Choice(str(label), class_name(dataset, label), str(n))
                for n, label in enumerate(self.candidates_for(hit, assignment, item_id), 1)
            ]
            problems.append(problem)
        examples = examples_by_class(hit, per_class=1)
        gallery = []
        if dataset.num_classes <= GALLERY_MAX_CLASSES:
            gallery = [
                example_view(examples[c][0], dataset, size=EXAMPLE_SIZE)
                for c in range(dataset.num_classes)
                if c in examples
            ]
        worked = None
        if examples:
            cls = min(examples)
            worked = example_view(examples[cls][0], dataset, size=128)
            others = [c for c in range(dataset.num_classes) if c != cls][:2]
            worked["good"] = [class_name(dataset, c) for c in others]
        return {
            "title": "Pick a wrong label for each image",
            "question": QUESTION,
            "problems": problems,
            "gallery": gallery,
            "worked": worked,
            "num_keys": max((len(p.choices) for p in problems), default=4),
        }


KIND = Complementary()
