"""Queries compiled once and run with new values give what the ORM gives, and image URLs built
without the resolver are the ones it builds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix

from annotation.images import _digest, rendition_url
from annotation.models import Dataset, Item
from annotation.prepared import Prepared

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    ds = Dataset.objects.create(name="prep", class_names=["a", "b", "c"])
    Item.objects.bulk_create(
        Item(
            dataset=ds,
            index=i,
            name=f"{i}.png",
            image=f"prep/{i}.png",
            label=i % 3,
            width=8,
            height=8,
        )
        for i in range(12)
    )
    return list(Item.objects.filter(dataset=ds).order_by("index"))


def test_results_match_the_orm_for_each_call_and_each_list_length(items):
    by_ids = Prepared(Item, lambda ids: Item.objects.filter(pk__in=ids).order_by("index"))
    for ids in ([items[0].pk], [i.pk for i in items[3:7]], [items[1].pk], [i.pk for i in items]):
        got = by_ids(ids)
        want = list(Item.objects.filter(pk__in=ids).order_by("index"))
        assert [(i.pk, i.label, i.image.name) for i in got] == [
            (i.pk, i.label, i.image.name) for i in want
        ]
    assert by_ids([10**9]) == []


def test_constants_of_the_query_stay_and_arguments_go_where_they_belong(items):
    # The label filter is the query's own constant; the two arguments come in either order.
    pick = Prepared(
        Item,
        lambda index, name: Item.objects.filter(dataset__name=name, index__gte=index, label=1),
    )
    got = pick(5, "prep")
    assert sorted(i.index for i in got) == [7, 10]
    assert [i.index for i in pick(8, "prep")] == [10]
    assert pick(0, "other") == []


def test_related_rows_come_with_one_query(items):
    with_dataset = Prepared(Item, lambda pk: Item.objects.select_related("dataset").filter(pk=pk))
    with_dataset(items[0].pk)  # compiled here
    with CaptureQueriesContext(connection) as queries:
        (got,) = with_dataset(items[4].pk)
        assert got.index == 4 and got.dataset.name == "prep"
    assert len(queries) == 1


def test_a_value_of_another_type_runs_through_the_orm(items):
    by_ids = Prepared(Item, lambda ids: Item.objects.filter(pk__in=ids), max_list=3)
    assert [i.pk for i in by_ids({items[0].pk})] == [items[0].pk]  # a set
    assert len(by_ids([i.pk for i in items])) == 12  # longer than max_list


@pytest.mark.parametrize("prefix", ["/", "/annotate/"])
def test_rendition_urls_are_the_resolvers(items, prefix):
    set_script_prefix(prefix)
    try:
        for size in (64, 200):
            want = reverse(
                "item-image",
                kwargs={"item_id": items[3].pk, "size": size, "digest": _digest(items[3], size)},
            )
            assert rendition_url(items[3], size) == want
            assert want.startswith(prefix)
    finally:
        set_script_prefix("/")


def test_rendition_digests_are_djangos_salted_hmac(items, settings):
    """The URL key is derived once per secret: the digests must stay the ones salted_hmac
    gives, or every rendition already on disk and every URL handed out would change."""
    from django.utils.crypto import salted_hmac

    for item, size, secret in [(items[0], 200, None), (items[5], 64, "an-older-secret-key")]:
        value = f"{item.pk}:{size}:{item.image.name}"
        want = salted_hmac(
            "annotation.images.rendition", value, secret=secret, algorithm="sha256"
        ).hexdigest()[:16]
        assert _digest(item, size, secret) == want
