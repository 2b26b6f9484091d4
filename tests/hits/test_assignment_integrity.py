"""Assignments that only their marketplace hands out: taking a HIT again after returning it (on
the marketplace and on MTurk through the stand-in), work held unconfirmed while MTurk cannot be
reached and settled by sync, the provider's record of one assignment, and messages sent only to
approved workers, 100 at a time, with every failed chunk named."""

import json
import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.aggregation_services import aggregation_run_start
from annotation.exceptions import AggregationError
from annotation.models import Vote, Worker
from annotation.worker_ids import worker_id_hash
from hits.exceptions import ProviderError
from hits.localturk.models import Assignment as TurkAssignment
from hits.localturk.models import Hit as TurkHit
from hits.localturk.models import Notification, SimWorker
from hits.models import Assignment, HitBatch, WorkerNotice
from hits.providers import provider_for
from hits.services import (
    hit_batch_launch,
    hit_batch_notify,
    hit_batch_sync,
    market_accept,
    market_return,
)
from hits.submissions import assignment_submit

from .conftest import hit_answers


def counted_votes():
    """The votes aggregation and payment may use: none from unconfirmed work."""
    return Vote.objects.counted()


def frame_src(page) -> str:
    return re.search(r'title="HIT" src="([^"]+)"', page.text).group(1).replace("&amp;", "&")


def launched(make_dataset, make_batch, **fields) -> HitBatch:
    batch = make_batch(make_dataset(n=10), items_per_hit=10, **fields)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    return batch


# --- taking a HIT again ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_market_worker_takes_a_hit_again_after_returning_or_abandoning_it(make_dataset, make_batch):
    batch = launched(make_dataset, make_batch, provider="market", environment="market")
    hit = batch.hits.get()
    first = market_accept(hit, "again-1")
    market_return(first)
    second = market_accept(hit, "again-1")
    assert second.provider_assignment_id != first.provider_assignment_id
    # Let the second run out of time: the marketplace abandons it and a third may follow.
    Assignment.objects.filter(pk=second.pk).update(accepted_at=timezone.now() - timedelta(days=1))
    third = market_accept(hit, "again-1")
    statuses = dict(Assignment.objects.values_list("provider_assignment_id", "status"))
    assert statuses == {
        first.provider_assignment_id: "Returned",
        second.provider_assignment_id: "Abandoned",
        third.provider_assignment_id: "Accepted",
    }
    # One live assignment per worker and HIT, held by the database itself.
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            hit=hit, provider_assignment_id="LADUPLICATE", worker=third.worker
        )
    assignment_submit(third, hit_answers(hit))
    assert Vote.objects.filter(assignment=third).count() == 10


@pytest.mark.django_db(transaction=True)
def test_mturk_worker_returns_a_hit_and_takes_it_again(localturk, make_dataset, make_batch):
    """On the stand-in's worker site: accept, open our page, return; accept again (a new
    assignment id), do the HIT; sync confirms the second, through boto3."""
    batch = launched(make_dataset, make_batch, assignments_per_item=1)
    hit = batch.hits.get()
    browser = localturk.browser("ARETURNER")
    page = localturk.accept(browser, hit.provider_hit_id)
    first_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert browser.get(frame_src(page)).status == 200
    back = browser.post(f"/localturk/worker/assignments/{first_id}/return/", {})
    assert back.status == 200

    data = localturk.do_hit(browser, hit.provider_hit_id)
    second_id = data["assignmentId"]
    assert second_id != first_id
    statuses = dict(Assignment.objects.values_list("provider_assignment_id", "status"))
    assert statuses == {first_id: "Returned", second_id: "Submitted"}
    assert Vote.objects.filter(assignment__provider_assignment_id=second_id).count() == 10

    hit_batch_sync(batch)
    second = Assignment.objects.get(provider_assignment_id=second_id)
    assert second.confirmed and not second.provider_missing
    assert counted_votes().count() == 10
    listed = localturk.client().list_assignments_for_hit(HITId=hit.provider_hit_id)
    assert [(a["AssignmentId"], a["AssignmentStatus"]) for a in listed["Assignments"]] == [
        (second_id, "Submitted")
    ]


# --- MTurk out of reach: work held unconfirmed -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_work_taken_while_mturk_is_unreachable_counts_once_sync_finds_it(
    localturk, make_dataset, make_batch, settings, client, django_user_model
):
    batch = launched(make_dataset, make_batch, assignments_per_item=2)
    hit = batch.hits.get()
    genuine = localturk.browser("AGENUINE")
    page = localturk.accept(genuine, hit.provider_hit_id)
    src = frame_src(page)
    reachable = settings.MTURK_ENDPOINTS
    settings.MTURK_ENDPOINTS = {"sandbox": "http://127.0.0.1:9/down/", "live": reachable["live"]}
    settings.HITS_RETRY_ATTEMPTS = 1

    # The genuine worker's page opens; so does a forged one: neither can be checked now.
    data = genuine.get(src).task_data()
    status, out = genuine.post_json(
        data["submitUrl"], {"token": data["token"], "answers": hit_answers(hit)}
    )
    assert status == 200 and out["ok"]
    forged = src.replace(data["assignmentId"], "3FORGEDWHILEDOWN0000000000001").replace(
        "AGENUINE", "AFORGER"
    )
    fake = localturk.browser("AFORGER").get(forged).task_data()
    status, out = genuine.post_json(
        fake["submitUrl"], {"token": fake["token"], "answers": hit_answers(hit, 1)}
    )
    assert status == 200
    assert set(Assignment.objects.values_list("confirmed", flat=True)) == {False}
    assert Vote.objects.count() == 20 and counted_votes().count() == 0
    # Aggregation sees none of it yet: there is nothing of this kind to aggregate.
    with pytest.raises(AggregationError, match="no verify votes"):
        aggregation_run_start(batch.dataset, kind="verify")

    # MTurk is back; the genuine worker's submit reaches it too; sync sorts the two apart.
    settings.MTURK_ENDPOINTS = reachable
    genuine.post(
        data["externalSubmit"],
        {"assignmentId": data["assignmentId"], "answers": json.dumps(hit_answers(hit))},
        csrf=False,
    )
    result = hit_batch_sync(batch)
    assert result.missing == 1
    real = Assignment.objects.get(provider_assignment_id=data["assignmentId"])
    fake_row = Assignment.objects.get(provider_assignment_id=fake["assignmentId"])
    assert real.confirmed and not real.provider_missing
    assert not fake_row.confirmed and fake_row.provider_missing
    assert set(counted_votes().values_list("assignment_id", flat=True)) == {real.pk}
    # Votes imported with a dataset (no assignment) are not touched by the filter.
    item = batch.dataset.items.first()
    Vote.objects.create(item=item, worker=real.worker, kind="verify", answer=0, source="imported")
    assert counted_votes().filter(assignment__isnull=True).count() == 1

    # The admin shows which work the provider does not know.
    admin = django_user_model.objects.create_superuser("root", "root@localhost", "pw-tests-1")
    client.force_login(admin)
    listing = client.get("/admin/hits/assignment/?provider_missing__exact=1").content.decode()
    assert fake["assignmentId"] in listing and data["assignmentId"] not in listing
    assert "missing at provider" in listing


@pytest.mark.django_db(transaction=True)
def test_sync_flags_work_submitted_here_that_mturk_never_got(localturk, make_dataset, make_batch):
    """The page stored the answers, then the worker returned the HIT on MTurk instead of
    submitting it there: MTurk has no such work, so it is flagged and counts for nothing."""
    batch = launched(make_dataset, make_batch, assignments_per_item=2)
    hit = batch.hits.get()
    browser = localturk.browser("AQUITTER")
    page = localturk.accept(browser, hit.provider_hit_id)
    data = browser.get(frame_src(page)).task_data()
    status, _ = browser.post_json(
        data["submitUrl"], {"token": data["token"], "answers": hit_answers(hit)}
    )
    assert status == 200 and Vote.objects.count() == 10
    browser.post(f"/localturk/worker/assignments/{data['assignmentId']}/return/", {})
    localturk.do_hit(localturk.browser("AFINISHER"), hit.provider_hit_id)

    result = hit_batch_sync(batch)
    assert result.missing == 1
    quitter = Assignment.objects.get(provider_assignment_id=data["assignmentId"])
    assert quitter.status == "Submitted" and quitter.provider_missing and not quitter.confirmed
    finisher = Assignment.objects.exclude(pk=quitter.pk).get()
    assert finisher.confirmed and not finisher.provider_missing
    assert set(counted_votes().values_list("assignment_id", flat=True)) == {finisher.pk}
    assert hit_batch_sync(batch).missing == 1, "flagged again while MTurk still lacks it"


# --- the provider's record of one assignment ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["mturk", "market"])
def test_get_assignment_names_the_hit_and_worker(kind, localturk, market, make_dataset, make_batch):
    env = {"mturk": "sandbox", "market": "market"}[kind]
    batch = launched(make_dataset, make_batch, provider=kind, environment=env)
    hit = batch.hits.get()
    if kind == "mturk":
        data = localturk.do_hit(localturk.browser("ARECORDED"), hit.provider_hit_id)
    else:
        data = market.do_hit(market.browser("ARECORDED"), hit)
    provider = provider_for(batch)
    record = provider.get_assignment(data["assignmentId"])
    assert record is not None and record.hit_id == hit.provider_hit_id
    assert record.status == "Submitted"
    ours = Assignment.objects.get()
    if kind == "mturk":
        assert worker_id_hash(record.worker_id) == ours.worker.id_hash
    else:
        assert record.worker_pk == ours.worker_id
    assert provider.get_assignment("3NOSUCHASSIGNMENT000000000001") is None


# --- messages to approved workers ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_notify_reaches_approved_workers_in_chunks_of_100_and_names_a_failed_chunk(
    localturk, make_dataset, make_batch
):
    batch = launched(make_dataset, make_batch, assignments_per_item=1)
    hit = batch.hits.get()
    turk_hit = TurkHit.objects.get(hit_id=hit.provider_hit_id)
    now = timezone.now()
    raw = [f"AWORKER{n:04d}" for n in range(201)]
    workers = [Worker.objects.create(provider="mturk", id_hash=worker_id_hash(r)) for r in raw]
    sims = SimWorker.objects.bulk_create(SimWorker(worker_id=r) for r in raw)
    # Workers 100-199 (the second chunk) did work MTurk no longer has: their chunk fails.
    lost = set(range(100, 200))
    TurkAssignment.objects.bulk_create(
        TurkAssignment(
            assignment_id=f"3A{n:028d}",
            hit=turk_hit,
            worker=sims[n],
            status="Approved",
            accept_time=now,
            deadline=now,
            submit_time=now,
        )
        for n in range(201)
        if n not in lost
    )
    Assignment.objects.bulk_create(
        Assignment(
            hit=hit,
            provider_assignment_id=f"3A{n:028d}",
            worker=workers[n],
            status="Approved",
            accepted_at=now,
            submitted_at=now,
        )
        for n in range(201)
    )
    # Work not approved is not messaged.
    for n, status in ((1, "Submitted"), (2, "Rejected")):
        w = Worker.objects.create(provider="mturk", id_hash=worker_id_hash(f"AOTHER{n}"))
        Assignment.objects.create(
            hit=hit, provider_assignment_id=f"3B{n:028d}", worker=w, status=status
        )

    with pytest.raises(ProviderError) as refused:
        hit_batch_notify(batch, subject="Thanks", message="A new batch opens on Monday.")
    assert "chunk 2 of 3 (100 worker(s) not messaged)" in str(refused.value)
    assert "chunk 1 " not in str(refused.value) and "chunk 3 " not in str(refused.value)
    messaged = set(Notification.objects.values_list("worker__worker_id", flat=True))
    assert messaged == {raw[n] for n in range(201) if n not in lost}
    assert WorkerNotice.objects.count() == 101
    assert not WorkerNotice.objects.filter(worker__in=[workers[n] for n in lost]).exists()
    batch.refresh_from_db()
    assert "chunk 2 of 3" in batch.progress["error"] and batch.progress["done"] == 101
