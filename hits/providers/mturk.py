"""Amazon Mechanical Turk: the only module that talks to MTurk (and imports boto3 for it).

The endpoint comes from ``settings.MTURK_ENDPOINTS[environment]``, so the same code reaches live
MTurk, the sandbox or the local endpoint. Credentials come from boto3's default chain. Every call
runs outside database transactions, retries throttling and service faults with backoff (botocore's
standard retries, then ours), paginates every list, and raises ProviderError for anything else.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from django.conf import settings
from django.db import connection

from hits.answers import external_question, parse_question_form_answers
from hits.exceptions import ProviderError
from hits.models import Assignment, Hit, HitBatch, WorkerExclusion
from hits.qualifications import qualification_requirements

from .base import (
    EXCLUSION_QUALIFICATION,
    NOTIFY_CHUNK,
    CrowdProvider,
    NotifyFailure,
    ProviderAssignment,
    ProviderHit,
    hit_annotation,
    hit_token,
    task_url,
)

logger = logging.getLogger(__name__)

# The real hosts: a sandbox batch must never reach the live one, nor the reverse.
# CreateHITType's limits on its texts (characters). Keywords (MTurk: 1,000) fit: the batch's
# field holds 200.
TEXT_LIMITS = {"title": 128, "description": 2000}
REAL_HOSTS = {
    "sandbox": "mturk-requester-sandbox.us-east-1.amazonaws.com",
    "live": "mturk-requester.us-east-1.amazonaws.com",
}
RETRYABLE_CODES = {
    "ServiceFault",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
}
HIT_EXISTS = "AWS.MechanicalTurk.HitAlreadyExists"
UNKNOWN_ASSIGNMENT_CODES = {
    "AWS.MechanicalTurk.AssignmentDoesNotExist",
    "AWS.MechanicalTurk.InvalidAssignmentState",
    "AWS.ParameterOutOfRange",
    "RequestError",
}
_HIT_ID_RE = re.compile(r"\b([A-Z0-9]{20,64})\b")
_NETWORK_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


@functools.lru_cache(maxsize=16)
def _client(endpoint: str, region: str, max_attempts: int):
    # A fresh session per client: the default session would cache credentials across tests.
    return boto3.session.Session().client(
        "mturk",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def _backoff(attempt: int) -> float:
    base = settings.HITS_RETRY_BASE_DELAY * (2 ** (attempt - 1))
    return min(settings.HITS_RETRY_MAX_DELAY, base) * (0.5 + random.random() / 2)  # noqa: S311


def _dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class MTurkProvider(CrowdProvider):
    name = "mturk"

    def __init__(self, environment: str) -> None:
        if environment not in ("sandbox", "live"):
            raise ProviderError(f"MTurk has no environment {environment!r}: use sandbox or live")
        endpoint = settings.MTURK_ENDPOINTS[environment].rstrip("/") + "/"
        other = "live" if environment == "sandbox" else "sandbox"
        if REAL_HOSTS[other] in endpoint:
            raise ProviderError(
                f"the {environment} endpoint {endpoint} is the {other} MTurk host; "
                f"check MTURK_{environment.upper()}_ENDPOINT"
            )
        self.environment = environment
        self.endpoint = endpoint
        self.client = _client(endpoint, settings.MTURK_REGION, settings.MTURK_BOTOCORE_MAX_ATTEMPTS)

    # --- plumbing ------------------------------------------------------------------------------

    def _call(self, operation: str, **params: Any) -> dict:
        """One API call with retries for throttling, service faults and dropped connections."""
        if connection.in_atomic_block:
            raise ProviderError(
                f"MTurk {operation} called inside a database transaction; enqueue it with "
                "transaction.on_commit instead"
            )
        attempts = max(1, settings.HITS_RETRY_ATTEMPTS)
        method = getattr(self.client, operation)
        for attempt in range(1, attempts + 1):
            try:
                return method(**params)
            except ClientError as exc:
                resp = exc.response
                code = resp.get("Error", {}).get("Code", "")
                turk_code = resp.get("TurkErrorCode", "")
                status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                message = resp.get("Error", {}).get("Message", "")
                retryable = code in RETRYABLE_CODES or status >= 500
                if not retryable or attempt == attempts:
                    raise ProviderError(
                        f"MTurk {operation} failed ({code}{' ' + turk_code if turk_code else ''})"
                        f": {message}",
                        code=turk_code or code,
                        retryable=retryable,
                    ) from exc
                logger.warning("MTurk %s: %s (attempt %d), retrying", operation, code, attempt)
            except _NETWORK_ERRORS as exc:
                if attempt == attempts:
                    raise ProviderError(
                        f"MTurk {operation} could not reach {self.endpoint}: {exc}",
                        code="ConnectionError",
                        retryable=True,
                    ) from exc
                logger.warning("MTurk %s: %s (attempt %d), retrying", operation, exc, attempt)
            except BotoCoreError as exc:
                raise ProviderError(
                    f"MTurk {operation} failed: {exc}", code=type(exc).__name__
                ) from exc
            time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict]:
        token = None
        while True:
            page_params = {**params, "MaxResults": settings.HITS_PAGE_SIZE}
            if token:
                page_params["NextToken"] = token
            resp = self._call(operation, **page_params)
            yield from resp.get(key, [])
            token = resp.get("NextToken")
            if not token:
                return

    @staticmethod
    def _hit(h: dict) -> ProviderHit:
        return ProviderHit(
            hit_id=h["HITId"],
            status=h.get("HITStatus", ""),
            max_assignments=h.get("MaxAssignments", 0),
            expires_at=_dt(h.get("Expiration")),
            annotation=h.get("RequesterAnnotation", ""),
            hit_type_id=h.get("HITTypeId", ""),
            pending=h.get("NumberOfAssignmentsPending", 0),
            available=h.get("NumberOfAssignmentsAvailable", 0),
            completed=h.get("NumberOfAssignmentsCompleted", 0),
        )

    def _raw_worker_id(self, assignment: Assignment) -> str:
        # Fetched at the moment it is needed; never stored.
        resp = self._call("get_assignment", AssignmentId=assignment.provider_assignment_id)
        return resp["Assignment"]["WorkerId"]

    def _assignment_status(self, assignment: Assignment) -> str:
        resp = self._call("get_assignment", AssignmentId=assignment.provider_assignment_id)
        return resp["Assignment"]["AssignmentStatus"]

    # --- the interface -------------------------------------------------------------------------

    def launch_refusal(self, batch: HitBatch) -> str:
        if self.environment == "live" and not settings.SITE_URL.startswith("https://"):
            return f"live MTurk needs an HTTPS SITE_URL, not {settings.SITE_URL}"
        if REAL_HOSTS["sandbox"] in self.endpoint and not settings.SITE_URL.startswith("https://"):
            # Amazon's sandbox frames task pages over HTTPS only, as live does.
            return f"the MTurk sandbox needs an HTTPS SITE_URL too, not {settings.SITE_URL}"
        texts = {
            "title": batch.title or batch.name,
            "description": batch.description or batch.title or batch.name,
        }
        for field, text in texts.items():
            if len(text) > TEXT_LIMITS[field]:
                return (
                    f"MTurk takes a {field} of at most {TEXT_LIMITS[field]:,} characters; "
                    f"this batch's has {len(text):,}"
                )
        excluded = WorkerExclusion.objects.exclude(qualification_type_id="").count()
        if excluded and not self.exclusion_type_id():
            return (
                f"{excluded} worker{'s are' if excluded != 1 else ' is'} excluded, but MTurk "
                f"{self.environment} has no {EXCLUSION_QUALIFICATION!r} qualification to keep "
                "them out: launching would let them in. Exclude them again from one of their "
                "assignments in this environment, or remove the exclusions first"
            )
        if not (
            30 <= batch.lifetime_seconds <= 31536000
            and 30 <= batch.assignment_duration_seconds <= 31536000
            and batch.auto_approval_delay_seconds <= 2592000
        ):
            return (
                "MTurk takes lifetimes and assignment durations of 30 s to 365 days and "
                "auto-approval delays up to 30 days"
            )
        return ""

    def balance(self) -> Decimal:
        return Decimal(self._call("get_account_balance")["AvailableBalance"])

    def ensure_hit_type(self, batch: HitBatch) -> str:
        reqs = qualification_requirements(
            batch.qualification_preset,
            batch.qualification_params,
            self.environment,
            exclusion_type_id=self.exclusion_type_id(),
        )
        params: dict[str, Any] = {
            "AutoApprovalDelayInSeconds": batch.auto_approval_delay_seconds,
            "AssignmentDurationInSeconds": batch.assignment_duration_seconds,
            "Reward": f"{batch.reward:.2f}",
            "Title": batch.title or batch.name,
            "Description": batch.description or batch.title or batch.name,
        }
        if batch.keywords:
            params["Keywords"] = batch.keywords
        if reqs:
            params["QualificationRequirements"] = reqs
        return self._call("create_hit_type", **params)["HITTypeId"]

    def create_hit(self, batch: HitBatch, hit: Hit) -> ProviderHit:
        url = task_url(hit)
        if self.environment == "live" and not url.startswith("https://"):
            raise ProviderError(f"live MTurk needs an HTTPS task URL, not {url}; set SITE_URL")
        annotation = hit_annotation(batch, hit.number)
        try:
            resp = self._call(
                "create_hit_with_hit_type",
                HITTypeId=hit.hit_type_id or batch.hit_type_id,
                MaxAssignments=hit.max_assignments,
                LifetimeInSeconds=batch.lifetime_seconds,
                Question=external_question(url, batch.params.get("frame_height", 0)),
                RequesterAnnotation=annotation,
                UniqueRequestToken=hit_token(batch, hit.number),
            )
        except ProviderError as exc:
            if exc.code != HIT_EXISTS:
                raise
            found = self._find_created(annotation, str(exc))
            if found is None:
                raise ProviderError(
                    f"MTurk says HIT {hit.number} of batch {batch.pk} exists, but no HIT carries "
                    f"its annotation {annotation}",
                    code=HIT_EXISTS,
                ) from exc
            return found
        return self._hit(resp["HIT"])

    def _find_created(self, annotation: str, message: str) -> ProviderHit | None:
        """The HIT an earlier call with our token created: by the id in MTurk's message, else
        by listing the account's HITs for our RequesterAnnotation."""
        for candidate in _HIT_ID_RE.findall(message):
            try:
                found = self._hit(self._call("get_hit", HITId=candidate)["HIT"])
            except ProviderError:
                continue
            if found.annotation == annotation:
                return found
        for h in self._pages("list_hits", "HITs"):
            if h.get("RequesterAnnotation") == annotation:
                return self._hit(h)
        return None

    def get_hit(self, hit: Hit) -> ProviderHit:
        return self._hit(self._call("get_hit", HITId=hit.provider_hit_id)["HIT"])

    def list_hits(self) -> Iterator[ProviderHit]:
        for h in self._pages("list_hits", "HITs"):
            yield self._hit(h)

    @staticmethod
    def _assignment(a: dict) -> ProviderAssignment:
        answer = a.get("Answer") or ""
        return ProviderAssignment(
            assignment_id=a["AssignmentId"],
            hit_id=a["HITId"],
            status=a["AssignmentStatus"],
            worker_id=a["WorkerId"],
            accepted_at=_dt(a.get("AcceptTime")),
            submitted_at=_dt(a.get("SubmitTime")),
            auto_approval_at=_dt(a.get("AutoApprovalTime")),
            answer_fields=parse_question_form_answers(answer) if answer else {},
        )

    def list_assignments(self, hit: Hit) -> list[ProviderAssignment]:
        pages = self._pages("list_assignments_for_hit", "Assignments", HITId=hit.provider_hit_id)
        return [self._assignment(a) for a in pages]

    def get_assignment(self, assignment_id: str) -> ProviderAssignment | None:
        try:
            resp = self._call("get_assignment", AssignmentId=assignment_id)
        except ProviderError as exc:
            # MTurk answers "does not exist" for an id it never issued and for one still being
            # worked on (it reports assignments once submitted); a malformed id is no better.
            if not exc.retryable and exc.code in UNKNOWN_ASSIGNMENT_CODES:
                return None
            raise
        return self._assignment(resp["Assignment"])

    def _review(self, operation: str, assignment: Assignment, done: str, **params: Any) -> None:
        try:
            self._call(operation, AssignmentId=assignment.provider_assignment_id, **params)
        except ProviderError as exc:
            # A retried call whose first try went through finds the work already done.
            if exc.retryable or self._assignment_status(assignment) != done:
                raise

    def approve(self, assignment: Assignment, feedback: str = "") -> None:
        params = {"RequesterFeedback": feedback} if feedback else {}
        self._review("approve_assignment", assignment, "Approved", **params)

    def reject(self, assignment: Assignment, feedback: str) -> None:
        if not feedback.strip():
            raise ProviderError("MTurk needs a message to reject an assignment")
        self._review("reject_assignment", assignment, "Rejected", RequesterFeedback=feedback)

    def send_bonus(self, assignment: Assignment, amount: Decimal, reason: str, token: str) -> None:
        # The token also goes into the reason, so a payment whose answer was lost can be found.
        reason_ref = f"{reason} (ref {token})"
        try:
            self._call(
                "send_bonus",
                WorkerId=self._raw_worker_id(assignment),
                BonusAmount=f"{Decimal(amount):.2f}",
                AssignmentId=assignment.provider_assignment_id,
                Reason=reason_ref,
                UniqueRequestToken=token,
            )
        except ProviderError:
            paid = self._pages(
                "list_bonus_payments",
                "BonusPayments",
                AssignmentId=assignment.provider_assignment_id,
            )
            if not any(f"(ref {token})" in p.get("Reason", "") for p in paid):
                raise

    def block_worker(self, assignment: Assignment, reason: str) -> None:
        self._call("create_worker_block", WorkerId=self._raw_worker_id(assignment), Reason=reason)

    def _qualification_type(self, name: str, *, create: bool) -> str:
        """Our qualification type called ``name`` (created when asked and missing; '' if not)."""
        for q in self._pages(
            "list_qualification_types",
            "QualificationTypes",
            Query=name,
            MustBeRequestable=False,
            MustBeOwnedByCaller=True,
        ):
            if q.get("Name") == name:
                return q["QualificationTypeId"]
        if not create:
            return ""
        try:
            return self._call(
                "create_qualification_type",
                Name=name,
                Description=f"Set by the requester's annotation site ({name}).",
                QualificationTypeStatus="Active",
            )["QualificationType"]["QualificationTypeId"]
        except ProviderError:
            # Created by a call whose answer was lost, or by a parallel one.
            found = self._qualification_type(name, create=False)
            if not found:
                raise
            return found

    def _grant(self, type_id: str, raw_worker_id: str) -> None:
        self._call(
            "associate_qualification_with_worker",
            QualificationTypeId=type_id,
            WorkerId=raw_worker_id,
            IntegerValue=1,
            SendNotification=False,
        )

    def exclusion_type_id(self) -> str:
        return self._qualification_type(EXCLUSION_QUALIFICATION, create=False)

    def exclude_worker(self, assignment: Assignment, reason: str) -> str:
        type_id = self._qualification_type(EXCLUSION_QUALIFICATION, create=True)
        self._grant(type_id, self._raw_worker_id(assignment))
        return type_id

    def qualify_workers(self, name: str, raw_worker_ids: Iterable[str]) -> str:
        type_id = self._qualification_type(name, create=True)
        for raw in raw_worker_ids:
            self._grant(type_id, raw)
        return type_id

    def notify(
        self, assignments: Iterable[Assignment], subject: str, message: str
    ) -> list[NotifyFailure]:
        one_per_worker = list({a.worker_id: a for a in assignments}.values())
        chunks = [
            one_per_worker[i : i + NOTIFY_CHUNK]
            for i in range(0, len(one_per_worker), NOTIFY_CHUNK)
        ]
        failures = []
        for n, chunk in enumerate(chunks, start=1):
            failure = self._notify_chunk(chunk, subject, message)
            if failure is not None:
                failed, reason = failure
                failures.append(NotifyFailure(n, len(chunks), tuple(failed), reason))
        return failures

    def _notify_chunk(
        self, chunk: list[Assignment], subject: str, message: str
    ) -> tuple[list[int], str] | None:
        """Message one chunk's workers; (worker pks not messaged, why) if any were not."""
        pk_of: dict[str, int] = {}
        failed: list[int] = []
        reasons: list[str] = []
        for a in chunk:
            try:
                # Fetched at the moment it is needed; never stored.
                pk_of[self._raw_worker_id(a)] = a.worker_id
            except ProviderError as exc:
                failed.append(a.worker_id)
                reasons.append(f"no worker id for {a.provider_assignment_id} ({exc})")
        if pk_of:
            try:
                resp = self._call(
                    "notify_workers", Subject=subject, MessageText=message, WorkerIds=sorted(pk_of)
                )
            except ProviderError as exc:
                failed.extend(pk_of.values())
                reasons.append(str(exc))
            else:
                statuses = resp.get("NotifyWorkersFailureStatuses") or []
                failed.extend(pk_of[f["WorkerId"]] for f in statuses if f.get("WorkerId") in pk_of)
                if statuses:
                    first = statuses[0]
                    reasons.append(
                        f"MTurk could not notify {len(statuses)} worker(s): "
                        f"{first.get('NotifyWorkersFailureCode', '')} "
                        f"{first.get('NotifyWorkersFailureMessage', '')}".strip()
                    )
        return (failed, "; ".join(reasons)) if failed or reasons else None

    def set_expiration(self, hit: Hit, expires_at: datetime) -> None:
        self._call("update_expiration_for_hit", HITId=hit.provider_hit_id, ExpireAt=expires_at)

    def add_assignments(self, hit: Hit, count: int, token: str) -> None:
        before = hit.max_assignments
        try:
            self._call(
                "create_additional_assignments_for_hit",
                HITId=hit.provider_hit_id,
                NumberOfAdditionalAssignments=count,
                UniqueRequestToken=token,
            )
        except ProviderError:
            if self.get_hit(hit).max_assignments < before + count:
                raise

    def delete_hit(self, hit: Hit) -> None:
        self._call("delete_hit", HITId=hit.provider_hit_id)
