"""Items with a known label: checking them, and the gold-weighted vote."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .kernels import _check_tie, _finish, _normalise_log_, _pick_max, _vote_counts
from .types import (
    Aggregate,
    BoolArray,
    IntArray,
    Tie,
    VoteTable,
    _check_index,
    _check_positive,
    _check_votes,
    _int_vector,
)


def _check_gold(
    gold_items: ArrayLike, gold_labels: ArrayLike, num_items: int, k: int
) -> tuple[IntArray, IntArray]:
    gi = _int_vector("gold_items", gold_items)
    gl = _int_vector("gold_labels", gold_labels)
    if gi.shape != gl.shape:
        raise ValueError(
            f"gold_labels: length {gl.shape[0]} differs from gold_items length {gi.shape[0]}"
        )
    _check_index("gold_items", gi, num_items, "num_items")
    _check_index("gold_labels", gl, k, "num_classes")
    if np.unique(gi).size != gi.size:
        raise ValueError("gold_items: an item appears more than once")
    return gi, gl


def _gold_hits(
    votes: VoteTable, gold_items: IntArray, gold_labels: IntArray
) -> tuple[BoolArray, BoolArray]:
    """(V,) masks: the vote is on a gold item; the vote equals the gold label."""
    truth = np.full(votes.num_items, -1, dtype=np.int64)
    truth[gold_items] = gold_labels
    t = truth[votes.item]
    on_gold = t >= 0
    return on_gold, on_gold & (votes.label == t)


def gold_weighted_majority(
    votes: VoteTable,
    *,
    num_classes: int,
    gold_items: ArrayLike,
    gold_labels: ArrayLike,
    smoothing: float = 2.0,
    tie: Tie = "random",
    seed: int = 0,
) -> Aggregate:
    """Weighted vote, each worker weighted by the log-odds of their smoothed gold accuracy.

    Accuracy a_m = (gold hits + s * pooled) / (gold votes + s), pooled = all workers' gold
    accuracy and s = ``smoothing``, so a worker with no gold votes gets the pooled accuracy. The
    weight is log((K - 1) a_m / (1 - a_m)), the optimal weight under a one-coin model, clipped at
    0 (a worker at or below chance is ignored rather than counted in reverse). probs are the
    one-coin posteriors softmax(sum of weights per class).

    Args:
        votes: the vote table.
        num_classes: K >= 2.
        gold_items: (G,) int item indices with a known label (no repeats).
        gold_labels: (G,) int their labels in 0..K-1.
        smoothing: pseudo-votes of shrinkage toward the pooled gold accuracy (> 0).
        tie: ``"random"`` (seeded) or ``"unresolved"`` (-1) for tied weighted scores.
        seed: tie-breaking seed.
    Returns:
        Aggregate with labels (N,), probs (N, K), worker_accuracy (M,), worker_weight (M,).
        Gold items are aggregated like any other item.
    Raises:
        ValueError: bad table or K, gold arrays of different lengths, out of range or repeated,
            no gold votes at all.
    """
    k = _check_votes(votes, num_classes)
    _check_tie(tie)
    s = _check_positive("smoothing", smoothing)
    gi, gl = _check_gold(gold_items, gold_labels, votes.num_items, k)
    on_gold, hit = _gold_hits(votes, gi, gl)
    if not on_gold.any():
        raise ValueError("gold_items: no vote falls on a gold item; cannot weight workers")
    m = votes.num_workers
    n_gold = np.bincount(votes.worker[on_gold], minlength=m).astype(np.float64)
    n_hit = np.bincount(votes.worker[hit], minlength=m).astype(np.float64)
    pooled = float(np.clip(n_hit.sum() / n_gold.sum(), 1e-3, 1 - 1e-3))
    acc = (n_hit + s * pooled) / (n_gold + s)
    weight = np.maximum(np.log((k - 1) * acc / (1.0 - acc)), 0.0)
    scores = _vote_counts(votes, k, weights=weight[votes.worker])
    voted = np.bincount(votes.item, minlength=votes.num_items) > 0
    labels = _pick_max(scores, voted, tie, seed)
    probs = scores.copy()
    _normalise_log_(probs)
    probs[~voted] = 1.0 / k
    return _finish(
        probs, labels, "gold_weighted_majority", worker_accuracy=acc, worker_weight=weight
    )
