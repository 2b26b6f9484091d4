"""Dawid-Skene on two threads: the same answers as on one, also in a forked child."""

from __future__ import annotations

import numpy as np

from annotation.aggregation import VoteTable, dawid_skene
from tests.annotation.test_aggregation import table


def test_dawid_skene_on_two_threads_gives_the_single_thread_answer(monkeypatch):
    """Large tables run each EM step on two halves of the items at once; the split must not
    change the labels (sums in another order round differently, which may stop EM one
    iteration sooner or later)."""
    from annotation.aggregation import em

    rng = np.random.default_rng(3)
    n, m, k = 3000, 40, 5
    truth = rng.integers(0, k, n)
    skill = rng.uniform(0.3, 0.95, m)
    item = np.repeat(np.arange(n), 3)
    worker = np.concatenate([rng.choice(m, 3, replace=False) for _ in range(n)])
    right = rng.random(item.size) < skill[worker]
    label = np.where(right, truth[item], rng.integers(0, k, item.size))
    # an item without votes in each half keeps label -1 and a uniform posterior
    keep = (item != 10) & (item != n - 10)
    votes = VoteTable.from_arrays(item[keep], worker[keep], label[keep], num_items=n)
    single = dawid_skene(votes, num_classes=k)
    monkeypatch.setattr(em, "_PARALLEL_VOTES", 1)
    split = dawid_skene(votes, num_classes=k)
    assert np.array_equal(split.labels, single.labels)
    assert split.labels[10] == split.labels[n - 10] == -1
    assert np.allclose(split.probs[n - 10], 1.0 / k)
    assert np.abs(split.probs - single.probs).max() < 1e-2
    assert np.allclose(split.class_prior, single.class_prior, atol=1e-4)
    assert (split.labels == truth).mean() > 0.8


def test_dawid_skene_on_two_threads_works_in_a_forked_child(monkeypatch):
    """A Celery worker forks its children after the parent may have run Dawid-Skene: the child
    must not wait forever on the parent's thread pool."""
    import multiprocessing

    from annotation.aggregation import em

    monkeypatch.setattr(em, "_PARALLEL_VOTES", 1)
    votes = table([(i % 40, i % 7, (i // 40) % 3) for i in range(400)], num_items=40)
    parent = dawid_skene(votes, num_classes=3)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_labels_in_child, (votes,)).get(timeout=60)
    assert np.array_equal(child, parent.labels)


def _labels_in_child(votes: VoteTable) -> np.ndarray:
    from annotation.aggregation import em

    em._PARALLEL_VOTES = 1
    return dawid_skene(votes, num_classes=3).labels
