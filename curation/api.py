"""The researcher's curation controls over HTTP (DRF, staff only): the same services as the
admin."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import TaskKind
from hits.models import Environment, Provider

from .exceptions import CurationError
from .models import CurationRun
from .selectors import run_summary
from .services import curation_run_resolve, curation_run_review_batch


class ReviewBatchRequest(serializers.Serializer):
    selection = serializers.ChoiceField(["all", "top", "above"], default="all")
    top_n = serializers.IntegerField(min_value=1, required=False)
    min_score = serializers.FloatField(required=False)
    # The model's choice sets, so the schema has one enum per set; kind is checked below.
    kind = serializers.ChoiceField(TaskKind.choices, default=TaskKind.REVIEW)
    provider = serializers.ChoiceField(Provider.choices, default=Provider.MARKET)
    environment = serializers.ChoiceField(Environment.choices, required=False)
    assignments_per_item = serializers.IntegerField(min_value=1, required=False)
    items_per_hit = serializers.IntegerField(min_value=1, required=False)
    reward = serializers.DecimalField(max_digits=8, decimal_places=2, required=False)
    name = serializers.CharField(max_length=200, required=False)
    launch = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if attrs["kind"] not in (TaskKind.REVIEW, TaskKind.VERIFY):
            raise serializers.ValidationError({"kind": "must be review or verify"})
        if attrs["selection"] == "top" and "top_n" not in attrs:
            raise serializers.ValidationError({"top_n": "selection 'top' needs top_n"})
        if attrs["selection"] == "above" and "min_score" not in attrs:
            raise serializers.ValidationError({"min_score": "selection 'above' needs min_score"})
        return attrs


class RunReviewBatchView(APIView):
    """POST: turn the run's open issues (all, top N, or scoring at least min_score) into a review
    (or verify) HIT batch on the built-in marketplace by default; the issues go in review."""

    @extend_schema(request=ReviewBatchRequest, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        run = get_object_or_404(CurationRun, pk=pk)
        form = ReviewBatchRequest(data=request.data)
        form.is_valid(raise_exception=True)
        opts = dict(form.validated_data)
        selection = opts.pop("selection")
        top_n = opts.pop("top_n", None) if selection == "top" else None
        min_score = opts.pop("min_score", None) if selection == "above" else None
        opts.pop("top_n", None)
        opts.pop("min_score", None)
        try:
            batch = curation_run_review_batch(
                run, top_n=top_n, min_score=min_score, user=request.user, **opts
            )
        except CurationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "batch": batch.pk,
                "uid": str(batch.uid),
                "name": batch.name,
                "kind": batch.kind,
                "provider": batch.provider,
                "item_selection": batch.item_selection,
                "status": batch.status,
                "issues": run.issues.filter(review_batch=batch).count(),
                "admin_url": reverse("admin:hits_hitbatch_change", args=[batch.pk]),
                "market_url": reverse("market:batch", kwargs={"uid": batch.uid})
                if batch.provider == Provider.MARKET
                else "",
            },
            status=status.HTTP_201_CREATED,
        )


class RunResolveView(APIView):
    """POST: resolve the run's issues in review from the votes in so far."""

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        run = get_object_or_404(CurationRun, pk=pk)
        try:
            result = curation_run_resolve(run)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        summary = run_summary(run)
        return Response(
            {
                "corrected": result.corrected,
                "errors": result.errors,
                "kept": result.kept,
                "no_consensus": result.no_consensus,
                "waiting": result.waiting,
                "precision": summary.precision,
                "counts": summary.counts,
            }
        )
