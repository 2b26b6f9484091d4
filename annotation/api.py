"""The REST API: datasets, items, votes and exports (DRF; token or session auth, admins only)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from .exceptions import DatasetImportError, ExportError
from .exporters import EXPORT_FORMATS, dataset_export
from .images import rendition_url
from .models import Dataset, Item, Vote
from .selectors import dataset_counts, item_list
from .uploads import dataset_import_upload


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
            OpenApiParameter("float32", bool),
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
        if fmt == "label-errors":
            options["float32"] = request.query_params.get("float32") in ("1", "true")
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
        params = self.request.query_params
        if self.action != "list" or "dataset" not in params:
            return Item.objects.order_by("dataset_id", "index")
        try:
            dataset = Dataset.objects.get(pk=int(params["dataset"]))
            label = int(params["label"]) if "label" in params else None
        except (ValueError, Dataset.DoesNotExist):
            raise serializers.ValidationError(
                {"detail": "unknown dataset or non-integer label"}
            ) from None
        status_ = params.get("status")
        if status_ not in (None, "voted", "unvoted", "aggregated"):
            raise serializers.ValidationError({"status": f"unknown status {status_!r}"})
        return item_list(dataset, label=label, status=status_)


class VoteViewSet(viewsets.ReadOnlyModelViewSet):
    """Votes, paged; filter with ?dataset=ID&kind=K. Workers appear as keyed hashes only."""

    serializer_class = VoteSerializer

    def get_queryset(self):
        qs = Vote.objects.select_related("worker").order_by("id")
        params = self.request.query_params
        if "dataset" in params:
            qs = qs.filter(item__dataset_id=params["dataset"])
        if "kind" in params:
            qs = qs.filter(kind=params["kind"])
        return qs
