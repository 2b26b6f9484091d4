"""Reads for the curation app."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from annotation.models import Item

from .models import CurationRun, LabelIssue, ReviewBatch

R = LabelIssue.Resolution
ERRORS = (R.CONFIRMED, R.ERROR)
VERDICTS = (R.CONFIRMED, R.ERROR, R.KEPT)
SORTS = {
    "score": ("-score", "item__index"),
    "-score": ("score", "item__index"),
    "index": ("item__index",),
    "-index": ("-item__index",),
    "label": ("current_label", "-score"),
    "suggested": ("suggested_label", "-score"),
}


def run_items(run: CurationRun) -> QuerySet[Item]:
    """The items a run checks, in index order (see CurationRun.item_selection)."""
    sel = run.item_selection or {}
    items = Item.objects.filter(dataset_id=run.dataset_id)
    if "item_ids" in sel:
        items = items.filter(pk__in=[int(i) for i in sel["item_ids"]])
    if "indices" in sel:
        items = items.filter(index__in=[int(i) for i in sel["indices"]])
    if sel.get("start") is not None:
        items = items.filter(index__gte=int(sel["start"]))
    if sel.get("stop") is not None:
        items = items.filter(index__lt=int(sel["stop"]))
    if sel.get("split"):
        items = items.filter(split=sel["split"])
    return items.order_by("index")


def issue_list(run: CurationRun, *, sort: str = "score", resolution: str = "") -> QuerySet:
    """A run's issues with their items, sorted by one of SORTS."""
    qs = run.issues.select_related("item")
    if resolution:
        qs = qs.filter(resolution=resolution)
    return qs.order_by(*SORTS.get(sort, SORTS["score"]))


@dataclass(frozen=True)
class RunSummary:
    """Issue counts by resolution and the run's precision once reviews are in.

    precision = confirmed errors (corrected or not) / issues with a verdict (error or kept);
    None until at least one issue has a verdict.
    """

    counts: dict[str, int]
    total: int
    reviewed: int
    errors: int
    corrected: int

    @property
    def precision(self) -> float | None:
        return self.errors / self.reviewed if self.reviewed else None


def run_summary(run: CurationRun) -> RunSummary:
    counts = {key: 0 for key in R.values}
    for row in run.issues.values("resolution").annotate(n=Count("id")):
        counts[row["resolution"]] = row["n"]
    return RunSummary(
        counts=counts,
        total=sum(counts.values()),
        reviewed=sum(counts[k] for k in VERDICTS),
        errors=sum(counts[k] for k in ERRORS),
        corrected=counts[R.CONFIRMED],
    )


def runs_awaiting_resolution() -> QuerySet[CurationRun]:
    """Runs with issues in review (the periodic resolver's work list)."""
    return CurationRun.objects.filter(issues__resolution=R.IN_REVIEW).distinct()


def review_batch_items(batch, items: QuerySet[Item]) -> QuerySet[Item]:
    """The items of a batch selecting "curation" (out of ``items``, its dataset's): the issues of
    its run that it reviews, or, for a batch drafted by hand, the run's issues still open.

    Raises:
        ValueError: the batch is linked to no curation run.
    """
    run_id = ReviewBatch.objects.filter(batch_id=batch.pk).values_list("run_id", flat=True).first()
    if run_id is None:
        raise ValueError("item selection 'curation' needs a curation run")
    return items.filter(
        Q(label_issues__resolution=R.IN_REVIEW, label_issues__review_batch=batch)
        | Q(label_issues__resolution=R.OPEN),
        label_issues__run_id=run_id,
    )


def issue_suggestions(
    item_ids: list[int], run_id: int | None = None
) -> dict[int, tuple[int | None, int]]:
    """{item id: (current label, suggested label)} from the open or in-review issues of the run
    (any run when None; the newest run wins): the review task's suggestions."""
    qs = LabelIssue.objects.filter(item_id__in=item_ids, resolution__in=[R.OPEN, R.IN_REVIEW])
    if run_id is not None:
        qs = qs.filter(run_id=run_id)
    out: dict[int, tuple[int | None, int]] = {}
    for item_id, current, suggested in qs.order_by("run_id", "id").values_list(
        "item_id", "current_label", "suggested_label"
    ):
        out[item_id] = (current, suggested)  # the newest run wins
    return out
