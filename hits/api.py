"""The researcher's controls over HTTP (DRF, staff only): the same services as the admin.

Every action's body is validated by a small serializer, so a missing field, a wrong type or an
out-of-range number is a 400 naming the field, never a server error.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotation.api import MAX_ID, FilteredViewSet, validated

from .exceptions import HitsError
from .models import Assignment, HitBatch
from .selectors import hit_batch_stats
from .services import (
    enqueue_on_commit,
    hit_batch_launch,
    hit_batch_loop_stop,
    hit_batch_preview,
    hit_batch_repost,
)


class HitBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = HitBatch
        exclude = ["launched_by"]
        read_only_fields = [
            "uid",
            "status",
            "progress",
            "error",
            "hit_type_id",
            "launched_at",
            "created_at",
            "loop_stopped_at",
        ]

    def validate_loop_curation(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("give the curation options as a JSON object")
        return value


class AssignmentSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="hit.batch_id", read_only=True)
    hit_number = serializers.IntegerField(source="hit.number", read_only=True)
    worker = serializers.CharField(source="worker.id_hash", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "batch",
            "hit_number",
            "provider_assignment_id",
            "worker",
            "status",
            "accepted_at",
            "submitted_at",
            "reviewed_at",
            "feedback",
            "review_note",
        ]


class LaunchBody(serializers.Serializer):
    confirm_live = serializers.BooleanField(default=False)


class FeedbackBody(serializers.Serializer):
    feedback = serializers.CharField(default="", allow_blank=True, max_length=1024)


class ExtendBody(serializers.Serializer):
    seconds = serializers.IntegerField(default=24 * 3600, min_value=1, max_value=365 * 24 * 3600)


class NotifyBody(serializers.Serializer):
    # MTurk's NotifyWorkers limits.
    subject = serializers.CharField(max_length=200)
    message = serializers.CharField(max_length=4096)


class RejectBody(serializers.Serializer):
    message = serializers.CharField(
        max_length=1024,
        error_messages={
            "required": "a rejection needs a message",
            "blank": "a rejection needs a message",
        },
    )


class BonusBody(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=Decimal("0.01"))
    reason = serializers.CharField(max_length=4096)


class ReasonBody(serializers.Serializer):
    reason = serializers.CharField(default="", allow_blank=True, max_length=1024)


class AssignmentFilters(serializers.Serializer):
    batch = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=Assignment.Status.choices, required=False)


def _preview_json(p) -> dict:
    return {
        "hits": p.hits,
        "assignments": p.assignments,
        "reward": str(p.reward),
        "reward_total": str(p.reward_total),
        "fee_rate": str(p.fee_rate),
        "fee_total": str(p.fee_total),
        "bonus_total": str(p.bonus_total),
        "bonus_fee_total": str(p.bonus_fee_total),
        "total": str(p.total),
        "balance": None if p.balance is None else str(p.balance),
        "budget_cap": None if p.budget_cap is None else str(p.budget_cap),
        "allowed": p.allowed,
        "refusal": p.refusal(),
    }


def _refused(exc: Exception) -> Response:
    return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)


class HitBatchViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Batches. Configuration changes only while a draft; everything else is an action."""

    queryset = HitBatch.objects.order_by("-created_at")
    serializer_class = HitBatchSerializer

    def perform_update(self, serializer):
        if serializer.instance.status != HitBatch.Status.DRAFT:
            raise serializers.ValidationError("a launched batch cannot be changed; re-post it")
        serializer.save()

    @action(detail=True, methods=["get"])
    def loop(self, request, pk=None):
        """The automatic loop: on or off, stopped when, and each stage's record."""
        batch = self.get_object()
        stages = batch.loop_stages.order_by("started_at", "id").values(
            "stage", "state", "started_at", "finished_at", "result", "reason", "launched_batch"
        )
        return Response(
            {"auto_loop": batch.auto_loop, "stopped_at": batch.loop_stopped_at, "stages": stages}
        )

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="loop/stop")
    def loop_stop(self, request, pk=None):
        """Stop the automatic loop: no further stage starts."""
        batch = self.get_object()
        return Response({"stopped": hit_batch_loop_stop(batch), "at": batch.loop_stopped_at})

    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        try:
            return Response(_preview_json(hit_batch_preview(self.get_object())))
        except (HitsError, ValueError) as exc:
            return _refused(exc)

    @extend_schema(request=LaunchBody)
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        batch = self.get_object()
        body = validated(request.data, LaunchBody)
        try:
            p = hit_batch_launch(batch, user=request.user, confirm_live=body["confirm_live"])
        except (HitsError, ValueError) as exc:
            return _refused(exc)
        return Response(_preview_json(p), status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        s = hit_batch_stats(self.get_object())
        return Response(
            {
                "hits_by_status": s.hits_by_status,
                "assignments_by_status": s.assignments_by_status,
                "votes_collected": s.votes_collected,
                "votes_needed": s.votes_needed,
                "spent": str(s.spent),
                "projected": str(s.projected),
                "median_seconds": s.median_seconds,
            }
        )

    def _queue(self, task: str, *args) -> Response:
        enqueue_on_commit(task, self.get_object().pk, *args)
        return Response({"queued": task}, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        return self._queue("hit_batch_sync_task")

    @extend_schema(request=FeedbackBody)
    @action(detail=True, methods=["post"], url_path="approve-submitted")
    def approve_submitted(self, request, pk=None):
        feedback = validated(request.data, FeedbackBody)["feedback"]
        return self._queue("hit_batch_approve_submitted_task", feedback)

    @action(detail=True, methods=["post"], url_path="auto-review")
    def auto_review(self, request, pk=None):
        return self._queue("hit_batch_auto_review_task")

    @extend_schema(request=ExtendBody)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        return self._queue("hit_batch_extend_task", validated(request.data, ExtendBody)["seconds"])

    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        return self._queue("hit_batch_expire_task")

    @extend_schema(request=NotifyBody)
    @action(detail=True, methods=["post"])
    def notify(self, request, pk=None):
        body = validated(request.data, NotifyBody)
        return self._queue("hit_batch_notify_task", body["subject"], body["message"])

    @action(detail=True, methods=["post"])
    def repost(self, request, pk=None):
        try:
            new = hit_batch_repost(self.get_object())
        except HitsError as exc:
            return _refused(exc)
        if new is None:
            return Response({"repost": None, "detail": "every item has its votes"})
        return Response(HitBatchSerializer(new).data, status=status.HTTP_201_CREATED)


class AssignmentViewSet(FilteredViewSet):
    """Assignments, filterable by ``?batch=`` and ``?status=``; review actions per assignment."""

    serializer_class = AssignmentSerializer
    queryset = Assignment.objects.select_related("hit", "worker").order_by("id")
    filters_class = AssignmentFilters
    filter_lookups = {"batch": "hit__batch_id", "status": "status"}

    @extend_schema(parameters=[AssignmentFilters])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _queue(self, task: str, *args) -> Response:
        enqueue_on_commit(task, *args)
        return Response({"queued": task}, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._queue("assignment_approve_task", self.get_object().pk)

    @extend_schema(request=RejectBody)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        assignment = self.get_object()
        message = validated(request.data, RejectBody)["message"]
        return self._queue("assignments_reject_task", [assignment.pk], message)

    @extend_schema(request=BonusBody)
    @action(detail=True, methods=["post"])
    def bonus(self, request, pk=None):
        assignment = self.get_object()
        body = validated(request.data, BonusBody)
        return self._queue(
            "assignment_bonus_task", assignment.pk, str(body["amount"]), body["reason"]
        )

    @extend_schema(request=ReasonBody)
    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        assignment = self.get_object()
        reason = validated(request.data, ReasonBody)["reason"] or "Blocked by the requester."
        return self._queue("assignment_block_worker_task", assignment.pk, reason)

    @extend_schema(request=ReasonBody)
    @action(detail=True, methods=["post"], url_path="soft-block")
    def soft_block(self, request, pk=None):
        assignment = self.get_object()
        reason = validated(request.data, ReasonBody)["reason"] or "Soft-blocked by the requester."
        return self._queue("assignment_exclude_worker_task", assignment.pk, reason)
