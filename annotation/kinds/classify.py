"""Classify (stored as kind ``label``): which of the dataset's K classes does the image show?

Hit.items: ``[item_id, ...]`` (10 per HIT by default), gold items mixed in like the other kinds.
Every problem offers all K classes in class order; keys 1-9 and 0 pick the first ten, and above
``SEARCH_MIN_CLASSES`` classes a search box filters the list.
Votes: ``answer`` the class index picked.

One name in storage: ``TaskKind.LABEL`` (``"label"``) is what batches, votes and aggregated
labels hold; "Classify" is only how the UI names it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..models import TaskKind
from . import base

QUESTION = "Which class does this image show?"
KEYS = "1234567890"
SEARCH_MIN_CLASSES = 21
GALLERY_MAX_CLASSES = 20


class Classify(base.FlatKind):
    name = TaskKind.LABEL.value
    template = "tasks/classify.html"
    default_items_per_hit = 10
    default_assignments_per_item = 3

    def build(self, req):
        """HITs of item ids."""
        return base.build_flat_hits(req, entry=lambda item: item.pk)

    def needs_item_row(self, hit, entry) -> bool:
        return False

    def allowed_answers(self, hit, assignment, entry, item):
        return range(hit.batch.dataset.num_classes)

    def question_html(self, problem, ctx) -> str:
        return escape(QUESTION)

    def before_choices_html(self, problem, ctx) -> str:
        """A search box that shortens a long list of classes (task.js filters it)."""
        if not ctx.get("search"):
            return ""
        return (
            '<input type="text" class="class-search" role="searchbox" '
            f'placeholder="Search classes" aria-label="Search classes for image '
            f'{escape(problem.number)}" autocomplete="off">'
        )

    def page_context(self, hit, assignment) -> dict[str, Any]:
        dataset = hit.batch.dataset
        k = dataset.num_classes
        choices = [
            base.Choice(str(c), base.class_name(dataset, c), KEYS[c] if c < len(KEYS) else "")
            for c in range(k)
        ]
        ids = self.item_ids(hit.items)
        rows = base.hit_item_rows(ids)
        problems = []
        for number, item_id in enumerate(ids, start=1):
            problem = base.problem_for(number, rows[item_id])
            problem.choices = choices
            problems.append(problem)
        gallery = []
        if k <= GALLERY_MAX_CLASSES:
            examples = base.examples_by_class(hit, per_class=1)
            gallery = [
                base.example_view(examples[c][0], dataset, size=base.EXAMPLE_SIZE)
                for c in range(k)
                if c in examples
            ]
        return {
            "title": "Which class is each image?",
            "question": QUESTION,
            "problems": problems,
            "gallery": gallery,
            "search": k >= SEARCH_MIN_CLASSES,
            "num_keys": min(k, len(KEYS)),
        }


KIND = Classify()
