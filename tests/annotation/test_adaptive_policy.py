"""Adaptive overlap policy: which items get another vote."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.aggregation.adaptive import items_needing_votes


def post(*rows):
    return np.array(rows, dtype=np.float64)


def test_items_below_min_votes_come_first_even_when_confident():
    posteriors = post([0.55, 0.45], [0.99, 0.01], [0.6, 0.4])
    counts = np.array([3, 1, 3])
    order = items_needing_votes(posteriors, counts, min_votes=2, max_votes=5, target=0.9)
    assert order.tolist() == [1, 0, 2]
    assert order.dtype == np.int64


def test_settled_and_full_items_get_no_more_votes():
    posteriors = post([0.95, 0.05], [0.5, 0.5], [0.7, 0.3], [0.8, 0.2])
    counts = np.array([3, 10, 3, 3])
    order = items_needing_votes(posteriors, counts, min_votes=3, max_votes=10, target=0.9)
    # item 0 reached the target, item 1 the maximum.
    assert order.tolist() == [2, 3]


def test_least_settled_first_and_budget_cuts_the_tail():
    posteriors = post([0.8, 0.1, 0.1], [0.4, 0.3, 0.3], [0.6, 0.4, 0.0], [0.34, 0.33, 0.33])
    counts = np.array([2, 2, 2, 2])
    order = items_needing_votes(posteriors, counts, min_votes=1, max_votes=9, target=0.95)
    assert order.tolist() == [3, 1, 2, 0]
    cut = items_needing_votes(posteriors, counts, min_votes=1, max_votes=9, target=0.95, budget=2)
    assert cut.tolist() == [3, 1]
    none = items_needing_votes(posteriors, counts, min_votes=1, max_votes=9, target=0.95, budget=0)
    assert none.size == 0


def test_max_votes_beats_min_votes_and_items_appear_once():
    rng = np.random.default_rng(0)
    posteriors = rng.dirichlet(np.ones(4), size=200)
    counts = rng.integers(0, 6, size=200)
    order = items_needing_votes(posteriors, counts, min_votes=2, max_votes=4, target=0.7)
    assert len(set(order.tolist())) == order.size
    assert (counts[order] < 4).all()
    under = np.flatnonzero(counts < 2)
    assert set(order[: under.size].tolist()) == set(under.tolist())
    wanted = (counts < 4) & ((counts < 2) | (posteriors.max(axis=1) < 0.7))
    assert set(order.tolist()) == set(np.flatnonzero(wanted).tolist())


def test_items_without_votes_count_as_uniform():
    posteriors = post([0.0, 0.0], [0.9, 0.1])
    order = items_needing_votes(posteriors, np.array([0, 1]), min_votes=0, max_votes=3, target=0.95)
    assert order.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counts": np.array([1, 1])}, "counts: length 2"),
        ({"counts": np.array([-1, 1, 1])}, "counts: negative"),
        ({"counts": np.array([1.5, 1, 1])}, "counts: expected an integer"),
        ({"posteriors": np.array([[np.nan, 1.0]] * 3)}, "posteriors: expected finite"),
        ({"posteriors": np.ones(3)}, "posteriors: expected an (N, K)"),
        ({"max_votes": 1}, "max_votes"),
        ({"target": 1.5}, "target"),
        ({"target": 0}, "target"),
        ({"budget": -1}, "budget"),
        ({"min_votes": -2}, "min_votes"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    args = {
        "posteriors": post([0.5, 0.5], [0.9, 0.1], [0.7, 0.3]),
        "counts": np.array([1, 1, 1]),
        "min_votes": 2,
        "max_votes": 4,
        "target": 0.9,
    } | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        items_needing_votes(
            args.pop("posteriors"),
            args.pop("counts"),
            **args,
        )
