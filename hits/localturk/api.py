"""The requester API of the local MTurk endpoint, on MTurk's wire protocol.

``POST /localturk/`` (realm ``default``) or ``POST /localturk/realm/<name>/`` with
``X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>`` and a JSON 1.1 body; answers in
JSON 1.1 with epoch-second timestamps and money as strings; errors as MTurk sends them
(``__type`` RequestError / ServiceFault, ``Message``, ``TurkErrorCode``). Signatures are not
checked: any credentials work. Faults can be injected per realm (FaultPlan) or per request
(header ``X-LocalTurk-Fault: throttle | fault | fault_after | delay=<ms>``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from hits.answers import XMLError, parse_external_question
from hits.fees import bonus_fee
from hits.qualifications import COMPARATORS

from . import state
from .models import (
    Assignment,
    Bonus,
    CallLog,
    FaultPlan,
    Hit,
    HitType,
    Notification,
    QualificationType,
    RequestToken,
    SimWorker,
    WorkerBlock,
    WorkerQualification,
)
from .state import ApiError

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
CONTENT_TYPE = "application/x-amz-json-1.1"
REWARD_RE = re.compile(r"^[0-9]+(\.)?[0-9]{0,2}$")
ENTITY_RE = re.compile(r"^[A-Z0-9]+$")
WORKER_RE = re.compile(r"^A[A-Z0-9]+$")
MIN_SECONDS, MAX_SECONDS = 30, 365 * 24 * 3600
MAX_AUTO_APPROVAL = 30 * 24 * 3600
TOKEN_TTL = timedelta(hours=24)
LOOPBACK = {"localhost", "127.0.0.1", "::1", "testserver"}

Handler = Callable[[str, dict, datetime], dict]
OPERATIONS: dict[str, Handler] = {}


def operation(fn: Handler) -> Handler:
    name = "".join(part.capitalize() for part in fn.__name__.split("_"))
    name = name.replace("Hit", "HIT")
    OPERATIONS[name] = fn
    return fn


# --- wire format -------------------------------------------------------------------------------


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else round(dt.timestamp(), 3)


def _money(d: Decimal) -> str:
    return f"{d:.2f}"


def _json_response(body: dict, status: int = 200) -> HttpResponse:
    resp = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    resp["x-amzn-RequestId"] = str(uuid.uuid4())
    return resp


def _error_response(err: ApiError) -> HttpResponse:
    body = {"__type": err.kind, "Message": err.message}
    if err.code:
        body["TurkErrorCode"] = err.code
    return _json_response(body, err.status)


def _throttled() -> ApiError:
    return ApiError("Rate exceeded", kind="ThrottlingException", status=400)


def _service_fault() -> ApiError:
    return ApiError(
        "We encountered an internal error. Please try again.",
        "AWS.ServiceUnavailable",
        kind="ServiceFault",
        status=500,
    )


def _page(items: list, body: dict) -> tuple[list, str | None]:
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
    more = start + size < len(items)
    token = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
    return chunk, token


# --- validation --------------------------------------------------------------------------------


def _required(body: dict, *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise ApiError(f"Value for {name} is required.", "AWS.MissingParameters")


def _int_in(body: dict, name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(
            f"Value {value!r} for {name} must be between {lo} and {hi}.",
            "AWS.ParameterOutOfRange",
        )
    return value


def _money_in(body: dict, name: str, minimum: Decimal = Decimal("0.01")) -> Decimal:
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


def _entity(body: dict, name: str, pattern: re.Pattern = ENTITY_RE) -> str:
    _required(body, name)
    value = body[name]
    if not isinstance(value, str) or not pattern.match(value) or len(value) > 64:
        raise ApiError(f"{name} {value!r} is not a valid id.", "AWS.ParameterOutOfRange")
    return value


def _text(body: dict, name: str, max_len: int, *, required: bool = False) -> str:
    if required:
        _required(body, name)
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > max_len:
        raise ApiError(
            f"{name} must be text of at most {max_len} characters.", "AWS.ParameterOutOfRange"
        )
    return value


def _requirements(reqs) -> list[dict]:
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


def _check_token(realm: str, op: str, body: dict, now: datetime) -> RequestToken | None:
    token = body.get("UniqueRequestToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise ApiError("UniqueRequestToken must be 1 to 64 characters.", "AWS.ParameterOutOfRange")
    RequestToken.objects.filter(realm=realm, created_at__lt=now - TOKEN_TTL).delete()
    return RequestToken.objects.filter(realm=realm, operation=op, token=token).first()


def _remember_token(realm: str, op: str, body: dict, result: str, now: datetime) -> None:
    if body.get("UniqueRequestToken"):
        RequestToken.objects.create(
            realm=realm,
            operation=op,
            token=body["UniqueRequestToken"],
            result=result,
            created_at=now,
        )


def _hit(realm: str, body: dict) -> Hit:
    hit_id = _entity(body, "HITId")
    hit = Hit.objects.select_related("hit_type").filter(realm=realm, hit_id=hit_id).first()
    if hit is None or hit.disposed:
        raise ApiError(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")
    return hit


def _assignment(realm: str, body: dict) -> Assignment:
    aid = _entity(body, "AssignmentId")
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


def _worker(body: dict) -> SimWorker:
    wid = _entity(body, "WorkerId", WORKER_RE)
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
        "CreationTime": _ts(hit.created_at),
        "Title": t.title,
        "Description": t.description,
        "Question": hit.question,
        "Keywords": t.keywords,
        "HITStatus": state.hit_status(hit, now, c),
        "MaxAssignments": hit.max_assignments,
        "Reward": _money(t.reward),
        "AutoApprovalDelayInSeconds": t.auto_approval_delay,
        "Expiration": _ts(hit.expires_at),
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
        "AutoApprovalTime": _ts(a.auto_approval_time),
        "AcceptTime": _ts(a.accept_time),
        "SubmitTime": _ts(a.submit_time),
        "ApprovalTime": _ts(a.approval_time),
        "RejectionTime": _ts(a.rejection_time),
        "Deadline": _ts(a.deadline),
        "Answer": a.answer,
        "RequesterFeedback": a.requester_feedback or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def _qualification_type_shape(q: QualificationType) -> dict:
    return {
        "QualificationTypeId": q.qualification_type_id,
        "CreationTime": _ts(q.created_at),
        "Name": q.name,
        "Description": q.description,
        "QualificationTypeStatus": "Active",
        "IsRequestable": True,
        "AutoGranted": False,
    }


# --- operations --------------------------------------------------------------------------------


@operation
def get_account_balance(realm: str, body: dict, now: datetime) -> dict:
    return {"AvailableBalance": _money(state.account(realm).balance), "OnHoldBalance": "0.00"}


@operation
def create_hit_type(realm: str, body: dict, now: datetime) -> dict:
    props = {
        "Title": _text(body, "Title", 128, required=True),
        "Description": _text(body, "Description", 2000, required=True),
        "Keywords": _text(body, "Keywords", 1000),
        "Reward": str(_money_in(body, "Reward")),
        "AssignmentDurationInSeconds": _int_in(
            body, "AssignmentDurationInSeconds", MIN_SECONDS, MAX_SECONDS
        ),
        "AutoApprovalDelayInSeconds": _int_in(
            body, "AutoApprovalDelayInSeconds", 0, MAX_AUTO_APPROVAL, default=MAX_AUTO_APPROVAL
        ),
        "QualificationRequirements": _requirements(body.get("QualificationRequirements")),
    }
    # MTurk answers identical properties with the same HIT type.
    signature = hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()
    existing = HitType.objects.filter(realm=realm, signature=signature).first()
    if existing is None:
        existing = HitType.objects.create(
            realm=realm,
            hit_type_id=state.new_id("3"),
            signature=signature,
            title=props["Title"],
            description=props["Description"],
            keywords=props["Keywords"],
            reward=Decimal(props["Reward"]),
            assignment_duration=props["AssignmentDurationInSeconds"],
            auto_approval_delay=props["AutoApprovalDelayInSeconds"],
            qualification_requirements=props["QualificationRequirements"],
        )
    return {"HITTypeId": existing.hit_type_id}


def _external_url(question: str) -> tuple[str, int]:
    if len(question.encode()) > 131072:
        raise ApiError("Question is larger than 128 KB.", "AWS.ParameterOutOfRange")
    try:
        url, height = parse_external_question(question)
    except XMLError as exc:
        raise ApiError(
            f"There was an error parsing the XML question or answer data in your request: {exc}",
            "AWS.MechanicalTurk.XMLParseError",
        ) from None
    parts = urlsplit(url)
    https = parts.scheme == "https"
    loopback_http = parts.scheme == "http" and parts.hostname in LOOPBACK
    if not (https or loopback_http) or not parts.hostname:
        raise ApiError(
            f"ExternalURL {url!r} must be an https URL.", "AWS.MechanicalTurk.InvalidURL"
        )
    if height < 0:
        raise ApiError("FrameHeight must not be negative.", "AWS.ParameterOutOfRange")
    return url, height


@operation
def create_hit_with_hit_type(realm: str, body: dict, now: datetime) -> dict:
    type_id = _entity(body, "HITTypeId")
    hit_type = HitType.objects.filter(realm=realm, hit_type_id=type_id).first()
    if hit_type is None:
        raise ApiError(
            f"HITType {type_id} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist"
        )
    lifetime = _int_in(body, "LifetimeInSeconds", MIN_SECONDS, MAX_SECONDS)
    max_assignments = _int_in(body, "MaxAssignments", 1, 1_000_000, default=1)
    _required(body, "Question")
    url, height = _external_url(body["Question"])
    annotation = _text(body, "RequesterAnnotation", 255)
    seen = _check_token(realm, "CreateHIT", body, now)
    if seen is not None:
        raise ApiError(
            f"There is already a HIT which exists with the same UniqueRequestToken: "
            f"{body['UniqueRequestToken']}. HITId: {seen.result}",
            "AWS.MechanicalTurk.HitAlreadyExists",
        )
    hit = Hit(
        realm=realm,
        hit_id=state.new_id("3"),
        hit_type=hit_type,
        question=body["Question"],
        external_url=url,
        frame_height=height,
        max_assignments=max_assignments,
        requester_annotation=annotation,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    cost = (hit_type.reward + state.fee_for(hit)) * max_assignments
    if state.account(realm).balance < cost:
        raise ApiError(
            f"Your account does not have enough funds for this HIT (${cost}).",
            "AWS.MechanicalTurk.InsufficientFunds",
        )
    hit.save()
    _remember_token(realm, "CreateHIT", body, hit.hit_id, now)
    return {"HIT": hit_shape(hit, now)}


@operation
def get_hit(realm: str, body: dict, now: datetime) -> dict:
    return {"HIT": hit_shape(_hit(realm, body), now)}


@operation
def list_hits(realm: str, body: dict, now: datetime) -> dict:
    hits = list(Hit.objects.filter(realm=realm, disposed=False).select_related("hit_type"))
    chunk, token = _page(hits, body)
    out = {"NumResults": len(chunk), "HITs": [hit_shape(h, now) for h in chunk]}
    if token:
        out["NextToken"] = token
    return out


@operation
def list_reviewable_hits(realm: str, body: dict, now: datetime) -> dict:
    wanted = body.get("Status", "Reviewable")
    if wanted not in ("Reviewable", "Reviewing"):
        raise ApiError(f"Status {wanted!r} is not valid.", "AWS.ParameterOutOfRange")
    hits = Hit.objects.filter(realm=realm, disposed=False).select_related("hit_type")
    if body.get("HITTypeId"):
        hits = hits.filter(hit_type__hit_type_id=body["HITTypeId"])
    matching = [h for h in hits if state.hit_status(h, now) == wanted]
    chunk, token = _page(matching, body)
    out = {"NumResults": len(chunk), "HITs": [hit_shape(h, now) for h in chunk]}
    if token:
        out["NextToken"] = token
    return out


@operation
def list_assignments_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = _hit(realm, body)
    statuses = body.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"]
    if not set(statuses) <= {"Submitted", "Approved", "Rejected"}:
        raise ApiError(f"AssignmentStatuses {statuses!r} are not valid.", "AWS.ParameterOutOfRange")
    rows = list(hit.assignments.filter(status__in=statuses).select_related("worker", "hit"))
    chunk, token = _page(rows, body)
    out = {"NumResults": len(chunk), "Assignments": [assignment_shape(a) for a in chunk]}
    if token:
        out["NextToken"] = token
    return out


@operation
def get_assignment(realm: str, body: dict, now: datetime) -> dict:
    a = _assignment(realm, body)
    return {"Assignment": assignment_shape(a), "HIT": hit_shape(a.hit, now)}


def _not_submitted(a: Assignment) -> ApiError:
    return ApiError(
        "This operation can be called with a status of: Submitted "
        f"(assignment {a.assignment_id} is {a.status})",
        "AWS.MechanicalTurk.InvalidAssignmentState",
    )


@operation
def approve_assignment(realm: str, body: dict, now: datetime) -> dict:
    a = _assignment(realm, body)
    feedback = _text(body, "RequesterFeedback", 1024)
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
    a = _assignment(realm, body)
    feedback = _text(body, "RequesterFeedback", 1024, required=True)
    if a.status != "Submitted":
        raise _not_submitted(a)
    a.status = Assignment.Status.REJECTED
    a.rejection_time = now
    a.requester_feedback = feedback
    a.save(update_fields=["status", "rejection_time", "requester_feedback"])
    return {}


@operation
def send_bonus(realm: str, body: dict, now: datetime) -> dict:
    worker = _worker(body)
    amount = _money_in(body, "BonusAmount")
    a = _assignment(realm, body)
    reason = _text(body, "Reason", 4096, required=True)
    if a.worker_id != worker.pk:
        raise ApiError(
            "The assignment was not done by this worker.", "AWS.MechanicalTurk.InvalidWorker"
        )
    if _check_token(realm, "SendBonus", body, now) is not None:
        raise ApiError(
            f"The bonus for request {body['UniqueRequestToken']} was already paid.",
            "AWS.MechanicalTurk.DuplicateRequest",
        )
    state.charge(realm, amount + bonus_fee(amount), "this bonus")
    Bonus.objects.create(
        realm=realm, assignment=a, worker=worker, amount=amount, reason=reason, granted_at=now
    )
    _remember_token(realm, "SendBonus", body, a.assignment_id, now)
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
    chunk, token = _page(list(bonuses.order_by("id")), body)
    out = {
        "NumResults": len(chunk),
        "BonusPayments": [
            {
                "WorkerId": b.worker.worker_id,
                "BonusAmount": _money(b.amount),
                "AssignmentId": b.assignment.assignment_id,
                "Reason": b.reason,
                "GrantTime": _ts(b.granted_at),
            }
            for b in chunk
        ],
    }
    if token:
        out["NextToken"] = token
    return out


@operation
def create_worker_block(realm: str, body: dict, now: datetime) -> dict:
    worker = _worker(body)
    reason = _text(body, "Reason", 4096, required=True)
    WorkerBlock.objects.update_or_create(realm=realm, worker=worker, defaults={"reason": reason})
    return {}


@operation
def delete_worker_block(realm: str, body: dict, now: datetime) -> dict:
    WorkerBlock.objects.filter(realm=realm, worker=_worker(body)).delete()
    return {}


@operation
def list_worker_blocks(realm: str, body: dict, now: datetime) -> dict:
    blocks = list(WorkerBlock.objects.filter(realm=realm).select_related("worker").order_by("id"))
    chunk, token = _page(blocks, body)
    out = {
        "NumResults": len(chunk),
        "WorkerBlocks": [{"WorkerId": b.worker.worker_id, "Reason": b.reason} for b in chunk],
    }
    if token:
        out["NextToken"] = token
    return out


@operation
def notify_workers(realm: str, body: dict, now: datetime) -> dict:
    subject = _text(body, "Subject", 200, required=True)
    message = _text(body, "MessageText", 4096, required=True)
    ids = body.get("WorkerIds")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise ApiError("WorkerIds must list 1 to 100 workers.", "AWS.ParameterOutOfRange")
    failures = []
    for wid in ids:
        worker = SimWorker.objects.filter(worker_id=wid).first()
        if worker is None:
            failures.append(
                {
                    "NotifyWorkersFailureCode": "HardFailure",
                    "NotifyWorkersFailureMessage": "No such worker.",
                    "WorkerId": wid,
                }
            )
            continue
        Notification.objects.create(
            realm=realm, worker=worker, subject=subject, message=message, sent_at=now
        )
    return {"NotifyWorkersFailureStatuses": failures}


@operation
def update_expiration_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = _hit(realm, body)
    _required(body, "ExpireAt")
    try:
        expire_at = datetime.fromtimestamp(float(body["ExpireAt"]), tz=UTC)
    except (TypeError, ValueError):
        raise ApiError("ExpireAt must be a timestamp.", "AWS.ParameterOutOfRange") from None
    hit.expires_at = max(now, expire_at)
    hit.save(update_fields=["expires_at"])
    return {}


@operation
def create_additional_assignments_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = _hit(realm, body)
    extra = _int_in(body, "NumberOfAdditionalAssignments", 1, 1_000_000)
    if _check_token(realm, "CreateAdditionalAssignmentsForHIT", body, now) is not None:
        raise ApiError(
            f"The request {body['UniqueRequestToken']} was already processed.",
            "AWS.MechanicalTurk.DuplicateRequest",
        )
    if hit.max_assignments < 10 <= hit.max_assignments + extra:
        raise ApiError(
            "HITs created with fewer than 10 assignments cannot be extended to 10 or more.",
            "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease",
        )
    hit.max_assignments += extra
    hit.save(update_fields=["max_assignments"])
    _remember_token(realm, "CreateAdditionalAssignmentsForHIT", body, hit.hit_id, now)
    return {}


@operation
def delete_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = _hit(realm, body)
    c = state.counts(hit, now)
    status = state.hit_status(hit, now, c)
    if status not in ("Reviewable", "Reviewing") or c.submitted:
        raise ApiError(
            f"This HIT is currently in the state '{status}' with {c.submitted} submitted "
            "assignments to review; it can be deleted once it is Reviewable and every "
            "submitted assignment is approved or rejected.",
            "AWS.MechanicalTurk.InvalidHITState",
        )
    hit.disposed = True
    hit.save(update_fields=["disposed"])
    return {}


@operation
def create_qualification_type(realm: str, body: dict, now: datetime) -> dict:
    name = _text(body, "Name", 200, required=True)
    description = _text(body, "Description", 2000, required=True)
    if body.get("QualificationTypeStatus") not in ("Active", "Inactive"):
        raise ApiError(
            "QualificationTypeStatus must be Active or Inactive.", "AWS.ParameterOutOfRange"
        )
    try:
        with transaction.atomic():
            q = QualificationType.objects.create(
                realm=realm,
                qualification_type_id=state.new_id("3"),
                name=name,
                description=description,
            )
    except IntegrityError:
        raise ApiError(
            f"You have already created a QualificationType with this name: {name}",
            "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
        ) from None
    return {"QualificationType": _qualification_type_shape(q)}


@operation
def list_qualification_types(realm: str, body: dict, now: datetime) -> dict:
    if "MustBeRequestable" not in body:
        raise ApiError("Value for MustBeRequestable is required.", "AWS.MissingParameters")
    types = QualificationType.objects.filter(realm=realm).order_by("id")
    if body.get("Query"):
        types = types.filter(name__icontains=body["Query"])
    chunk, token = _page(list(types), body)
    out = {
        "NumResults": len(chunk),
        "QualificationTypes": [_qualification_type_shape(q) for q in chunk],
    }
    if token:
        out["NextToken"] = token
    return out


def _owned_type(realm: str, body: dict) -> str:
    type_id = _entity(body, "QualificationTypeId")
    if not QualificationType.objects.filter(realm=realm, qualification_type_id=type_id).exists():
        raise ApiError(
            f"QualificationType {type_id} does not exist.",
            "AWS.MechanicalTurk.QualificationTypeDoesNotExist",
        )
    return type_id


@operation
def associate_qualification_with_worker(realm: str, body: dict, now: datetime) -> dict:
    type_id = _owned_type(realm, body)
    # Any MTurk worker can be granted a qualification, seen by this requester or not.
    worker, _ = SimWorker.objects.get_or_create(worker_id=_entity(body, "WorkerId", WORKER_RE))
    value = body.get("IntegerValue", 1)
    WorkerQualification.objects.update_or_create(
        worker=worker, qualification_type_id=type_id, defaults={"integer_value": value}
    )
    return {}


@operation
def disassociate_qualification_from_worker(realm: str, body: dict, now: datetime) -> dict:
    type_id = _owned_type(realm, body)
    WorkerQualification.objects.filter(worker=_worker(body), qualification_type_id=type_id).delete()
    return {}


# --- fault injection and dispatch ---------------------------------------------------------------


def _planned_fault(realm: str, op: str, header: str) -> tuple[str | None, int]:
    """(fault kind or None, delay in ms) for this call."""
    if header:
        if header.startswith("delay="):
            return None, int(header.removeprefix("delay="))
        return header, 0
    with transaction.atomic():
        plan = FaultPlan.objects.select_for_update().filter(realm=realm).first()
        if plan is None or (plan.operations and op not in plan.operations):
            return None, 0
        plan.calls += 1
        rng = random.Random(f"{plan.seed}:{plan.calls}")  # noqa: S311 - test fault schedule
        r, r_delay = rng.random(), rng.random()
        kind = None
        if plan.consecutive < plan.max_consecutive:
            edges = [
                ("throttle", plan.throttle_rate),
                ("fault", plan.fault_rate),
                ("fault_after", plan.fault_after_rate),
            ]
            acc = 0.0
            for name, rate in edges:
                acc += rate
                if r < acc:
                    kind = name
                    break
        plan.consecutive = plan.consecutive + 1 if kind else 0
        delay = plan.delay_ms if r_delay < plan.delay_rate else 0
        if kind:
            plan.injected[kind] = plan.injected.get(kind, 0) + 1
        plan.save()
    return kind, delay


def _log(realm: str, op: str, status: int, code: str = "") -> None:
    CallLog.objects.create(realm=realm, operation=op, status=status, error_code=code)


@csrf_exempt
def requester_api(request: HttpRequest, realm: str = state.DEFAULT_REALM) -> HttpResponse:
    """One requester API call: MTurk's JSON protocol in, MTurk's answer out."""
    if request.method != "POST":
        # A person who opens the endpoint in a browser wants the worker side.
        return redirect("localturk:hit-list")
    target = request.headers.get("X-Amz-Target", "")
    op = target.removeprefix(TARGET_PREFIX)
    handler = OPERATIONS.get(op) if target.startswith(TARGET_PREFIX) else None
    if handler is None:
        _log(realm, op or "?", 400, "UnknownOperationException")
        return _error_response(
            ApiError(f"Operation {target!r} is not supported.", kind="UnknownOperationException")
        )
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("body is not an object")
    except ValueError:
        _log(realm, op, 400, "SerializationException")
        return _error_response(ApiError("Request body is not JSON.", kind="SerializationException"))
    fault, delay_ms = _planned_fault(realm, op, request.headers.get("X-LocalTurk-Fault", ""))
    if delay_ms:
        time.sleep(delay_ms / 1000)
    if fault in ("throttle", "fault"):
        err = _throttled() if fault == "throttle" else _service_fault()
        _log(realm, op, err.status, err.kind)
        return _error_response(err)
    now = timezone.now()
    try:
        with transaction.atomic():
            state.housekeeping(realm, now)
            result = handler(realm, body, now)
    except ApiError as err:
        _log(realm, op, err.status, err.code or err.kind)
        return _error_response(err)
    if fault == "fault_after":
        err = _service_fault()
        _log(realm, op, err.status, "fault_after")
        return _error_response(err)
    _log(realm, op, 200)
    return _json_response(result)
