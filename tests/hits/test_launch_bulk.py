"""Launching a large batch on the built-in marketplace: every HIT is written already published,
numbered, covering each item once, with its gold; the publish job then only opens the batch.
A second launch or a resume creates nothing more."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Item
from hits.models import Hit, HitBatch
from hits.planning import hit_item_ids
from hits.providers.base import hit_token
from hits.providers.market import market_hit_id
from hits.services import hit_batch_launch, hit_batch_publish

pytestmark = pytest.mark.django_db


def _launch(batch, capture):
    with capture(execute=True):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    return batch


def test_market_launch_writes_every_hit_published(
    make_dataset, make_batch, django_capture_on_commit_callbacks
):
    ds = make_dataset(n=230, gold=10)
    batch = make_batch(ds, provider="market", environment="market", items_per_hit=10, gold_rate=0.1)
    _launch(batch, django_capture_on_commit_callbacks)

    assert batch.status == HitBatch.Status.OPEN
    hits = list(batch.hits.order_by("number"))
    regular = set(ds.items.filter(gold_label__isnull=True).values_list("pk", flat=True))
    assert [h.number for h in hits] == list(range(1, len(hits) + 1))
    shown = [pk for h in hits for pk in hit_item_ids(batch.kind, h.items)]
    gold = {int(g) for h in hits for g in h.gold_items}
    # Every regular item on exactly one HIT; gold drawn from the gold items only.
    assert sorted(pk for pk in shown if pk not in gold) == sorted(regular)
    assert gold and gold <= set(
        ds.items.filter(gold_label__isnull=False).values_list("pk", flat=True)
    )
    for h in hits:
        assert h.provider_hit_id == market_hit_id(hit_token(batch, h.number))
        assert h.status == Hit.Status.ASSIGNABLE
        assert h.published_at is not None and h.expires_at is not None
        assert h.max_assignments == batch.assignments_per_item
    assert len({h.provider_hit_id for h in hits}) == len(hits)


def test_market_launch_inserts_hits_in_bulk(
    make_dataset, make_batch, django_capture_on_commit_callbacks
):
    ds = make_dataset(n=400)
    batch = make_batch(ds, provider="market", environment="market", items_per_hit=2)
    with CaptureQueriesContext(connection) as ctx:
        _launch(batch, django_capture_on_commit_callbacks)
    assert batch.hits.count() == 200
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "hits_hit"')]
    # 200 HITs in a few multi-row statements (as many as the database's parameter limit needs),
    # not one per HIT, and no update per HIT afterwards.
    assert 1 <= len(inserts) <= 5
    updates = [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "hits_hit"')]
    assert updates == []


def test_relaunch_and_resume_create_nothing_more(
    make_dataset, make_batch, django_capture_on_commit_callbacks
):
    batch = make_batch(make_dataset(n=50), provider="market", environment="market", items_per_hit=5)
    _launch(batch, django_capture_on_commit_callbacks)
    before = list(batch.hits.order_by("number").values_list("number", "provider_hit_id"))
    # A crash between the plan and the publish job leaves the batch launching: it resumes.
    HitBatch.objects.filter(pk=batch.pk).update(status=HitBatch.Status.LAUNCHING)
    batch.refresh_from_db()
    _launch(batch, django_capture_on_commit_callbacks)
    assert hit_batch_publish(batch) is True
    after = list(batch.hits.order_by("number").values_list("number", "provider_hit_id"))
    assert after == before
    assert Item.objects.filter(dataset=batch.dataset).count() == 50
