"""Which items a batch covers, and the HIT plan cut from them by the task-kind registry."""

import pytest

from annotation.models import Vote, Worker
from curation.models import CurationRun, LabelIssue, ReviewBatch
from hits.planning import batch_items, hit_plan

pytestmark = pytest.mark.django_db


def test_selections(make_dataset, make_batch):
    ds = make_dataset(n=10)
    items = list(ds.items.order_by("index"))
    batch = make_batch(ds, assignments_per_item=2)
    assert list(batch_items(batch)) == items

    w1 = Worker.objects.create(provider="market", id_hash="1" * 64)
    w2 = Worker.objects.create(provider="market", id_hash="2" * 64)
    for w in (w1, w2):
        Vote.objects.create(item=items[0], worker=w, kind="verify", answer=0)
    Vote.objects.create(item=items[1], worker=w1, kind="verify", answer=0)
    Vote.objects.create(item=items[2], worker=w1, kind="complementary", answer=0)
    Vote.objects.create(item=items[2], worker=w2, kind="complementary", answer=0)
    batch.item_selection = "needing_votes"
    assert list(batch_items(batch)) == items[1:]

    batch.item_selection = "explicit"
    batch.items.set([items[3], items[5]])
    assert list(batch_items(batch)) == [items[3], items[5]]

    run = CurationRun.objects.create(dataset=ds, status="done")
    LabelIssue.objects.create(run=run, item=items[4], current_label=0, suggested_label=1, score=0.9)
    LabelIssue.objects.create(
        run=run, item=items[6], current_label=0, suggested_label=1, score=0.8, resolution="kept"
    )
    batch.item_selection = "curation"
    ReviewBatch.objects.create(run=run, batch=batch)
    assert list(batch_items(batch)) == [items[4]]


def test_plan_is_stable_and_mixes_gold(make_dataset, make_batch):
    ds = make_dataset(n=50, gold=10)
    batch = make_batch(ds, items_per_hit=10, gold_rate=0.2, assignments_per_item=3)
    plan = hit_plan(batch)
    again = hit_plan(batch)
    assert [(p.items, p.gold_items) for p in plan] == [(p.items, p.gold_items) for p in again]
    assert [p.number for p in plan] == list(range(1, len(plan) + 1))
    assert all(p.max_assignments == 3 and len(p.gold_items) == 2 for p in plan)
    regular = [e["item"] for p in plan for e in p.items if e["item"] not in p.gold_items]
    assert sorted(regular) == sorted(
        ds.items.filter(gold_label__isnull=True).values_list("id", flat=True)
    )
