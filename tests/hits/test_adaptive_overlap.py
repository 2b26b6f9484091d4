"""Adaptive overlap over real HTTP, on MTurk (boto3 and the local endpoint) and the built-in
marketplace: items the workers agree on stop at the minimum, items they disagree on get more
places, up to the maximum and within the budget cap."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest

from annotation.models import Vote
from hits.exceptions import LaunchRefused
from hits.models import Hit, HitBatch
from hits.selectors import hit_batch_cost_preview
from hits.services import hit_batch_launch, hit_batch_sync

from .conftest import simulate_worker_submit
from .test_admin_scale import _form

pytestmark = pytest.mark.django_db(transaction=True)
K = 3
N = 12
SPLIT = (10, 11)
# Per worker: the class picked on each item, as an offset from the item's label. All agree on
# items 0-9; on items 10 and 11 the first two disagree.
OFFSETS = {
    "AWORKER1": [0] * N,
    "AWORKER2": [0] * 10 + [1, 2],
    "AWORKER3": [0] * 10 + [0, 1],
}


class Side:
    """Where workers find and do the HITs: the local MTurk worker site, or our marketplace."""

    def __init__(self, kind: str, localturk, market) -> None:
        self.kind = kind
        self.localturk = localturk
        self.market = market

    def do_available(self, batch: HitBatch, worker: str) -> list[int]:
        """The worker does every HIT open to them; the item indices they voted on."""
        index = dict(batch.dataset.items.values_list("id", "index"))
        label = dict(batch.dataset.items.values_list("id", "label"))
        done = []
        if self.kind == "mturk":
            browser = self.localturk.browser(worker)
            hit_ids = self.localturk.available(browser)
            hits = [Hit.objects.get(provider_hit_id=h) for h in hit_ids]
        else:
            browser = self.market.browser(worker)
            hits = list(batch.hits.order_by("number"))
        for hit in hits:
            if self.kind == "mturk":
                page = self.localturk.accept(browser, hit.provider_hit_id)
                if "/worker/assignments/" not in page.url:
                    continue
                src = re.search(r'title="HIT" src="([^"]+)"', page.text).group(1)
                url = src.replace("&amp;", "&")
            else:
                page = self.market.accept(browser, hit)
                if page.status != 200 or "/task/" not in page.url:
                    continue
                url = page.url
            answers = [
                {"item": i, "answer": (label[i] + OFFSETS[worker][index[i]]) % K} for i in hit.items
            ]
            simulate_worker_submit(browser, url, answers)
            done += [index[i] for i in hit.items]
        if self.kind == "mturk":
            hit_batch_sync(batch)  # the periodic job: MTurk confirms the work
        return sorted(done)


@pytest.fixture(params=["mturk", "market"])
def side(request, localturk, market) -> Side:
    return Side(request.param, localturk, market)


@pytest.fixture
def adaptive_batch(make_dataset, make_batch):
    def make(provider: str, **fields) -> HitBatch:
        batch = make_batch(
            make_dataset(n=N, k=K),
            name="classify, adaptive",
            kind="label",
            provider=provider,
            environment="sandbox" if provider == "mturk" else "market",
            items_per_hit=1,
            assignments_per_item=2,
            min_votes=2,
            max_votes=3,
            confidence_target=0.9,
            **fields,
        )
        hit_batch_launch(batch)
        batch.refresh_from_db()
        assert batch.status == HitBatch.Status.OPEN
        return batch

    return make


def votes_per_item(batch: HitBatch) -> dict[int, int]:
    index = dict(batch.dataset.items.values_list("id", "index"))
    items = Vote.objects.filter(assignment__hit__batch=batch).values_list("item_id", flat=True)
    return {index[i]: n for i, n in Counter(items).items()}


def places(batch: HitBatch) -> dict[int, int]:
    """Places per item (one item per HIT), leaving out items at the starting two."""
    index = dict(batch.dataset.items.values_list("id", "index"))
    return {
        index[h.items[0]]: h.max_assignments for h in batch.hits.all() if h.max_assignments != 2
    }


def test_disagreement_gets_more_votes_and_agreement_does_not(side, adaptive_batch):
    batch = adaptive_batch(side.kind)
    assert side.do_available(batch, "AWORKER1") == list(range(N))
    assert places(batch) == {}  # the round is not complete yet
    assert side.do_available(batch, "AWORKER2") == list(range(N))
    # Two votes each: the split items get a third place, the agreed ones none.
    assert places(batch) == {10: 3, 11: 3}
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    assert side.do_available(batch, "AWORKER3") == list(SPLIT)
    # The maximum is three votes: nothing more is asked, and the batch is complete.
    assert places(batch) == {10: 3, 11: 3}
    assert votes_per_item(batch) == {i: 3 if i in SPLIT else 2 for i in range(N)}
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE
    if side.kind == "mturk":
        # The places were added at MTurk itself (CreateAdditionalAssignmentsForHIT).
        from hits.localturk.models import Hit as TurkHit

        turk = Counter(TurkHit.objects.values_list("max_assignments", flat=True))
        assert turk == {2: 10, 3: 2}


def test_extra_votes_stay_within_the_budget_cap(market, adaptive_batch):
    # 12 HITs x 2 places x $0.05 = $1.20 planned; the cap leaves room for one more place.
    batch = adaptive_batch("market", budget_cap=Decimal("1.29"))
    side = Side("market", None, market)
    side.do_available(batch, "AWORKER1")
    side.do_available(batch, "AWORKER2")
    extra = places(batch)
    assert len(extra) == 1 and set(extra) <= set(SPLIT) and set(extra.values()) == {3}
    assert hit_batch_cost_preview(batch, balance=None).total == Decimal("1.25")
    assert side.do_available(batch, "AWORKER3") == sorted(extra)
    assert places(batch) == extra
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE


def test_a_refused_extra_place_leaves_the_round_open_until_a_sync_gets_it(
    localturk, adaptive_batch
):
    batch = adaptive_batch("mturk")
    side = Side("mturk", localturk, None)
    localturk.faults(
        fault_rate=1.0, operations=["CreateAdditionalAssignmentsForHIT"], max_consecutive=1000
    )
    side.do_available(batch, "AWORKER1")
    side.do_available(batch, "AWORKER2")
    batch.refresh_from_db()
    # MTurk refused the extra places: the batch is not complete, and its page says why.
    assert places(batch) == {} and batch.status == HitBatch.Status.OPEN
    assert batch.error.startswith("adaptive overlap: MTurk create_additional_assignments_for_hit")
    localturk.faults(fault_rate=0.0)
    hit_batch_sync(batch)
    assert places(batch) == {10: 3, 11: 3}
    batch.refresh_from_db()
    assert batch.error == ""
    assert side.do_available(batch, "AWORKER3") == list(SPLIT)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE


def test_adaptive_settings_are_checked_at_launch(make_dataset, make_batch):
    ds = make_dataset(n=4, k=K)
    verify = make_batch(ds, min_votes=2, max_votes=4, confidence_target=0.9)
    with pytest.raises(LaunchRefused, match="adaptive overlap needs class votes"):
        hit_batch_launch(verify)
    half = make_batch(ds, kind="label", min_votes=2, provider="market", environment="market")
    with pytest.raises(LaunchRefused, match="all three"):
        hit_batch_launch(half)
    above = make_batch(
        ds,
        kind="label",
        provider="market",
        environment="market",
        assignments_per_item=5,
        min_votes=2,
        max_votes=4,
        confidence_target=0.9,
    )
    with pytest.raises(LaunchRefused, match=r"assignments per item \(5\) is above max votes"):
        hit_batch_launch(above)
    assert not Hit.objects.exists()


def test_the_admin_form_refuses_adaptive_settings_that_cannot_run(client, admin_user, make_dataset):
    ds = make_dataset(n=4, k=K)
    client.force_login(admin_user)
    form = _form(ds, kind="label", item_selection="all", min_votes="3", max_votes="2")
    form.update(confidence_target="0.9", loop_curation="[1, 2]")
    page = client.post("/admin/hits/hitbatch/add/", form)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Adaptive overlap: max votes (2) must be at least min votes (3)." in html
    assert "Give the curation options as a JSON object" in html
    assert not HitBatch.objects.exists()
