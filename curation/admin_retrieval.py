"""The researcher's retrieval page in the admin: set target, confidence, budget and rounds; see
per-class precision curves, cost so far and the images kept; send or fold a round."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from annotation.images import rendition_url

from .exceptions import RetrievalRefused
from .models import RetrievalCandidate, RetrievalRun
from .services.retrieval_output import KEPT_STATES, ClassSummary, retrieval_run_summary
from .services.retrieval_review import retrieval_review_fold, retrieval_review_launch
from .services.retrieval_rounds import retrieval_round_fold, retrieval_round_launch

C = RetrievalCandidate.State
CURVE_W, CURVE_H = 240, 90
KEPT_SHOWN = 12


def precision_curve(c: ClassSummary, target: float) -> str:
    """An SVG of the estimate (solid) and lower bound (dashed) per stretch against list depth,
    with the target as a red line."""
    if not c.curve:
        return "no stretch verified yet"
    depth = max(p["stop"] for p in c.curve) or 1

    def xy(pos: int, value: float) -> str:
        return f"{CURVE_W * pos / depth:.1f},{CURVE_H * (1 - value):.1f}"

    est = " ".join(xy(p["stop"], p["estimate"]) for p in c.curve)
    low = " ".join(xy(p["stop"], p["lower"]) for p in c.curve)
    y = CURVE_H * (1 - target)
    return format_html(
        '<svg width="{}" height="{}" style="background:#f8f8f8" role="img" '
        'aria-label="precision of {} by list depth"><line x1="0" x2="{}" y1="{}" y2="{}" '
        'stroke="#c33"/><polyline points="{}" fill="none" stroke="#258"/><polyline points="{}" '
        'fill="none" stroke="#258" stroke-dasharray="3 2"/></svg>',
        CURVE_W,
        CURVE_H,
        c.name,
        CURVE_W,
        y,
        y,
        est,
        low,
    )


@admin.register(RetrievalRun)
class RetrievalRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "bucket",
        "backend",
        "status",
        "target",
        "budget",
        "created_at",
    ]
    list_filter = ["status", "backend", "dataset"]
    fieldsets = [
        (None, {"fields": ["dataset", "bucket_field", "bucket", "backend", "status", "message"]}),
        (
            "Verification",
            {
                "fields": [
                    "target",
                    "confidence",
                    "budget",
                    "max_rounds",
                    "stretch",
                    "sample",
                    "reward",
                    "assignments_per_item",
                    "items_per_hit",
                    "gold_rate",
                ]
            },
        ),
        ("Results", {"fields": ["cost_so_far", "per_class", "kept_images", "output"]}),
    ]
    readonly_fields = [
        "dataset",
        "bucket_field",
        "bucket",
        "backend",
        "status",
        "message",
        "cost_so_far",
        "per_class",
        "kept_images",
        "output",
    ]
    actions = ["send_next_round", "fold_round", "send_review", "fold_review"]

    def has_add_permission(self, request) -> bool:
        return False  # runs are made by ranking a pool (manage.py retrieve rank)

    @admin.display(description="Cost so far")
    def cost_so_far(self, obj: RetrievalRun) -> str:
        s = retrieval_run_summary(obj)
        return f"${s.spent} for {s.votes} votes over {s.rounds} rounds; {s.kept} images kept"

    @admin.display(description="Per class")
    def per_class(self, obj: RetrievalRun) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    c.name,
                    c.listed,
                    c.verified,
                    c.kept,
                    f"{c.estimate:.3f}",
                    f"{c.lower:.3f}",
                    c.stopped or "going",
                    precision_curve(c, obj.target),
                )
                for c in retrieval_run_summary(obj).classes
            ),
        )
        head = mark_safe(  # noqa: S308 - a constant
            "<tr><th>class</th><th>listed</th><th>verified</th><th>kept</th><th>precision</th>"
            "<th>lower bound</th><th>stopped</th><th>precision by depth</th></tr>"
        )
        return format_html("<table>{}{}</table>", head, rows)

    @admin.display(description="Images kept (first of each class)")
    def kept_images(self, obj: RetrievalRun) -> str:
        parts = []
        for k, name in enumerate(obj.dataset.class_names):
            kept = obj.candidates.filter(label=k, state__in=KEPT_STATES).select_related("item")[
                :KEPT_SHOWN
            ]
            thumbs = format_html_join(
                "",
                '<img src="{}" width="48" height="48" alt="{}" title="{}">',
                ((rendition_url(c.item, 64), c.item.name, c.item.name) for c in kept),
            )
            parts.append(format_html("<p><b>{}</b> {}</p>", name, thumbs or "none yet"))
        return format_html_join("", "{}", ((p,) for p in parts))

    def _each(self, request, queryset, fn, done: str) -> None:
        for run in queryset:
            try:
                fn(run)
                self.message_user(request, f"run {run.pk}: {done}")
            except RetrievalRefused as exc:
                self.message_user(request, f"run {run.pk}: {exc}", messages.ERROR)

    @admin.action(description="Send the next verification round (built-in marketplace)")
    def send_next_round(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda run: retrieval_round_launch(run, user=request.user),
            "round sent (or the run is done)",
        )

    @admin.action(description="Fold the round's votes back")
    def fold_round(self, request, queryset):
        self._each(request, queryset, retrieval_round_fold, "round folded")

    @admin.action(description="Send the images two classes claim to review")
    def send_review(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda run: retrieval_review_launch(run, user=request.user),
            "review batch sent",
        )

    @admin.action(description="Fold the review votes back")
    def fold_review(self, request, queryset):
        self._each(request, queryset, retrieval_review_fold, "review folded")
