"""Writes for the hits app, one module per part of a batch's life:

- ``launch``: check, plan and publish a batch's HITs (resumable, idempotent per HIT);
- ``sync``: read the provider's records back into our Hit and Assignment rows and votes;
- ``review``: approve, reject, bonus, block, exclude, message; the batch's review rules;
- ``lifecycle``: extend, expire, add places, delete, re-post, clean up orphan HITs;
- ``market``: the built-in marketplace's worker side (accept, return, submit);
- ``prolific``: a Prolific study's submissions matched to our assignments; pause, stop;
- ``assignments``: the one door through which an assignment row is first created;
- ``adaptive``: adaptive overlap, more places where the votes so far leave an item unsure;
- ``loop``: the batch-complete hook, the automatic loop's stage records and its stop.

Provider calls (network) never run inside a database transaction: each service reads what it
needs, calls the provider, then writes in a short transaction of its own. Background work is
started by task name (``hits.jobs``), never by importing ``hits.tasks``.
"""

from hits.jobs import enqueue_on_commit

from .adaptive import hit_batch_adapt, hit_batch_adaptive_refusal, hit_batch_votes_arrived
from .assignments import assignment_arrive, assignment_of_hit, assignment_open
from .launch import (
    LIVE_PERMISSION,
    hit_batch_check,
    hit_batch_launch,
    hit_batch_plan,
    hit_batch_preview,
    hit_batch_publish,
    hit_batch_resume,
    hit_batch_worker_lists,
    provider_balance,
)
from .lifecycle import (
    CleanupResult,
    hit_add_assignments,
    hit_batch_expire,
    hit_batch_extend,
    hit_batch_repost,
    hit_delete,
    hits_orphans_cleanup,
)
from .loop import (
    hit_batch_complete_check,
    hit_batch_loop_stop,
    loop_origin,
    loop_stage_claim,
    loop_stage_finish,
)
from .market import (
    market_accept,
    market_accept_next,
    market_assignments_tidy,
    market_available_hits,
    market_external_submit,
    market_hit_refusal,
    market_next_hit,
    market_return,
    market_worker_allowed,
)
from .progress import hit_batch_progress
from .prolific import StudySyncResult, prolific_study_action, prolific_study_sync
from .review import (
    ReviewOutcome,
    assignment_approve,
    assignment_block_worker,
    assignment_bonus,
    assignment_exclude_worker,
    assignment_reject,
    assignments_reject,
    bonus_pay,
    hit_batch_approve_submitted,
    hit_batch_auto_review,
    hit_batch_notify,
    reject_message,
)
from .sync import SYNC_LEASE, SyncResult, hit_batch_sync, hit_batches_sync

__all__ = [
    "loop_stage_finish",
    "loop_stage_claim",
    "loop_origin",
    "hit_batch_votes_arrived",
    "hit_batch_loop_stop",
    "hit_batch_complete_check",
    "hit_batch_adaptive_refusal",
    "hit_batch_adapt",
    "LIVE_PERMISSION",
    "SYNC_LEASE",
    "CleanupResult",
    "StudySyncResult",
    "ReviewOutcome",
    "SyncResult",
    "assignment_approve",
    "assignment_arrive",
    "assignment_block_worker",
    "assignment_bonus",
    "assignment_exclude_worker",
    "assignment_of_hit",
    "assignment_open",
    "assignment_reject",
    "assignments_reject",
    "bonus_pay",
    "enqueue_on_commit",
    "hit_add_assignments",
    "hit_batch_approve_submitted",
    "hit_batch_auto_review",
    "hit_batch_check",
    "hit_batch_expire",
    "hit_batch_extend",
    "hit_batch_launch",
    "hit_batch_notify",
    "hit_batch_plan",
    "hit_batch_preview",
    "hit_batch_progress",
    "hit_batch_publish",
    "hit_batch_repost",
    "hit_batch_resume",
    "hit_batch_sync",
    "hit_batch_worker_lists",
    "hit_batches_sync",
    "hit_delete",
    "hits_orphans_cleanup",
    "market_accept",
    "market_accept_next",
    "market_assignments_tidy",
    "market_available_hits",
    "market_external_submit",
    "market_hit_refusal",
    "market_next_hit",
    "market_return",
    "market_worker_allowed",
    "prolific_study_action",
    "prolific_study_sync",
    "provider_balance",
    "reject_message",
]
