"""The requester API's HIT operations: account balance, HIT types, creating, listing, extending,
expiring and deleting HITs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from hits.answers import XMLError, parse_external_question

from . import state
from .models import Hit, HitType
from .protocol import (
    MAX_AUTO_APPROVAL,
    MAX_SECONDS,
    MIN_SECONDS,
    check_token,
    entity,
    find_hit,
    hit_shape,
    int_in,
    money,
    money_in,
    operation,
    paged,
    remember_token,
    require,
    requirements,
    text,
)
from .state import ApiError

LOOPBACK = {"localhost", "127.0.0.1", "::1", "testserver"}


@operation
def get_account_balance(realm: str, body: dict, now: datetime) -> dict:
    return {"AvailableBalance": money(state.account(realm).balance), "OnHoldBalance": "0.00"}


@operation
def create_hit_type(realm: str, body: dict, now: datetime) -> dict:
    props = {
        "Title": text(body, "Title", 128, required=True),
        "Description": text(body, "Description", 2000, required=True),
        "Keywords": text(body, "Keywords", 1000),
        "Reward": str(money_in(body, "Reward")),
        "AssignmentDurationInSeconds": int_in(
            body, "AssignmentDurationInSeconds", MIN_SECONDS, MAX_SECONDS
        ),
        "AutoApprovalDelayInSeconds": int_in(
            body, "AutoApprovalDelayInSeconds", 0, MAX_AUTO_APPROVAL, default=MAX_AUTO_APPROVAL
        ),
        "QualificationRequirements": requirements(body.get("QualificationRequirements")),
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
    type_id = entity(body, "HITTypeId")
    hit_type = HitType.objects.filter(realm=realm, hit_type_id=type_id).first()
    if hit_type is None:
        raise ApiError(
            f"HITType {type_id} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist"
        )
    lifetime = int_in(body, "LifetimeInSeconds", MIN_SECONDS, MAX_SECONDS)
    max_assignments = int_in(body, "MaxAssignments", 1, 1_000_000, default=1)
    require(body, "Question")
    url, height = _external_url(body["Question"])
    annotation = text(body, "RequesterAnnotation", 255)
    seen = check_token(realm, "CreateHIT", body, now)
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
    remember_token(realm, "CreateHIT", body, hit.hit_id, now)
    return {"HIT": hit_shape(hit, now)}


@operation
def get_hit(realm: str, body: dict, now: datetime) -> dict:
    return {"HIT": hit_shape(find_hit(realm, body), now)}


@operation
def list_hits(realm: str, body: dict, now: datetime) -> dict:
    hits = list(Hit.objects.filter(realm=realm, disposed=False).select_related("hit_type"))
    return paged(hits, body, "HITs", lambda h: hit_shape(h, now))


@operation
def list_reviewable_hits(realm: str, body: dict, now: datetime) -> dict:
    wanted = body.get("Status", "Reviewable")
    if wanted not in ("Reviewable", "Reviewing"):
        raise ApiError(f"Status {wanted!r} is not valid.", "AWS.ParameterOutOfRange")
    hits = Hit.objects.filter(realm=realm, disposed=False).select_related("hit_type")
    if body.get("HITTypeId"):
        hits = hits.filter(hit_type__hit_type_id=body["HITTypeId"])
    matching = [h for h in hits if state.hit_status(h, now) == wanted]
    return paged(matching, body, "HITs", lambda h: hit_shape(h, now))


@operation
def update_expiration_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = find_hit(realm, body)
    require(body, "ExpireAt")
    try:
        expire_at = datetime.fromtimestamp(float(body["ExpireAt"]), tz=UTC)
    except (TypeError, ValueError):
        raise ApiError("ExpireAt must be a timestamp.", "AWS.ParameterOutOfRange") from None
    hit.expires_at = max(now, expire_at)
    hit.save(update_fields=["expires_at"])
    return {}


@operation
def create_additional_assignments_for_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = find_hit(realm, body)
    extra = int_in(body, "NumberOfAdditionalAssignments", 1, 1_000_000)
    if check_token(realm, "CreateAdditionalAssignmentsForHIT", body, now) is not None:
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
    remember_token(realm, "CreateAdditionalAssignmentsForHIT", body, hit.hit_id, now)
    return {}


@operation
def delete_hit(realm: str, body: dict, now: datetime) -> dict:
    hit = find_hit(realm, body)
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
