"""The researcher's controls: review rules, bonuses, blocks and soft blocks, messages, extend,
expire, re-post and orphan clean-up."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotation.models import Vote, Worker
from hits.localturk.models import Hit as TurkHit
from hits.localturk.models import Notification, WorkerQualification
from hits.models import Assignment, Bonus, HitBatch, WorkerExclusion, WorkerNotice
from hits.providers.base import hit_annotation
from hits.selectors import hit_batch_stats
from hits.services import (
    assignment_approve,
    assignment_block_worker,
    assignment_bonus,
    assignments_reject,
    bonus_pay,
    hit_batch_auto_review,
    hit_batch_expire,
    hit_batch_extend,
    hit_batch_launch,
    hit_batch_notify,
    hit_batch_repost,
    hit_batch_sync,
    hits_orphans_cleanup,
    market_accept,
    market_hit_refusal,
)
from hits.submissions import assignment_submit


def answers_for(hit, *, gold_right: bool) -> list[dict]:
    """Answer 'correct' on every regular item; on gold ones right or wrong as asked."""
    from annotation.models import Item

    gold = {int(g) for g in hit.gold_items}
    out = []
    for entry in hit.items:
        item = entry["item"]
        if item in gold:
            g = Item.objects.get(pk=item).gold_label
            right = 0 if entry["label"] == g else 2
            out.append({"item": item, "answer": right if gold_right else 2 - right})
        else:
            out.append({"item": item, "answer": 0})
    return out


def submit(hit, raw_worker: str, answers, *, seconds: float = 60) -> Assignment:
    """The worker takes the HIT through the marketplace's accept and submits ``answers``."""
    a = market_accept(hit, raw_worker)
    Assignment.objects.filter(pk=a.pk).update(
        accepted_at=timezone.now() - timedelta(seconds=seconds)
    )
    a.refresh_from_db()
    assignment_submit(a, answers)
    a.refresh_from_db()
    return a


@pytest.fixture
def local_batch(db, make_dataset, make_batch, django_capture_on_commit_callbacks):
    def make(n: int = 20, **fields):
        defaults = {"provider": "market", "environment": "market", "items_per_hit": 10}
        defaults.update(fields)
        batch = make_batch(make_dataset(n=n, gold=10), **defaults)
        with django_capture_on_commit_callbacks(execute=True):
            hit_batch_launch(batch)
        batch.refresh_from_db()
        assert batch.status == HitBatch.Status.OPEN
        return batch

    return make


def test_auto_review_by_gold_accuracy_and_speed(local_batch):
    batch = local_batch(
        gold_rate=0.2,
        params={"gold_wrong_label_rate": 1.0},
        review_rules={
            "approve_gold_at_least": 0.8,
            "reject_gold_below": 0.5,
            "soft_block_gold_below": 0.3,
            "reject_faster_than_seconds": 20,
            "reject_message": "Known answers right: {accuracy}; time {seconds} s.",
        },
    )
    hit = batch.hits.order_by("number").first()
    assert len(hit.gold_items) == 2
    careful = submit(hit, "careful", answers_for(hit, gold_right=True), seconds=120)
    sloppy = submit(hit, "sloppy", answers_for(hit, gold_right=False), seconds=120)
    hasty = submit(hit, "hasty", answers_for(hit, gold_right=True), seconds=3)

    outcome = hit_batch_auto_review(batch)
    assert (outcome.approved, outcome.rejected, outcome.excluded, outcome.left) == (1, 2, 1, 0)
    careful.refresh_from_db()
    sloppy.refresh_from_db()
    hasty.refresh_from_db()
    assert careful.status == "Approved" and "auto-approved" in careful.review_note
    assert sloppy.status == "Rejected" and sloppy.feedback == "Known answers right: 0%; time 120 s."
    assert hasty.status == "Rejected" and "too fast" in hasty.review_note
    assert WorkerExclusion.objects.get().worker == sloppy.worker
    other = batch.hits.order_by("number").last()
    assert "no tasks for you" in market_hit_refusal(other, sloppy.worker)
    assert market_hit_refusal(other, careful.worker) == ""


def test_reject_selected_with_a_templated_message(local_batch):
    batch = local_batch(title="Label check")
    hit = batch.hits.first()
    a = submit(hit, "w1", [{"item": i["item"], "answer": 1} for i in hit.items])
    assert assignments_reject([a.pk], template="Sorry, HIT {hit} of {batch} was rejected.") == 1
    a.refresh_from_db()
    assert a.status == "Rejected" and a.feedback == "Sorry, HIT 1 of Label check was rejected."
    stats = hit_batch_stats(batch)
    assert stats.votes_collected == 0, "votes of rejected work do not count"


def test_bonus_block_and_messages_on_the_marketplace(local_batch):
    batch = local_batch()
    first, second = batch.hits.order_by("number")
    a = submit(first, "w1", [{"item": i["item"], "answer": 0} for i in first.items])
    bonus = assignment_bonus(a, Decimal("0.50"), "Great work")
    assert bonus.paid_at and Bonus.objects.count() == 1
    assert bonus_pay(bonus).paid_at == bonus.paid_at
    with pytest.raises(ValueError):
        assignment_bonus(a, Decimal("0"), "nothing")

    assert hit_batch_notify(batch, subject="Thanks", message="More soon.") == 0, "not approved"
    assignment_approve(a)
    assert hit_batch_notify(batch, subject="Thanks", message="More soon.") == 1
    assert WorkerNotice.objects.get().worker == a.worker

    assignment_block_worker(a, reason="spam")
    assert Worker.objects.get(pk=a.worker_id).blocked
    assert (
        market_hit_refusal(second, Worker.objects.get(pk=a.worker_id))
        == "You cannot take part in these tasks."
    )


def test_watch_figures(local_batch):
    batch = local_batch(reward=Decimal("0.10"), assignments_per_item=3)
    hit = batch.hits.first()
    submit(hit, "w1", [{"item": i["item"], "answer": 0} for i in hit.items], seconds=30)
    submit(hit, "w2", [{"item": i["item"], "answer": 0} for i in hit.items], seconds=90)
    stats = hit_batch_stats(batch)
    assert stats.hits == 2 and stats.published == 2
    assert stats.assignments_wanted == 6 and stats.assignments_done == 2
    assert (stats.votes_collected, stats.votes_needed) == (20, 60)
    assert stats.votes_percent == 33
    assert stats.median_seconds == pytest.approx(60, abs=2)
    assert stats.spent == 0 and stats.projected == Decimal("0.60")


def test_expire_extend_and_repost_unfinished_items(local_batch):
    batch = local_batch(assignments_per_item=3)
    first, second = batch.hits.order_by("number")
    for w in ("w1", "w2", "w3"):
        submit(first, w, [{"item": i["item"], "answer": 0} for i in first.items])
    submit(second, "w1", [{"item": i["item"], "answer": 0} for i in second.items])

    assert hit_batch_expire(batch) == 2
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.EXPIRED
    assert market_hit_refusal(second, Worker.objects.create(provider="market", id_hash="x" * 64))
    assert hit_batch_extend(batch, seconds=3600) == 2
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    assert all(h.expires_at > timezone.now() for h in batch.hits.all())

    new = hit_batch_repost(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.EXPIRED
    assert new.status == HitBatch.Status.DRAFT and new.repost_of == batch
    assert new.item_selection == "explicit" and new.assignments_per_item == 2
    expected = {e["item"] for e in second.items}
    assert set(new.items.values_list("id", flat=True)) == expected


@pytest.mark.django_db(transaction=True)
def test_mturk_soft_block_keeps_the_worker_out_of_later_batches(
    localturk, make_dataset, make_batch
):
    ds = make_dataset(n=20)
    first = make_batch(ds, items_per_hit=20, assignments_per_item=2)
    hit_batch_launch(first)
    hit = first.hits.get()
    browser = localturk.browser("ASLOPPY")
    localturk.do_hit(browser, hit.provider_hit_id)
    a = Assignment.objects.get()
    from hits.services import assignment_exclude_worker

    exclusion = assignment_exclude_worker(a, reason="gold accuracy 10%")
    assert exclusion.qualification_type_id
    assert WorkerQualification.objects.get().worker.worker_id == "ASLOPPY"
    assert "ASLOPPY" not in str(WorkerExclusion.objects.values())

    later = make_batch(ds, name="later", items_per_hit=20, assignments_per_item=2)
    hit_batch_launch(later)
    later_hit = later.hits.get()
    assert localturk.accept(localturk.browser("ASLOPPY"), later_hit.provider_hit_id).status == 409
    assert localturk.accept(localturk.browser("ACAREFUL"), later_hit.provider_hit_id).status == 200

    assignment_approve(a)
    hit_batch_notify(first, subject="Thanks", message="See you")
    assert list(Notification.objects.values_list("worker__worker_id", flat=True)) == ["ASLOPPY"]
    assignment_bonus(a, Decimal("0.10"), "for the effort")
    assignment_block_worker(a, reason="spam")
    assert Worker.objects.get(pk=a.worker_id).blocked


@pytest.mark.django_db(transaction=True)
def test_orphan_cleanup_removes_only_our_unrecorded_hits(localturk, make_dataset, make_batch):
    from hits.answers import external_question

    batch = make_batch(make_dataset(n=20), items_per_hit=20, assignments_per_item=1)
    hit_batch_launch(batch)
    client = localturk.client()
    type_id = batch.hits.get().hit_type_id
    question = external_question(f"{localturk.base}/task/1/")
    orphan = client.create_hit_with_hit_type(
        HITTypeId=type_id,
        MaxAssignments=1,
        LifetimeInSeconds=3600,
        Question=question,
        RequesterAnnotation=hit_annotation(batch, 7),
    )["HIT"]["HITId"]
    stranger = client.create_hit_with_hit_type(
        HITTypeId=type_id,
        MaxAssignments=1,
        LifetimeInSeconds=3600,
        Question=question,
        RequesterAnnotation="crowd-annotation:0123456789abcdef0123456789abcdef:1",
    )["HIT"]["HITId"]
    result = hits_orphans_cleanup("mturk", "sandbox")
    assert (result.expired, result.deleted, result.kept) == (1, 1, [])
    assert TurkHit.objects.get(hit_id=orphan).disposed
    assert not TurkHit.objects.get(hit_id=stranger).disposed
    assert not TurkHit.objects.get(hit_id=batch.hits.get().provider_hit_id).disposed
    hit_batch_sync(batch)
    assert Vote.objects.count() == 0


def test_periodic_sync_skips_a_batch_another_sync_holds(local_batch):
    from hits.services import hit_batches_sync

    batch = local_batch()
    held = timezone.now() + timedelta(minutes=10)
    HitBatch.objects.filter(pk=batch.pk).update(sync_lease_until=held)
    assert batch.pk not in hit_batches_sync()
    HitBatch.objects.filter(pk=batch.pk).update(
        sync_lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert batch.pk in hit_batches_sync()
    assert HitBatch.objects.get(pk=batch.pk).sync_lease_until is None
