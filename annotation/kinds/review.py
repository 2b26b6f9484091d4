"""Review a flagged label (label-errors study): given / suggested / both / neither.

Hit.items: ``[{"item": item_id, "given": label, "suggested": label}, ...]`` (10 per HIT by
default; 5 workers per item). Both labels are frozen when the HIT is built. A bare item id is
accepted too: the given label is the item's current label and the suggested one comes from
``HitBatch.params["suggested"][str(item_id)]``, else the item's newest open LabelIssue.
build_hits params: ``suggested`` ({item id: label}) and/or ``curation_run`` (a CurationRun id
whose LabelIssues supply the suggestion); an item with neither is refused.
Gold problems show the gold label as given or as suggested (even odds) against another class.
Per (assignment, item) the two labels are shown in a pseudo-random order (an HMAC of the pair
with the site secret, so a reload shows the same; a preview uses one fixed key per HIT), so the
given label does not always come first.
Votes: answer 0 given, 1 suggested, 2 both, 3 neither, whatever the order shown (the page maps
the shown choices back); ``shown_label`` / ``suggested_label`` hold the given and suggested
labels, and ``candidates`` the two labels in the order shown (``[given, suggested]`` or
``[suggested, given]``; null on votes from before the order was recorded, and on imports).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from html import escape
from typing import Any

from django.utils.crypto import salted_hmac

from ..aggregation import (
    REVIEW_ANSWERS,
    REVIEW_BOTH,
    REVIEW_GIVEN,
    REVIEW_NEITHER,
    REVIEW_SUGGESTED,
)
from .base import (
    Choice,
    FlatKind,
    build_flat_hits,
    class_name,
    current_label,
    example_view,
    examples_by_class,
    hit_item_rows,
    problem_for,
)
from .verify import other_label

# Where suggested labels come from when params give none: fn(item_ids, run_id) -> {item id:
# (current label or None, suggested label)}, run_id None meaning any run. The curation app
# registers its open label issues when it loads; with nothing registered there are none.
SuggestionSource = Callable[[list[int], int | None], dict[int, tuple[int | None, int]]]
_SUGGESTION_SOURCES: list[SuggestionSource] = []


def suggestion_source_register(fn: SuggestionSource) -> None:
    """Set the source of suggested labels (the latest registration wins)."""
    _SUGGESTION_SOURCES[:] = [fn]


def _issue_suggestions(item_ids, run_id=None) -> dict[int, tuple[int | None, int]]:
    if not _SUGGESTION_SOURCES:
        return {}
    return _SUGGESTION_SOURCES[0](list(item_ids), run_id)


def labels_for(entry: Any, item, params: dict) -> tuple[int | None, int | None]:
    """(given, suggested) for one Hit.items entry."""
    if isinstance(entry, dict) and entry.get("suggested") is not None:
        given = entry.get("given")
        return (current_label(item) if given is None else int(given)), int(entry["suggested"])
    suggested = (params.get("suggested") or {}).get(str(item.pk))
    if suggested is not None:
        return current_label(item), int(suggested)
    issue = _issue_suggestions([item.pk]).get(item.pk)
    if issue is None:
        return current_label(item), None
    given = issue[0] if issue[0] is not None else current_label(item)
    return given, issue[1]


def suggested_first(key: str, item_id: int) -> bool:
    """Whether the suggested label is shown before the given one; the same for the same key."""
    digest = salted_hmac("annotation.kinds.review", f"{key}:{item_id}").digest()
    return bool(digest[0] & 1)


class Review(FlatKind):
    name = "review"
    template = "tasks/review.html"
    page_per_assignment = True  # each assignment has its own order of the labels
    default_items_per_hit = 10
    default_assignments_per_item = 5
    typical_seconds_per_problem = 6.0  # two labels to weigh against the image

    def build(self, req):
        """HITs of ``{"item", "given", "suggested"}`` entries."""
        explicit = {int(k): int(v) for k, v in (req.params.get("suggested") or {}).items()}
        from_issues = _issue_suggestions(
            [i.pk for i in req.items if i.pk not in explicit], req.params.get("curation_run")
        )
        entries: dict[int, dict] = {}
        missing = []
        for item in req.items:
            if item.pk in explicit:
                given, suggested = current_label(item), explicit[item.pk]
            elif item.pk in from_issues:
                given, suggested = from_issues[item.pk]
                given = current_label(item) if given is None else given
            else:
                missing.append(item.pk)
                continue
            entries[item.pk] = {"item": item.pk, "given": given, "suggested": suggested}
        if missing:
            raise ValueError(
                f"items {missing[:10]} have no suggested label (give params['suggested'] or "
                "a curation run with open issues for them)"
            )
        num_classes = req.num_classes()

        def gold_entry(item, r):
            other = other_label(item.gold_label, num_classes, r)
            if r.random() < 0.5:
                return {"item": item.pk, "given": item.gold_label, "suggested": other}
            return {"item": item.pk, "given": other, "suggested": item.gold_label}

        if num_classes < 2:
            req = dataclasses.replace(req, gold=[])
        return build_flat_hits(req, entry=lambda item: entries[item.pk], gold_entry=gold_entry)

    def suggested_first_for(self, hit, assignment, item_id: int) -> bool:
        """Whether this assignment (or the HIT's preview) shows the suggested label first."""
        key = f"a{assignment.pk}" if assignment is not None else f"preview-h{hit.pk}"
        return suggested_first(key, item_id)

    def needs_item_row(self, hit, entry) -> bool:
        # labels_for reads the item's current label unless the entry names both labels
        return not (
            isinstance(entry, dict)
            and entry.get("suggested") is not None
            and entry.get("given") is not None
        )

    def allowed_answers(self, hit, assignment, entry, item):
        return range(len(REVIEW_ANSWERS))

    def vote_fields(self, hit, assignment, entry, item, answer):
        given, suggested = labels_for(entry, item, hit.batch.params or {})
        shown = [given, suggested]
        if self.suggested_first_for(hit, assignment, item.pk):
            shown.reverse()
        return {"shown_label": given, "suggested_label": suggested, "candidates": shown}

    def question_html(self, problem, ctx) -> str:
        """ "Given label X, suggested label Y. Which fits this image?" in the page's order."""
        parts = []
        for n, label in enumerate(problem.extra["labels"]):
            role = escape(label["role"])
            alt = " alt" if label["role"] == "suggested" else ""
            name = escape(label["name"])
            lead = role[:1].upper() + role[1:] if n == 0 else f", {role}"
            parts.append(f'{lead} label <strong class="label{alt}">{name}</strong>')
        return "".join(parts) + ". Which fits this image?"

    def page_context(self, hit, assignment) -> dict[str, Any]:
        dataset = hit.batch.dataset
        params = hit.batch.params or {}
        ids = self.item_ids(hit.items)
        rows = hit_item_rows(ids)
        examples = examples_by_class(hit, per_class=1)
        problems = []
        for number, (entry, item_id) in enumerate(zip(hit.items, ids, strict=True), start=1):
            item = rows[item_id]
            given, suggested = labels_for(entry, item, params)
            g, s = class_name(dataset, given), class_name(dataset, suggested)
            # Label choices (and their examples) in this assignment's order; the values stay
            # the canonical answers, so a click on the given label stores 0 wherever it sits.
            labels = [
                (given, g, "given", REVIEW_GIVEN),
                (suggested, s, "suggested", REVIEW_SUGGESTED),
            ]
            if self.suggested_first_for(hit, assignment, item_id):
                labels.reverse()
            refs = [
                {**example_view(examples[c][0], dataset), "role": role}
                for c, _, role, _ in labels
                if c in examples
            ]
            problem = problem_for(
                number,
                item,
                given=g,
                suggested=s,
                labels=[{"name": name, "role": role} for _, name, role, _ in labels],
                refs=refs,
            )
            problem.choices = [
                Choice(str(value), name, str(n), f"the {role} label")
                for n, (_, name, role, value) in enumerate(labels, start=1)
            ]
            problem.choices += [
                Choice(str(REVIEW_BOTH), "Both", "3", "the image fits both"),
                Choice(str(REVIEW_NEITHER), "Neither", "4", "it is something else"),
            ]
            problems.append(problem)
        return {
            "title": "Which label fits each image?",
            "problems": problems,
            "num_keys": len(REVIEW_ANSWERS),
        }


KIND = Review()
