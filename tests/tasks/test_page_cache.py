"""A HIT's page is built once per process and served to each of its workers: what each worker
gets must be exactly what a fresh render would give them, and nothing of another worker's."""

import re

import pytest
from django.test import Client

from annotation.models import Item
from hits import page_cache

pytestmark = pytest.mark.django_db


def token_of(html: str) -> str:
    return re.search(r'"token": "([^"]+)"', html).group(1)


def untimed(html: str) -> str:
    """The page with its token's signing time left out (a token is signed on each request)."""
    return re.sub(r'("token": "[^"]+:)[^":]+:([^":]+")', r"\1T:S", html)


LINKS: dict[str, str] = {}


def page(worker: str, link: str) -> str:
    client = Client()
    client.post("/market/me/", {"worker_id": worker})
    resp = client.get(link)
    assert resp.status_code == 200
    return resp.content.decode()


def working_html(hit, worker: str) -> str:
    """The worker's working page, opened from their own browser after the marketplace's accept."""
    client = Client()
    client.post("/market/me/", {"worker_id": worker})
    resp = client.post(f"/market/hits/{hit.pk}/accept/")
    assert resp.status_code == 302, resp.content[:300]
    LINKS[worker] = resp["Location"]
    return page(worker, LINKS[worker])


def reopened_html(hit, worker: str) -> str:
    """The same worker's page again, from the link the accept gave them."""
    return page(worker, LINKS[worker])


def preview_html(hit) -> str:
    resp = Client().get(f"/task/{hit.pk}/?hitId={hit.provider_hit_id}")
    assert resp.status_code == 200
    return resp.content.decode()


@pytest.mark.parametrize("kind", ["verify", "label", "select"])
def test_kept_page_is_byte_for_byte_a_fresh_render(shapes, td, settings, kind):
    hit = td.make_hit(shapes, kind)
    first_preview = preview_html(hit)
    first = working_html(hit, "WORKERONE")
    kept_preview = preview_html(hit)
    kept = reopened_html(hit, "WORKERONE")
    other = working_html(hit, "WORKERTWO")
    # Both pages were kept (a template the stand-ins cannot cut would be rendered every time).
    assert {(key[0], key[2]) for key in page_cache._PAGES._entries} == {
        (hit.pk, True),
        (hit.pk, False),
    }

    settings.TASK_PAGE_CACHE = False
    assert untimed(kept) == untimed(reopened_html(hit, "WORKERONE")) == untimed(first)
    assert kept_preview == preview_html(hit) == first_preview
    assert untimed(other) == untimed(reopened_html(hit, "WORKERTWO"))
    # Each worker has their own token, assignment and Return link, none of the other's.
    assert token_of(first) != token_of(other)
    assert token_of(first) not in other
    links = [re.search(r'href="(/market/assignments/[^"]+)"', h).group(1) for h in (first, other)]
    assert links[0] != links[1] and links[0] not in other


def test_what_the_request_reads_rebuilds_the_page_at_once(shapes, td):
    hit = td.make_hit(shapes, "verify", gold_rate=0)
    label = hit.items[0]["label"]
    question = re.compile(r'labeled as <strong class="label">([^<]+)</strong>')
    assert question.findall(working_html(hit, "WORKERONE"))[0] == shapes.class_names[label]
    names = list(shapes.class_names)
    names[label] = "Roundel"
    shapes.class_names = names
    shapes.save(update_fields=["class_names"])
    assert question.findall(working_html(hit, "WORKERTWO"))[0] == "Roundel"

    hit.batch.assignment_duration_seconds = 120
    hit.batch.save(update_fields=["assignment_duration_seconds"])
    assert "You have 2 minutes for this HIT" in working_html(hit, "WORKERTHREE")


def test_an_item_row_change_shows_within_the_time_a_page_is_kept(shapes, td, monkeypatch):
    """A verify HIT of bare item ids shows each item's current label: a label changed by an
    aggregation reaches the page once the kept page expires (TTL_SECONDS), not before."""
    hit = td.make_hit(shapes, "verify", gold_rate=0)
    hit.items = [entry["item"] for entry in hit.items]
    hit.save(update_fields=["items"])
    first = Item.objects.get(pk=hit.items[0])
    before = shapes.class_names[first.label]
    after = shapes.class_names[(first.label + 1) % shapes.num_classes]
    question = re.compile(r'labeled as <strong class="label">([^<]+)</strong>')
    assert question.findall(working_html(hit, "WORKERONE"))[0] == before

    first.label = (first.label + 1) % shapes.num_classes
    first.save(update_fields=["label"])
    assert question.findall(working_html(hit, "WORKERTWO"))[0] == before

    clock = page_cache.time.monotonic() + page_cache.TTL_SECONDS + 1
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: clock)
    assert question.findall(working_html(hit, "WORKERTHREE"))[0] == after


def test_pages_of_different_hits_are_kept_apart(shapes, td):
    one = td.make_hit(shapes, "verify", gold_rate=0, seed=1)
    two = td.make_hit(shapes, "verify", gold_rate=0, seed=2, provider_hit_id="PHIT-2")
    assert one.items != two.items
    for hit in (one, two, one, two):
        html = working_html(hit, f"WORKER{hit.pk}X{len(page_cache._PAGES._entries)}")
        shown = [int(i) for i in re.findall(r'data-item="(\d+)"', html)]
        assert shown == [entry["item"] for entry in hit.items]


def test_kept_pages_stay_within_their_bytes():
    pages = page_cache._Pages(max_bytes=100)
    pages.put(("a",), (), 10.0, ("x" * 40, "y" * 10))
    pages.put(("b",), (), 10.0, ("z" * 40,))
    assert pages.get(("a",), (), 0.0) is not None  # now the most recently used
    pages.put(("c",), (), 10.0, ("w" * 40,))
    assert pages.get(("b",), (), 0.0) is None
    assert pages.get(("a",), (), 0.0) and pages.get(("c",), (), 0.0)
    assert pages.get(("a",), ("other stamp",), 0.0) is None
    assert pages.get(("c",), (), 10.0) is None  # expired
    pages.put(("big",), (), 10.0, ("v" * 101,))
    assert pages.get(("big",), (), 0.0) is None
