"""The interface every crowd provider implements, and the records it answers with.

Providers speak about our rows (HitBatch, Hit, Assignment) and answer with plain records; the
services decide what to write. Every method raises hits.exceptions.ProviderError on failure.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from hits.models import Assignment, Hit, HitBatch

ANNOTATION_PREFIX = "crowd-annotation"
# Our soft-block qualification: its holders get none of our HITs.
EXCLUSION_QUALIFICATION = f"{ANNOTATION_PREFIX} exclusion"


def list_qualification_name(batch: HitBatch, which: str) -> str:
    """The qualification that carries a batch's allow or block list at the provider."""
    return f"{ANNOTATION_PREFIX} {which} {batch.uid.hex}"


def hit_token(batch: HitBatch, number: int) -> str:
    """The UniqueRequestToken of a batch's HIT: the same on every retry and resume."""
    return f"{batch.uid.hex}-{number}"


def hit_annotation(batch: HitBatch, number: int) -> str:
    """The RequesterAnnotation that names a HIT's batch and number at the provider."""
    return f"{ANNOTATION_PREFIX}:{batch.uid.hex}:{number}"


def parse_annotation(text: str) -> tuple[str, int] | None:
    """(batch uid hex, HIT number) from one of our annotations; None for anyone else's."""
    parts = (text or "").split(":")
    if len(parts) != 3 or parts[0] != ANNOTATION_PREFIX or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def task_url(hit: Hit) -> str:
    """Where a worker does the HIT: the task page (MTurk adds its query parameters)."""
    return f"{settings.SITE_URL.rstrip('/')}/task/{hit.pk}/"


@dataclass(frozen=True)
class ProviderHit:
    hit_id: str
    status: str
    max_assignments: int
    expires_at: datetime | None
    annotation: str = ""
    hit_type_id: str = ""
    pending: int = 0
    available: int = 0
    completed: int = 0


@dataclass(frozen=True)
class ProviderAssignment:
    assignment_id: str
    hit_id: str
    status: str
    worker_id: str | None = None
    """The provider's raw worker id (MTurk): hash it on arrival, never store it."""
    worker_pk: int | None = None
    """Our Worker row, where the provider is our own marketplace."""
    accepted_at: datetime | None = None
    submitted_at: datetime | None = None
    auto_approval_at: datetime | None = None
    answer_fields: dict[str, str] = field(default_factory=dict)


# MTurk's NotifyWorkers takes at most this many worker ids per call.
NOTIFY_CHUNK = 100


@dataclass(frozen=True)
class NotifyFailure:
    """Workers of one chunk of a notify call that the provider did not message, and why."""

    chunk: int
    chunks: int
    worker_pks: tuple[int, ...]
    """Our Worker rows (never raw ids)."""
    reason: str

    def __str__(self) -> str:
        return (
            f"chunk {self.chunk} of {self.chunks} ({len(self.worker_pks)} worker(s) not "
            f"messaged): {self.reason}"
        )


class CrowdProvider(abc.ABC):
    """One marketplace. ``environment`` is sandbox / live (MTurk) or market (built-in).

    A provider talks to its marketplace and returns what it says; it writes none of our rows
    (the services in ``hits/services/`` do).
    """

    name: str
    environment: str
    # True where our rows are the marketplace's records (no call to make): a launch then writes
    # each planned HIT already published, in one bulk insert, instead of one call per HIT.
    # Its create_hit must then work on a HIT row not yet saved.
    publishes_on_plan: bool = False

    def launch_refusal(self, batch: HitBatch) -> str:
        """Why this marketplace cannot take the batch as set ('' when it can)."""
        return ""

    def launch_finish(self, batch: HitBatch) -> None:
        """Called once every HIT of the batch is published (Prolific publishes its study)."""
        return None

    @abc.abstractmethod
    def balance(self) -> Decimal | None:
        """Money available to spend; None where the provider holds none (our marketplace)."""

    @abc.abstractmethod
    def ensure_hit_type(self, batch: HitBatch) -> str:
        """The provider's id for the batch's HIT properties (idempotent)."""

    @abc.abstractmethod
    def create_hit(self, batch: HitBatch, hit: Hit) -> ProviderHit:
        """Publish one planned HIT. Calling it again for the same HIT returns the same HIT."""

    @abc.abstractmethod
    def get_hit(self, hit: Hit) -> ProviderHit: ...

    @abc.abstractmethod
    def list_hits(self) -> Iterator[ProviderHit]:
        """Every HIT the account has at the provider (paginated underneath)."""

    @abc.abstractmethod
    def list_assignments(self, hit: Hit) -> list[ProviderAssignment]:
        """Every submitted, approved or rejected assignment of a HIT (all pages)."""

    @abc.abstractmethod
    def get_assignment(self, assignment_id: str) -> ProviderAssignment | None:
        """The provider's record of one assignment; None where it knows none by that id (MTurk
        knows an assignment only once it is submitted)."""

    @abc.abstractmethod
    def approve(self, assignment: Assignment, feedback: str = "") -> None:
        """Approve a submitted assignment; approving an approved one again is a no-op."""

    @abc.abstractmethod
    def reject(self, assignment: Assignment, feedback: str) -> None:
        """Reject a submitted assignment with a message; again on a rejected one is a no-op."""

    @abc.abstractmethod
    def send_bonus(self, assignment: Assignment, amount: Decimal, reason: str, token: str) -> None:
        """Pay a bonus at most once per ``token``."""

    @abc.abstractmethod
    def block_worker(self, assignment: Assignment, reason: str) -> None:
        """Block the worker who did ``assignment`` from all our HITs."""

    @abc.abstractmethod
    def exclude_worker(self, assignment: Assignment, reason: str) -> str:
        """Soft block: keep the worker out of future batches; returns the qualification used."""

    @abc.abstractmethod
    def exclusion_type_id(self) -> str:
        """The soft-block qualification new HIT types must exclude ('' when none exists)."""

    @abc.abstractmethod
    def qualify_workers(self, name: str, raw_worker_ids: Iterable[str]) -> str:
        """Grant our qualification ``name`` to these workers (for allow and block lists);
        returns its type id, '' where the provider enforces lists itself."""

    @abc.abstractmethod
    def notify(
        self, assignments: Iterable[Assignment], subject: str, message: str
    ) -> list[NotifyFailure]:
        """Message the workers who did these assignments, ``NOTIFY_CHUNK`` at a time. Every
        chunk is tried; the chunks (or their workers) that failed come back, named."""

    @abc.abstractmethod
    def set_expiration(self, hit: Hit, expires_at: datetime) -> None:
        """Move a HIT's expiry (to now or earlier: expire it)."""

    @abc.abstractmethod
    def add_assignments(self, hit: Hit, count: int, token: str) -> None:
        """Let ``count`` more workers take the HIT, at most once per ``token``."""

    @abc.abstractmethod
    def delete_hit(self, hit: Hit) -> None:
        """Dispose of a reviewable HIT whose submitted assignments are all reviewed."""
