"""Prolific: the only module that talks to Prolific's API (``/api/v1/``, ``Token`` auth).

A batch on Prolific is one study. Its places are the assignments the batch needs; the HITs stay
on our site, which hands them out as the built-in marketplace does (so the HIT side of this
provider is the marketplace's: our rows are its records). Prolific holds the study, the
participants' submissions and the money: launch, review, bonuses, messages and places go
through here. Every failure is a ProviderError; 429 and 5xx answers are retried with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from hits.effort import estimated_minutes, hourly_reward
from hits.exceptions import ProviderError
from hits.models import Assignment, Hit, HitBatch

from . import base
from .market import MarketProvider

REJECTION_CATEGORIES = (
    "TOO_QUICKLY",
    "TOO_SLOWLY",
    "FAILED_INSTRUCTIONS",
    "INCOMP_LONGITUDINAL",
    "FAILED_CHECK",
    "LOW_EFFORT",
    "MALINGERING",
    "NO_CODE",
    "BAD_CODE",
    "NO_DATA",
    "UNSUPP_DEVICE",
    "OTHER",
)
# Seconds a participant is expected to spend per item, where the batch names no estimate.
STUDY_URL_PARAMS = (
    "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
)


def _code(batch: HitBatch, which: str) -> str:
    """A study's code, derived from the batch (the same on every re-run, no row written)."""
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, f"prolific:{batch.uid.hex}:{which}".encode(), hashlib.sha256)
    return "C" + digest.hexdigest()[:7].upper()


def completion_code(batch: HitBatch) -> str:
    """The code a participant brings back to Prolific once their HIT is submitted."""
    return batch.completion_code or _code(batch, "completed")


def screened_out_code(batch: HitBatch) -> str:
    """The code for a participant we had no HIT for (paid nothing, place freed)."""
    return _code(batch, "screened-out")


def completion_url(code: str) -> str:
    return f"{settings.PROLIFIC_COMPLETION_URL}?cc={code}"


def study_url(batch: HitBatch) -> str:
    """The external study URL: our landing page, with Prolific's placeholders."""
    return f"{settings.SITE_URL.rstrip('/')}/prolific/b/{batch.uid}/?{STUDY_URL_PARAMS}"


def rejection_parts(feedback: str) -> tuple[str, str]:
    """(category, message) from a rejection message: ``LOW_EFFORT: text`` names its category;
    any other message is filed under OTHER."""
    head, sep, rest = feedback.partition(":")
    if sep and head.strip().upper() in REJECTION_CATEGORIES:
        return head.strip().upper(), rest.strip()
    return "OTHER", feedback.strip()


@dataclass(frozen=True)
class ProlificSubmission:
    submission_id: str
    participant_id: str
    """Prolific's raw participant id: hash it on arrival, never store it."""
    status: str
    started_at: datetime | None = None
    completed_at: datetime | None = None


def _backoff(attempt: int) -> float:
    delay = settings.HITS_RETRY_BASE_DELAY * (2 ** (attempt - 1))
    return min(settings.HITS_RETRY_MAX_DELAY, delay) * (0.5 + random.random() / 2)  # noqa: S311


class _Retryable(Exception):
    pass


class ProlificClient:
    """Prolific's REST API: token auth, timeouts, retries on 429 / 5xx / network errors."""

    def __init__(self) -> None:
        self.base = settings.PROLIFIC_API_URL.rstrip("/") + "/"
        self.token = settings.PROLIFIC_API_TOKEN

    def _once(self, method: str, path: str, body: dict | None) -> Any:
        url = urljoin(self.base, path.lstrip("/"))
        if not url.startswith(self.base):
            # A next-page link elsewhere would carry our token off: refused, not followed.
            raise ProviderError(f"Prolific pointed outside its API: {url}")
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        try:
            resp = httpx.request(
                method, url, json=body, headers=headers, timeout=settings.PROLIFIC_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise _Retryable(f"Prolific unreachable: {exc.__class__.__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Retryable(f"Prolific answered {resp.status_code}")
        if resp.status_code >= 400:
            detail = resp.text[:300]
            raise ProviderError(
                f"Prolific refused {method} {path}: {resp.status_code} {detail}",
                code=str(resp.status_code),
            )
        return resp.json() if resp.content else {}

    def call(self, method: str, path: str, body: dict | None = None, *, retry: bool = True) -> Any:
        """One API call; retried with backoff on 429, 5xx and network errors."""
        attempts = max(1, settings.HITS_RETRY_ATTEMPTS) if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once(method, path, body)
            except _Retryable as exc:
                if attempt == attempts:
                    raise ProviderError(f"{exc} ({attempts} tries)", code="Throttled") from None
                time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def pages(self, path: str) -> Iterator[dict]:
        """Every result of a paginated list (following ``_links.next.href``)."""
        url: str | None = path
        while url:
            page = self.call("GET", url)
            yield from page.get("results", [])
            nxt = (page.get("_links") or {}).get("next") or {}
            url = nxt.get("href") or None


class ProlificProvider(MarketProvider):
    """One study per batch; the HITs themselves are handed out by our site."""

    name = "prolific"
    environment = "prolific"

    def __init__(self, client: ProlificClient | None = None) -> None:
        self.client = client or ProlificClient()

    # --- the study ------------------------------------------------------------------------------

    def launch_refusal(self, batch: HitBatch) -> str:
        if not settings.PROLIFIC_API_TOKEN:
            return "PROLIFIC_API_TOKEN is not set: the site cannot reach Prolific"
        minimum = Decimal(str(settings.PROLIFIC_MIN_HOURLY_REWARD))
        hourly = hourly_reward(batch)
        if hourly < minimum:
            return (
                f"Prolific requires at least ${minimum} an hour: a reward of ${batch.reward} for "
                f"an estimated {estimated_minutes(batch)} minute(s) pays ${hourly} an hour. Raise "
                "the reward or lower the items per HIT."
            )
        return ""

    def balance(self) -> None:
        return None

    def study_find(self, batch: HitBatch) -> dict | None:
        """Our study for the batch, found by its internal name (the batch uid)."""
        for study in self.client.pages("studies/"):
            if study.get("internal_name") == batch.uid.hex:
                return study
        return None

    def ensure_hit_type(self, batch: HitBatch) -> str:
        """The batch's study id: found by internal name, else created (unpublished)."""
        places = sum(h.max_assignments for h in batch.hits.all())
        body = {
            "name": batch.title or batch.name,
            "internal_name": batch.uid.hex,
            "description": batch.description or batch.title or batch.name,
            "external_study_url": study_url(batch),
            "prolific_id_option": "url_parameters",
            "completion_codes": [
                {
                    "code": completion_code(batch),
                    "code_type": "COMPLETED",
                    "actions": [{"action": "MANUALLY_REVIEW"}],
                },
                {
                    "code": screened_out_code(batch),
                    "code_type": "SCREENED_OUT",
                    "actions": [{"action": "REQUEST_RETURN"}],
                },
            ],
            "total_available_places": places,
            "estimated_completion_time": estimated_minutes(batch),
            "maximum_allowed_time": max(1, batch.assignment_duration_seconds // 60),
            "reward": int((Decimal(batch.reward) * 100).to_integral_value()),
            "device_compatibility": ["desktop", "tablet", "mobile"],
        }
        attempts = max(1, settings.HITS_RETRY_ATTEMPTS)
        for attempt in range(1, attempts + 1):
            # Look before each try: a create that failed on our side may have happened there.
            found = self.study_find(batch)
            if found is not None:
                return found["id"]
            try:
                return self.client._once("POST", "studies/", body)["id"]
            except _Retryable as exc:
                if attempt == attempts:
                    raise ProviderError(str(exc), code="Throttled") from None
                time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def study_get(self, batch: HitBatch) -> dict:
        if not batch.hit_type_id:
            raise ProviderError(f"batch {batch} has no study at Prolific yet")
        return self.client.call("GET", f"studies/{batch.hit_type_id}/")

    def launch_finish(self, batch: HitBatch) -> None:
        """Publish the study once every HIT is ready (a published one is left as it is)."""
        if self.study_get(batch).get("status") == "UNPUBLISHED":
            self.study_transition(batch, "PUBLISH")

    def study_transition(self, batch: HitBatch, action: str) -> dict:
        """PUBLISH, PAUSE, START (resume) or STOP the batch's study."""
        if action not in ("PUBLISH", "PAUSE", "START", "STOP"):
            raise ProviderError(f"unknown study action {action!r}")
        return self.client.call(
            "POST", f"studies/{batch.hit_type_id}/transition/", {"action": action}
        )

    def study_places_set(self, batch: HitBatch, places: int) -> dict:
        return self.client.call(
            "PATCH", f"studies/{batch.hit_type_id}/", {"total_available_places": places}
        )

    def list_submissions(self, batch: HitBatch) -> list[ProlificSubmission]:
        """Every submission of the batch's study."""
        out = []
        for s in self.client.pages(f"studies/{batch.hit_type_id}/submissions/"):
            out.append(
                ProlificSubmission(
                    submission_id=s["id"],
                    participant_id=s.get("participant_id") or s.get("participant") or "",
                    status=s.get("status", ""),
                    started_at=parse_datetime(s.get("started_at") or ""),
                    completed_at=parse_datetime(s.get("completed_at") or ""),
                )
            )
        return out

    def _participant(self, assignment: Assignment) -> str:
        """The raw participant id of an assignment's submission, read from Prolific (we keep
        only its hash)."""
        sub = self.client.call("GET", f"submissions/{assignment.provider_assignment_id}/")
        return sub.get("participant_id") or sub.get("participant") or ""

    # --- review and money -----------------------------------------------------------------------

    def _transition(self, assignment: Assignment, body: dict) -> None:
        try:
            self.client.call(
                "POST", f"submissions/{assignment.provider_assignment_id}/transition/", body
            )
        except ProviderError as exc:
            # Already in that state at Prolific (an earlier run got there): nothing to do.
            if "already" not in str(exc).lower():
                raise

    def approve(self, assignment: Assignment, feedback: str = "") -> None:
        if self._reviewable(assignment, Assignment.Status.APPROVED):
            self._transition(assignment, {"action": "APPROVE"})

    def reject(self, assignment: Assignment, feedback: str) -> None:
        category, message = rejection_parts(feedback)
        if not message:
            raise ProviderError("a rejection needs a message for the participant")
        if self._reviewable(assignment, Assignment.Status.REJECTED):
            self._transition(
                assignment,
                {"action": "REJECT", "message": message, "rejection_category": category},
            )

    def send_bonus(self, assignment: Assignment, amount: Decimal, reason: str, token: str) -> None:
        super().send_bonus(assignment, amount, reason, token)
        pid = self._participant(assignment)
        batch = assignment.hit.batch
        created = self.client.call(
            "POST",
            "submissions/bonus-payments/",
            {"study_id": batch.hit_type_id, "csv_bonuses": f"{pid},{Decimal(amount):.2f}\n"},
        )
        self.client.call("POST", f"bulk-bonus-payments/{created['id']}/pay/")

    def notify(
        self, assignments: Iterable[Assignment], subject: str, message: str
    ) -> list[base.NotifyFailure]:
        items = list(assignments)
        failed = []
        for a in items:
            try:
                self.client.call(
                    "POST",
                    "messages/",
                    {
                        "recipient_id": self._participant(a),
                        "study_id": a.hit.batch.hit_type_id,
                        "body": f"{subject}\n\n{message}",
                    },
                )
            except ProviderError as exc:
                failed.append(base.NotifyFailure(1, 1, (a.worker_id,), str(exc)))
        return failed

    def add_assignments(self, hit: Hit, count: int, token: str) -> None:
        super().add_assignments(hit, count, token)
        batch = hit.batch
        # The target is named from our rows (not added to Prolific's count): a retry sets the
        # same number again.
        places = sum(h.max_assignments for h in batch.hits.all()) + count
        self.study_places_set(batch, places)
