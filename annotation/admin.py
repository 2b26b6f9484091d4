from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .exceptions import DatasetImportError
from .forms import DatasetImportForm
from .images import rendition_url
from .models import AggregatedLabel, AggregationRun, Dataset, Item, LabelChange, Vote, Worker
from .selectors import dataset_counts
from .uploads import dataset_import_upload


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "num_classes", "item_count", "created_at", "export_links"]
    search_fields = ["name"]
    readonly_fields = ["counts", "dashboard_link", "sample_images", "export_links"]
    change_list_template = "admin/annotation/dataset/change_list.html"
    actions = ["aggregate_votes"]

    @admin.display(description="classes")
    def num_classes(self, obj):
        return obj.num_classes

    @admin.display(description="items")
    def item_count(self, obj):
        return obj.items.count()

    def counts(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in dataset_counts(obj).items())

    @admin.display(description="sample images")
    def sample_images(self, obj):
        items = obj.items.order_by("index")[:24]
        return format_html_join(
            "",
            '<img src="{}" width="64" height="64" alt="{}" title="{}" '
            'style="image-rendering:pixelated;margin:2px;object-fit:contain">',
            ((rendition_url(it, 64), it.name, it.name) for it in items),
        )

    @admin.display(description="export")
    def export_links(self, obj):
        base = reverse("dataset-export", args=[obj.pk])
        return format_html_join(
            " · ",
            '<a href="{}?format={}">{}</a>',
            ((base, f, f) for f in ("climage", "label-errors", "votes-csv", "worker-ids")),
        )

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="annotation_dataset_import",
            ),
            path(
                "<int:pk>/dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="annotation_dataset_dashboard",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        form = DatasetImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            files = {k: request.FILES.get(k) for k in ("file", "images", "labels", "classes")}
            try:
                dataset = dataset_import_upload(
                    name=form.cleaned_data["name"],
                    fmt=form.cleaned_data["format"],
                    files=files,
                    description=form.cleaned_data["description"],
                )
            except DatasetImportError as exc:
                form.add_error(None, f"Import refused, nothing was written: {exc}")
            else:
                self.message_user(
                    request,
                    f"Imported {dataset.name}: {dataset.items.count()} items",
                    messages.SUCCESS,
                )
                return redirect("admin:annotation_dataset_change", dataset.pk)
        ctx = {**self.admin_site.each_context(request), "form": form, "title": "Import a dataset",
               "opts": self.model._meta}  # fmt: skip
        return render(request, "admin/annotation/dataset/import.html", ctx)

    @admin.display(description="dashboard")
    def dashboard_link(self, obj):
        if obj.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Votes, aggregated labels and workers</a>',
            reverse("admin:annotation_dataset_dashboard", args=[obj.pk]),
        )

    def dashboard_view(self, request, pk):
        from .dashboards import WORKER_SORTS, dataset_dashboard

        dataset = get_object_or_404(Dataset, pk=pk)
        if not self.has_view_permission(request, dataset):
            raise PermissionDenied
        dash = dataset_dashboard(
            dataset,
            kind=request.GET.get("kind"),
            method=request.GET.get("method"),
            sort=request.GET.get("sort", "agreement"),
            order=request.GET.get("order", "desc"),
        )
        headers = dict(zip(WORKER_SORTS, ("votes", "HITs", "gold accuracy", "agreement",
                                          "median s / vote", "flags"), strict=True))  # fmt: skip
        ctx = {
            **self.admin_site.each_context(request),
            "title": f"{dataset.name} dashboard",
            "opts": self.model._meta,
            "dash": dash,
            "sort_columns": list(headers.items()),
            "runs": AggregationRun.objects.filter(dataset=dataset)[:10],
        }
        return render(request, "admin/annotation/dashboard.html", ctx)

    @admin.action(description="Aggregate votes (every kind with votes, default methods)")
    def aggregate_votes(self, request, queryset):
        from .aggregation_services import aggregation_run_start, dataset_vote_kinds

        for dataset in queryset:
            kinds = dataset_vote_kinds(dataset)
            if not kinds:
                self.message_user(
                    request, f"{dataset.name}: no votes to aggregate", messages.WARNING
                )
            for kind in kinds:
                run = aggregation_run_start(dataset, kind=kind)
                self.message_user(
                    request, f"{dataset.name}: {kind} aggregation queued (run {run.pk})"
                )


@admin.register(AggregationRun)
class AggregationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "kind", "status", "progress", "num_items", "num_votes",
                    "num_labels", "created_at", "finished_at"]  # fmt: skip
    list_filter = ["status", "kind", "dataset"]
    readonly_fields = [f.name for f in AggregationRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["thumb", "dataset", "index", "name", "given_label", "label", "split"]
    list_filter = ["dataset", "split"]
    search_fields = ["name"]
    list_select_related = ["dataset"]
    readonly_fields = ["thumb"]

    @admin.display(description="image")
    def thumb(self, obj):
        return format_html(
            '<img src="{}" width="64" height="64" alt="{}" '
            'style="image-rendering:pixelated;object-fit:contain">',
            rendition_url(obj, 64),
            obj.name,
        )


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "kind", "answer", "candidates", "worker", "source", "created_at"]
    list_filter = ["kind", "source", "item__dataset"]
    list_select_related = ["item__dataset", "worker"]
    raw_id_fields = ["item", "worker", "assignment"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["id_hash", "provider", "blocked", "created_at"]
    list_filter = ["provider", "blocked"]
    readonly_fields = ["id_hash", "id_sha1", "provider"]


@admin.register(AggregatedLabel)
class AggregatedLabelAdmin(admin.ModelAdmin):
    list_display = ["item", "kind", "method", "label", "confidence", "num_votes", "created_at"]
    list_filter = ["kind", "method", "item__dataset"]
    raw_id_fields = ["item"]


@admin.register(LabelChange)
class LabelChangeAdmin(admin.ModelAdmin):
    list_display = ["item", "old_label", "new_label", "source", "reason", "created_at"]
    raw_id_fields = ["item"]
