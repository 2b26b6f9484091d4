"""Small array kernels the rules and models share: vote counts, argmax with ties, softmax."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .types import Aggregate, BoolArray, FloatArray, IntArray, Tie, VoteTable


def _vote_counts(votes: VoteTable, k: int, weights: FloatArray | None = None) -> FloatArray:
    """(N, K) float64 (weighted) vote counts per item and class."""
    flat = votes.item * k + votes.label
    counts = np.bincount(flat, weights=weights, minlength=votes.num_items * k)
    return counts.reshape(-1, k).astype(np.float64, copy=False)


def _pick_max(scores: FloatArray, valid: BoolArray, tie: Tie, seed: int) -> IntArray:
    """Row-wise argmax of (N, K) scores; ties broken at random (seeded) or left as -1."""
    labels = np.argmax(scores, axis=1).astype(np.int64)
    top = scores.max(axis=1)
    is_max = scores == top[:, None]
    tied = np.flatnonzero((is_max.sum(axis=1) > 1) & valid)
    if tied.size:
        if tie == "unresolved":
            labels[tied] = -1
        else:
            rng = np.random.default_rng(seed)
            draws = np.where(is_max[tied], rng.random((tied.size, scores.shape[1])), -1.0)
            labels[tied] = np.argmax(draws, axis=1)
    labels[~valid] = -1
    return labels


def _check_tie(tie: str) -> None:
    if tie not in ("random", "unresolved", "agreement"):
        raise ValueError(f"tie: expected 'random', 'unresolved' or 'agreement', got {tie!r}")


def _agreement_tiebreak(votes: VoteTable, counts: FloatArray) -> FloatArray:
    """(N, K) counts nudged by less than one vote toward the classes of agreeable workers.

    A worker's weight is their smoothed rate of agreeing with the plurality on items without a
    tie, (agree + 1) / (counted + 2); the nudge is at most 0.5 so it only reorders tied classes.
    """
    top = counts.max(axis=1)
    untied = (counts == top[:, None]).sum(axis=1) == 1
    plurality = np.where(untied, np.argmax(counts, axis=1), -1)[votes.item]
    counted = plurality >= 0
    agree = np.bincount(
        votes.worker[counted],
        weights=(votes.label[counted] == plurality[counted]).astype(np.float64),
        minlength=votes.num_workers,
    )
    seen = np.bincount(votes.worker[counted], minlength=votes.num_workers)
    weight = (agree + 1.0) / (seen + 2.0)
    weighted = _vote_counts(votes, counts.shape[1], weights=weight[votes.worker])
    return counts + 0.5 * weighted / (weighted.sum(axis=1, keepdims=True) + 1e-12)


def _shares(counts: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Row-normalise (N, K) counts; rows with zero total become uniform. Returns (probs, voted)."""
    total = counts.sum(axis=1)
    voted = total > 0
    probs = np.divide(counts, np.where(voted, total, 1)[:, None], dtype=np.float64)
    probs[np.flatnonzero(~voted)] = 1.0 / counts.shape[1]
    return probs, voted


def _finish(probs: FloatArray, labels: IntArray, method: str, **extra: object) -> Aggregate:
    return Aggregate(
        labels=labels,
        probs=probs,
        confidence=probs.max(axis=1),
        method=method,
        **extra,  # type: ignore[arg-type]
    )


def _normalise_log_(scores: NDArray[np.floating]) -> float:
    """Turn (N, K) log-scores into probabilities in place; return the summed log-normaliser.

    Rows that are -inf everywhere (every class ruled out) become uniform and add nothing.
    """
    k = scores.shape[1]
    if k <= 32:
        # Column-wise maximum: numpy's row reductions are slow for short rows.
        top = scores[:, 0].copy()
        for j in range(1, k):
            np.maximum(top, scores[:, j], out=top)
    else:
        top = scores.max(axis=1)
    finite = np.isfinite(top)
    all_finite = bool(finite.all())
    if not all_finite:
        top[~finite] = 0.0
    scores -= top[:, None]
    np.exp(scores, out=scores)
    total = scores @ np.ones(k, dtype=scores.dtype)  # a BLAS row sum
    if not all_finite:
        total[~finite] = 1.0
        scores[~finite] = 1.0 / k
    scores /= total[:, None]
    return float(np.sum(top, dtype=np.float64) + np.sum(np.log(total), dtype=np.float64))
