"""Prolific participants' pages: the study URL they arrive by, and the submit that sends them
back to Prolific with the study's completion code.

The participant id arrives in the study URL (``PROLIFIC_PID``) and is bound to the browser in
the marketplace's signed cookie (hits/market_identity.py); the database keeps only its hash.
The session id (``SESSION_ID``) names their assignment, so a sync can match Prolific's
submission to it. Only our accept (hits.services.market) creates the assignment.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Worker
from annotation.worker_ids import worker_id_hash

from .exceptions import MarketRefused, NoMoreTasks
from .market_identity import (
    WORKER_ID_RE,
    hosted_task_link,
    market_session_bind,
    market_session_worker_id,
)
from .models import Assignment, HitBatch, Provider
from .providers.prolific import completion_code, completion_url, screened_out_code
from .services import market_accept_next, market_external_submit

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9]{6,64}$")


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "hits/market/refused.html", {"message": message}, status=status)


def _task_link(request: HttpRequest, a: Assignment, raw_id: str) -> str:
    return hosted_task_link(request, a, raw_id, submit_to="/prolific")


@require_GET
def study_entry(request: HttpRequest, uid) -> HttpResponse:
    """The study URL: bind the participant, hand them the next open HIT of the batch (or back
    to Prolific with the screened-out code when none is left for them)."""
    batch = get_object_or_404(HitBatch, uid=uid, provider=Provider.PROLIFIC)
    raw = request.GET.get("PROLIFIC_PID", "").strip()
    session = request.GET.get("SESSION_ID", "").strip()
    if not WORKER_ID_RE.match(raw):
        return _refused(request, "This link's PROLIFIC_PID is not a valid participant id.", 400)
    if not SESSION_ID_RE.match(session):
        return _refused(request, "This link's SESSION_ID is not a valid Prolific session.", 400)
    if request.GET.get("STUDY_ID", "") != batch.hit_type_id:
        return _refused(request, "This link's STUDY_ID is not this study.", 400)
    bound = market_session_worker_id(request)
    if bound and bound != raw:
        return _refused(
            request,
            "This browser already takes part as another participant. One browser stays with "
            "one participant id: use another browser.",
            403,
        )
    if batch.status != HitBatch.Status.OPEN:
        return _refused(request, "This study is not open.", 409)
    mine = (
        Assignment.objects.select_related("hit", "worker")
        .filter(hit__batch=batch, provider_assignment_id=session)
        .first()
    )
    if mine is not None:
        if mine.worker.id_hash != worker_id_hash(raw):
            return _refused(request, "This session belongs to another participant.", 403)
        response = redirect(_task_link(request, mine, raw))
    else:
        try:
            a = market_accept_next(batch, raw, assignment_id=session)
        except NoMoreTasks:
            response = redirect(completion_url(screened_out_code(batch)))
        except MarketRefused as exc:
            return _refused(request, str(exc), 409)
        else:
            response = redirect(_task_link(request, a, raw))
    return market_session_bind(response, request, raw)


@csrf_exempt
@require_POST
def external_submit(request: HttpRequest) -> HttpResponse:
    """``{turkSubmitTo}/mturk/externalSubmit`` for Prolific: record, then back to Prolific."""
    raw = market_session_worker_id(request)
    worker = (
        Worker.objects.filter(provider=Provider.PROLIFIC, id_hash=worker_id_hash(raw)).first()
        if raw
        else None
    )
    aid = request.POST.get("assignmentId", "")
    fields = {k: v for k, v in request.POST.items() if k != "assignmentId"}
    try:
        a = market_external_submit(aid, fields, worker)
    except MarketRefused as exc:
        return _refused(request, str(exc), 400)
    return redirect(completion_url(completion_code(a.hit.batch)))
