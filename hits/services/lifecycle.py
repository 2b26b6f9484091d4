"""Lifecycle: extend, expire, add places, delete, re-post, and clean up orphan HITs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import Item
from hits.exceptions import ProviderError
from hits.models import Hit, HitBatch, ItemSelection
from hits.planning import hit_item_ids
from hits.providers import provider_for, provider_get
from hits.providers.base import parse_annotation
from hits.selectors import batch_item_vote_counts

from .sync import hit_batch_sync


def _published_hits(batch: HitBatch):
    return batch.hits.exclude(provider_hit_id="").exclude(status=Hit.Status.DISPOSED)


def _hits_expiry_set(batch: HitBatch, hits, when_for, *, moves: list[str], to: str) -> int:
    """Set each HIT's expiry at the provider, then in our rows; batches in ``moves`` go to
    ``to``. How many HITs changed."""
    provider = provider_for(batch)
    n = 0
    for hit in hits:
        when = when_for(hit)
        provider.set_expiration(hit, when)
        Hit.objects.filter(pk=hit.pk).update(expires_at=when)
        n += 1
    HitBatch.objects.filter(pk=batch.pk, status__in=moves).update(status=to)
    return n


def hit_batch_extend(batch: HitBatch, *, seconds: int) -> int:
    """Push every HIT's expiry ``seconds`` past the later of now and its current expiry."""
    if seconds <= 0:
        raise ValueError(f"extend by a positive number of seconds, not {seconds}")
    now = timezone.now()
    return _hits_expiry_set(
        batch,
        _published_hits(batch),
        lambda hit: max(now, hit.expires_at or now) + timedelta(seconds=seconds),
        moves=[HitBatch.Status.EXPIRED, HitBatch.Status.COMPLETE],
        to=HitBatch.Status.OPEN,
    )


def hit_batch_expire(batch: HitBatch) -> int:
    """Expire every HIT now: no new work is taken; submitted work can still be reviewed."""
    now = timezone.now()
    return _hits_expiry_set(
        batch,
        _published_hits(batch).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        lambda hit: now,
        moves=[HitBatch.Status.OPEN, HitBatch.Status.LAUNCHING],
        to=HitBatch.Status.EXPIRED,
    )


def hit_add_assignments(hit: Hit, count: int) -> None:
    """Let ``count`` more workers take one HIT (the token names the target total)."""
    target = hit.max_assignments + count
    provider_for(hit.batch).add_assignments(
        hit, count, f"{hit.batch.uid.hex}-{hit.number}-a{target}"
    )
    Hit.objects.filter(pk=hit.pk).update(max_assignments=target, status=Hit.Status.ASSIGNABLE)
    hit.max_assignments, hit.status = target, Hit.Status.ASSIGNABLE


def hit_delete(hit: Hit) -> None:
    """Dispose of a reviewed HIT at the provider (refused while work waits for review)."""
    provider_for(hit.batch).delete_hit(hit)
    Hit.objects.filter(pk=hit.pk).update(status=Hit.Status.DISPOSED)
    hit.status = Hit.Status.DISPOSED


_REPOST_FIELDS = (
    "dataset",
    "kind",
    "params",
    "provider",
    "environment",
    "title",
    "description",
    "keywords",
    "reward",
    "items_per_hit",
    "gold_rate",
    "lifetime_seconds",
    "assignment_duration_seconds",
    "auto_approval_delay_seconds",
    "qualification_preset",
    "qualification_params",
    "budget_cap",
    "review_rules",
    "invite_code",
    "worker_id_param",
    "max_hits_per_worker",
    "completion_code",
    "completion_redirect_url",
)


def hit_batch_repost(batch: HitBatch) -> HitBatch | None:
    """A new draft batch with only the items that still lack votes (None when none do).

    The old batch is expired and synced first, so nothing in flight is counted as missing.
    Its assignments per item is the largest shortfall.
    """
    if batch.status in (HitBatch.Status.OPEN, HitBatch.Status.LAUNCHING):
        hit_batch_expire(batch)
    if batch.hits.exclude(provider_hit_id="").exists():
        hit_batch_sync(batch)
    counts = batch_item_vote_counts(batch)
    shortfall: dict[int, int] = {}
    for hit in batch.hits.all():
        gold = {int(g) for g in hit.gold_items or []}
        for item_id in hit_item_ids(batch.kind, hit.items):
            if item_id not in gold:
                missing = batch.assignments_per_item - counts.get(item_id, 0)
                if missing > 0:
                    shortfall[item_id] = max(shortfall.get(item_id, 0), missing)
    if not shortfall:
        return None
    with transaction.atomic():
        new = HitBatch.objects.create(
            name=f"{batch.name} (re-post)"[:200],
            repost_of=batch,
            item_selection=ItemSelection.EXPLICIT,
            assignments_per_item=max(shortfall.values()),
            **{f: getattr(batch, f) for f in _REPOST_FIELDS},
        )
        new.items.set(Item.objects.filter(pk__in=shortfall))
    return new


@dataclass
class CleanupResult:
    expired: int = 0
    deleted: int = 0
    kept: list[str] = field(default_factory=list)


def hits_orphans_cleanup(provider: str, environment: str) -> CleanupResult:
    """Expire and delete provider HITs of our batches that no Hit row holds (e.g. duplicates
    from a lost answer). HITs of batches this database does not know are left alone: they may
    belong to another deployment sharing the account."""
    prov = provider_get(provider, environment)
    known_ids = set(
        Hit.objects.exclude(provider_hit_id="").values_list("provider_hit_id", flat=True)
    )
    our_batches = set(
        HitBatch.objects.filter(provider=provider, environment=environment).values_list(
            "uid", flat=True
        )
    )
    our_batches = {u.hex for u in our_batches}
    result = CleanupResult()
    for record in list(prov.list_hits()):
        parsed = parse_annotation(record.annotation)
        if parsed is None or parsed[0] not in our_batches or record.hit_id in known_ids:
            continue
        stub = Hit(provider_hit_id=record.hit_id, max_assignments=record.max_assignments)
        if record.status in (Hit.Status.ASSIGNABLE, Hit.Status.UNASSIGNABLE):
            prov.set_expiration(stub, timezone.now())
            result.expired += 1
        try:
            prov.delete_hit(stub)
            result.deleted += 1
        except ProviderError as exc:
            # Work is pending or waits for review: it goes once reviewed.
            result.kept.append(f"{record.hit_id}: {exc}")
    return result
