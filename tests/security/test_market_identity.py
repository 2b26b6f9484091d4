"""Who a marketplace worker is, over real HTTP: the id a recruiting platform puts in the link is
bound to the browser on first arrival, and a link naming another id is refused, not followed.
Malformed ids and invitation codes are a 400 with a message. Nothing refused writes anything."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.http import HttpRequest

from annotation.models import Vote, Worker
from annotation.worker_ids import worker_id_hash
from hits.market_identity import market_session_worker_id
from hits.models import Assignment, HitBatch
from hits.services import hit_batch_launch
from tests.hits import conftest as hits_fixtures
from tests.hits.conftest import Browser

pytestmark = pytest.mark.django_db(transaction=True)
market = hits_fixtures.market
make_dataset = hits_fixtures.make_dataset
make_batch = hits_fixtures.make_batch

FIRST = "5f1e2d3c4b5a69788796a5b4"
OTHER = "60aa11bb22cc33dd44ee55ff"


def cookie_names(browser: Browser) -> str:
    """The worker id the browser's signed marketplace cookie names."""
    value = browser.cookie(settings.MARKET_WORKER_COOKIE)
    assert value
    request = HttpRequest()
    request.COOKIES[settings.MARKET_WORKER_COOKIE] = value
    return market_session_worker_id(request)


def state() -> tuple[int, int, int]:
    return Assignment.objects.count(), Vote.objects.count(), Worker.objects.count()


@pytest.fixture
def study(market, make_dataset, make_batch) -> HitBatch:
    """A marketplace batch recruited on a platform that passes PROLIFIC_PID, two HITs."""
    batch = make_batch(
        make_dataset(n=20),
        provider="market",
        environment="market",
        items_per_hit=10,
        worker_id_param="PROLIFIC_PID",
    )
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    return batch


def landing(batch: HitBatch, **params) -> str:
    return f"/market/b/{batch.uid}/?{urlencode(params)}"


def test_a_different_platform_id_in_a_later_link_is_refused(market, study):
    browser = Browser(market.base)
    first = browser.get(landing(study, PROLIFIC_PID=FIRST, STUDY_ID="s1"))
    assert first.status == 200 and FIRST in first.text
    started = browser.post(f"/market/b/{study.uid}/start/", {})
    assert "/task/" in started.url and started.status == 200
    mine = Assignment.objects.get()
    assert mine.worker.id_hash == worker_id_hash(FIRST)
    assert cookie_names(browser) == FIRST
    before = state()

    # The same participant's link again is fine; another id, in any of the links, is not.
    assert browser.get(landing(study, PROLIFIC_PID=FIRST)).status == 200
    hit = study.hits.exclude(pk=mine.hit_id).get()
    for url in (
        landing(study, PROLIFIC_PID=OTHER, STUDY_ID="s1"),
        f"/market/hits/{hit.pk}/?{urlencode({'PROLIFIC_PID': OTHER})}",
    ):
        page = browser.get(url)
        assert page.status == 403, (url, page.status, page.text[:300])
        assert "already takes part as another participant" in page.text
    refused = browser.post(f"/market/b/{study.uid}/start/?{urlencode({'PROLIFIC_PID': OTHER})}", {})
    assert refused.status == 403 and "another participant" in refused.text
    # The task link with its worker id edited opens nothing either.
    edited = started.url.replace(FIRST, OTHER)
    page = browser.get(edited)
    assert page.status == 403 and "another worker" in page.text
    assert 'id="task-data"' not in page.text

    assert state() == before
    # Compared by the id it names: the same participant's link may sign the cookie anew.
    assert cookie_names(browser) == FIRST, "the browser still names the first id"
    assert not Worker.objects.filter(id_hash=worker_id_hash(OTHER)).exists()
    # And it goes on as the first participant.
    again = browser.post(f"/market/b/{study.uid}/start/", {})
    assert "/task/" in again.url
    assert {a.worker.id_hash for a in Assignment.objects.all()} == {worker_id_hash(FIRST)}


@pytest.mark.parametrize(
    "pid", ["\u00fcber-participant", "ab", "has space", "x" * 65, "<script>", ""]
)
def test_a_malformed_platform_id_is_a_bad_request(market, study, pid):
    browser = Browser(market.base)
    before = state()
    page = browser.get(landing(study, PROLIFIC_PID=pid))
    assert page.status == 400 and "not a valid participant id" in page.text, page.text[:300]
    hit = study.hits.first()
    page = browser.get(f"/market/hits/{hit.pk}/?{urlencode({'PROLIFIC_PID': pid})}")
    assert page.status == 400 and "not a valid participant id" in page.text
    assert browser.cookie("market_worker") is None, "nothing bound"
    assert state() == before


def test_a_non_ascii_or_malformed_invitation_code_is_a_bad_request(
    market, make_dataset, make_batch
):
    batch = make_batch(
        make_dataset(n=10),
        provider="market",
        environment="market",
        items_per_hit=10,
        invite_code="lab-2026",
    )
    hit_batch_launch(batch)
    hit = batch.hits.get()
    browser = market.browser("member-1")
    before = state()
    for code in ("l\u00e4b-2026", "lab 2026", "\u2603", "x" * 65):
        page = browser.get(f"/market/b/{batch.uid}/?{urlencode({'code': code})}")
        assert page.status == 400 and "invitation code is malformed" in page.text, page.text[:300]
        page = browser.get(f"/market/hits/{hit.pk}/?{urlencode({'code': code})}")
        assert page.status == 400 and "invitation code is malformed" in page.text
        for url in (f"/market/b/{batch.uid}/start/", f"/market/hits/{hit.pk}/accept/"):
            page = browser.post(url, {"code": code})
            assert page.status == 400 and "invitation code is malformed" in page.text
    assert browser.get(f"/market/b/{batch.uid}/?code=wrong").status == 403
    assert state() == before
    assert not Assignment.objects.exists()
    assert browser.get(f"/market/b/{batch.uid}/?code=lab-2026").status == 200


def test_a_malformed_typed_id_is_a_bad_request(market, study):
    browser = Browser(market.base)
    browser.get("/market/me/")
    before = state()
    for raw in ("w\u00f6rker-1", "<script>", "a"):
        page = browser.post("/market/me/", {"worker_id": raw, "next": "/market/"})
        assert page.status == 400 and "Use 3 to 64 letters" in page.text
        page = browser.post(f"/market/b/{study.uid}/start/", {"worker_id": raw})
        assert page.status == 400 and "as your id" in page.text
    assert browser.cookie("market_worker") is None
    assert state() == before
