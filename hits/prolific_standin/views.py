"""The stand-in's API (Prolific's request and response shapes) and participant pages."""

from __future__ import annotations

import json
import secrets
import threading
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from hits.market_identity import WORKER_ID_RE
from hits.providers.prolific import REJECTION_CATEGORIES

PAGE_SIZE = 2
COOKIE = "prolific_standin_session"
LOCK = threading.Lock()
STATE: dict = {}
OPEN_STATES = {"ACTIVE", "AWAITING REVIEW", "APPROVED", "REJECTED"}
STUDY_ACTIONS = {"PUBLISH": "ACTIVE", "PAUSE": "PAUSED", "START": "ACTIVE", "STOP": "COMPLETED"}


def standin_reset() -> None:
    """Forget every study, submission, bonus and message (and faults already answered)."""
    with LOCK:
        STATE.clear()
        STATE.update(studies={}, submissions={}, bonuses={}, messages=[], paid=[], faults_used=0)


standin_reset()


def _new_id() -> str:
    return secrets.token_hex(12)


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"status": status, "detail": detail}}, status=status)


def _api(view):
    """Token check, the fault plan, a JSON body and the lock, around one API view."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args, **kwargs):
        token = settings.PROLIFIC_STANDIN_TOKEN
        given = request.headers.get("Authorization", "")
        if not token or not secrets.compare_digest(given.encode(), f"Token {token}".encode()):
            return _error(401, "Invalid token.")
        with LOCK:
            faults = list(getattr(settings, "PROLIFIC_STANDIN_FAULTS", []) or [])
            if STATE["faults_used"] < len(faults):
                status = int(faults[STATE["faults_used"]])
                STATE["faults_used"] += 1
                return _error(status, "Fault injected by the stand-in.")
            try:
                body = json.loads(request.body or b"{}") if request.method != "GET" else {}
            except ValueError:
                return _error(400, "The body is not JSON.")
            if not isinstance(body, dict):
                return _error(400, "The body must be a JSON object.")
            return view(request, body, *args, **kwargs)

    return wrapped


def _page(request: HttpRequest, rows: list[dict]) -> JsonResponse:
    start = int(request.GET.get("offset", "0") or 0)
    nxt = None
    if start + PAGE_SIZE < len(rows):
        nxt = {"href": request.build_absolute_uri(f"{request.path}?offset={start + PAGE_SIZE}")}
    return JsonResponse(
        {"results": rows[start : start + PAGE_SIZE], "_links": {"next": nxt}, "meta": {}}
    )


def _taken(study_id: str) -> int:
    subs = STATE["submissions"].values()
    return sum(1 for s in subs if s["study_id"] == study_id and s["status"] in OPEN_STATES)


@_api
def studies(request: HttpRequest, body: dict) -> JsonResponse:
    if request.method == "GET":
        return _page(request, list(STATE["studies"].values()))
    if request.method != "POST":
        return _error(405, "Method not allowed.")
    need = ["name", "external_study_url", "total_available_places", "reward", "completion_codes"]
    missing = [k for k in need if k not in body]
    if missing:
        return _error(400, f"Missing fields: {', '.join(missing)}.")
    study = {
        **body,
        "id": _new_id(),
        "status": "UNPUBLISHED",
        "date_created": timezone.now().isoformat(),
    }
    STATE["studies"][study["id"]] = study
    return JsonResponse(study, status=201)


def _study(study_id: str) -> dict | None:
    return STATE["studies"].get(study_id)


@_api
def study(request: HttpRequest, body: dict, study_id: str) -> JsonResponse:
    s = _study(study_id)
    if s is None:
        return _error(404, "Study not found.")
    if request.method == "PATCH" and "total_available_places" in body:
        places = int(body["total_available_places"])
        if places < _taken(study_id):
            return _error(400, "Places cannot go below the places taken.")
        s["total_available_places"] = places
    return JsonResponse({**s, "places_taken": _taken(study_id)})


@_api
def study_transition(request: HttpRequest, body: dict, study_id: str) -> JsonResponse:
    s = _study(study_id)
    if s is None:
        return _error(404, "Study not found.")
    action = body.get("action")
    if action not in STUDY_ACTIONS:
        return _error(400, f"Unknown action {action!r}.")
    if s["status"] == "COMPLETED":
        return _error(400, "The study is completed.")
    s["status"] = STUDY_ACTIONS[action]
    return JsonResponse(s)


@_api
def study_submissions(request: HttpRequest, body: dict, study_id: str) -> JsonResponse:
    if _study(study_id) is None:
        return _error(404, "Study not found.")
    rows = [s for s in STATE["submissions"].values() if s["study_id"] == study_id]
    return _page(request, rows)


@_api
def submission(request: HttpRequest, body: dict, submission_id: str) -> JsonResponse:
    sub = STATE["submissions"].get(submission_id)
    return JsonResponse(sub) if sub else _error(404, "Submission not found.")


@_api
def submission_transition(request: HttpRequest, body: dict, submission_id: str) -> JsonResponse:
    sub = STATE["submissions"].get(submission_id)
    if sub is None:
        return _error(404, "Submission not found.")
    action = body.get("action")
    target = {"APPROVE": "APPROVED", "REJECT": "REJECTED"}.get(action or "")
    if target is None:
        return _error(400, f"Unknown action {action!r}.")
    if sub["status"] == target:
        return _error(400, f"The submission is already {target}.")
    if sub["status"] != "AWAITING REVIEW":
        return _error(400, f"A submission {sub['status']} cannot be reviewed.")
    if action == "REJECT":
        if body.get("rejection_category") not in REJECTION_CATEGORIES:
            return _error(400, "rejection_category is missing or unknown.")
        if not (body.get("message") or "").strip():
            return _error(400, "A rejection needs a message.")
        sub["rejection_category"] = body["rejection_category"]
    sub["status"] = target
    return JsonResponse(sub)


@_api
def bonus_create(request: HttpRequest, body: dict) -> JsonResponse:
    study_id = body.get("study_id", "")
    if _study(study_id) is None:
        return _error(400, "Unknown study_id.")
    rows = []
    for line in (body.get("csv_bonuses") or "").strip().splitlines():
        pid, _, amount = line.partition(",")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            return _error(400, f"Bad bonus line {line!r}.")
        if value <= 0 or not any(
            s["participant_id"] == pid.strip() and s["study_id"] == study_id
            for s in STATE["submissions"].values()
        ):
            return _error(400, f"Bad bonus line {line!r}.")
        rows.append({"participant_id": pid.strip(), "amount": str(value)})
    if not rows:
        return _error(400, "No bonuses given.")
    bonus = {"id": _new_id(), "study": study_id, "bonuses": rows, "is_paid": False}
    STATE["bonuses"][bonus["id"]] = bonus
    return JsonResponse(bonus, status=201)


@_api
def bonus_pay(request: HttpRequest, body: dict, bonus_id: str) -> JsonResponse:
    bonus = STATE["bonuses"].get(bonus_id)
    if bonus is None:
        return _error(404, "Bonus payment not found.")
    if not bonus["is_paid"]:
        bonus["is_paid"] = True
        STATE["paid"].extend(bonus["bonuses"])
    return JsonResponse({}, status=202)


@_api
def messages(request: HttpRequest, body: dict) -> JsonResponse:
    if not body.get("recipient_id") or not body.get("body"):
        return _error(400, "recipient_id and body are required.")
    STATE["messages"].append(body)
    return JsonResponse(body, status=201)


# --- the participant side ------------------------------------------------------------------------


def take_part(request: HttpRequest, study_id: str) -> HttpResponse:
    """A participant (``?participant=<id>``) starts the study: a submission, then the study URL."""
    pid = request.GET.get("participant", "")
    if not WORKER_ID_RE.match(pid):
        return HttpResponse("A participant id is needed.", status=400)
    with LOCK:
        s = _study(study_id)
        if s is None or s["status"] != "ACTIVE":
            return HttpResponse("This study is not active.", status=409)
        mine = [
            x
            for x in STATE["submissions"].values()
            if x["study_id"] == study_id and x["participant_id"] == pid
        ]
        if mine:
            return HttpResponse("You have already taken part in this study.", status=409)
        if _taken(study_id) >= int(s["total_available_places"]):
            return HttpResponse("This study is full.", status=409)
        sub = {
            "id": _new_id(),
            "study_id": study_id,
            "participant_id": pid,
            "status": "ACTIVE",
            "started_at": timezone.now().isoformat(),
            "completed_at": None,
            "study_code": "",
        }
        STATE["submissions"][sub["id"]] = sub
    url = (
        s["external_study_url"]
        .replace("{{%PROLIFIC_PID%}}", pid)
        .replace("{{%STUDY_ID%}}", study_id)
        .replace("{{%SESSION_ID%}}", sub["id"])
    )
    response = redirect(url)
    response.set_cookie(COOKIE, sub["id"], httponly=True, samesite="Lax")
    return response


@csrf_exempt
def give_back(request: HttpRequest, submission_id: str) -> HttpResponse:
    """The participant returns their place (POST, from the browser that took it)."""
    if request.method != "POST" or request.COOKIES.get(COOKIE) != submission_id:
        return HttpResponse("Not your submission.", status=403)
    with LOCK:
        sub = STATE["submissions"].get(submission_id)
        if sub is None or sub["status"] != "ACTIVE":
            return HttpResponse("This submission cannot be returned.", status=409)
        sub["status"] = "RETURNED"
    return HttpResponse("Returned.")


def complete(request: HttpRequest) -> HttpResponse:
    """Prolific's completion URL: the code marks the participant's submission done."""
    code = request.GET.get("cc", "")
    with LOCK:
        sub = STATE["submissions"].get(request.COOKIES.get(COOKIE, ""))
        if sub is None:
            return HttpResponse("No submission in progress.", status=403)
        study = _study(sub["study_id"]) or {}
        codes = {c["code"]: c["code_type"] for c in study.get("completion_codes", [])}
        if code not in codes:
            return HttpResponse("Unknown completion code.", status=400)
        if sub["status"] == "ACTIVE":
            done = codes[code] == "COMPLETED"
            sub["status"] = "AWAITING REVIEW" if done else "SCREENED OUT"
            sub["completed_at"] = timezone.now().isoformat()
            sub["study_code"] = code
    return HttpResponse(f"Thank you: submission {sub['status']}.")
