"""A batch's per-worker HIT limit holds on MTurk too (MTurk has no such cap): the worker's page
for one HIT too many says so and opens nothing, and writes nothing."""

import re

import pytest

from annotation.models import Vote
from hits.models import Assignment, HitBatch
from hits.services import hit_batch_launch


def frame_src(page) -> str:
    return re.search(r'title="HIT" src="([^"]+)"', page.text).group(1).replace("&amp;", "&")


@pytest.mark.django_db(transaction=True)
def test_one_hit_too_many_is_refused_on_the_task_page(localturk, make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=30), items_per_hit=10, assignments_per_item=1, max_hits_per_worker=2
    )
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    hits = list(batch.hits.order_by("number"))
    browser = localturk.browser("AEAGERWORKER")
    for hit in hits[:2]:
        localturk.do_hit(browser, hit.provider_hit_id)
    assert Vote.objects.count() == 20

    page = localturk.accept(browser, hits[2].provider_hit_id)
    third = browser.get(frame_src(page))
    assert third.status == 403
    assert "the most HITs allowed in this batch (2): please return this HIT" in third.text
    assert 'id="task-data"' not in third.text
    assert Assignment.objects.count() == 2 and Vote.objects.count() == 20

    # As the page asks, the worker returns it on MTurk; another worker takes it as usual.
    held = page.url.rstrip("/").rsplit("/", 1)[1]
    assert browser.post(f"/localturk/worker/assignments/{held}/return/", {}).status == 200
    other = localturk.browser("ANOTHERWORKER")
    localturk.do_hit(other, hits[2].provider_hit_id)
    assert Vote.objects.count() == 30
