"""The worker side of the local MTurk endpoint: HIT list, preview, accept, the task in an iframe
with MTurk's query parameters, and the externalSubmit receiver.

The simulated worker says who they are once (a signed cookie: this is a stand-in for MTurk's
login, holding a simulated MTurk worker id, which is MTurk-side data); a cookie whose signature
does not verify counts as none. After choosing a worker, the site goes back only to a page of
this site.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from hits.answers import question_form_answers

from . import state
from .models import Assignment, Hit, Notification, SimWorker

COOKIE = "localturk_worker"
COOKIE_SALT = "hits.localturk.worker"
PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"


def _worker(request: HttpRequest) -> SimWorker | None:
    # A missing, unsigned or tampered cookie all read as "no worker chosen yet".
    wid = request.get_signed_cookie(COOKIE, default="", salt=COOKIE_SALT)
    return SimWorker.objects.filter(worker_id=wid).first() if wid else None


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "localturk/refused.html", {"message": message}, status=status)


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
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return _refused(
            request,
            f"The page to go back to, {back!r}, is not on this site: only pages of this site "
            "are followed after choosing a worker.",
            400,
        )
    if not state.WORKER_RE.match(wid):
        return _refused(request, "A worker id starts with A and has only A-Z and 0-9.", 400)
    if not SimWorker.objects.filter(worker_id=wid).exists():
        if not settings.LOCALTURK_AUTO_CREATE_WORKERS:
            return _refused(request, f"There is no simulated worker {wid}.", 400)
        SimWorker.objects.create(worker_id=wid)
    resp = redirect(back)
    resp.set_signed_cookie(COOKIE, wid, salt=COOKIE_SALT, httponly=True, samesite="Lax")
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
        return _refused(request, "Say which worker you are first.", 400)
    try:
        with transaction.atomic():
            a = state.accept(hit, worker, timezone.now())
    except state.ApiError as err:
        return _refused(request, err.message, 409)
    return redirect("localturk:assignment", assignment_id=a.assignment_id)


def assignment_frame(request: HttpRequest, assignment_id: str) -> HttpResponse:
    a = get_object_or_404(
        Assignment.objects.select_related("hit__hit_type", "worker"), assignment_id=assignment_id
    )
    worker = _worker(request)
    if worker is None or worker.pk != a.worker_id:
        return _refused(request, "This assignment belongs to another worker.", 400)
    if a.status in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
        # As on MTurk, work on it again means accepting the HIT again, under a new assignment id.
        return _refused(
            request,
            f"You {'returned' if a.status == Assignment.Status.RETURNED else 'abandoned'} this "
            "assignment; accept the HIT again to work on it.",
            409,
        )
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
        return _refused(request, "assignmentId is missing: accept the HIT before submitting.", 400)
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
            return _refused(request, f"There is no assignment {aid}.", 400)
        state.housekeeping(a.hit.realm, now)
        a.refresh_from_db()
        if a.status in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
            return _refused(
                request, f"This assignment was {a.status.lower()}; it cannot be submitted.", 409
            )
        if a.status == Assignment.Status.ACCEPTED:
            state.submit(a, question_form_answers(fields), now)
    return render(request, "localturk/submitted.html", {"a": a, "realm": a.hit.realm})
