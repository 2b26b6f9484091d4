"""The REST API: datasets, items, votes and exports (DRF; token or session auth, admins only).

Bad input is a 400 that names the problem: bodies go through ``annotation.parsers.JSONParser``
and query-string filters through small serializers (``validated``), so no value a client
sends reaches the database unchecked.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpResponseForbidden
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from .exceptions import DatasetImportError, ExportError
from .exporters import EXPORT_FORMATS, dataset_export
from .images import rendition_url
from .models import Dataset, Item, TaskKind, Vote
from .parsers import JSONParser
from .selectors import dataset_counts, item_list
from .uploads import dataset_import_upload

# Row ids are 64-bit; a larger number in a filter is refused before it reaches the database.
MAX_ID = 2**63 - 1
MAX_INT32 = 2**31 - 1


class SchemaAccess(permissions.BasePermission):
    """The OpenAPI schema: public while ``API_SCHEMA_PUBLIC`` is on, else staff only."""

    message = "The API schema is for staff only: sign in or send a staff user's token."

    def has_permission(self, request, view) -> bool:
        if getattr(settings, "API_SCHEMA_PUBLIC", False):
            return True
        return bool(request.user and request.user.is_active and request.user.is_staff)


class ApiDocs(SpectacularSwaggerView):
    """Swagger UI over the schema, under the schema's access rule; a visitor who is not signed
    in is sent to the login page (and back here) rather than shown a bare refusal."""

    permission_classes = [permissions.AllowAny]  # decided in get(), where a redirect can answer

    @extend_schema(exclude=True)  # a page about the API, not a part of it
    def get(self, request, *args, **kwargs):
        rule = SchemaAccess()
        if not rule.has_permission(request, self):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            return HttpResponseForbidden(rule.message, content_type="text/plain; charset=utf-8")
        return super().get(request, *args, **kwargs)


def validated(data, serializer_class: type[serializers.Serializer]) -> dict:
    """A request's body or query string, validated by ``serializer_class`` (else a 400)."""
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class FilteredViewSet(viewsets.ReadOnlyModelViewSet):
    """Read-only views whose list is narrowed by query-string filters, validated first (a bad
    filter is a 400); ``filter_lookups`` maps each filter to its ORM lookup."""

    filters_class: type[serializers.Serializer]
    filter_lookups: dict[str, str]

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action != "list":
            return qs
        filters = validated(self.request.query_params, self.filters_class)
        return qs.filter(**{self.filter_lookups[name]: value for name, value in filters.items()})


class ItemFilters(serializers.Serializer):
    dataset = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    label = serializers.IntegerField(required=False, min_value=-MAX_INT32, max_value=MAX_INT32)
    status = serializers.ChoiceField(choices=["voted", "unvoted", "aggregated"], required=False)


class VoteFilters(serializers.Serializer):
    dataset = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(choices=TaskKind.choices, required=False)


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "class_names", "attribute_schema", "created_at"]


class DatasetDetailSerializer(DatasetSerializer):
    counts = serializers.SerializerMethodField()

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "counts"]

    def get_counts(self, obj) -> dict:
        return dataset_counts(obj)


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    format = serializers.ChoiceField(choices=["climage", "npy", "folder"])
    description = serializers.CharField(required=False, allow_blank=True, default="")
    file = serializers.FileField(
        required=False, help_text="climage pickle, or zip of class folders"
    )
    images = serializers.FileField(required=False)
    labels = serializers.FileField(required=False)
    classes = serializers.FileField(required=False)


class ItemSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id", "dataset", "index", "name", "width", "height", "given_label", "label",
            "gold_label", "attributes", "split", "image_url",
        ]  # fmt: skip

    def get_image_url(self, obj) -> str:
        return rendition_url(obj, 200)


class VoteSerializer(serializers.ModelSerializer):
    worker = serializers.CharField(source="worker.id_hash")

    class Meta:
        model = Vote
        fields = [
            "id", "item", "worker", "kind", "answer", "candidates", "shown_label",
            "suggested_label", "source", "is_gold", "duration_ms", "created_at", "submitted_at",
        ]  # fmt: skip


class DatasetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Datasets: list, detail with counts, create by upload, export download."""

    queryset = Dataset.objects.all()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return DatasetDetailSerializer
        if self.action == "create":
            return DatasetUploadSerializer
        return DatasetSerializer

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetDetailSerializer})
    def create(self, request, *args, **kwargs):
        ser = DatasetUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        files = {k: data.get(k) for k in ("file", "images", "labels", "classes")}
        try:
            dataset = dataset_import_upload(
                name=data["name"], fmt=data["format"], files=files, description=data["description"]
            )
        except DatasetImportError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DatasetDetailSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), required=True),
            OpenApiParameter("hash", str, enum=["hmac", "sha1"]),
        ],
        responses={(200, "application/octet-stream"): bytes},
    )
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request, pk=None):
        """Download an export: a pickle, a CSV, or a zip of the label-errors folder."""
        dataset = self.get_object()
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return Response(
                {"detail": f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        options: dict = {}
        if fmt == "worker-ids":
            options["hash"] = request.query_params.get("hash", "hmac")
        tmp = Path(tempfile.mkdtemp(prefix="export-"))
        suffix = {"climage": ".pkl", "votes-csv": ".csv", "worker-ids": ".txt"}.get(fmt, "")
        out = tmp / f"{dataset.name}-{fmt}{suffix}"
        try:
            dataset_export(dataset, fmt, out, **options)
        except ExportError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if out.is_dir():
            out = Path(shutil.make_archive(str(out), "zip", root_dir=out))
        fh = open(out, "rb")  # noqa: SIM115 - FileResponse closes it
        shutil.rmtree(tmp, ignore_errors=True)  # the open handle keeps the data readable
        return FileResponse(fh, as_attachment=True, filename=out.name)


class ItemViewSet(viewsets.ReadOnlyModelViewSet):
    """Items, paged; filter with ?dataset=ID&label=K&status=voted|unvoted|aggregated."""

    serializer_class = ItemSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("dataset", int),
            OpenApiParameter("label", int),
            OpenApiParameter("status", str, enum=["voted", "unvoted", "aggregated"]),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        if self.action != "list":
            return Item.objects.order_by("dataset_id", "index")
        filters = validated(self.request.query_params, ItemFilters)
        if "dataset" not in filters:
            return Item.objects.order_by("dataset_id", "index")
        dataset = Dataset.objects.filter(pk=filters["dataset"]).first()
        if dataset is None:
            raise serializers.ValidationError(
                {"dataset": [f"unknown dataset {filters['dataset']}"]}
            )
        return item_list(dataset, label=filters.get("label"), status=filters.get("status"))


class VoteViewSet(FilteredViewSet):
    """Votes, paged; filter with ?dataset=ID&kind=K. Workers appear as keyed hashes only."""

    serializer_class = VoteSerializer
    queryset = Vote.objects.select_related("worker").order_by("id")
    filters_class = VoteFilters
    filter_lookups = {"dataset": "item__dataset_id", "kind": "kind"}

    @extend_schema(parameters=[VoteFilters])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
