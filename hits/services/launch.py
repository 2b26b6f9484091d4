"""Launch: check a batch, plan its HITs, publish them at the provider (resumable)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from annotation.worker_ids import worker_id_hash
from hits.exceptions import BatchStateError, LaunchRefused, ProviderError
from hits.fees import CostPreview
from hits.jobs import enqueue_on_commit
from hits.models import Environment, Hit, HitBatch
from hits.planning import hit_plan
from hits.providers import provider_for
from hits.providers.base import ProviderHit, list_qualification_name
from hits.selectors import hit_batch_cost_preview

from .progress import hit_batch_progress

logger = logging.getLogger(__name__)
LIVE_PERMISSION = "hits.launch_live"
# Rows per INSERT when a launch writes its planned HITs (within SQLite's variable limit).
PLAN_BATCH_SIZE = 500


def hit_batch_check(batch: HitBatch) -> None:
    """Refuse settings that cannot launch, before anything is planned or spent."""
    try:
        provider = provider_for(batch)
    except ProviderError as exc:
        raise LaunchRefused(str(exc)) from None
    if batch.assignments_per_item < 1 or batch.items_per_hit < 1:
        raise LaunchRefused("assignments per item and items per HIT must be at least 1")
    # Imported here: adaptive reaches this module again through lifecycle and sync.
    from .adaptive import hit_batch_adaptive_refusal

    why = provider.launch_refusal(batch) or hit_batch_adaptive_refusal(batch)
    if why:
        raise LaunchRefused(why)


def provider_balance(batch: HitBatch) -> Decimal | None:
    """The provider's account balance (a network call for MTurk; None for our marketplace)."""
    return provider_for(batch).balance()


def hit_batch_preview(batch: HitBatch) -> CostPreview:
    """The launch preview: HITs, assignments, rewards, fees, bonuses, balance and budget cap.
    A balance the provider cannot tell (no credentials, no network) leaves the costs shown,
    with the reason in ``balance_error``; the launch itself still needs the balance."""
    hit_batch_check(batch)
    try:
        balance = provider_balance(batch)
    except ProviderError as exc:
        preview = hit_batch_cost_preview(batch, balance=None)
        return dataclasses.replace(preview, balance_error=str(exc))
    return hit_batch_cost_preview(batch, balance=balance)


def hit_batch_launch(batch: HitBatch, *, user=None, confirm_live: bool = False) -> CostPreview:
    """Plan the batch's HITs and start publishing them in the background.

    Refused (LaunchRefused, nothing created) when over the budget cap or the balance, or for a
    live batch without confirmation or the ``hits.launch_live`` permission. A batch already
    launching is resumed: its planned HITs without a provider id get published.
    """
    if batch.status == HitBatch.Status.LAUNCHING or (
        batch.status == HitBatch.Status.FAILED and batch.hits.exists()
    ):
        hit_batch_resume(batch)
        return hit_batch_cost_preview(batch, balance=None)
    if batch.status != HitBatch.Status.DRAFT:
        raise LaunchRefused(f"batch {batch.name} is {batch.get_status_display()}, not a draft")
    if batch.environment == Environment.LIVE:
        if not confirm_live:
            raise LaunchRefused("a live launch spends real money: confirm it explicitly")
        if user is None or not user.has_perm(LIVE_PERMISSION):
            raise LaunchRefused("launching on live MTurk needs the hits.launch_live permission")
    hit_batch_check(batch)
    balance = provider_balance(batch)
    with transaction.atomic():
        locked = HitBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != HitBatch.Status.DRAFT:
            raise LaunchRefused(f"batch {batch.name} is already {locked.get_status_display()}")
        planned = hit_batch_plan(locked, publish=provider_for(locked).publishes_on_plan)
        if not planned:
            raise LaunchRefused("the batch selects no items")
        preview = hit_batch_cost_preview(locked, balance=balance)
        if not preview.allowed:
            # Rolls back the plan: a refused launch leaves nothing behind.
            raise LaunchRefused(f"launch refused: {preview.refusal()}")
        locked.status = HitBatch.Status.LAUNCHING
        locked.launched_at = timezone.now()
        locked.launched_by = user if getattr(user, "pk", None) else None
        locked.error = ""
        locked.progress = {
            "job": "launch",
            "done": 0,
            "total": planned,
            "updated_at": timezone.now().isoformat(),
        }
        locked.save()
        enqueue_on_commit("hit_batch_publish_task", batch.pk)
    batch.refresh_from_db()
    return preview


def _published(batch: HitBatch, record: ProviderHit, now) -> dict:
    """The fields of a HIT row once the provider has published it as ``record``."""
    return {
        "provider_hit_id": record.hit_id,
        "hit_type_id": batch.hit_type_id,
        "status": record.status or Hit.Status.ASSIGNABLE,
        "expires_at": record.expires_at,
        "published_at": now,
    }


def hit_batch_plan(batch: HitBatch, *, publish: bool = False) -> int:
    """Write the batch's planned HITs (numbered rows, no provider id yet); idempotent.

    With ``publish``, for a provider whose records are our rows (the built-in marketplace), each
    row is written already published instead, in the same bulk insert: the launch does that in
    the transaction that opens the batch, so no draft ever has a published HIT.
    """
    provider = provider_for(batch) if publish else None
    if provider is not None and not provider.publishes_on_plan:
        raise ValueError(f"provider {provider.name} publishes each HIT by a call, not on plan")
    now = timezone.now()
    with transaction.atomic():
        existing = batch.hits.count()
        if existing:
            return existing
        hits = []
        for p in hit_plan(batch):
            hit = Hit(
                batch=batch,
                number=p.number,
                items=p.items,
                gold_items=p.gold_items,
                max_assignments=p.max_assignments,
            )
            if provider is not None:
                for field, value in _published(batch, provider.create_hit(batch, hit), now).items():
                    setattr(hit, field, value)
            hits.append(hit)
        Hit.objects.bulk_create(hits, batch_size=PLAN_BATCH_SIZE)
        return len(hits)


def hit_batch_resume(batch: HitBatch) -> None:
    """Publish what a crashed or failed launch left unpublished."""
    HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.LAUNCHING, error="")
    batch.status = HitBatch.Status.LAUNCHING
    enqueue_on_commit("hit_batch_publish_task", batch.pk)


def hit_batch_publish(batch: HitBatch, *, limit: int | None = None) -> bool:
    """Create provider HITs for planned rows without one, in number order; True when all are.

    Each HIT carries a UniqueRequestToken made of the batch and its number, so a HIT created by
    a run that crashed before recording it is found again, never created twice.
    """
    if batch.status != HitBatch.Status.LAUNCHING:
        return True
    provider = provider_for(batch)
    try:
        if not batch.hit_type_id:
            batch.hit_type_id = provider.ensure_hit_type(batch)
            HitBatch.objects.filter(pk=batch.pk).update(hit_type_id=batch.hit_type_id)
        todo = batch.hits.filter(provider_hit_id="").order_by("number")
        if limit:
            todo = todo[:limit]
        for hit in todo:
            hit.hit_type_id = batch.hit_type_id
            record = provider.create_hit(batch, hit)
            Hit.objects.filter(pk=hit.pk).update(**_published(batch, record, timezone.now()))
            hit_batch_progress(batch, done=batch.hits.exclude(provider_hit_id="").count())
    except ProviderError as exc:
        HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.FAILED, error=str(exc))
        logger.error("launch of batch %s stopped: %s", batch.pk, exc)
        raise
    remaining = batch.hits.filter(provider_hit_id="").exists()
    if not remaining:
        try:
            # Prolific publishes its study only now, when every HIT can be handed out.
            provider.launch_finish(batch)
        except ProviderError as exc:
            HitBatch.objects.filter(pk=batch.pk).update(
                status=HitBatch.Status.FAILED, error=str(exc)
            )
            raise
        HitBatch.objects.filter(pk=batch.pk, status=HitBatch.Status.LAUNCHING).update(
            status=HitBatch.Status.OPEN
        )
        hit_batch_progress(batch, job="launch", done=batch.hits.count(), finished=True)
    return not remaining


def _worker_ids(raw_ids: Iterable[str]) -> list[str]:
    return sorted({r.strip() for r in raw_ids if r and r.strip()})


def hit_batch_worker_lists(
    batch: HitBatch, *, allow: Iterable[str] = (), block: Iterable[str] = ()
) -> dict[str, int]:
    """Set a draft batch's allow and block lists from raw worker ids.

    The raw ids go to the provider (on MTurk: a qualification of ours granted to each listed
    worker, required or excluded by the batch's HIT type) and are otherwise only hashed: the
    batch keeps ``allow_hashes`` / ``block_hashes``, which our marketplace checks. Runs in the
    request, not through the broker, so no raw id sits in a queue.
    """
    if batch.status != HitBatch.Status.DRAFT:
        raise BatchStateError("worker lists are set before launch (the HIT type carries them)")
    provider = provider_for(batch)
    params = dict(batch.qualification_params or {})
    counts = {}
    for which, raw_ids in (("allow", _worker_ids(allow)), ("block", _worker_ids(block))):
        if not raw_ids:
            continue
        type_id = provider.qualify_workers(list_qualification_name(batch, which), raw_ids)
        if type_id:
            params[f"{which}_type_id"] = type_id
        params[f"{which}_hashes"] = sorted({worker_id_hash(r) for r in raw_ids})
        counts[which] = len(raw_ids)
    HitBatch.objects.filter(pk=batch.pk).update(qualification_params=params)
    batch.qualification_params = params
    return counts
