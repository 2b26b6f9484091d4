from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .exceptions import DatasetImportError
from .forms import DatasetImportForm
from .images import rendition_url
from .models import AggregatedLabel, Dataset, Item, LabelChange, Vote, Worker
from .selectors import dataset_counts
from .uploads import dataset_import_upload


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "num_classes", "item_count", "created_at", "export_links"]
    search_fields = ["name"]
    readonly_fields = ["counts", "sample_images", "export_links"]
    change_list_template = "admin/annotation/dataset/change_list.html"

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
