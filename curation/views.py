"""Researcher pages of the curation app (staff only)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from annotation.images import rendition_url

from .models import CurationRun, LabelIssue
from .selectors import SORTS, issue_list, run_summary

PAGE_SIZE = 120


def _name(names: list[str], label: int | None) -> str:
    if label is None or not 0 <= label < len(names):
        return "—"
    return names[label]


@staff_member_required
def run_gallery(request, pk: int):
    """The run's flagged items as a gallery: current vs. suggested label and score, sortable."""
    run = get_object_or_404(CurationRun.objects.select_related("dataset"), pk=pk)
    sort = request.GET.get("sort", "score")
    if sort not in SORTS:
        sort = "score"
    resolution = request.GET.get("resolution", "")
    if resolution not in LabelIssue.Resolution.values:
        resolution = ""
    page = Paginator(issue_list(run, sort=sort, resolution=resolution), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    names = run.dataset.class_names
    cards = [
        {
            "issue": issue,
            "image": rendition_url(issue.item, 128),
            "current": _name(names, issue.current_label),
            "suggested": _name(names, issue.suggested_label),
            "resolved": _name(names, issue.resolved_label),
        }
        for issue in page.object_list
    ]
    return render(
        request,
        "curation/run_gallery.html",
        {
            "run": run,
            "summary": run_summary(run),
            "cards": cards,
            "page": page,
            "sort": sort,
            "sorts": [
                ("score", "score"),
                ("index", "index"),
                ("label", "current label"),
                ("suggested", "suggested label"),
            ],
            "resolution": resolution,
            "resolutions": LabelIssue.Resolution.choices,
        },
    )
