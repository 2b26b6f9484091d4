"""The requester API of the local MTurk endpoint, on MTurk's wire protocol: dispatch and faults.

``POST /localturk/`` (realm ``default``) or ``POST /localturk/realm/<name>/`` with
``X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>`` and a JSON 1.1 body; answers in
JSON 1.1 with epoch-second timestamps and money as strings; errors as MTurk sends them
(``__type`` RequestError / ServiceFault, ``Message``, ``TurkErrorCode``). Every call must be
signed under ``LOCALTURK_ACCESS_KEY_ID`` (auth.py); a refused call changes and logs nothing.
Faults can be injected per realm (FaultPlan) or, under test settings only, per request (header
``X-LocalTurk-Fault: throttle | fault | fault_after | delay=<ms>``).

The operations live in hit_operations, assignment_operations and worker_operations; importing
them here registers them in ``OPERATIONS``.
"""

from __future__ import annotations

import json
import random
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

# The operation modules are imported for their @operation registrations.
from . import assignment_operations, hit_operations, state, worker_operations  # noqa: F401
from .auth import request_refusal
from .models import CallLog, FaultPlan
from .protocol import OPERATIONS
from .state import ApiError

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
CONTENT_TYPE = "application/x-amz-json-1.1"


# --- wire format -------------------------------------------------------------------------------


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


# --- fault injection and dispatch ---------------------------------------------------------------


FAULT_KINDS = ("throttle", "fault", "fault_after")
MAX_HEADER_DELAY_MS = 60_000


def _header_fault(header: str) -> tuple[str | None, int] | None:
    """The fault a test asked for in ``X-LocalTurk-Fault``; None where none (or outside tests:
    elsewhere a caller could otherwise stall the server or fake outages)."""
    if not header or not settings.TESTING:
        return None
    if header.startswith("delay="):
        try:
            return None, min(MAX_HEADER_DELAY_MS, max(0, int(header.removeprefix("delay="))))
        except ValueError:
            return None
    return (header, 0) if header in FAULT_KINDS else None


def _planned_fault(realm: str, op: str, header: str) -> tuple[str | None, int]:
    """(fault kind or None, delay in ms) for this call."""
    asked = _header_fault(header)
    if asked is not None:
        return asked
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
    refusal = request_refusal(request)
    if refusal is not None:
        # Not logged either: an unknown caller leaves no trace in the database.
        return _error_response(refusal)
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
