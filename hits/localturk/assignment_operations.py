"""The requester API's assignment operations: listing and reviewing submitted work, and bonuses."""

from __future__ import annotations

from datetime import datetime, timedelta

from hits.fees import bonus_fee

from . import state
from .models import Assignment, Bonus
from .protocol import (
    assignment_shape,
    check_token,
    find_assignment,
    find_hit,
    find_worker,
    hit_shape,
    money,
    money_in,
    operation,
    paged,
    remember_token,
    text,
    ts,
)
from .state import ApiError


@operation
def list_assignments_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = find_hit(realm, body)
    statuses = body.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"]
    if not set(statuses) <= {"Submitted", "Approved", "Rejected"}:
        raise ApiError(f"AssignmentStatuses {statuses!r} are not valid.", "AWS.ParameterOutOfRange")
    rows = list(hit.assignments.filter(status__in=statuses).select_related("worker", "hit"))
    return paged(rows, body, "Assignments", assignment_shape)


@operation
def get_assignment(realm: str, body: dict, now: datetime) -> dict:
    a = find_assignment(realm, body)
    return {"Assignment": assignment_shape(a), "HIT": hit_shape(a.hit, now)}


def _not_submitted(a: Assignment) -> ApiError:
    return ApiError(
        "This operation can be called with a status of: Submitted "
        f"(assignment {a.assignment_id} is {a.status})",
        "AWS.MechanicalTurk.InvalidAssignmentState",
    )


@operation
def approve_assignment(realm: str, body: dict, now: datetime) -> dict:
    a = find_assignment(realm, body)
    feedback = text(body, "RequesterFeedback", 1024)
    override = bool(body.get("OverrideRejection"))
    if a.status == "Rejected" and override:
        if a.submit_time < now - timedelta(days=30):
            raise ApiError(
                "Rejections older than 30 days cannot be overridden.",
                "AWS.MechanicalTurk.InvalidAssignmentState",
            )
    elif a.status != "Submitted":
        raise _not_submitted(a)
    state.approve(a, at=now, feedback=feedback)
    return {}


@operation
def reject_assignment(realm: str, body: dict, now: datetime) -> dict:
    a = find_assignment(realm, body)
    feedback = text(body, "RequesterFeedback", 1024, required=True)
    if a.status != "Submitted":
        raise _not_submitted(a)
    a.status = Assignment.Status.REJECTED
    a.rejection_time = now
    a.requester_feedback = feedback
    a.save(update_fields=["status", "rejection_time", "requester_feedback"])
    return {}


@operation
def send_bonus(realm: str, body: dict, now: datetime) -> dict:
    worker = find_worker(body)
    amount = money_in(body, "BonusAmount")
    a = find_assignment(realm, body)
    reason = text(body, "Reason", 4096, required=True)
    if a.worker_id != worker.pk:
        raise ApiError(
            "The assignment was not done by this worker.", "AWS.MechanicalTurk.InvalidWorker"
        )
    if check_token(realm, "SendBonus", body, now) is not None:
        raise ApiError(
            f"The bonus for request {body['UniqueRequestToken']} was already paid.",
            "AWS.MechanicalTurk.DuplicateRequest",
        )
    state.charge(realm, amount + bonus_fee(amount), "this bonus")
    Bonus.objects.create(
        realm=realm, assignment=a, worker=worker, amount=amount, reason=reason, granted_at=now
    )
    remember_token(realm, "SendBonus", body, a.assignment_id, now)
    return {}


@operation
def list_bonus_payments(realm: str, body: dict, now: datetime) -> dict:
    bonuses = Bonus.objects.filter(realm=realm).select_related("assignment", "worker")
    if body.get("HITId"):
        bonuses = bonuses.filter(assignment__hit__hit_id=body["HITId"])
    elif body.get("AssignmentId"):
        bonuses = bonuses.filter(assignment__assignment_id=body["AssignmentId"])
    else:
        raise ApiError("Give HITId or AssignmentId.", "AWS.MissingParameters")
    return paged(list(bonuses.order_by("id")), body, "BonusPayments", _bonus_shape)


def _bonus_shape(b: Bonus) -> dict:
    return {
        "WorkerId": b.worker.worker_id,
        "BonusAmount": money(b.amount),
        "AssignmentId": b.assignment.assignment_id,
        "Reason": b.reason,
        "GrantTime": ts(b.granted_at),
    }
