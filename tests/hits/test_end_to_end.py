"""Launch → workers → sync → approve, end to end over real HTTP: MTurk through boto3 and the local
endpoint, and the built-in marketplace; then a launch killed halfway, and a marketplace that
throttles and fails a third of its calls."""

import io
import json
import re
from collections import Counter

import pytest
from django.core.management import call_command

from annotation.models import Vote
from hits.localturk.models import Assignment as TurkAssignment
from hits.localturk.models import CallLog, FaultPlan
from hits.localturk.models import Hit as TurkHit
from hits.models import Assignment, Hit, HitBatch
from hits.providers.mturk import MTurkProvider
from hits.services import (
    hit_batch_approve_submitted,
    hit_batch_launch,
    hit_batch_sync,
    hit_batches_sync,
)
from hits.tasks import hit_batch_approve_submitted_task

pytestmark = pytest.mark.django_db(transaction=True)
WORKERS = ["AWORKER1", "AWORKER2", "AWORKER3"]


def assert_votes_exactly_once(batch: HitBatch, per_item: int = 3) -> None:
    votes = Vote.objects.filter(assignment__hit__batch=batch, is_gold=False)
    per_item_counts = Counter(votes.values_list("item_id", flat=True))
    assert set(per_item_counts) == set(batch.dataset.items.values_list("id", flat=True))
    assert set(per_item_counts.values()) == {per_item}
    pairs = list(votes.values_list("item_id", "worker_id"))
    assert len(pairs) == len(set(pairs)), "a worker voted twice on an item"
    triples = list(votes.values_list("assignment_id", "item_id"))
    assert len(triples) == len(set(triples))


def work_all_on_localturk(localturk, batch, *, lost_page_submit: int = 0) -> None:
    """Every simulated worker takes every HIT they see on the worker site. The first
    ``lost_page_submit`` HITs done lose the page's own submit: only MTurk gets the answer."""
    done = 0
    for wid in WORKERS:
        browser = localturk.browser(wid)
        for hid in localturk.available(browser):
            if done < lost_page_submit:
                page = localturk.accept(browser, hid)
                src = (
                    re.search(r'title="HIT" src="([^"]+)"', page.text)
                    .group(1)
                    .replace("&amp;", "&")
                )
                data = browser.get(src).task_data()  # opens our assignment, as the page does
                hit = Hit.objects.get(provider_hit_id=hid)
                answers = [{"item": i, "answer": 2} for i in _item_ids(hit)]
                browser.post(
                    data["externalSubmit"],
                    {"assignmentId": data["assignmentId"], "answers": json.dumps(answers)},
                    csrf=False,
                )
            else:
                localturk.do_hit(browser, hid)
            done += 1


def _item_ids(hit):
    from annotation import kinds

    return kinds.get(hit.batch.kind).item_ids(hit.items)


def test_mturk_batch_end_to_end(localturk, make_dataset, make_batch):
    batch = make_batch(make_dataset(n=60), items_per_hit=20, assignments_per_item=3)
    preview = hit_batch_launch(batch)
    assert (preview.hits, preview.assignments) == (3, 9)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    assert TurkHit.objects.count() == 3
    assert set(batch.hits.values_list("provider_hit_id", flat=True)) == set(
        TurkHit.objects.values_list("hit_id", flat=True)
    )

    work_all_on_localturk(localturk, batch, lost_page_submit=1)
    lost = Assignment.objects.filter(hit__batch=batch, status=Assignment.Status.ACCEPTED)
    assert lost.count() == 1, "the lost submit left our assignment open without votes"

    result = hit_batch_sync(batch)
    assert result.votes_reconciled == 20 and result.unreadable == []
    assert Assignment.objects.filter(hit__batch=batch, status="Submitted").count() == 9
    assert_votes_exactly_once(batch)

    hit_batch_approve_submitted_task.delay(batch.pk)
    assert set(TurkAssignment.objects.values_list("status", flat=True)) == {"Approved"}
    assert set(Assignment.objects.filter(hit__batch=batch).values_list("status", flat=True)) == {
        "Approved"
    }
    calls = CallLog.objects.count()
    again = hit_batch_sync(batch)
    assert (again.hits, again.new_assignments, again.votes_reconciled) == (0, 0, 0)
    assert CallLog.objects.count() == calls, "settled HITs cost no more calls"
    assert_votes_exactly_once(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE
    # Our side keeps keyed hashes only (the raw ids live at "MTurk", i.e. in localturk's tables).
    dump = io.StringIO()
    call_command("dumpdata", "annotation", "hits", stdout=dump)
    assert not any(wid in dump.getvalue() for wid in WORKERS)


def test_sync_opens_assignments_we_never_saw(localturk, make_dataset, make_batch):
    """An assignment whose task page never reached us at all (no accept, no submit) comes in
    through sync with its votes, its worker known only by hash."""
    batch = make_batch(make_dataset(n=20), items_per_hit=20, assignments_per_item=1)
    hit_batch_launch(batch)
    hit = batch.hits.get()
    browser = localturk.browser("AUNSEENWORKER")
    page = localturk.accept(browser, hit.provider_hit_id)
    aid = page.url.rstrip("/").rsplit("/", 1)[1]
    answers = [{"item": i, "answer": 1} for i in _item_ids(hit)]
    browser.post(
        "/localturk/mturk/externalSubmit",
        {"assignmentId": aid, "answers": json.dumps(answers)},
        csrf=False,
    )
    assert not Assignment.objects.exists()
    result = hit_batch_sync(batch)
    assert (result.new_assignments, result.votes_reconciled) == (1, 20)
    a = Assignment.objects.get()
    assert a.provider_assignment_id == aid and a.status == "Submitted"
    assert "AUNSEENWORKER" not in a.worker.id_hash
    assert Vote.objects.filter(assignment=a, answer=1).count() == 20


def test_local_marketplace_batch_end_to_end(market, make_dataset, make_batch, do_task_page):
    batch = make_batch(
        make_dataset(n=60),
        provider="market",
        environment="market",
        items_per_hit=20,
        assignments_per_item=3,
        completion_code="THANKS-42",
    )
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert (
        batch.status == HitBatch.Status.OPEN and batch.hits.exclude(provider_hit_id="").count() == 3
    )
    for wid in ["alice", "bob", "carol"]:
        browser = market.browser(wid)
        for _ in range(3):
            page = browser.post(f"/market/b/{batch.uid}/start/", {})
            assert "/task/" in page.url, page.text[:300]
            hit = Hit.objects.get(pk=int(page.url.split("/task/")[1].split("/")[0]))
            data = do_task_page(browser, page.url, hit)
            assert "THANKS-42" in data["done_page"].text
        refused = browser.post(f"/market/b/{batch.uid}/start/", {})
        assert refused.status == 404 and "no more tasks" in refused.text
    hit_batch_sync(batch)
    assert_votes_exactly_once(batch)
    assert hit_batch_approve_submitted(batch) == 9
    assert set(Assignment.objects.values_list("status", flat=True)) == {"Approved"}
    hit_batch_sync(batch)
    assert_votes_exactly_once(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE


class Killed(Exception):
    """The worker process died."""


def test_launch_killed_halfway_then_rerun_gives_exactly_the_planned_hits(
    localturk, make_dataset, make_batch, monkeypatch, settings
):
    settings.HITS_LAUNCH_CHUNK = 2
    batch = make_batch(make_dataset(n=120), items_per_hit=20, assignments_per_item=3)
    real_create = MTurkProvider.create_hit
    calls = {"n": 0}

    def dies_after_the_fourth_create(self, batch, hit):
        calls["n"] += 1
        record = real_create(self, batch, hit)
        if calls["n"] == 4:
            # MTurk created HIT 4; the process dies before our database hears of it.
            raise Killed
        return record

    monkeypatch.setattr(MTurkProvider, "create_hit", dies_after_the_fourth_create)
    with pytest.raises(Killed):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.LAUNCHING
    assert batch.hits.count() == 6
    assert batch.hits.exclude(provider_hit_id="").count() == 3
    assert TurkHit.objects.count() == 4

    monkeypatch.setattr(MTurkProvider, "create_hit", real_create)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    assert TurkHit.objects.count() == 6
    ours = list(batch.hits.values_list("provider_hit_id", flat=True))
    assert len(ours) == len(set(ours)) == 6
    assert set(ours) == set(TurkHit.objects.values_list("hit_id", flat=True))
    assert CallLog.objects.filter(error_code="AWS.MechanicalTurk.HitAlreadyExists").count() == 1


def test_a_stalled_launch_is_resumed_by_the_periodic_job(
    localturk, make_dataset, make_batch, monkeypatch
):
    batch = make_batch(make_dataset(n=40), items_per_hit=20, assignments_per_item=3)
    monkeypatch.setattr(MTurkProvider, "create_hit", lambda *a: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        hit_batch_launch(batch)
    monkeypatch.undo()
    HitBatch.objects.filter(pk=batch.pk).update(
        progress={"updated_at": "2000-01-01T00:00:00+00:00"}
    )
    hit_batches_sync()
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN and TurkHit.objects.count() == 2


def test_throttling_and_faults_on_a_third_of_calls_lose_and_duplicate_nothing(
    localturk, make_dataset, make_batch, settings
):
    settings.HITS_PAGE_SIZE = 2
    plan = localturk.faults(
        throttle_rate=1 / 6, fault_rate=1 / 12, fault_after_rate=1 / 12, max_consecutive=2, seed=7
    )
    batch = make_batch(make_dataset(n=60), items_per_hit=10, assignments_per_item=3)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    assert TurkHit.objects.count() == 6
    assert set(batch.hits.values_list("provider_hit_id", flat=True)) == set(
        TurkHit.objects.values_list("hit_id", flat=True)
    )
    work_all_on_localturk(localturk, batch, lost_page_submit=4)
    hit_batch_sync(batch)
    assert_votes_exactly_once(batch)
    hit_batch_approve_submitted(batch)
    assert set(TurkAssignment.objects.values_list("status", flat=True)) == {"Approved"}
    assert TurkAssignment.objects.count() == 18
    hit_batch_sync(batch)
    assert_votes_exactly_once(batch)
    plan.refresh_from_db()
    calls = CallLog.objects.count()
    injected = sum(plan.injected.values())
    assert (
        plan.injected.get("throttle")
        and plan.injected.get("fault")
        and plan.injected.get("fault_after")
    )
    assert injected >= calls // 5, (injected, calls)
    assert FaultPlan.objects.count() == 1
