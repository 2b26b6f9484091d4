"""The built-in marketplace: our own site is the provider, our rows are its records.

This provider only reads those rows and reports them as a marketplace would; the services write
them (``hits/services/market.py`` for the worker side, sync and review for the rest).

Workers arrive by link (market_views.py), take HITs there and submit to
``/market/mturk/externalSubmit``. Approve, reject and bonus are records in our database; no money
moves here, so there is no balance and no fee.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from hits.exceptions import ProviderError
from hits.models import Assignment, Hit, HitBatch
from hits.submissions import stored_answers

from . import base

DONE = [Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED]


def market_hit_id(token: str) -> str:
    """A HIT id derived from the request token: creating the same HIT twice names one HIT."""
    return "L" + hashlib.sha256(token.encode()).hexdigest()[:31].upper()


def hit_counts(hit: Hit, now: datetime) -> tuple[int, int]:
    """(pending, completed) places of a HIT: accepted work still within its time, and done work.

    Overdue work counts as abandoned here, as it will once the marketplace services tidy it."""
    deadline = now - timedelta(seconds=hit.batch.assignment_duration_seconds)
    rows = hit.assignments.aggregate(
        pending=Count("id", filter=Q(status=Assignment.Status.ACCEPTED, accepted_at__gt=deadline)),
        completed=Count("id", filter=Q(status__in=DONE)),
    )
    return rows["pending"], rows["completed"]


def _status_now(assignment: Assignment, batch: HitBatch, now: datetime) -> str:
    """An assignment's status as the marketplace reports it: submitted work unreviewed past the
    auto-approval delay counts as approved (the sync writes that back)."""
    if (
        assignment.status == Assignment.Status.SUBMITTED
        and assignment.submitted_at is not None
        and assignment.submitted_at <= now - timedelta(seconds=batch.auto_approval_delay_seconds)
    ):
        return Assignment.Status.APPROVED
    return assignment.status


class MarketProvider(base.CrowdProvider):
    name = "market"
    environment = "market"
    publishes_on_plan = True

    def balance(self) -> None:
        return None

    def ensure_hit_type(self, batch: HitBatch) -> str:
        return ""

    def _record(self, hit: Hit, now: datetime | None = None) -> base.ProviderHit:
        now = now or timezone.now()
        pending, completed = hit_counts(hit, now)
        expired = hit.expires_at is not None and hit.expires_at <= now
        available = 0 if expired else max(0, hit.max_assignments - pending - completed)
        if hit.status == Hit.Status.DISPOSED:
            status = Hit.Status.DISPOSED
        elif available:
            status = Hit.Status.ASSIGNABLE
        elif pending:
            status = Hit.Status.UNASSIGNABLE
        else:
            status = Hit.Status.REVIEWABLE
        return base.ProviderHit(
            hit_id=hit.provider_hit_id or market_hit_id(base.hit_token(hit.batch, hit.number)),
            status=status,
            max_assignments=hit.max_assignments,
            expires_at=hit.expires_at,
            annotation=base.hit_annotation(hit.batch, hit.number),
            pending=pending,
            available=available,
            completed=completed,
        )

    def create_hit(self, batch: HitBatch, hit: Hit) -> base.ProviderHit:
        now = timezone.now()
        expires = hit.expires_at or now + timedelta(seconds=batch.lifetime_seconds)
        return base.ProviderHit(
            hit_id=market_hit_id(base.hit_token(batch, hit.number)),
            status=Hit.Status.ASSIGNABLE,
            max_assignments=hit.max_assignments,
            expires_at=expires,
            annotation=base.hit_annotation(batch, hit.number),
            available=hit.max_assignments,
        )

    def _published(self, hit: Hit) -> Hit:
        if not hit.provider_hit_id:
            raise ProviderError(f"HIT {hit.number} of {hit.batch} is not published")
        return hit

    def get_hit(self, hit: Hit) -> base.ProviderHit:
        return self._record(self._published(hit))

    def list_hits(self) -> Iterator[base.ProviderHit]:
        hits = Hit.objects.filter(batch__provider=self.name).exclude(provider_hit_id="")
        for hit in hits.select_related("batch").iterator():
            yield self._record(hit)

    @staticmethod
    def _assignment(a: Assignment, hit: Hit, now: datetime) -> base.ProviderAssignment:
        delay = timedelta(seconds=hit.batch.auto_approval_delay_seconds)
        return base.ProviderAssignment(
            assignment_id=a.provider_assignment_id,
            hit_id=hit.provider_hit_id,
            status=_status_now(a, hit.batch, now),
            worker_pk=a.worker_id,
            accepted_at=a.accepted_at,
            submitted_at=a.submitted_at,
            auto_approval_at=a.submitted_at and a.submitted_at + delay,
            answer_fields={"answers": json.dumps(stored_answers(a))},
        )

    def list_assignments(self, hit: Hit) -> list[base.ProviderAssignment]:
        self._published(hit)
        now = timezone.now()
        return [
            self._assignment(a, hit, now)
            for a in hit.assignments.filter(status__in=DONE).order_by("id")
        ]

    def get_assignment(self, assignment_id: str) -> base.ProviderAssignment | None:
        # Our marketplace hands out every assignment itself: its rows are its records.
        a = (
            Assignment.objects.select_related("hit__batch")
            .filter(hit__batch__provider=self.name, provider_assignment_id=assignment_id)
            .first()
        )
        return None if a is None else self._assignment(a, a.hit, timezone.now())

    def _reviewable(self, assignment: Assignment, done: str) -> bool:
        """Whether the review still has to happen (False: it already did)."""
        assignment.refresh_from_db(fields=["status"])
        if assignment.status == done:
            return False
        if assignment.status != Assignment.Status.SUBMITTED:
            raise ProviderError(
                f"assignment {assignment.provider_assignment_id} is {assignment.status}, "
                "not Submitted",
                code="InvalidAssignmentState",
            )
        return True

    def approve(self, assignment: Assignment, feedback: str = "") -> None:
        self._reviewable(assignment, Assignment.Status.APPROVED)

    def reject(self, assignment: Assignment, feedback: str) -> None:
        if not feedback.strip():
            raise ProviderError("a rejection needs a message for the worker")
        self._reviewable(assignment, Assignment.Status.REJECTED)

    def send_bonus(self, assignment: Assignment, amount: Decimal, reason: str, token: str) -> None:
        if Decimal(amount) <= 0:
            raise ProviderError(f"a bonus must be positive, not {amount}")
        if assignment.status not in DONE:
            raise ProviderError(
                f"assignment {assignment.provider_assignment_id} has not been submitted"
            )

    def block_worker(self, assignment: Assignment, reason: str) -> None:
        # Our marketplace reads the block from the Worker row the review service writes.
        return None

    def exclusion_type_id(self) -> str:
        return ""

    def exclude_worker(self, assignment: Assignment, reason: str) -> str:
        return ""

    def qualify_workers(self, name: str, raw_worker_ids: Iterable[str]) -> str:
        # Our marketplace checks the hashed lists on the batch itself.
        return ""

    def notify(
        self, assignments: Iterable[Assignment], subject: str, message: str
    ) -> list[base.NotifyFailure]:
        # Delivered through the WorkerNotice rows the review service writes.
        return []

    def set_expiration(self, hit: Hit, expires_at: datetime) -> None:
        self._published(hit)

    def add_assignments(self, hit: Hit, count: int, token: str) -> None:
        if count < 1:
            raise ProviderError(f"add at least one assignment, not {count}")
        self._published(hit)

    def delete_hit(self, hit: Hit) -> None:
        record = self._record(self._published(hit))
        submitted = hit.assignments.filter(status=Assignment.Status.SUBMITTED).count()
        if record.status not in (Hit.Status.REVIEWABLE, Hit.Status.DISPOSED) or submitted:
            raise ProviderError(
                f"HIT {hit.provider_hit_id} is {record.status} with {submitted} submitted "
                "assignment(s) to review; it can be deleted once reviewable and reviewed",
                code="InvalidHITState",
            )
