"""The simulated MTurk's rules: HIT and assignment state machines, money, qualifications.

Shared by the requester API (api.py and its operation modules) and the worker site (views.py).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q

from hits.fees import assignment_fee
from hits.qualifications import (
    LOCALE,
    MASTERS,
    NUMBER_HITS_APPROVED,
    PERCENT_ASSIGNMENTS_APPROVED,
    requires_masters,
)

from .models import Account, Assignment, Hit, SimWorker, WorkerBlock, WorkerQualification

DEFAULT_REALM = "default"
WORKER_RE = re.compile(r"^A[A-Z0-9]+$")
_ALNUM = string.ascii_uppercase + string.digits


class ApiError(Exception):
    """An error as MTurk answers it: ``kind`` is the JSON ``__type``."""

    def __init__(
        self, message: str, code: str = "", *, kind: str = "RequestError", status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.status = status


def new_id(first: str = "3", length: int = 30) -> str:
    return first + "".join(secrets.choice(_ALNUM) for _ in range(length - 1))


def account(realm: str) -> Account:
    acc, _ = Account.objects.get_or_create(realm=realm)
    return acc


def housekeeping(realm: str, now: datetime) -> None:
    """Apply what time alone does: auto-approval of submitted work, abandonment of overdue work."""
    due = Assignment.objects.filter(
        hit__realm=realm, status=Assignment.Status.SUBMITTED, auto_approval_time__lte=now
    ).select_related("hit__hit_type")
    for a in due:
        approve(a, at=a.auto_approval_time)
    Assignment.objects.filter(
        hit__realm=realm, status=Assignment.Status.ACCEPTED, deadline__lte=now
    ).update(status=Assignment.Status.ABANDONED)


def fee_for(hit: Hit) -> Decimal:
    return assignment_fee(
        hit.hit_type.reward,
        max_assignments=hit.max_assignments,
        masters=requires_masters(hit.hit_type.qualification_requirements),
    )


def charge(realm: str, amount: Decimal, what: str) -> None:
    acc = Account.objects.select_for_update().get(pk=account(realm).pk)
    if acc.balance < amount:
        raise ApiError(
            f"Your account balance ${acc.balance} is too low for {what} (${amount}).",
            "AWS.MechanicalTurk.InsufficientFunds",
        )
    acc.balance -= amount
    acc.save(update_fields=["balance"])


def approve(a: Assignment, *, at: datetime, feedback: str | None = None) -> None:
    hit = a.hit
    charge(hit.realm, hit.hit_type.reward + fee_for(hit), "this approval")
    a.status = Assignment.Status.APPROVED
    a.approval_time = at
    if feedback is not None:
        a.requester_feedback = feedback
    a.save(update_fields=["status", "approval_time", "requester_feedback"])


@dataclass(frozen=True)
class HitCounts:
    pending: int
    available: int
    completed: int
    submitted: int


def counts(hit: Hit, now: datetime) -> HitCounts:
    rows = dict(
        hit.assignments.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    pending = rows.get(Assignment.Status.ACCEPTED, 0)
    submitted = rows.get(Assignment.Status.SUBMITTED, 0)
    completed = (
        submitted
        + rows.get(Assignment.Status.APPROVED, 0)
        + rows.get(Assignment.Status.REJECTED, 0)
    )
    available = 0 if hit.expires_at <= now else max(0, hit.max_assignments - pending - completed)
    return HitCounts(pending, available, completed, submitted)


def hit_status(hit: Hit, now: datetime, c: HitCounts | None = None) -> str:
    """MTurk's HIT status, derived from the HIT's assignments and the clock."""
    if hit.disposed:
        return "Disposed"
    c = c or counts(hit, now)
    if c.available > 0:
        return "Assignable"
    if c.pending > 0:
        return "Unassignable"
    return "Reviewing" if hit.reviewing else "Reviewable"


def worker_qualification_value(worker: SimWorker, type_id: str) -> int | dict | None:
    """The value a worker holds for a qualification type; None when they hold none."""
    if type_id in MASTERS.values():
        return 1 if worker.masters else None
    if type_id == PERCENT_ASSIGNMENTS_APPROVED:
        return worker.approval_rate
    if type_id == NUMBER_HITS_APPROVED:
        return worker.approved_count
    if type_id == LOCALE:
        return {"Country": worker.locale_country, "Subdivision": worker.locale_subdivision}
    q = WorkerQualification.objects.filter(worker=worker, qualification_type_id=type_id).first()
    return None if q is None else q.integer_value


def _locale_match(have: dict, want: dict) -> bool:
    if have["Country"] != want.get("Country"):
        return False
    return not want.get("Subdivision") or want["Subdivision"] == have.get("Subdivision")


def requirement_met(worker: SimWorker, req: dict) -> bool:
    value = worker_qualification_value(worker, req["QualificationTypeId"])
    comp = req["Comparator"]
    if comp == "Exists":
        return value is not None
    if comp == "DoesNotExist":
        return value is None
    if value is None:
        return False
    if isinstance(value, dict):
        locales = req.get("LocaleValues") or []
        hit = any(_locale_match(value, want) for want in locales)
        return hit if comp in ("EqualTo", "In") else not hit
    ints = req.get("IntegerValues") or []
    if comp == "In":
        return value in ints
    if comp == "NotIn":
        return value not in ints
    target = ints[0]
    return {
        "LessThan": value < target,
        "LessThanOrEqualTo": value <= target,
        "GreaterThan": value > target,
        "GreaterThanOrEqualTo": value >= target,
        "EqualTo": value == target,
        "NotEqualTo": value != target,
    }[comp]


def unmet_requirements(worker: SimWorker, hit: Hit) -> list[dict]:
    return [r for r in hit.hit_type.qualification_requirements if not requirement_met(worker, r)]


def accept(hit: Hit, worker: SimWorker, now: datetime) -> Assignment:
    """A worker accepts a HIT, as MTurk allows it: qualified, not blocked, once per HIT."""
    hit = Hit.objects.select_for_update().select_related("hit_type").get(pk=hit.pk)
    housekeeping(hit.realm, now)
    if hit.disposed or hit.expires_at <= now:
        raise ApiError("This HIT is no longer available.", "AWS.MechanicalTurk.HITExpired")
    if WorkerBlock.objects.filter(realm=hit.realm, worker=worker).exists():
        raise ApiError("This requester has blocked you.", "AWS.MechanicalTurk.WorkerBlocked")
    if unmet_requirements(worker, hit):
        raise ApiError(
            "You do not meet the qualification requirements of this HIT.",
            "AWS.MechanicalTurk.QualificationRequirementNotMet",
        )
    taken = hit.assignments.filter(worker=worker).exclude(
        status__in=[Assignment.Status.RETURNED, Assignment.Status.ABANDONED]
    )
    if taken.exists():
        raise ApiError("You have already worked on this HIT.", "AWS.MechanicalTurk.AlreadyAccepted")
    if counts(hit, now).available <= 0:
        raise ApiError("There are no more assignments for this HIT.", "AWS.MechanicalTurk.NoMore")
    return Assignment.objects.create(
        assignment_id=new_id("3"),
        hit=hit,
        worker=worker,
        accept_time=now,
        deadline=now + timedelta(seconds=hit.hit_type.assignment_duration),
    )


def submit(a: Assignment, answer_xml: str, now: datetime) -> None:
    a.status = Assignment.Status.SUBMITTED
    a.submit_time = now
    a.auto_approval_time = now + timedelta(seconds=a.hit.hit_type.auto_approval_delay)
    a.answer = answer_xml
    a.save(update_fields=["status", "submit_time", "auto_approval_time", "answer"])


def open_hits(realm: str, now: datetime):
    return (
        Hit.objects.filter(realm=realm, disposed=False, expires_at__gt=now)
        .select_related("hit_type")
        .annotate(
            taken=Count(
                "assignments",
                filter=~Q(
                    assignments__status__in=[
                        Assignment.Status.RETURNED,
                        Assignment.Status.ABANDONED,
                    ]
                ),
            )
        )
        .order_by("created_at", "id")
    )
