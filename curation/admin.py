"""The researcher's side of curation in the admin: runs with progress, device and timings;
issues with thumbnails; actions that send issues to review and fold the votes back."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html

from annotation.images import rendition_url
from hits.models import Provider

from . import admin_retrieval  # noqa: F401 - registers the retrieval page
from .exceptions import CurationError
from .models import CurationRun, LabelIssue, ReviewBatch
from .selectors import run_summary
from .services import (
    DEFAULT_DETECTORS,
    curation_run_enqueue,
    curation_run_resolve,
    curation_run_review_batch,
)


def progress_bar(run: CurationRun) -> str:
    pct = round(100 * max(0.0, min(run.progress, 1.0)))
    colour = {"failed": "#c33", "done": "#2a7"}.get(run.status, "#58c")
    return format_html(
        '<span title="{}%" style="display:inline-block;width:8em;height:.8em;background:#ddd;'
        'border-radius:3px"><span style="display:block;width:{}%;height:100%;background:{};'
        'border-radius:3px"></span></span> {}%',
        pct,
        pct,
        colour,
        pct,
    )


class ReviewBatchForm(forms.Form):
    selection = forms.ChoiceField(
        choices=[
            ("all", "All open issues"),
            ("top", "The top N by score"),
            ("above", "Score at least"),
        ]
    )
    top_n = forms.IntegerField(min_value=1, required=False)
    min_score = forms.FloatField(required=False)
    kind = forms.ChoiceField(
        choices=[
            ("review", "Review (given / suggested / both / neither)"),
            ("verify", "Verify (correct / not sure / wrong)"),
        ]
    )
    provider = forms.ChoiceField(
        choices=[
            (Provider.MARKET, "Built-in marketplace"),
            (Provider.MTURK, "MTurk (sandbox draft)"),
        ]
    )
    launch = forms.BooleanField(
        required=False, initial=True, help_text="Launch a built-in marketplace batch at once."
    )


class ReviewBatchInline(admin.TabularInline):
    """The HIT batches reviewing the run's issues; add one here to give a batch drafted by hand
    (item selection "curation") its run."""

    model = ReviewBatch
    fields = ["batch", "batch_status"]
    readonly_fields = ["batch_status"]
    raw_id_fields = ["batch"]
    extra = 0
    verbose_name = "review batch"

    @admin.display(description="Status")
    def batch_status(self, obj: ReviewBatch) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:hits_hitbatch_change", args=[obj.batch_id]),
            obj.batch.get_status_display(),
        )


@admin.register(CurationRun)
class CurationRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "status",
        "progress_display",
        "device",
        "total_time",
        "issue_count",
        "precision",
        "created_at",
    ]
    list_filter = ["status", "feature_source", "dataset"]
    readonly_fields = [
        "status",
        "progress_display",
        "message",
        "device",
        "timings",
        "num_items",
        "started_at",
        "finished_at",
        "review_summary",
        "gallery",
    ]
    inlines = [ReviewBatchInline]
    actions = ["run_again", "send_to_review", "resolve_from_review_votes"]

    @admin.display(description="Progress")
    def progress_display(self, obj: CurationRun) -> str:
        return progress_bar(obj)

    @admin.display(description="Time")
    def total_time(self, obj: CurationRun) -> str:
        total = (obj.timings or {}).get("total_s")
        return f"{total:.1f} s" if total is not None else "—"

    @admin.display(description="Issues")
    def issue_count(self, obj: CurationRun) -> int:
        return obj.issues.count()

    @admin.display(description="Precision")
    def precision(self, obj: CurationRun) -> str:
        s = run_summary(obj)
        return f"{s.precision:.2f} ({s.errors}/{s.reviewed})" if s.precision is not None else "—"

    @admin.display(description="Reviews")
    def review_summary(self, obj: CurationRun) -> str:
        s = run_summary(obj)
        return ", ".join(f"{k}: {v}" for k, v in s.counts.items() if v) or "—"

    @admin.display(description="Gallery")
    def gallery(self, obj: CurationRun) -> str:
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="{}">flagged items</a>', reverse("curation-run-gallery", args=[obj.pk])
        )

    def save_model(self, request, obj, form, change):
        if not obj.detectors:
            obj.detectors = DEFAULT_DETECTORS[obj.feature_source]
        super().save_model(request, obj, form, change)
        if not change:
            curation_run_enqueue(obj)
            messages.info(request, f"Run {obj.pk} queued on the curation queue.")

    @admin.action(description="Run again (queue)")
    def run_again(self, request, queryset):
        for run in queryset:
            CurationRun.objects.filter(pk=run.pk).update(status=CurationRun.Status.PENDING)
            curation_run_enqueue(run)
        messages.info(request, f"{queryset.count()} run(s) queued.")

    @admin.action(description="Send issues to review (HIT batch)")
    def send_to_review(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Choose exactly one run.")
            return None
        run = queryset.get()
        form = ReviewBatchForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            data = form.cleaned_data
            try:
                batch = curation_run_review_batch(
                    run,
                    top_n=data["top_n"] if data["selection"] == "top" else None,
                    min_score=data["min_score"] if data["selection"] == "above" else None,
                    kind=data["kind"],
                    provider=data["provider"],
                    launch=data["launch"],
                    user=request.user,
                )
            except CurationError as exc:
                messages.error(request, str(exc))
                return None
            messages.success(
                request,
                f"Batch {batch.name}: {run.issues.filter(review_batch=batch).count()} issues "
                f"in review ({batch.get_status_display()}).",
            )
            return redirect("admin:hits_hitbatch_change", batch.pk)
        return render(
            request,
            "curation/admin/review_batch.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Send issues of run {run.pk} to review",
                "run": run,
                "summary": run_summary(run),
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Resolve from review votes")
    def resolve_from_review_votes(self, request, queryset):
        for run in queryset:
            try:
                r = curation_run_resolve(run)
            except ValueError as exc:
                messages.error(request, f"Run {run.pk}: {exc}")
                continue
            messages.info(
                request,
                f"Run {run.pk}: {r.corrected} corrected, {r.errors} errors without a label, "
                f"{r.kept} kept, {r.no_consensus} without consensus, {r.waiting} waiting.",
            )


@admin.register(LabelIssue)
class LabelIssueAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail",
        "item",
        "run",
        "current_name",
        "suggested_name",
        "score",
        "resolution",
        "resolved_name",
    ]
    list_filter = ["resolution", "run"]
    list_select_related = ["item", "run__dataset"]
    readonly_fields = [
        "run",
        "item",
        "current_label",
        "suggested_label",
        "score",
        "detectors",
        "review_batch",
        "review_counts",
        "resolved_at",
    ]
    ordering = ["-score"]

    @admin.display(description="Image")
    def thumbnail(self, obj: LabelIssue) -> str:
        return format_html(
            '<img src="{}" width="64" height="64" style="image-rendering:pixelated" alt="">',
            rendition_url(obj.item, 64),
        )

    def _name(self, obj: LabelIssue, label: int | None) -> str:
        names = obj.run.dataset.class_names
        return names[label] if label is not None and 0 <= label < len(names) else "—"

    @admin.display(description="Current")
    def current_name(self, obj: LabelIssue) -> str:
        return self._name(obj, obj.current_label)

    @admin.display(description="Suggested")
    def suggested_name(self, obj: LabelIssue) -> str:
        return self._name(obj, obj.suggested_label)

    @admin.display(description="Resolved")
    def resolved_name(self, obj: LabelIssue) -> str:
        return self._name(obj, obj.resolved_label)
