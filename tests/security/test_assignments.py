"""Forged assignments over real HTTP: an assignment exists only when its marketplace handed it out.

For the built-in marketplace only its accept creates one, and the task page wants the worker its
signed cookie names; for MTurk (through the stand-in, over boto3) a new id is checked with the
provider first. Each forgery, on a live, draft, expired or full batch, is refused with a page that
names the problem, and leaves assignments, votes and workers as they were.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from annotation.models import Vote, Worker
from hits.models import Assignment, Hit, HitBatch
from hits.services import hit_batch_expire, hit_batch_launch, hit_batch_plan
from tests.hits import conftest as hits_fixtures
from tests.hits.conftest import Browser, hit_answers

# The hits fixtures (the stand-in and the marketplace on a live server, datasets, batches).
aws_env = hits_fixtures.aws_env
no_real_mturk = hits_fixtures.no_real_mturk
localturk = hits_fixtures.localturk
market = hits_fixtures.market
make_dataset = hits_fixtures.make_dataset
make_batch = hits_fixtures.make_batch

pytestmark = pytest.mark.django_db(transaction=True)
FORGED = "3FORGEDASSIGNMENT0000000000001"


def state() -> tuple[int, int, int]:
    return Assignment.objects.count(), Vote.objects.count(), Worker.objects.count()


def task_link(hit: Hit, assignment_id: str, worker_id: str, submit_to: str = "") -> str:
    params = {"assignmentId": assignment_id, "workerId": worker_id}
    if hit.provider_hit_id:
        params["hitId"] = hit.provider_hit_id
    if submit_to:
        params["turkSubmitTo"] = submit_to
    return f"/task/{hit.pk}/?{urlencode(params)}"


def assert_refused(page, *words: str) -> None:
    assert page.status == 403, (page.status, page.text[:300])
    assert 'id="task-data"' not in page.text, "no working page, no token"
    for word in words:
        assert word in page.text, (word, page.text[:500])


def market_batch(make_dataset, make_batch, **fields) -> HitBatch:
    defaults = {"provider": "market", "environment": "market", "items_per_hit": 10}
    batch = make_batch(make_dataset(n=10), **{**defaults, **fields})
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    return batch


def mturk_batch(make_dataset, make_batch, **fields) -> HitBatch:
    batch = make_batch(make_dataset(n=10), items_per_hit=10, **fields)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    return batch


# --- the built-in marketplace --------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True])
def test_market_forged_assignment_on_a_live_batch_is_refused(
    market, make_dataset, make_batch, signed_in
):
    batch = market_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    browser = market.browser("forger-1") if signed_in else Browser(market.base)
    before = state()
    for aid in (FORGED, "LA" + "0" * 30):
        page = browser.get(task_link(hit, aid, "forger-1", f"{market.base}/market"))
        assert_refused(page, "not handed out")
    # Its externalSubmit takes nothing for an assignment it never handed out.
    answers = json.dumps(hit_answers(hit))
    done = browser.post(
        "/market/mturk/externalSubmit", {"assignmentId": FORGED, "answers": answers}
    )
    assert done.status == 400 and "no such assignment" in done.text
    assert state() == before


def test_market_forged_assignment_on_a_draft_batch_is_refused(market, make_dataset, make_batch):
    batch = make_batch(make_dataset(n=10), provider="market", environment="market")
    hit_batch_plan(batch)
    hit = batch.hits.first()
    assert batch.status == HitBatch.Status.DRAFT and hit.provider_hit_id == ""
    browser = market.browser("early-bird")
    before = state()
    # A draft's HIT needs no hitId: the link alone must not be enough.
    assert_refused(browser.get(task_link(hit, FORGED, "early-bird")), "not handed out")
    refused = browser.post(f"/market/hits/{hit.pk}/accept/", {})
    assert refused.status == 409 and "not open" in refused.text
    assert state()[:2] == before[:2]
    assert not Assignment.objects.exists()


def test_market_forged_assignment_on_an_expired_batch_is_refused(market, make_dataset, make_batch):
    batch = market_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    hit_batch_expire(batch)
    browser = market.browser("latecomer")
    before = state()
    assert_refused(browser.get(task_link(hit, FORGED, "latecomer")), "not handed out")
    refused = browser.post(f"/market/hits/{hit.pk}/accept/", {})
    assert refused.status == 409 and "not open" in refused.text
    assert state() == before


def test_market_forged_assignment_on_a_full_hit_is_refused(market, make_dataset, make_batch):
    batch = market_batch(make_dataset, make_batch, assignments_per_item=1)
    hit = batch.hits.get()
    market.do_hit(market.browser("first-one"), hit)
    browser = market.browser("second-one")
    before = state()
    assert_refused(browser.get(task_link(hit, FORGED, "second-one")), "not handed out")
    refused = browser.post(f"/market/hits/{hit.pk}/accept/", {})
    assert refused.status == 409 and "taken" in refused.text
    assert state() == before


def test_market_assignment_of_another_worker_is_refused(market, make_dataset, make_batch):
    """The link of someone else's assignment (id and worker id copied) opens nothing, and its
    answers cannot be posted for them."""
    batch = market_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    owner = market.browser("owner-7")
    link = market.accept(owner, hit).url
    a = Assignment.objects.get()
    thief = market.browser("thief-7")
    before = state()
    assert_refused(thief.get(link), "another worker")
    anonymous = Browser(market.base)
    assert_refused(anonymous.get(link), "another worker")
    answers = json.dumps(hit_answers(hit))
    stolen = thief.post(
        "/market/mturk/externalSubmit",
        {"assignmentId": a.provider_assignment_id, "answers": answers},
    )
    assert stolen.status == 400 and "another worker" in stolen.text
    assert state() == before
    a.refresh_from_db()
    assert a.status == "Accepted" and not a.votes.exists()
    # The owner still does their own work.
    assert owner.get(link).status == 200


# --- MTurk, through the stand-in -----------------------------------------------------------


def test_mturk_forged_assignment_on_a_live_batch_is_refused(localturk, make_dataset, make_batch):
    batch = mturk_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    browser = Browser(localturk.base)
    before = state()
    page = browser.get(task_link(hit, FORGED, "AFORGER", f"{localturk.base}/localturk"))
    assert_refused(page, "Mechanical Turk does not know this assignment")
    assert state() == before

    # A real worker at work holds the one place MTurk has taken: a forged id gets none.
    worker = localturk.browser("AGENUINE")
    page = localturk.accept(worker, hit.provider_hit_id)
    src = re.search(r'title="HIT" src="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert worker.get(src).status == 200
    before = state()
    page = browser.get(task_link(hit, FORGED, "AFORGER", f"{localturk.base}/localturk"))
    assert_refused(page, "Mechanical Turk does not know this assignment")
    # Nor does the genuine id with another worker id.
    genuine = Assignment.objects.get().provider_assignment_id
    assert_refused(browser.get(task_link(hit, genuine, "AFORGER")), "another worker")
    assert state() == before


def test_mturk_submitted_assignment_of_another_worker_is_refused(
    localturk, make_dataset, make_batch
):
    """An id MTurk knows (submitted there, never seen here) under another worker opens nothing:
    the provider's record must name this HIT and this worker."""
    batch = mturk_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    worker = localturk.browser("AOWNER")
    page = localturk.accept(worker, hit.provider_hit_id)
    aid = page.url.rstrip("/").rsplit("/", 1)[1]
    answers = json.dumps(hit_answers(hit))
    worker.post(
        "/localturk/mturk/externalSubmit", {"assignmentId": aid, "answers": answers}, csrf=False
    )
    before = state()
    page = Browser(localturk.base).get(task_link(hit, aid, "ATHIEF"))
    assert_refused(page, "Mechanical Turk does not know this assignment")
    assert state() == before


def test_mturk_forged_assignment_on_a_draft_batch_is_refused(localturk, make_dataset, make_batch):
    batch = make_batch(make_dataset(n=10), items_per_hit=10)
    hit_batch_plan(batch)
    hit = batch.hits.get()
    assert batch.status == HitBatch.Status.DRAFT and hit.provider_hit_id == ""
    before = state()
    assert_refused(Browser(localturk.base).get(task_link(hit, FORGED, "AFORGER")), "not open")
    assert state() == before


def test_mturk_forged_assignment_on_an_expired_batch_is_refused(
    localturk, make_dataset, make_batch
):
    batch = mturk_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    hit_batch_expire(batch)
    before = state()
    page = Browser(localturk.base).get(task_link(hit, FORGED, "AFORGER"))
    assert_refused(page, "not open")
    assert state() == before


def test_mturk_forged_assignment_on_a_full_hit_is_refused(localturk, make_dataset, make_batch):
    batch = mturk_batch(make_dataset, make_batch, assignments_per_item=1)
    hit = batch.hits.get()
    localturk.do_hit(localturk.browser("AFIRST"), hit.provider_hit_id)
    before = state()
    page = Browser(localturk.base).get(task_link(hit, FORGED, "AFORGER"))
    assert_refused(page, "Mechanical Turk does not know this assignment")
    assert state() == before


def test_malformed_assignment_and_worker_ids_are_a_bad_request(market, make_dataset, make_batch):
    batch = market_batch(make_dataset, make_batch)
    hit = batch.hits.get()
    browser = Browser(market.base)
    before = state()
    for aid, wid in [("x" * 65, "worker-1"), ("A\u00efD", "worker-1"), (FORGED, "w\u00f6rker")]:
        page = browser.get(task_link(hit, aid, wid))
        assert page.status == 400 and "malformed" in page.text, page.text[:300]
    assert state() == before
