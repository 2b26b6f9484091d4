"""The researcher's controls over HTTP (DRF, staff only): the same services as the admin."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .exceptions import HitsError
from .models import Assignment, HitBatch
from .selectors import hit_batch_stats
from .services import enqueue_on_commit, hit_batch_launch, hit_batch_preview, hit_batch_repost


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
        ]


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
    def preview(self, request, pk=None):
        try:
            return Response(_preview_json(hit_batch_preview(self.get_object())))
        except (HitsError, ValueError) as exc:
            return _refused(exc)

    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        try:
            p = hit_batch_launch(
                self.get_object(),
                user=request.user,
                confirm_live=bool(request.data.get("confirm_live")),
            )
        except HitsError as exc:
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

    @action(detail=True, methods=["post"], url_path="approve-submitted")
    def approve_submitted(self, request, pk=None):
        return self._queue("hit_batch_approve_submitted_task", request.data.get("feedback", ""))

    @action(detail=True, methods=["post"], url_path="auto-review")
    def auto_review(self, request, pk=None):
        return self._queue("hit_batch_auto_review_task")

    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        return self._queue("hit_batch_extend_task", int(request.data.get("seconds", 24 * 3600)))

    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        return self._queue("hit_batch_expire_task")

    @action(detail=True, methods=["post"])
    def notify(self, request, pk=None):
        return self._queue(
            "hit_batch_notify_task", str(request.data["subject"]), str(request.data["message"])
        )

    @action(detail=True, methods=["post"])
    def repost(self, request, pk=None):
        try:
            new = hit_batch_repost(self.get_object())
        except HitsError as exc:
            return _refused(exc)
        if new is None:
            return Response({"repost": None, "detail": "every item has its votes"})
        return Response(HitBatchSerializer(new).data, status=status.HTTP_201_CREATED)


class AssignmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Assignments, filterable by ``?batch=`` and ``?status=``; review actions per assignment."""

    serializer_class = AssignmentSerializer

    def get_queryset(self):
        qs = Assignment.objects.select_related("hit", "worker").order_by("id")
        if self.request.query_params.get("batch"):
            qs = qs.filter(hit__batch_id=self.request.query_params["batch"])
        if self.request.query_params.get("status"):
            qs = qs.filter(status=self.request.query_params["status"])
        return qs

    def _queue(self, task: str, *args) -> Response:
        enqueue_on_commit(task, *args)
        return Response({"queued": task}, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._queue("assignment_approve_task", self.get_object().pk)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        message = str(request.data.get("message", "")).strip()
        if not message:
            return Response({"error": "a rejection needs a message"}, status=400)
        return self._queue("assignments_reject_task", [self.get_object().pk], message)

    @action(detail=True, methods=["post"])
    def bonus(self, request, pk=None):
        try:
            amount = Decimal(str(request.data.get("amount")))
        except ArithmeticError:
            return Response({"error": "amount must be a number"}, status=400)
        if amount <= 0 or not str(request.data.get("reason", "")).strip():
            return Response({"error": "a positive amount and a reason are needed"}, status=400)
        return self._queue(
            "assignment_bonus_task", self.get_object().pk, str(amount), request.data["reason"]
        )

    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        return self._queue(
            "assignment_block_worker_task",
            self.get_object().pk,
            request.data.get("reason") or "Blocked by the requester.",
        )

    @action(detail=True, methods=["post"], url_path="soft-block")
    def soft_block(self, request, pk=None):
        return self._queue(
            "assignment_exclude_worker_task",
            self.get_object().pk,
            request.data.get("reason") or "Soft-blocked by the requester.",
        )
