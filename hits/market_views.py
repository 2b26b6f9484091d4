"""The built-in marketplace's pages: workers who arrive by link list, preview and accept HITs,
do them on the task page, and finish with a completion code or a redirect.

A worker's id comes from the batch's query parameter when they were recruited elsewhere (e.g.
``PROLIFIC_PID``), else from a signed cookie on our own origin (typed in once, or made up for
them). The raw id lives only in that cookie and the task link; the database keeps its hash.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from annotation.models import Worker
from annotation.services import worker_get_or_create
from annotation.worker_ids import worker_id_hash

from .exceptions import MarketRefused
from .models import Assignment, Hit, HitBatch, Provider, WorkerNotice
from .services import (
    market_accept,
    market_available_hits,
    market_external_submit,
    market_hit_refusal,
    market_next_hit,
    market_return,
)

SALT = "hits.market.worker"
WORKER_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
COOKIE_AGE = 90 * 24 * 3600


def _cookie_id(request: HttpRequest) -> str:
    return request.get_signed_cookie(settings.MARKET_WORKER_COOKIE, default="", salt=SALT)


def _remember(response: HttpResponse, request: HttpRequest, raw_id: str) -> HttpResponse:
    response.set_signed_cookie(
        settings.MARKET_WORKER_COOKIE,
        raw_id,
        salt=SALT,
        max_age=COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


def _worker_id(request: HttpRequest, batch: HitBatch | None = None) -> str:
    """The raw worker id: the batch's recruiting parameter, else our signed cookie."""
    if batch is not None and batch.worker_id_param:
        raw = (request.GET.get(batch.worker_id_param) or "").strip()
        if raw and WORKER_ID_RE.match(raw):
            return raw
    return _cookie_id(request)


def _worker(raw_id: str) -> Worker | None:
    if not raw_id:
        return None
    return Worker.objects.filter(provider=Provider.MARKET, id_hash=worker_id_hash(raw_id)).first()


def _open_batches():
    return HitBatch.objects.filter(provider=Provider.MARKET, status=HitBatch.Status.OPEN)


def _invited(request: HttpRequest, batch: HitBatch) -> bool:
    if not batch.invite_code:
        return True
    given = request.POST.get("code") or request.GET.get("code") or ""
    return secrets.compare_digest(given, batch.invite_code)


def _refused(request: HttpRequest, message: str, status: int = 403) -> HttpResponse:
    return render(request, "hits/market/refused.html", {"message": message}, status=status)


def _task_link(request: HttpRequest, a: Assignment, raw_id: str) -> str:
    params = {
        "assignmentId": a.provider_assignment_id,
        "hitId": a.hit.provider_hit_id,
        "workerId": raw_id,
        "turkSubmitTo": request.build_absolute_uri("/market").rstrip("/"),
    }
    return f"/task/{a.hit_id}/?{urlencode(params)}"


def market_home(request: HttpRequest) -> HttpResponse:
    raw_id = _cookie_id(request)
    worker = _worker(raw_id)
    notices = (
        list(WorkerNotice.objects.filter(worker=worker).order_by("-created_at")[:10])
        if worker
        else []
    )
    batches = [b for b in _open_batches() if not b.invite_code]
    return render(
        request,
        "hits/market/home.html",
        {"batches": batches, "raw_id": raw_id, "notices": notices},
    )


def identity(request: HttpRequest) -> HttpResponse:
    """Say who you are (or get an id made up for you); kept in a signed cookie."""
    back = request.POST.get("next") or request.GET.get("next") or reverse("market:home")
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("market:home")
    if request.method == "POST":
        raw = request.POST.get("worker_id", "").strip()
        if request.POST.get("generate"):
            raw = "W" + secrets.token_hex(8).upper()
        if not WORKER_ID_RE.match(raw):
            return render(
                request,
                "hits/market/identity.html",
                {"next": back, "error": "Use 3 to 64 letters, digits, '.', '_', '@' or '-'."},
                status=400,
            )
        return _remember(redirect(back), request, raw)
    return render(
        request, "hits/market/identity.html", {"next": back, "raw_id": _cookie_id(request)}
    )


def batch_page(request: HttpRequest, uid) -> HttpResponse:
    """A batch's landing page: the link researchers hand out (optionally with an invite code
    and a recruiting platform's worker id parameter)."""
    batch = get_object_or_404(HitBatch, uid=uid, provider=Provider.MARKET)
    if not _invited(request, batch):
        return _refused(request, "This link needs a valid invitation code.")
    raw_id = _worker_id(request, batch)
    worker = _worker(raw_id)
    if worker is not None:
        hits = market_available_hits(batch, worker)
    elif batch.status == HitBatch.Status.OPEN:
        hits = list(batch.hits.exclude(provider_hit_id="").order_by("number"))
    else:
        hits = []
    response = render(
        request,
        "hits/market/batch.html",
        {
            "batch": batch,
            "hits": hits,
            "raw_id": raw_id,
            "code": request.GET.get("code", ""),
            "closed": batch.status != HitBatch.Status.OPEN,
        },
    )
    return _remember(response, request, raw_id) if raw_id else response


def hit_preview(request: HttpRequest, pk: int) -> HttpResponse:
    hit = get_object_or_404(
        Hit.objects.select_related("batch"), pk=pk, batch__provider=Provider.MARKET
    )
    if not _invited(request, hit.batch):
        return _refused(request, "This link needs a valid invitation code.")
    raw_id = _worker_id(request, hit.batch)
    worker = _worker(raw_id)
    why = market_hit_refusal(hit, worker) if worker else ""
    src = f"/task/{hit.pk}/?" + urlencode(
        {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": hit.provider_hit_id}
    )
    return render(
        request,
        "hits/market/preview.html",
        {
            "hit": hit,
            "batch": hit.batch,
            "raw_id": raw_id,
            "why": why,
            "src": src,
            "code": request.GET.get("code", ""),
        },
    )


def _accept(request: HttpRequest, hit: Hit | None, batch: HitBatch) -> HttpResponse:
    raw_id = _worker_id(request, batch) or request.POST.get("worker_id", "").strip()
    if not raw_id or not WORKER_ID_RE.match(raw_id):
        return redirect(f"{reverse('market:identity')}?{urlencode({'next': request.path})}")
    if not _invited(request, batch):
        return _refused(request, "This link needs a valid invitation code.")
    if hit is None:
        hit = market_next_hit(batch, worker_get_or_create(Provider.MARKET, raw_id))
        if hit is None:
            return _refused(request, "There are no more tasks for you here. Thank you!", status=404)
    try:
        a = market_accept(hit, raw_id)
    except MarketRefused as exc:
        return _refused(request, str(exc), status=409)
    return _remember(redirect(_task_link(request, a, raw_id)), request, raw_id)


@require_POST
def hit_accept(request: HttpRequest, pk: int) -> HttpResponse:
    hit = get_object_or_404(
        Hit.objects.select_related("batch"), pk=pk, batch__provider=Provider.MARKET
    )
    return _accept(request, hit, hit.batch)


@require_POST
def batch_start(request: HttpRequest, uid) -> HttpResponse:
    """Take the next HIT this worker may do in the batch."""
    batch = get_object_or_404(HitBatch, uid=uid, provider=Provider.MARKET)
    return _accept(request, None, batch)


@require_POST
def assignment_return(request: HttpRequest, assignment_id: str) -> HttpResponse:
    worker = _worker(_cookie_id(request))
    a = get_object_or_404(
        Assignment.objects.select_related("hit__batch"),
        provider_assignment_id=assignment_id,
        worker=worker,
        hit__batch__provider=Provider.MARKET,
    )
    market_return(a)
    return redirect("market:batch", uid=a.hit.batch.uid)


@csrf_exempt
@require_POST
def external_submit(request: HttpRequest) -> HttpResponse:
    """``{turkSubmitTo}/mturk/externalSubmit`` of our marketplace: the task page's final form."""
    aid = request.POST.get("assignmentId", "")
    fields = {k: v for k, v in request.POST.items() if k != "assignmentId"}
    try:
        a = market_external_submit(aid, fields)
    except MarketRefused as exc:
        return _refused(request, str(exc), status=400)
    batch = a.hit.batch
    if batch.completion_redirect_url:
        return redirect(batch.completion_redirect_url)
    more = False
    if batch.max_hits_per_worker is None or batch.max_hits_per_worker > 1:
        more = market_next_hit(batch, a.worker) is not None
    return render(
        request,
        "hits/market/complete.html",
        {"batch": batch, "assignment": a, "more": more},
    )
