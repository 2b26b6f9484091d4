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


def test_postgresql_prepares_the_statement_once_and_logs_it_with_its_values(items, settings):
    """On PostgreSQL the statement is prepared on the server (not planned again per call) and
    still reaches the query log with its values; on SQLite it runs as any other query."""
    by_index = Prepared(Item, lambda index: Item.objects.filter(index=index))
    with CaptureQueriesContext(connection) as queries:
        first = by_index(4)
        second = by_index(7)
    assert [(i.index, i.label) for i in first + second] == [(4, 1), (7, 1)]
    logged = [q["sql"] for q in queries if 'FROM "annotation_item"' in q["sql"]]
    assert len(logged) == 2
    assert '"index" = 4' in logged[0] and '"index" = 7' in logged[1]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%annotation_item%%index%%'"
        )
        prepared = cursor.fetchall()
    assert len(prepared) == 1 and prepared[0][1] == 2  # one statement, run twice


def test_a_query_the_stand_ins_compile_to_nothing_runs_through_the_orm(items):
    """A stand-in outside a column's range (a small-integer field's) makes the ORM compile the
    query to nothing; each call then runs through the ORM as written, with its own value."""

    def build(label):
        query = Item.objects.filter(label=label).order_by("index")
        return query if abs(label) < 2**15 else query.none()  # as a small-integer field does

    by_label = Prepared(Item, build)
    assert [i.index for i in by_label(1)] == [1, 4, 7, 10]
    assert [i.index for i in by_label(2)] == [2, 5, 8, 11]
    assert by_label(2**20) == []
