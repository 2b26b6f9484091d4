"""The aggregation package's shared facts: answer codes, consensus names, the gold-transition
policy, and the migration that renamed stored consensus labels."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from annotation import aggregation as agg

ROOT = Path(__file__).resolve().parents[2]


def test_package_imports_no_django():
    # Load the package under a bare ``annotation`` so the project package (Celery, settings)
    # stays out of the way: what is left is what the aggregation modules import themselves.
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('annotation'); pkg.__path__ = ['annotation']\n"
        "sys.modules['annotation'] = pkg\n"
        "import annotation.aggregation\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_answer_codes_index_their_names():
    assert agg.VERIFY_ANSWERS[agg.ANSWER_CORRECT] == "correct"
    assert agg.VERIFY_ANSWERS[agg.ANSWER_UNSURE] == "unsure"
    assert agg.VERIFY_ANSWERS[agg.ANSWER_WRONG] == "wrong"
    assert agg.REVIEW_ANSWERS[agg.REVIEW_GIVEN] == "given"
    assert agg.REVIEW_ANSWERS[agg.REVIEW_SUGGESTED] == "suggested"
    assert agg.REVIEW_ANSWERS[agg.REVIEW_BOTH] == "both"
    assert agg.REVIEW_ANSWERS[agg.REVIEW_NEITHER] == "neither"


def test_consensus_has_one_name():
    assert agg.consensus_method_name(3, 5) == "consensus_3of5"
    assert agg.consensus_method_name(3) == "consensus_3ofany"
    votes = agg.VoteTable.from_arrays([0, 0, 0], [0, 1, 2], [1, 1, 0])
    assert agg.consensus(votes, num_classes=2, k=2, n=3).method == "consensus_2of3"
    assert agg.consensus(votes, num_classes=2, k=2).method == "consensus_2ofany"
    chosen = agg.aggregate_by_name(votes, "consensus", num_classes=2, k=2, n=3)
    assert chosen.method == agg.consensus_method_name(2, 3)


def gold_votes(k=3, per_item=3, n_gold=4, n_other=2):
    """Complementary votes on ``n_gold`` items of known truth and ``n_other`` unknown ones."""
    rng = np.random.default_rng(7)
    n = n_gold + n_other
    truth = np.full(n, -1, dtype=np.int64)
    truth[:n_gold] = rng.integers(0, k, n_gold)
    item = np.repeat(np.arange(n), per_item)
    true_or_any = np.where(truth[item] >= 0, truth[item], 0)
    pick = (true_or_any + rng.integers(1, k, item.size)) % k
    return item, pick, truth


def test_gold_transition_needs_ten_votes_per_class_by_default():
    item, pick, truth = gold_votes(k=3, n_gold=4)
    transition, note = agg.complementary_transition_from_gold(
        item, pick, None, truth, num_classes=3
    )
    assert transition is None
    assert note == "uniform transition: 12 votes on gold items, fewer than 30"


def test_gold_transition_is_the_estimate_on_gold_votes_when_enough():
    item, pick, truth = gold_votes(k=3, n_gold=4)
    cands = np.tile([0, 1, 2], (item.size, 1))
    transition, note = agg.complementary_transition_from_gold(
        item, pick, cands, truth, num_classes=3, min_votes=12
    )
    on = truth[item] >= 0
    expected = agg.estimate_complementary_transition(
        pick[on], cands[on], truth[item][on], num_classes=3
    )
    assert note == "transition estimated from 12 votes on gold items"
    np.testing.assert_allclose(transition, expected)


def test_gold_transition_without_gold_and_bad_arguments():
    item, pick, _ = gold_votes(k=3)
    none = np.full(6, -1, dtype=np.int64)
    transition, note = agg.complementary_transition_from_gold(
        item, pick, None, none, num_classes=3, min_votes=0
    )
    assert transition is None and note.startswith("uniform transition: 0 votes")
    with pytest.raises(ValueError, match="truth: value 3 out of range"):
        agg.complementary_transition_from_gold(item, pick, None, np.full(6, 3), num_classes=3)
    with pytest.raises(ValueError, match="min_votes"):
        agg.complementary_transition_from_gold(item, pick, None, none, num_classes=3, min_votes=-1)
    with pytest.raises(ValueError, match="item: value 5 out of range"):
        agg.complementary_transition_from_gold(item, pick, None, none[:5], num_classes=3)


@pytest.mark.django_db
def test_migration_renames_stored_consensus_labels_and_back():
    from django.apps import apps
    from django.utils import timezone

    from annotation.models import AggregatedLabel, AggregationRun, Dataset, Item

    migration = importlib.import_module("annotation.migrations.0004_consensus_method_name")
    ds = Dataset.objects.create(name="mig", class_names=["a", "b"])
    items = [
        Item.objects.create(dataset=ds, index=i, name=f"{i}.png", image=f"x/{i}.png", width=8,
                            height=8, given_label=0)
        for i in range(3)
    ]  # fmt: skip

    def label(item, method, kind="review", value=0):
        return AggregatedLabel.objects.create(
            item=item, kind=kind, method=method, label=value, confidence=1.0
        )

    label(items[0], "consensus_3_of_5")
    label(items[1], "consensus_3_of_any")
    older = label(items[2], "consensus_3_of_5", value=0)
    newer = label(items[2], "consensus_3of5", value=1)
    AggregatedLabel.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    label(items[0], "consensus_2of3", kind="verify")
    label(items[0], "majority")
    run = AggregationRun.objects.create(
        dataset=ds,
        kind="review",
        methods=["consensus", "majority"],
        message="majority: 3/3 resolved; consensus_3_of_5: 2/3 resolved",
    )

    migration.forward(apps, None)
    stored = set(AggregatedLabel.objects.values_list("item__index", "kind", "method", "label"))
    assert stored == {
        (0, "review", "consensus_3of5", 0),
        (1, "review", "consensus_3ofany", 0),
        (2, "review", "consensus_3of5", 1),  # the newer row of the two wins
        (0, "verify", "consensus_2of3", 0),
        (0, "review", "majority", 0),
    }
    assert not AggregatedLabel.objects.filter(pk=older.pk).exists()
    assert AggregatedLabel.objects.filter(pk=newer.pk).exists()
    run.refresh_from_db()
    assert run.message == "majority: 3/3 resolved; consensus_3of5: 2/3 resolved"
    assert run.methods == ["consensus", "majority"]

    migration.backward(apps, None)
    methods = set(AggregatedLabel.objects.values_list("kind", "method"))
    assert methods == {
        ("review", "consensus_3_of_5"),
        ("review", "consensus_3_of_any"),
        ("verify", "consensus_2of3"),  # only curation wrote verify consensus, in this form
        ("review", "majority"),
    }
    run.refresh_from_db()
    assert run.message == "majority: 3/3 resolved; consensus_3_of_5: 2/3 resolved"
