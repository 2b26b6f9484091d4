"""The worker-facing task pages and their submit endpoint.

MTurk (and our marketplaces) load ``/task/<hit_pk>/`` in an iframe with ``assignmentId``,
``hitId``, ``workerId`` and ``turkSubmitTo``. The raw worker id is hashed on arrival and goes
nowhere else: not into the page, not into a log.

Nothing in the query string is taken on trust: an assignment id new to us becomes a row only
when its marketplace handed it out (``assignment_arrive``); on our own marketplace only its accept
does that, and the page also wants the worker its signed cookie names.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from annotation import kinds
from annotation.worker_ids import worker_id_hash

from . import page_cache
from .exceptions import AssignmentMismatch
from .market_identity import WORKER_ID_RE, market_session_worker_id
from .models import HOSTED_PROVIDERS, Assignment, Hit, Provider
from .services import assignment_arrive, assignment_of_hit
from .submissions import SubmissionRefused, stored_answers, task_submit
from .task_tokens import token_expiry, token_issue

MTURK_WORKER_ORIGINS = (
    "https://www.mturk.com",
    "https://worker.mturk.com",
    "https://workersandbox.mturk.com",
)
NOT_AVAILABLE = "ASSIGNMENT_ID_NOT_AVAILABLE"
# MTurk's ids are 30 upper-case letters and digits, ours "LA" and 30 hex digits.
ASSIGNMENT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SUBMIT_BYTES = 512 * 1024
DONE_STATUSES = (
    Assignment.Status.SUBMITTED,
    Assignment.Status.APPROVED,
    Assignment.Status.REJECTED,
)


def _csp() -> str:
    ancestors = " ".join(["'self'", *MTURK_WORKER_ORIGINS, *settings.TASK_FRAME_ANCESTORS])
    # Everything the page needs comes from this site: no third-party asset can load.
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def _with_task_headers(response):
    response["Content-Security-Policy"] = _csp()
    response["Cache-Control"] = "no-store"
    # The page URL carries the worker id: keep it out of Referer headers, ours included.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _external_submit_url(request, turk_submit_to: str) -> str | None:
    """``{turkSubmitTo}/mturk/externalSubmit`` when turkSubmitTo is MTurk, this site or an
    allowed framing origin; ValueError otherwise (the page would post answers elsewhere)."""
    if not turk_submit_to:
        return None
    origin = _origin(turk_submit_to)
    allowed = {*MTURK_WORKER_ORIGINS, _origin(request.build_absolute_uri("/"))}
    allowed.update(_origin(u) for u in [settings.SITE_URL or "", *settings.TASK_FRAME_ANCESTORS])
    if origin is None or origin not in allowed:
        raise ValueError("turkSubmitTo is not an allowed origin")
    return turk_submit_to.rstrip("/") + "/mturk/externalSubmit"


def _message(request, status: int, heading: str, text: str):
    response = render(
        request, "tasks/message.html", {"heading": heading, "text": text}, status=status
    )
    return _with_task_headers(response)


def _assignment_for_page(request, hit: Hit, assignment_id: str, known: Assignment | None):
    """The assignment the working page is for, or the refusal page to answer with."""
    raw_worker_id = request.GET.get("workerId", "")
    if not raw_worker_id:
        return _message(request, 400, "Wrong link", "This link has no worker id.")
    if not WORKER_ID_RE.match(raw_worker_id):
        return _message(request, 400, "Wrong link", "This link's worker id is malformed.")
    if not ASSIGNMENT_ID_RE.match(assignment_id):
        return _message(request, 400, "Wrong link", "This link's assignment id is malformed.")
    try:
        assignment = assignment_arrive(hit, assignment_id, raw_worker_id, on_hit=known)
    except AssignmentMismatch as exc:
        return _message(request, 403, "Not your assignment", str(exc))
    if hit.batch.provider in HOSTED_PROVIDERS:
        # The marketplace's worker is the one its signed cookie names, not whoever the link says.
        session_id = market_session_worker_id(request)
        if not session_id or worker_id_hash(session_id) != assignment.worker.id_hash:
            return _message(
                request,
                403,
                "Not your assignment",
                "This assignment belongs to another worker than the one signed in here.",
            )
    return assignment


@xframe_options_exempt
@require_GET
def task_page(request, hit_pk: int):
    """The HIT: a preview until accepted, then the working page with its signed token."""
    assignment_id = request.GET.get("assignmentId", "")
    preview = assignment_id in ("", NOT_AVAILABLE)
    # A working page is nearly always opened by the worker the assignment was handed to: its
    # row brings the HIT along (one query for both); otherwise the HIT is looked up alone.
    known = (
        assignment_of_hit(hit_pk, assignment_id)
        if not preview and ASSIGNMENT_ID_RE.match(assignment_id)
        else None
    )
    if known is not None:
        hit = known.hit
    else:
        hit = get_object_or_404(Hit.objects.select_related("batch__dataset"), pk=hit_pk)
    if hit.provider_hit_id and request.GET.get("hitId") != hit.provider_hit_id:
        return _message(request, 400, "Wrong link", "This link does not match its HIT.")
    try:
        external_submit = _external_submit_url(request, request.GET.get("turkSubmitTo", ""))
    except ValueError:
        return _message(request, 400, "Wrong link", "This link names an unknown marketplace.")
    kind = kinds.get(hit.batch.kind)
    assignment = None
    if not preview:
        found = _assignment_for_page(request, hit, assignment_id, known)
        if not isinstance(found, Assignment):
            return found
        assignment = found
        if assignment.status in DONE_STATUSES:
            return _done_page(request, hit, assignment, external_submit)
        if assignment.status != Assignment.Status.ACCEPTED:
            return _message(
                request, 410, "Assignment closed", "This assignment is no longer active."
            )
        if token_expiry(assignment) < timezone.now().timestamp():
            return _message(request, 410, "Time is up", "The time for this assignment has run out.")
    data = {
        "kind": kind.name,
        "mode": kind.page_mode,
        "preview": preview,
        "hit": hit.pk,
        "assignmentId": None if preview else assignment_id,
        "token": None if preview else token_issue(assignment),
        "submitUrl": reverse("task-submit", args=[hit.pk]),
        "externalSubmit": external_submit,
    }
    # The built-in marketplace lets its worker give the HIT back from the page itself (on MTurk
    # and Prolific the platform's own Return button does that).
    return_url = (
        reverse("market:return", args=[assignment_id])
        if assignment is not None and hit.batch.provider == Provider.MARKET
        else ""
    )

    def context(page_data, page_return_url: str) -> dict:
        ctx = kind.page_context(hit, assignment)
        ctx.update(kind.page_markup(ctx, preview=preview))
        ctx.update(
            kind=kind.name,
            mode=kind.page_mode,
            preview=preview,
            data=page_data,
            dataset=hit.batch.dataset,
            minutes=max(1, hit.batch.assignment_duration_seconds // 60),
            return_url=page_return_url,
        )
        return ctx

    html = page_cache.task_page_html(
        kind, hit, preview=preview, data=data, return_url=return_url, context=context
    )
    return _with_task_headers(HttpResponse(html))


def _done_page(request, hit, assignment, external_submit):
    data = {
        "mode": "done",
        "assignmentId": assignment.provider_assignment_id,
        "answers": stored_answers(assignment),
        "externalSubmit": external_submit,
    }
    return _with_task_headers(render(request, "tasks/done.html", {"data": data}))


@csrf_exempt
@require_POST
def task_submit_view(request, hit_pk: int):
    """Store a page's answers. Cookie-free (the page is framed by another site): the signed
    token in the body is the credential. Body: JSON or form fields ``token`` and ``answers``."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_SUBMIT_BYTES:
        return _json({"ok": False, "error": "submission too large", "code": "too_large"}, 413)
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            # Not JSON, not UTF-8, or nested deeper than the parser can follow.
            body = None
        if not isinstance(body, dict):
            return _json(
                {"ok": False, "error": "body is not a JSON object", "code": "invalid"}, 400
            )
        token, answers = body.get("token"), body.get("answers")
    else:
        try:
            token, answers = request.POST.get("token"), request.POST.get("answers")
        except (LookupError, ValueError, MultiPartParserError) as exc:
            # An unknown charset or a malformed multipart body.
            return _json({"ok": False, "error": f"unreadable form: {exc}", "code": "invalid"}, 400)
    try:
        result = task_submit(hit_id=hit_pk, token=token or "", answers=answers)
    except SubmissionRefused as exc:
        payload = {
            "ok": False,
            "error": str(exc),
            "code": exc.code,
            "already_submitted": exc.already_submitted,
        }
        if exc.answers is not None:
            payload["answers"] = exc.answers
        return _json(payload, exc.status)
    return _json(
        {
            "ok": True,
            "already_submitted": result.already_submitted,
            "votes": result.votes_created,
            "answers": result.answers,
        },
        200,
    )


def _json(payload: dict, status: int) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = "no-store"
    return response
