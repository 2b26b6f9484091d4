"""Adaptive overlap: which items should get another vote, given the votes so far.

A batch asks for a minimum and a maximum number of votes per item and a confidence target on
the posterior. After each round of votes the posterior (from any aggregation method) decides
which items get one more assignment, most uncertain first, within what the budget still allows.

Shape letters: N items, K classes.
"""

from __future__ import annotations

import numpy as np

from .types import FloatArray, _check_count, _int_vector


def _check_posteriors(posteriors: np.ndarray) -> FloatArray:
    arr = np.asarray(posteriors)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"posteriors: expected an (N, K) array, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"posteriors: expected a float array, got dtype {arr.dtype}")
    out = np.asarray(arr, dtype=np.float64)
    if out.size and (not np.isfinite(out).all() or float(out.min()) < 0):
        raise ValueError("posteriors: expected finite non-negative probabilities")
    return out


def items_needing_votes(
    posteriors: np.ndarray,
    counts: np.ndarray,
    *,
    min_votes: int,
    max_votes: int,
    target: float,
    budget: int | None = None,
) -> np.ndarray:
    """Items that should get one more vote, most urgent first.

    Rules, in order:

    * an item that already has ``max_votes`` votes (or more) never gets another;
    * an item with fewer than ``min_votes`` votes always gets one, before any other item
      (fewest votes first, then least confident);
    * any other item gets one while its posterior maximum is below ``target``; among those
      the least settled come first: highest posterior entropy (normalised by log K), then
      lowest posterior maximum, then fewest votes. Entropy ranks items whose doubt is spread
      over several classes before items torn between two.

    Ties keep the item order. Each item appears at most once; with a ``budget`` only the first
    ``budget`` items are returned.

    Args:
        posteriors: (N, K) float, per-item class posterior; rows are normalised here (a zero
            row counts as uniform, e.g. an item with no votes).
        counts: (N,) int >= 0, votes each item has so far.
        min_votes: votes every item gets regardless of its posterior (>= 0).
        max_votes: votes no item goes beyond (>= max(min_votes, 1)).
        target: confidence target in (0, 1]; an item whose posterior maximum reaches it is
            settled once it has ``min_votes`` votes.
        budget: most items to return (votes still affordable), or None for no limit.
    Returns:
        (R,) int64 item indices in priority order, R <= budget.
    Raises:
        ValueError: on shapes that differ, negative counts, non-finite or negative posteriors,
            ``max_votes < min_votes``, a target outside (0, 1] or a negative budget.
    """
    post = _check_posteriors(posteriors)
    cnt = _int_vector("counts", counts)
    n = post.shape[0]
    if cnt.shape[0] != n:
        raise ValueError(f"counts: length {cnt.shape[0]} differs from posteriors rows {n}")
    if cnt.size and int(cnt.min()) < 0:
        raise ValueError(f"counts: negative value {int(cnt.min())}")
    lo = _check_count("min_votes", min_votes)
    hi = _check_count("max_votes", max_votes)
    if hi < max(lo, 1):
        raise ValueError(
            f"max_votes: expected at least max(min_votes, 1) = {max(lo, 1)}, got {max_votes!r}"
        )
    t = float(target)
    if not np.isfinite(t) or not 0.0 < t <= 1.0:
        raise ValueError(f"target: expected a number in (0, 1], got {target!r}")
    cap = None if budget is None else _check_count("budget", budget)

    k = post.shape[1]
    total = post.sum(axis=1, keepdims=True)
    probs = np.where(total > 0, post / np.where(total > 0, total, 1.0), 1.0 / k)
    top = probs.max(axis=1) if n else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
    # Rounded so that float noise does not split items whose posteriors are equal.
    entropy = np.round(-plogp.sum(axis=1) / np.log(k), 12) if k > 1 else np.zeros(n)

    below_min = cnt < lo
    open_ = (cnt < hi) & (below_min | (top < t))
    idx = np.flatnonzero(open_)
    # np.lexsort sorts by the last key first; the item index last keeps ties in item order.
    urgent = idx[below_min[idx]]
    urgent = urgent[np.lexsort((urgent, -entropy[urgent], top[urgent], cnt[urgent]))]
    rest = idx[~below_min[idx]]
    rest = rest[np.lexsort((rest, cnt[rest], top[rest], -entropy[rest]))]
    order = np.concatenate((urgent, rest)).astype(np.int64)
    return order if cap is None else order[:cap]
