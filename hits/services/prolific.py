"""Prolific's side of a batch: its study's submissions read back and matched to our
assignments, and the study's pause / resume / stop and places.

A submission is matched to an assignment by its session id (our assignment id) and the hash of
its participant id; the raw participant id is hashed here and goes no further.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from annotation.worker_ids import worker_id_hash
from hits.exceptions import BatchStateError
from hits.models import Assignment, HitBatch, Provider
from hits.providers import provider_for

from .progress import hit_batch_progress

# Prolific's submission states, and ours where they decide it.
RETURNED = {"RETURNED", "TIMED-OUT", "SCREENED OUT"}
REVIEWED = {"APPROVED": Assignment.Status.APPROVED, "REJECTED": Assignment.Status.REJECTED}
FINISHED = {"AWAITING REVIEW", "APPROVED", "REJECTED"}
ACTIONS = {"pause": "PAUSE", "resume": "START", "stop": "STOP"}


@dataclass
class StudySyncResult:
    matched: int = 0
    returned: int = 0
    reviewed: int = 0
    only_at_prolific: list[str] = field(default_factory=list)
    """Submission ids Prolific has that match none of our assignments."""
    only_here: list[str] = field(default_factory=list)
    """Our submitted assignment ids that Prolific does not list."""


def _provider(batch: HitBatch):
    if batch.provider != Provider.PROLIFIC:
        raise BatchStateError(f"batch {batch.name} is not on Prolific")
    if not batch.hit_type_id:
        raise BatchStateError(f"batch {batch.name} has no study at Prolific yet")
    return provider_for(batch)


def prolific_study_sync(batch: HitBatch) -> StudySyncResult:
    """Match the study's submissions to our assignments: places given back at Prolific are
    freed here (the HIT takes a new participant), reviews made there are taken in, and what
    only one side has is recorded on the batch (shown on its page)."""
    provider = _provider(batch)
    result = StudySyncResult()
    ours = {
        a.provider_assignment_id: a
        for a in Assignment.objects.filter(hit__batch=batch).select_related("worker")
    }
    seen = set()
    now = timezone.now()
    for sub in provider.list_submissions(batch):
        a = ours.get(sub.submission_id)
        if a is None or a.worker.id_hash != worker_id_hash(sub.participant_id):
            # Only work Prolific counts as done is a mismatch: a participant still on the way
            # to us, or one screened out or gone, holds no work here.
            if sub.status in FINISHED:
                result.only_at_prolific.append(sub.submission_id)
            continue
        seen.add(sub.submission_id)
        result.matched += 1
        if sub.status in RETURNED and a.status == Assignment.Status.ACCEPTED:
            Assignment.objects.filter(pk=a.pk, status=Assignment.Status.ACCEPTED).update(
                status=Assignment.Status.RETURNED
            )
            result.returned += 1
        elif sub.status in REVIEWED and a.status == Assignment.Status.SUBMITTED:
            Assignment.objects.filter(pk=a.pk, status=Assignment.Status.SUBMITTED).update(
                status=REVIEWED[sub.status], reviewed_at=now, review_note="reviewed at Prolific"
            )
            result.reviewed += 1
    done = [Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED]
    missing = Assignment.objects.filter(hit__batch=batch, status__in=done).exclude(
        provider_assignment_id__in=seen
    )
    result.only_here = sorted(missing.values_list("provider_assignment_id", flat=True))
    missing.update(provider_missing=True)
    Assignment.objects.filter(
        hit__batch=batch, provider_assignment_id__in=seen, provider_missing=True
    ).update(provider_missing=False)
    hit_batch_progress(
        batch,
        job="sync",
        prolific_only_at_prolific=result.only_at_prolific,
        prolific_only_here=result.only_here,
    )
    return result


def prolific_study_action(batch: HitBatch, action: str) -> None:
    """Pause, resume or stop the batch's study at Prolific."""
    if action not in ACTIONS:
        raise BatchStateError(f"unknown study action {action!r}: use pause, resume or stop")
    _provider(batch).study_transition(batch, ACTIONS[action])
