"""The shared assignment door: our record of a provider assignment (market accept, task pages,
sync), and the checks a task page runs before it writes one."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Worker
from annotation.services import worker_get_or_create
from annotation.worker_ids import worker_id_hash
from hits.exceptions import AssignmentMismatch, ProviderError
from hits.models import HOSTED_PROVIDERS, Assignment, Hit, HitBatch
from hits.providers import provider_for
from hits.selectors import task_assignment_of_hit

logger = logging.getLogger(__name__)
NOT_HANDED_OUT = (
    "This assignment was not handed out here: accept the task on the marketplace first."
)
NOT_AT_PROVIDER = (
    "Mechanical Turk does not know this assignment for this HIT and worker: accept the HIT on "
    "Mechanical Turk, then open it from there."
)


def assignment_find(provider: str, provider_assignment_id: str) -> Assignment | None:
    """Our record of a provider's assignment id, if we hold one."""
    return (
        Assignment.objects.select_related("hit__batch", "worker")
        .filter(hit__batch__provider=provider, provider_assignment_id=provider_assignment_id)
        .first()
    )


def assignment_of_hit(hit_pk: int, provider_assignment_id: str) -> Assignment | None:
    """Our record of an assignment of this HIT, with the HIT, its batch and dataset and the
    worker: what a task page needs, in one query (the page then needs no query for the HIT)."""
    return task_assignment_of_hit(hit_pk, provider_assignment_id)


def _mismatch(existing: Assignment, hit: Hit, worker_hash: str) -> AssignmentMismatch | None:
    if existing.hit_id != hit.pk:
        return AssignmentMismatch("This assignment belongs to another task.")
    if existing.worker.id_hash != worker_hash:
        return AssignmentMismatch("This assignment belongs to another worker.")
    return None


def assignment_open(
    hit: Hit, provider_assignment_id: str, raw_worker_id: str, *, confirmed: bool = True
) -> Assignment:
    """Our record of a provider assignment, created on first sight (market accept, a task page
    the provider vouched for, or sync).

    The raw worker id is hashed here and not kept. Presenting a known assignment id with another
    worker or HIT raises AssignmentMismatch. A worker holds one live assignment per HIT: an
    earlier one of theirs on this HIT that was never submitted is closed as returned (the
    provider hands out a new id when a worker takes a HIT again); one already submitted makes
    the new id an AssignmentMismatch.
    """
    provider = hit.batch.provider
    worker = worker_get_or_create(provider, raw_worker_id)
    existing = assignment_find(provider, provider_assignment_id)
    if existing is not None:
        wrong = _mismatch(existing, hit, worker.id_hash)
        if wrong is not None:
            raise wrong
        return existing
    try:
        with transaction.atomic():
            Assignment.objects.filter(
                hit=hit, worker=worker, status=Assignment.Status.ACCEPTED
            ).update(status=Assignment.Status.RETURNED)
            return Assignment.objects.create(
                hit=hit,
                provider_assignment_id=provider_assignment_id,
                worker=worker,
                status=Assignment.Status.ACCEPTED,
                accepted_at=timezone.now(),
                confirmed=confirmed,
            )
    except IntegrityError:
        existing = Assignment.objects.filter(
            hit=hit, provider_assignment_id=provider_assignment_id
        ).first()
        if existing is None:
            raise AssignmentMismatch("You have already submitted work on this task.") from None
        if existing.worker_id != worker.pk:
            raise AssignmentMismatch("This assignment belongs to another worker.") from None
        return existing


def hit_accepting_refusal(hit: Hit, now=None) -> str:
    """Why nobody can be starting work on this HIT now ('' when they can)."""
    now = now or timezone.now()
    if hit.batch.status != HitBatch.Status.OPEN:
        return "This task is not open."
    if not hit.provider_hit_id or (hit.expires_at is not None and hit.expires_at <= now):
        return "This task is no longer available."
    return ""


def assignment_arrive(
    hit: Hit,
    provider_assignment_id: str,
    raw_worker_id: str,
    *,
    on_hit: Assignment | None,
) -> Assignment:
    """A task page opened with an assignment id: our record of it, or AssignmentMismatch.

    An id we hold must belong to this HIT and worker. On the built-in marketplace that is all:
    only its accept hands out assignments. An id new to us on an MTurk HIT that is taking
    workers is confirmed with the provider first: its record must name this HIT and worker. MTurk
    reports an assignment only once it is submitted, so an accepted one is vouched for by a place
    the HIT has pending there that none of our open assignments accounts for; such a row, and
    one written while the provider cannot be reached, stays unconfirmed (its votes count for
    nothing) until a sync finds the work at the provider. ``on_hit`` is what
    ``assignment_of_hit`` found for this id on this HIT (the page looks it up first, to get the
    HIT in the same query).
    """
    batch = hit.batch
    worker_hash = worker_id_hash(raw_worker_id)
    # Most page loads are of an assignment of this very HIT; any other id is looked up across
    # the provider's HITs.
    existing = on_hit or assignment_find(batch.provider, provider_assignment_id)
    if existing is not None:
        wrong = _mismatch(existing, hit, worker_hash)
        if wrong is not None:
            raise wrong
        return existing
    if batch.provider in HOSTED_PROVIDERS:
        raise AssignmentMismatch(NOT_HANDED_OUT)
    why = hit_accepting_refusal(hit) or _over_worker_limit(batch, worker_hash)
    if why:
        raise AssignmentMismatch(why)
    provider = provider_for(batch)
    pending, done_there = 0, set[str]()
    try:
        record = provider.get_assignment(provider_assignment_id)
        if record is None:
            pending = provider.get_hit(hit).pending
            # Work of ours still open here that the provider has as submitted holds no place.
            done_there = (
                {pa.assignment_id for pa in provider.list_assignments(hit)}
                if _open_elsewhere(hit, worker_hash).exists()
                else set()
            )
    except ProviderError as exc:
        logger.warning("HIT %s: provider unreachable, work held unconfirmed (%s)", hit.pk, exc)
        return assignment_open(hit, provider_assignment_id, raw_worker_id, confirmed=False)
    if record is not None:
        if (
            record.hit_id != hit.provider_hit_id
            or not record.worker_id
            or worker_id_hash(record.worker_id) != worker_hash
        ):
            raise AssignmentMismatch(NOT_AT_PROVIDER)
        return assignment_open(hit, provider_assignment_id, raw_worker_id, confirmed=True)
    with transaction.atomic():
        # The HIT's lock makes the count and the new row one step: two pages cannot both take
        # the last pending place.
        locked = Hit.objects.select_for_update().select_related("batch").get(pk=hit.pk)
        held = _open_elsewhere(locked, worker_hash).exclude(provider_assignment_id__in=done_there)
        if held.count() >= pending:
            raise AssignmentMismatch(NOT_AT_PROVIDER)
        return assignment_open(locked, provider_assignment_id, raw_worker_id, confirmed=False)


def _over_worker_limit(batch, worker_hash: str) -> str:
    """MTurk has no cap on one worker's HITs in a batch: the batch's is kept here, when a new
    assignment first opens its page (returned and abandoned ones do not count)."""
    if batch.max_hits_per_worker is None:
        return ""
    taken = (
        Assignment.objects.filter(hit__batch=batch, worker__id_hash=worker_hash)
        .exclude(status__in=[Assignment.Status.RETURNED, Assignment.Status.ABANDONED])
        .count()
    )
    if taken < batch.max_hits_per_worker:
        return ""
    return (
        f"You have done the most HITs allowed in this batch ({batch.max_hits_per_worker}): "
        "please return this HIT."
    )


def _open_elsewhere(hit: Hit, worker_hash: str):
    """Other workers' assignments of the HIT open here and still in their time: each holds a
    pending place at the provider (the worker's own would be replaced by the new id)."""
    since = timezone.now() - timedelta(seconds=hit.batch.assignment_duration_seconds)
    held = Assignment.objects.filter(
        hit=hit, status=Assignment.Status.ACCEPTED, accepted_at__gt=since
    )
    me = Worker.objects.filter(provider=hit.batch.provider, id_hash=worker_hash).first()
    return held.exclude(worker=me) if me is not None else held
