"""The built-in marketplace's pages: workers who arrive by link list, preview and accept HITs,
do them on the task page, and finish with a completion code or a redirect.

A worker's id comes from the batch's query parameter when they were recruited elsewhere (e.g.
``PROLIFIC_PID``), else is typed in once (or made up for them); either way it is then bound to
the browser in a signed cookie on our own origin, and a link naming another id is refused rather
than followed. The raw id lives only in that cookie and the task link; the database keeps its
hash. Malformed ids and invitation codes are answered 400 with a message.
"""

from __future__ import annotations

import functools
import re
import secrets
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from annotation.models import Worker
from annotation.worker_ids import worker_id_hash

from .exceptions import MarketRefused, NoMoreTasks
from .market_identity import (
    WORKER_ID_RE,
    hosted_task_link,
    market_session_bind,
    market_session_worker_id,
)
from .models import Assignment, Hit, HitBatch, Provider, WorkerNotice
from .services import (
    market_accept,
    market_accept_next,
    market_available_hits,
    market_external_submit,
    market_hit_refusal,
    market_next_hit,
    market_return,
)

# Printable ASCII: anything else cannot be one of our codes.
INVITE_CODE_RE = re.compile(r"^[!-~]{1,64}$")


class _Refusal(Exception):
    """A request the marketplace answers with its refusal page: ``message``, ``status``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _worker_id(request: HttpRequest, batch: HitBatch | None = None) -> str:
    """The raw worker id: the one bound to this browser, else the batch's recruiting parameter
    (bound on this first arrival). A malformed id in the link, or one other than the bound id,
    raises _Refusal: an id is never switched by editing a link."""
    bound = market_session_worker_id(request)
    if batch is None or not batch.worker_id_param or batch.worker_id_param not in request.GET:
        return bound
    raw = request.GET.get(batch.worker_id_param, "").strip()
    if not WORKER_ID_RE.match(raw):
        raise _Refusal(
            f"The link's {batch.worker_id_param} is not a valid participant id: use the link "
            "your study gave you.",
            400,
        )
    if bound and bound != raw:
        raise _Refusal(
            f"This browser already takes part as another participant than the link's "
            f"{batch.worker_id_param}. One browser stays with one participant id: use the "
            "link your study gave you, or another browser.",
            403,
        )
    return raw


def _worker(raw_id: str) -> Worker | None:
    if not raw_id:
        return None
    return Worker.objects.filter(provider=Provider.MARKET, id_hash=worker_id_hash(raw_id)).first()


def _open_batches():
    return HitBatch.objects.filter(provider=Provider.MARKET, status=HitBatch.Status.OPEN)


def _invited(request: HttpRequest, batch: HitBatch) -> bool:
    """Whether the request carries the batch's invitation code; _Refusal for a malformed one."""
    given = request.POST.get("code") or request.GET.get("code") or ""
    if given and not INVITE_CODE_RE.match(given):
        raise _Refusal("This invitation code is malformed: copy it again from the invitation.", 400)
    if not batch.invite_code:
        return True
    return secrets.compare_digest(given.encode(), batch.invite_code.encode())


def _refused(request: HttpRequest, message: str, status: int = 403) -> HttpResponse:
    return render(request, "hits/market/refused.html", {"message": message}, status=status)


def _refusals(view):
    """Answer a _Refusal raised inside ``view`` with the refusal page (nothing was written)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _Refusal as exc:
            return _refused(request, str(exc), status=exc.status)

    return wrapped


def _task_link(request: HttpRequest, a: Assignment, raw_id: str) -> str:
    return hosted_task_link(request, a, raw_id, submit_to="/market")


def market_home(request: HttpRequest) -> HttpResponse:
    raw_id = market_session_worker_id(request)
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
        return market_session_bind(redirect(back), request, raw)
    raw_id = market_session_worker_id(request)
    return render(request, "hits/market/identity.html", {"next": back, "raw_id": raw_id})


@_refusals
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
    return market_session_bind(response, request, raw_id) if raw_id else response


@_refusals
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
    response = render(
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
    return market_session_bind(response, request, raw_id) if raw_id else response


def _accept(request: HttpRequest, hit: Hit | None, batch: HitBatch) -> HttpResponse:
    raw_id = _worker_id(request, batch) or request.POST.get("worker_id", "").strip()
    if not raw_id:
        return redirect(f"{reverse('market:identity')}?{urlencode({'next': request.path})}")
    if not WORKER_ID_RE.match(raw_id):
        raise _Refusal("Use 3 to 64 letters, digits, '.', '_', '@' or '-' as your id.", 400)
    if not _invited(request, batch):
        return _refused(request, "This link needs a valid invitation code.")
    try:
        a = market_accept(hit, raw_id) if hit is not None else market_accept_next(batch, raw_id)
    except NoMoreTasks as exc:
        return _refused(request, str(exc), status=404)
    except MarketRefused as exc:
        return _refused(request, str(exc), status=409)
    return market_session_bind(redirect(_task_link(request, a, raw_id)), request, raw_id)


@require_POST
@_refusals
def hit_accept(request: HttpRequest, pk: int) -> HttpResponse:
    hit = get_object_or_404(
        Hit.objects.select_related("batch"), pk=pk, batch__provider=Provider.MARKET
    )
    return _accept(request, hit, hit.batch)


@require_POST
@_refusals
def batch_start(request: HttpRequest, uid) -> HttpResponse:
    """Take the next HIT this worker may do in the batch."""
    batch = get_object_or_404(HitBatch, uid=uid, provider=Provider.MARKET)
    return _accept(request, None, batch)


@require_http_methods(["GET", "POST"])
def assignment_return(request: HttpRequest, assignment_id: str) -> HttpResponse:
    """GET: ask before giving the HIT back (the task page links here); POST: give it back, so
    its place opens for another worker at once instead of when the time runs out."""
    raw_id = market_session_worker_id(request)
    a = get_object_or_404(
        Assignment.objects.select_related("hit__batch"),
        provider_assignment_id=assignment_id,
        worker=_worker(raw_id),
        hit__batch__provider=Provider.MARKET,
    )
    if a.status != Assignment.Status.ACCEPTED:
        return _refused(request, "This task is no longer yours to return.", status=410)
    if request.method == "GET":
        ctx = {"assignment": a, "batch": a.hit.batch, "task_link": _task_link(request, a, raw_id)}
        return render(request, "hits/market/return.html", ctx)
    market_return(a)
    return redirect("market:batch", uid=a.hit.batch.uid)


@csrf_exempt
@require_POST
def external_submit(request: HttpRequest) -> HttpResponse:
    """``{turkSubmitTo}/mturk/externalSubmit`` of our marketplace: the task page's final form."""
    aid = request.POST.get("assignmentId", "")
    fields = {k: v for k, v in request.POST.items() if k != "assignmentId"}
    worker = _worker(market_session_worker_id(request))
    try:
        a = market_external_submit(aid, fields, worker)
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
        {
            "batch": batch,
            "assignment": a,
            "more": more,
            "answers": a.votes.count(),
            "raw_id": market_session_worker_id(request),
        },
    )
