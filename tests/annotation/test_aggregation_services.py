"""Aggregating a dataset's votes in the database into AggregatedLabel rows."""

import pytest

from annotation.aggregation_services import (
    AggregationOptions,
    aggregation_run_start,
    dataset_aggregate,
)
from annotation.exceptions import AggregationError
from annotation.models import AggregatedLabel, AggregationRun, Dataset, Item, Vote, Worker

pytestmark = pytest.mark.django_db


def make_dataset(name="agg", k=3, n=6, gold=()):
    ds = Dataset.objects.create(name=name, class_names=[f"c{i}" for i in range(k)])
    Item.objects.bulk_create(
        Item(dataset=ds, index=i, name=f"i{i}.png", image=f"x/i{i}.png", width=8, height=8,
             given_label=i % k, label=i % k, gold_label=dict(gold).get(i))
        for i in range(n)
    )  # fmt: skip
    return ds, list(ds.items.order_by("index"))


def workers(count):
    return [Worker.objects.create(provider="imported", id_hash=f"{i:064x}") for i in range(count)]


def vote(item, worker, kind, answer, **extra):
    return Vote.objects.create(item=item, worker=worker, kind=kind, answer=answer, **extra)


def labels(ds, method):
    return dict(
        AggregatedLabel.objects.filter(item__dataset=ds, method=method).values_list(
            "item__index", "label"
        )
    )


def test_review_votes_become_class_labels_once_per_item_and_method():
    ds, items = make_dataset()
    ws = workers(5)
    # item 0: given 0, suggested 2; three say suggested, one given, one neither
    for w, a in zip(ws, [1, 1, 1, 0, 3], strict=True):
        vote(items[0], w, "review", a, shown_label=0, suggested_label=2)
    # item 1: given 1; "both" keeps the given label
    for w, a in zip(ws, [2, 2, 0, 1, 2], strict=True):
        vote(items[1], w, "review", a, shown_label=1, suggested_label=0)
    # item 2: all neither -> no class evidence
    for w in ws[:3]:
        vote(items[2], w, "review", 3, shown_label=2, suggested_label=1)

    out = dataset_aggregate(
        ds, kind="review", methods=["majority", "consensus", "strict", "dawid_skene"]
    )
    assert out.num_items == 3 and out.num_votes == 13
    assert AggregatedLabel.objects.filter(item__dataset=ds).count() == 3 * 4
    assert labels(ds, "majority") == {0: 2, 1: 1, 2: -1}
    assert labels(ds, "consensus_3ofany") == {0: 2, 1: 1, 2: -1}
    assert labels(ds, "strict") == {0: -1, 1: -1, 2: -1}
    row = AggregatedLabel.objects.get(item=items[0], method="majority")
    assert row.num_votes == 5 and row.confidence == pytest.approx(0.75)
    assert row.probs == pytest.approx([0.25, 0.0, 0.75])
    assert labels(ds, "dawid_skene")[0] == 2


def test_rerun_updates_rows_instead_of_adding():
    ds, items = make_dataset()
    ws = workers(3)
    vs = [vote(items[0], w, "review", 0, shown_label=0, suggested_label=1) for w in ws]
    dataset_aggregate(ds, kind="review", methods=["majority"])
    first = AggregatedLabel.objects.get(item=items[0], method="majority")
    assert first.label == 0
    Vote.objects.filter(pk__in=[v.pk for v in vs[:2]]).update(answer=1)
    dataset_aggregate(ds, kind="review", methods=["majority"])
    assert AggregatedLabel.objects.filter(item__dataset=ds).count() == 1
    again = AggregatedLabel.objects.get(item=items[0], method="majority")
    assert again.pk == first.pk and again.label == 1
    assert again.created_at >= first.created_at


def test_dataset_without_votes_of_the_kind_is_refused():
    ds, items = make_dataset()
    vote(items[0], workers(1)[0], "review", 0, shown_label=0, suggested_label=1)
    with pytest.raises(AggregationError, match="has no verify votes"):
        dataset_aggregate(ds, kind="verify")
    with pytest.raises(AggregationError, match="does not apply to review"):
        dataset_aggregate(ds, kind="review", methods=["verify_strict"])
    with pytest.raises(AggregationError, match="gold_weighted"):
        dataset_aggregate(ds, kind="review", methods=["gold_weighted"])
    assert not AggregatedLabel.objects.exists()


def test_verify_majority_and_strict_rules():
    ds, items = make_dataset()
    ws = workers(3)
    patterns = {0: [0, 0, 0], 1: [0, 0, 1], 2: [0, 0, 2], 3: [2, 2, 1]}
    for i, answers in patterns.items():
        for w, a in zip(ws, answers, strict=True):
            vote(items[i], w, "verify", a, shown_label=items[i].given_label)
    dataset_aggregate(ds, kind="verify")
    assert labels(ds, "verify_majority") == {0: 0, 1: 1, 2: 2, 3: -1}
    assert labels(ds, "verify_strict") == {0: 0, 1: -1, 2: -1, 3: -1}
    row = AggregatedLabel.objects.get(item=items[2], method="verify_strict")
    assert row.confidence == pytest.approx(2 / 3) and row.probs is None


def test_complementary_uses_gold_transition_when_there_is_enough():
    gold = {i: i % 3 for i in range(6)}
    ds, items = make_dataset(k=3, n=8, gold=gold)
    ws = workers(3)
    # item 6 (truth unknown): classes 1 and 2 excluded -> 0
    for w, (a, c) in zip(ws, [(1, [0, 1]), (2, [2, 0]), (1, [1, 2])], strict=True):
        vote(items[6], w, "complementary", a, candidates=c)
    out = dataset_aggregate(ds, kind="complementary")
    assert "uniform transition" in out.notes[0]
    assert labels(ds, "complementary") == {6: 0}
    for i, truth in gold.items():
        for w in ws:
            vote(items[i], w, "complementary", (truth + 1) % 3, candidates=[0, 1, 2])
    out = dataset_aggregate(ds, kind="complementary", options=AggregationOptions(min_gold_votes=18))
    assert "estimated from 18 votes" in out.notes[0]
    assert labels(ds, "complementary")[6] == 0
    assert AggregatedLabel.objects.filter(method="complementary").count() == 7


def test_select_share_marks_clean_images_with_the_group_label():
    ds, items = make_dataset()
    ws = workers(4)
    for i, picks in {0: [1, 1, 1, 0], 1: [1, 0, 0, 0]}.items():
        for w, a in zip(ws, picks, strict=True):
            vote(items[i], w, "select", a, shown_label=2)
    dataset_aggregate(ds, kind="select", options=AggregationOptions(select_threshold=0.5))
    assert labels(ds, "select_share") == {0: 2, 1: -1}
    assert AggregatedLabel.objects.get(item=items[0]).confidence == pytest.approx(0.75)


def test_run_records_progress_and_counts(django_capture_on_commit_callbacks):
    ds, items = make_dataset()
    ws = workers(3)
    for it in items[:4]:
        for w in ws:
            vote(it, w, "review", 0, shown_label=it.given_label, suggested_label=0)
    with django_capture_on_commit_callbacks(execute=True):
        run = aggregation_run_start(ds, kind="review", methods=["majority", "one_coin"])
    run.refresh_from_db()
    assert run.status == AggregationRun.Status.DONE
    assert run.progress == 1.0
    assert (run.num_items, run.num_votes, run.num_labels) == (4, 12, 8)
    assert "majority: 4/4 resolved" in run.message
    with pytest.raises(AggregationError, match="has no select votes"):
        aggregation_run_start(ds, kind="select")
