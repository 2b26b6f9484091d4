"""Who a built-in-marketplace worker is: the raw id bound to their browser in a signed cookie
on our own origin (SameSite=Lax), read by the marketplace's pages and by the task page."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .models import Assignment

SALT = "hits.market.worker"
WORKER_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
COOKIE_AGE = 90 * 24 * 3600


def market_session_worker_id(request: HttpRequest) -> str:
    """The raw worker id bound to this browser (our signed cookie), '' when none."""
    return request.get_signed_cookie(settings.MARKET_WORKER_COOKIE, default="", salt=SALT)


def market_cookie_value(raw_id: str) -> str:
    """The cookie value that binds ``raw_id``, signed as ``market_session_bind`` signs it (for
    tools that open a worker's browser without the landing page: benches, browser tests)."""
    response = HttpResponse()
    response.set_signed_cookie(settings.MARKET_WORKER_COOKIE, raw_id, salt=SALT)
    return response.cookies[settings.MARKET_WORKER_COOKIE].value


def market_session_bind(response: HttpResponse, request: HttpRequest, raw_id: str) -> HttpResponse:
    """Bind ``raw_id`` to the browser that made ``request`` (set on ``response``)."""
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


def hosted_task_link(request: HttpRequest, a: Assignment, raw_id: str, *, submit_to: str) -> str:
    """The task page of an assignment a hosted marketplace (ours, or Prolific's participants
    on our site) handed out, posting its final submit back to ``submit_to`` on this site."""
    params = {
        "assignmentId": a.provider_assignment_id,
        "hitId": a.hit.provider_hit_id,
        "workerId": raw_id,
        "turkSubmitTo": request.build_absolute_uri(submit_to).rstrip("/"),
    }
    return f"/task/{a.hit_id}/?{urlencode(params)}"
