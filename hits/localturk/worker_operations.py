"""The requester API's worker operations: blocks, notifications and qualification types."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from . import state
from .models import Notification, QualificationType, SimWorker, WorkerBlock, WorkerQualification
from .protocol import (
    entity,
    find_worker,
    operation,
    paged,
    qualification_type_shape,
    text,
)
from .state import WORKER_RE, ApiError


@operation
def create_worker_block(realm: str, body: dict, now: datetime) -> dict:
    worker = find_worker(body)
    reason = text(body, "Reason", 4096, required=True)
    WorkerBlock.objects.update_or_create(realm=realm, worker=worker, defaults={"reason": reason})
    return {}


@operation
def delete_worker_block(realm: str, body: dict, now: datetime) -> dict:
    WorkerBlock.objects.filter(realm=realm, worker=find_worker(body)).delete()
    return {}


@operation
def list_worker_blocks(realm: str, body: dict, now: datetime) -> dict:
    blocks = list(WorkerBlock.objects.filter(realm=realm).select_related("worker").order_by("id"))
    return paged(
        blocks, body, "WorkerBlocks", lambda b: {"WorkerId": b.worker.worker_id, "Reason": b.reason}
    )


@operation
def notify_workers(realm: str, body: dict, now: datetime) -> dict:
    subject = text(body, "Subject", 200, required=True)
    message = text(body, "MessageText", 4096, required=True)
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
def create_qualification_type(realm: str, body: dict, now: datetime) -> dict:
    name = text(body, "Name", 200, required=True)
    description = text(body, "Description", 2000, required=True)
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
    return {"QualificationType": qualification_type_shape(q)}


@operation
def list_qualification_types(realm: str, body: dict, now: datetime) -> dict:
    if "MustBeRequestable" not in body:
        raise ApiError("Value for MustBeRequestable is required.", "AWS.MissingParameters")
    types = QualificationType.objects.filter(realm=realm).order_by("id")
    if body.get("Query"):
        types = types.filter(name__icontains=body["Query"])
    return paged(list(types), body, "QualificationTypes", qualification_type_shape)


def _owned_type(realm: str, body: dict) -> str:
    type_id = entity(body, "QualificationTypeId")
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
    worker, _ = SimWorker.objects.get_or_create(worker_id=entity(body, "WorkerId", WORKER_RE))
    value = body.get("IntegerValue", 1)
    WorkerQualification.objects.update_or_create(
        worker=worker, qualification_type_id=type_id, defaults={"integer_value": value}
    )
    return {}


@operation
def disassociate_qualification_from_worker(realm: str, body: dict, now: datetime) -> dict:
    type_id = _owned_type(realm, body)
    WorkerQualification.objects.filter(
        worker=find_worker(body), qualification_type_id=type_id
    ).delete()
    return {}
