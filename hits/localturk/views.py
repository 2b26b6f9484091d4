"""The worker side of the local MTurk endpoint: HIT list, preview, accept, the task in an iframe
with MTurk's query parameters, and the externalSubmit receiver.

The simulated worker says who they are once (a plain cookie: this is a stand-in for MTurk's
login, holding a simulated MTurk worker id, which is MTurk-side data).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from hits.answers import question_form_answers

from . import state
from .models import Assignment, Hit, Notification, SimWorker

COOKIE = "localturk_worker"
PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"


def _worker(request: HttpRequest) -> SimWorker | None:
    wid = request.COOKIES.get(COOKIE, "")
    return SimWorker.objects.filter(worker_id=wid).first() if wid else None


def _with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _realm(request: HttpRequest) -> str:
    return request.GET.get("realm") or state.DEFAULT_REALM


def hit_list(request: HttpRequest) -> HttpResponse:
    realm = _realm(request)
    now = timezone.now()
    worker = _worker(request)
    with transaction.atomic():
        state.housekeeping(realm, now)
    hits = [h for h in state.open_hits(realm, now) if h.taken < h.max_assignments]
    notices = (
        Notification.objects.filter(realm=realm, worker=worker).order_by("-sent_at")[:10]
        if worker
        else []
    )
    return render(
        request,
        "localturk/hit_list.html",
        {"realm": realm, "hits": hits, "worker": worker, "notices": notices},
    )


@require_POST
def worker_login(request: HttpRequest) -> HttpResponse:
    wid = request.POST.get("worker_id", "").strip().upper()
    back = request.POST.get("next") or reverse("localturk:hit-list")
    if not state.WORKER_RE.match(wid):
        return HttpResponseBadRequest("A worker id starts with A and has only A-Z and 0-9.")
    if not SimWorker.objects.filter(worker_id=wid).exists():
        if not settings.LOCALTURK_AUTO_CREATE_WORKERS:
            return HttpResponseBadRequest(f"There is no simulated worker {wid}.")
        SimWorker.objects.create(worker_id=wid)
    resp = redirect(back if back.startswith("/") else reverse("localturk:hit-list"))
    resp.set_cookie(COOKIE, wid, httponly=True, samesite="Lax")
    return resp


def hit_preview(request: HttpRequest, hit_id: str) -> HttpResponse:
    hit = get_object_or_404(Hit.objects.select_related("hit_type"), hit_id=hit_id, disposed=False)
    worker = _worker(request)
    unmet = state.unmet_requirements(worker, hit) if worker else []
    src = _with_params(hit.external_url, {"assignmentId": PREVIEW_ASSIGNMENT, "hitId": hit.hit_id})
    return render(
        request,
        "localturk/hit_preview.html",
        {"hit": hit, "worker": worker, "unmet": unmet, "src": src},
    )


@require_POST
def hit_accept(request: HttpRequest, hit_id: str) -> HttpResponse:
    hit = get_object_or_404(Hit, hit_id=hit_id, disposed=False)
    worker = _worker(request)
    if worker is None:
        return HttpResponseBadRequest("Say which worker you are first.")
    try:
        with transaction.atomic():
            a = state.accept(hit, worker, timezone.now())
    except state.ApiError as err:
        return render(request, "localturk/refused.html", {"message": err.message}, status=409)
    return redirect("localturk:assignment", assignment_id=a.assignment_id)


def assignment_frame(request: HttpRequest, assignment_id: str) -> HttpResponse:
    a = get_object_or_404(
        Assignment.objects.select_related("hit__hit_type", "worker"), assignment_id=assignment_id
    )
    worker = _worker(request)
    if worker is None or worker.pk != a.worker_id:
        return HttpResponseBadRequest("This assignment belongs to another worker.")
    src = _with_params(
        a.hit.external_url,
        {
            "assignmentId": a.assignment_id,
            "hitId": a.hit.hit_id,
            "workerId": worker.worker_id,
            "turkSubmitTo": request.build_absolute_uri("/localturk").rstrip("/"),
        },
    )
    return render(request, "localturk/assignment.html", {"a": a, "src": src})


@require_POST
def assignment_return(request: HttpRequest, assignment_id: str) -> HttpResponse:
    worker = _worker(request)
    with transaction.atomic():
        a = get_object_or_404(
            Assignment.objects.select_for_update(), assignment_id=assignment_id, worker=worker
        )
        if a.status == Assignment.Status.ACCEPTED:
            a.status = Assignment.Status.RETURNED
            a.save(update_fields=["status"])
    return redirect("localturk:hit-list")


@csrf_exempt
@require_POST
def external_submit(request: HttpRequest) -> HttpResponse:
    """MTurk's ``/mturk/externalSubmit``: the task page's form lands here with its answers."""
    aid = request.POST.get("assignmentId", "")
    if not aid or aid == PREVIEW_ASSIGNMENT:
        return HttpResponseBadRequest("assignmentId is missing: accept the HIT before submitting.")
    fields = {k: v for k, v in request.POST.items() if k != "assignmentId"}
    now = timezone.now()
    with transaction.atomic():
        a = (
            Assignment.objects.select_for_update()
            .select_related("hit__hit_type")
            .filter(assignment_id=aid)
            .first()
        )
        if a is None:
            return HttpResponseBadRequest(f"There is no assignment {aid}.")
        state.housekeeping(a.hit.realm, now)
        a.refresh_from_db()
        if a.status in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
            return render(
                request,
                "localturk/refused.html",
                {"message": f"This assignment was {a.status.lower()}; it cannot be submitted."},
                status=409,
            )
        if a.status == Assignment.Status.ACCEPTED:
            state.submit(a, question_form_answers(fields), now)
    return render(request, "localturk/submitted.html", {"a": a, "realm": a.hit.realm})
