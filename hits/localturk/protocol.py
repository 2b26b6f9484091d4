"""MTurk's requester protocol, shared by the operations: the operation registry, parameter
validation as MTurk does it, idempotency tokens, lookups, and the JSON shapes of answers.

Each operation is a function ``(realm, body, now) -> dict`` registered with ``@operation``; its
MTurk name is derived from the function's (``list_hits`` -> ``ListHITs``). Timestamps go out as
epoch seconds and money as strings, as MTurk sends them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from hits.qualifications import COMPARATORS

from . import state
from .models import Assignment, Hit, QualificationType, RequestToken, SimWorker
from .state import WORKER_RE, ApiError

REWARD_RE = re.compile(r"^[0-9]+(\.)?[0-9]{0,2}$")
ENTITY_RE = re.compile(r"^[A-Z0-9]+$")
MIN_SECONDS, MAX_SECONDS = 30, 365 * 24 * 3600
MAX_AUTO_APPROVAL = 30 * 24 * 3600
TOKEN_TTL = timedelta(hours=24)

Handler = Callable[[str, dict, datetime], dict]
OPERATIONS: dict[str, Handler] = {}


def operation(fn: Handler) -> Handler:
    name = "".join(part.capitalize() for part in fn.__name__.split("_"))
    name = name.replace("Hit", "HIT")
    OPERATIONS[name] = fn
    return fn


# --- wire format -------------------------------------------------------------------------------


def ts(dt: datetime | None) -> float | None:
    return None if dt is None else round(dt.timestamp(), 3)


def money(d: Decimal) -> str:
    return f"{d:.2f}"


def paged(items: list, body: dict, key: str, shape: Callable) -> dict:
    """One page of a listing, as MTurk answers it: ``NumResults``, the shaped items under ``key``
    and a ``NextToken`` while more remain."""
    size = body.get("MaxResults", 10)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise ApiError(f"MaxResults {size!r} must be 1 to 100.", "AWS.ParameterOutOfRange")
    start = 0
    if body.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(body["NextToken"].encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise ApiError("NextToken is not valid.", "AWS.ParameterOutOfRange") from None
    chunk = items[start : start + size]
    out = {"NumResults": len(chunk), key: [shape(item) for item in chunk]}
    if start + size < len(items):
        out["NextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return out


# --- validation --------------------------------------------------------------------------------


def require(body: dict, *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise ApiError(f"Value for {name} is required.", "AWS.MissingParameters")


def int_in(body: dict, name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(
            f"Value {value!r} for {name} must be between {lo} and {hi}.",
            "AWS.ParameterOutOfRange",
        )
    return value


def money_in(body: dict, name: str, minimum: Decimal = Decimal("0.01")) -> Decimal:
    raw = body.get(name)
    if not isinstance(raw, str) or not REWARD_RE.match(raw):
        raise ApiError(
            f'{name} {raw!r} is not a valid amount: use a string such as "0.05".',
            "AWS.MechanicalTurk.InvalidCurrencyAmount",
        )
    try:
        amount = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise ApiError(f"{name} {raw!r} is not a number.", "AWS.ParameterOutOfRange") from None
    if amount < minimum:
        raise ApiError(f"{name} must be at least ${minimum}.", "AWS.ParameterOutOfRange")
    return amount


def entity(body: dict, name: str, pattern: re.Pattern = ENTITY_RE) -> str:
    require(body, name)
    value = body[name]
    if not isinstance(value, str) or not pattern.match(value) or len(value) > 64:
        raise ApiError(f"{name} {value!r} is not a valid id.", "AWS.ParameterOutOfRange")
    return value


def text(body: dict, name: str, max_len: int, *, required: bool = False) -> str:
    if required:
        require(body, name)
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > max_len:
        raise ApiError(
            f"{name} must be text of at most {max_len} characters.", "AWS.ParameterOutOfRange"
        )
    return value


def requirements(reqs) -> list[dict]:
    if reqs is None:
        return []
    if not isinstance(reqs, list):
        raise ApiError("QualificationRequirements must be a list.", "AWS.ParameterOutOfRange")
    out = []
    for r in reqs:
        if not isinstance(r, dict) or not r.get("QualificationTypeId"):
            raise ApiError(
                "A QualificationRequirement needs a QualificationTypeId.", "AWS.MissingParameters"
            )
        comp = r.get("Comparator")
        if comp not in COMPARATORS:
            raise ApiError(f"Comparator {comp!r} is not valid.", "AWS.ParameterOutOfRange")
        ints, locales = r.get("IntegerValues"), r.get("LocaleValues")
        if comp in ("Exists", "DoesNotExist"):
            if ints or locales:
                raise ApiError(f"Comparator {comp} takes no values.", "AWS.ParameterOutOfRange")
        elif comp in ("In", "NotIn"):
            if not ints and not locales:
                raise ApiError(f"Comparator {comp} needs values.", "AWS.MissingParameters")
        elif bool(ints) == bool(locales) or len(ints or locales) != 1:
            raise ApiError(
                f"Comparator {comp} needs exactly one IntegerValue or LocaleValue.",
                "AWS.ParameterOutOfRange",
            )
        for loc in locales or []:
            if not isinstance(loc, dict) or len(loc.get("Country", "")) != 2:
                raise ApiError(
                    "A LocaleValue needs a two-letter Country.", "AWS.ParameterOutOfRange"
                )
        if ints is not None and not all(isinstance(i, int) for i in ints):
            raise ApiError("IntegerValues must be integers.", "AWS.ParameterOutOfRange")
        out.append(r)
    return out


def check_token(realm: str, op: str, body: dict, now: datetime) -> RequestToken | None:
    token = body.get("UniqueRequestToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise ApiError("UniqueRequestToken must be 1 to 64 characters.", "AWS.ParameterOutOfRange")
    RequestToken.objects.filter(realm=realm, created_at__lt=now - TOKEN_TTL).delete()
    return RequestToken.objects.filter(realm=realm, operation=op, token=token).first()


def remember_token(realm: str, op: str, body: dict, result: str, now: datetime) -> None:
    if body.get("UniqueRequestToken"):
        RequestToken.objects.create(
            realm=realm,
            operation=op,
            token=body["UniqueRequestToken"],
            result=result,
            created_at=now,
        )


def find_hit(realm: str, body: dict) -> Hit:
    hit_id = entity(body, "HITId")
    hit = Hit.objects.select_related("hit_type").filter(realm=realm, hit_id=hit_id).first()
    if hit is None or hit.disposed:
        raise ApiError(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")
    return hit


def find_assignment(realm: str, body: dict) -> Assignment:
    aid = entity(body, "AssignmentId")
    a = (
        Assignment.objects.select_related("hit__hit_type", "worker")
        .filter(hit__realm=realm, assignment_id=aid)
        .first()
    )
    if a is None or a.status not in ("Submitted", "Approved", "Rejected"):
        raise ApiError(
            f"Assignment {aid} does not exist.", "AWS.MechanicalTurk.AssignmentDoesNotExist"
        )
    return a


def find_worker(body: dict) -> SimWorker:
    wid = entity(body, "WorkerId", WORKER_RE)
    worker = SimWorker.objects.filter(worker_id=wid).first()
    if worker is None:
        raise ApiError(f"Worker {wid} does not exist.", "AWS.MechanicalTurk.WorkerDoesNotExist")
    return worker


# --- shapes ------------------------------------------------------------------------------------


def hit_shape(hit: Hit, now: datetime) -> dict:
    c = state.counts(hit, now)
    t = hit.hit_type
    return {
        "HITId": hit.hit_id,
        "HITTypeId": t.hit_type_id,
        "HITGroupId": t.hit_type_id,
        "CreationTime": ts(hit.created_at),
        "Title": t.title,
        "Description": t.description,
        "Question": hit.question,
        "Keywords": t.keywords,
        "HITStatus": state.hit_status(hit, now, c),
        "MaxAssignments": hit.max_assignments,
        "Reward": money(t.reward),
        "AutoApprovalDelayInSeconds": t.auto_approval_delay,
        "Expiration": ts(hit.expires_at),
        "AssignmentDurationInSeconds": t.assignment_duration,
        "RequesterAnnotation": hit.requester_annotation,
        "QualificationRequirements": t.qualification_requirements,
        "HITReviewStatus": "NotReviewed",
        "NumberOfAssignmentsPending": c.pending,
        "NumberOfAssignmentsAvailable": c.available,
        "NumberOfAssignmentsCompleted": c.completed,
    }


def assignment_shape(a: Assignment) -> dict:
    out = {
        "AssignmentId": a.assignment_id,
        "WorkerId": a.worker.worker_id,
        "HITId": a.hit.hit_id,
        "AssignmentStatus": a.status,
        "AutoApprovalTime": ts(a.auto_approval_time),
        "AcceptTime": ts(a.accept_time),
        "SubmitTime": ts(a.submit_time),
        "ApprovalTime": ts(a.approval_time),
        "RejectionTime": ts(a.rejection_time),
        "Deadline": ts(a.deadline),
        "Answer": a.answer,
        "RequesterFeedback": a.requester_feedback or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def qualification_type_shape(q: QualificationType) -> dict:
    return {
        "QualificationTypeId": q.qualification_type_id,
        "CreationTime": ts(q.created_at),
        "Name": q.name,
        "Description": q.description,
        "QualificationTypeStatus": "Active",
        "IsRequestable": True,
        "AutoGranted": False,
    }
