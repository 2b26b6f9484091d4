"""Complementary votes ("which of these is NOT the label?"): likelihoods, posteriors, the
transition matrix estimated from gold items, and the elimination baseline.

Shape letters: N items, K classes, V votes, C candidates shown per vote.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .kernels import _finish, _normalise_log_, _shares
from .types import (
    Aggregate,
    BoolArray,
    FloatArray,
    IntArray,
    _check_count,
    _check_index,
    _check_num_classes,
    _check_positive,
    _int_vector,
)


def _check_complementary(
    item: ArrayLike | None,
    cl_label: ArrayLike,
    candidates: ArrayLike | None,
    num_items: int | None,
    num_classes: int,
) -> tuple[IntArray, IntArray, BoolArray, int]:
    """Validate; return item (V,), cl_label (V,), shown (V, K) bool, K."""
    k = _check_num_classes(num_classes)
    cl = _int_vector("cl_label", cl_label)
    it = _int_vector("item", item) if item is not None else np.zeros(cl.size, dtype=np.int64)
    if it.shape != cl.shape:
        raise ValueError(f"cl_label: length {cl.shape[0]} differs from item length {it.shape[0]}")
    if cl.size == 0:
        raise ValueError("cl_label: no complementary votes (V=0)")
    if num_items is not None:
        _check_index("item", it, _check_count("num_items", num_items), "num_items")
    _check_index("cl_label", cl, k, "num_classes")
    v = cl.size
    if candidates is None:
        return it, cl, np.ones((v, k), dtype=bool), k
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != v:
        raise ValueError(f"candidates: expected shape ({v}, C), got {cand.shape}")
    if cand.size and (cand.dtype == np.bool_ or not np.issubdtype(cand.dtype, np.integer)):
        raise ValueError(f"candidates: expected an integer array, got dtype {cand.dtype}")
    cand = cand.astype(np.int64)
    if cand.size and (int(cand.min()) < -1 or int(cand.max()) >= k):
        bad = int(cand.min()) if int(cand.min()) < -1 else int(cand.max())
        raise ValueError(f"candidates: value {bad} out of range -1..{k - 1} (num_classes={k})")
    present = cand >= 0
    shown = np.zeros((v, k), dtype=bool)
    rows = np.broadcast_to(np.arange(v)[:, None], cand.shape)
    shown[rows[present], cand[present]] = True
    n_listed = present.sum(axis=1)
    if np.any(shown.sum(axis=1) != n_listed):
        bad = int(np.flatnonzero(shown.sum(axis=1) != n_listed)[0])
        raise ValueError(f"candidates: row {bad} repeats a class: {cand[bad].tolist()}")
    unknown = n_listed == 0
    shown[unknown] = True
    if np.any(shown.sum(axis=1) < 2):
        bad = int(np.flatnonzero(shown.sum(axis=1) < 2)[0])
        raise ValueError(f"candidates: row {bad} shows fewer than 2 classes: {cand[bad].tolist()}")
    off = ~shown[np.arange(v), cl]
    if off.any():
        bad = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"cl_label: vote {bad} picked {int(cl[bad])}, not among its candidates "
            f"{cand[bad].tolist()}"
        )
    return it, cl, shown, k


def _check_transition(transition: ArrayLike | None, k: int) -> FloatArray:
    if transition is None:
        return 1.0 - np.eye(k)
    t = np.asarray(transition, dtype=np.float64)
    if t.shape != (k, k):
        raise ValueError(f"transition: expected shape ({k}, {k}), got {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("transition: entries must be finite and non-negative")
    if np.any(t.sum(axis=1) - np.diag(t) <= 0):
        bad = int(np.flatnonzero(t.sum(axis=1) - np.diag(t) <= 0)[0])
        raise ValueError(f"transition: row {bad} gives no weight to any incorrect label")
    return t


def complementary_log_likelihood(
    item: ArrayLike,
    cl_label: ArrayLike,
    candidates: ArrayLike | None,
    *,
    num_items: int,
    num_classes: int,
    transition: ArrayLike | None = None,
) -> FloatArray:
    """Per-item log-likelihood of each true class given complementary votes.

    A worker shown candidates S picks j as "not the label". With weights T (K, K), T[y, j] the
    propensity to pick j when the truth is y, P(j | y, S) = T[y, j] / sum_{j' in S} T[y, j'].
    The uniform model (``transition=None``) is T = 1 - I: the worker picks any shown incorrect
    class evenly, i.e. 1 / (|S| - 1) when y is shown and j != y, 1 / |S| when y is not shown, and
    0 for j == y. A transition from :func:`estimate_complementary_transition` has a (small)
    diagonal, which allows for workers who pick the true label by mistake.

    Args:
        item: (V,) int item index per vote, in 0..N-1.
        cl_label: (V,) int the class picked as incorrect, in 0..K-1.
        candidates: (V, C) int classes shown per vote; ``-1`` pads a row, and an all ``-1`` row
            (e.g. imported votes) means every class was shown. None: every class for every vote.
        num_items: N.
        num_classes: K >= 2.
        transition: (K, K) non-negative propensities, or None for the uniform model.
    Returns:
        (N, K) float64 summed log-likelihoods; 0 for items without votes, -inf where a class is
        ruled out (uniform model, j == y).
    Raises:
        ValueError: empty votes, mismatched lengths, indices out of range, a pick not among its
            candidates, a candidate row with repeats or fewer than 2 classes, a bad transition.
    """
    it, cl, shown, k = _check_complementary(item, cl_label, candidates, num_items, num_classes)
    t = _check_transition(transition, k)
    return _complementary_loglik(it, cl, shown, t, int(num_items))


def _complementary_loglik(
    it: IntArray, cl: IntArray, shown: BoolArray, t: FloatArray, n: int
) -> FloatArray:
    k = t.shape[0]
    denom = shown.astype(np.float64) @ t.T  # (V, K): sum over shown j' of T[y, j']
    with np.errstate(divide="ignore"):
        log_lik = np.log(t.T[cl]) - np.log(denom)  # (V, K): log P(cl_v | y, S_v)
    out = np.empty((n, k))
    for y in range(k):
        out[:, y] = np.bincount(it, weights=log_lik[:, y], minlength=n)
    return out


def complementary_posterior(
    item: ArrayLike,
    cl_label: ArrayLike,
    candidates: ArrayLike | None,
    *,
    num_items: int,
    num_classes: int,
    transition: ArrayLike | None = None,
    prior_probs: ArrayLike | None = None,
) -> Aggregate:
    """Posterior over true classes from complementary votes, optionally times a prior.

    posterior (N, K) ∝ prior_probs × exp(:func:`complementary_log_likelihood`).

    Args:
        item, cl_label, candidates, num_items, num_classes, transition: as in
            :func:`complementary_log_likelihood`.
        prior_probs: (N, K) non-negative, e.g. calibrated model probabilities; None = uniform.
    Returns:
        Aggregate with labels (N,) int64 (argmax; -1 for items with no votes, or whose votes
        rule out every class the prior allows), probs (N, K) (the prior, or uniform, for items
        without votes), confidence (N,).
    Raises:
        ValueError: as :func:`complementary_log_likelihood`, or a bad ``prior_probs``.
    """
    it, cl, shown, k = _check_complementary(item, cl_label, candidates, num_items, num_classes)
    t = _check_transition(transition, k)
    n = int(num_items)
    scores = _complementary_loglik(it, cl, shown, t, n)
    if prior_probs is not None:
        p = np.asarray(prior_probs, dtype=np.float64)
        if p.shape != (n, k):
            raise ValueError(f"prior_probs: expected shape ({n}, {k}), got {p.shape}")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p.sum(axis=1) <= 0):
            raise ValueError("prior_probs: entries must be finite, non-negative, rows not all 0")
        with np.errstate(divide="ignore"):
            scores += np.log(p / p.sum(axis=1, keepdims=True))
    dead = ~np.isfinite(scores.max(axis=1))
    _normalise_log_(scores)
    voted = np.bincount(it, minlength=n) > 0
    labels = np.argmax(scores, axis=1).astype(np.int64)
    labels[~voted | dead] = -1
    method = "complementary_uniform" if transition is None else "complementary_transition"
    return _finish(scores, labels, method)


def estimate_complementary_transition(
    cl_label: ArrayLike,
    candidates: ArrayLike | None,
    true_label: ArrayLike,
    *,
    num_classes: int,
    smoothing: float = 10.0,
) -> FloatArray:
    """Estimate complementary pick propensities T (K, K) from votes on gold items.

    T[y, j] = picks of j with truth y / times j was shown with truth y, so the random candidate
    sets do not bias it. Each cell is shrunk with ``smoothing`` pseudo-showings toward a pooled
    rate: off the diagonal, how often class j is picked whenever shown (whatever the truth); on
    the diagonal, how often workers pick the true label by mistake. Rows are then normalised
    (T[y] = pick distribution when all K classes are shown). With few gold votes per cell (K = 20
    and 1,000 gold items leave ~8 picks per cell) the pooled rates carry most of the signal.

    Args:
        cl_label: (V,) int picked class per gold vote.
        candidates: (V, C) int shown classes, -1 padded; all -1 / None = every class shown.
        true_label: (V,) int gold label of the voted item.
        num_classes: K >= 2.
        smoothing: pseudo-showings per cell (> 0).
    Returns:
        (K, K) float64, rows summing to 1; use as ``transition`` in the complementary functions.
    Raises:
        ValueError: as :func:`complementary_log_likelihood`; true_label length or range.
    """
    s = _check_positive("smoothing", smoothing)
    _, cl, shown, k = _check_complementary(None, cl_label, candidates, None, num_classes)
    y = _int_vector("true_label", true_label)
    if y.shape != cl.shape:
        raise ValueError(f"true_label: length {y.shape[0]} differs from cl_label length {cl.size}")
    _check_index("true_label", y, k, "num_classes")
    picks = np.bincount(y * k + cl, minlength=k * k).reshape(k, k).astype(np.float64)
    avail = np.zeros((k, k))
    np.add.at(avail, y, shown.astype(np.float64))
    # Shrink each cell toward a pooled rate: for j != y, how often class j is picked whenever it
    # is shown with any other truth (its overall "attractiveness"); on the diagonal, how often
    # workers pick the true label. Both pool far more votes than a single cell has.
    eye = np.eye(k, dtype=bool)
    off_picks, off_avail = np.where(eye, 0.0, picks), np.where(eye, 0.0, avail)
    rate = _pooled_rate(picks, avail)
    column = (off_picks.sum(axis=0) + 1.0) / (off_avail.sum(axis=0) + 1.0 / rate)
    diag = (np.trace(picks) + 1e-3) / (np.trace(avail) + 1.0)
    base = np.where(eye, diag, column[None, :])
    t = (picks + s * base) / (avail + s)
    return t / t.sum(axis=1, keepdims=True)


def _pooled_rate(picks: FloatArray, avail: FloatArray) -> float:
    return float(max(picks.sum(), 1.0) / max(avail.sum(), 1.0))


GOLD_VOTES_PER_CLASS = 10


def complementary_transition_from_gold(
    item: ArrayLike,
    cl_label: ArrayLike,
    candidates: ArrayLike | None,
    truth: ArrayLike,
    *,
    num_classes: int,
    min_votes: int | None = None,
) -> tuple[FloatArray | None, str]:
    """The transition to use for complementary votes: estimated from the votes on gold items when
    there are enough of them, else None (the uniform model). The one policy for every caller.

    With few gold votes the estimate mostly echoes its smoothing, so at least ``min_votes`` votes
    on items of known truth are needed (default :data:`GOLD_VOTES_PER_CLASS` per class, i.e.
    10 * K; never fewer than one).

    Args:
        item: (V,) int item index per vote, in 0..N-1.
        cl_label: (V,) int the class picked as incorrect, in 0..K-1.
        candidates: (V, C) int classes shown per vote, -1 padded; None or an all -1 row = every
            class shown.
        truth: (N,) int known label per item, ``-1`` = unknown; N is its length.
        num_classes: K >= 2.
        min_votes: gold votes needed for an estimate; None = ``GOLD_VOTES_PER_CLASS * K``.
    Returns:
        (transition, note): the (K, K) estimate of :func:`estimate_complementary_transition`, or
        None for the uniform model; and a one-line note saying which, and on how many votes.
    Raises:
        ValueError: as :func:`complementary_log_likelihood`; a truth outside -1..K-1; a negative
            ``min_votes``.
    """
    k = _check_num_classes(num_classes)
    y = _int_vector("truth", truth)
    if y.size and (int(y.min()) < -1 or int(y.max()) >= k):
        bad = int(y.min()) if int(y.min()) < -1 else int(y.max())
        raise ValueError(f"truth: value {bad} out of range -1..{k - 1} (num_classes={k})")
    need = GOLD_VOTES_PER_CLASS * k if min_votes is None else _check_count("min_votes", min_votes)
    need = max(need, 1)
    it, cl, _, _ = _check_complementary(item, cl_label, candidates, y.size, k)
    gold = y[it]
    on_gold = gold >= 0
    n_gold = int(on_gold.sum())
    if n_gold < need:
        return None, f"uniform transition: {n_gold} votes on gold items, fewer than {need}"
    shown = None if candidates is None else np.asarray(candidates)[on_gold]
    transition = estimate_complementary_transition(cl[on_gold], shown, gold[on_gold], num_classes=k)
    return transition, f"transition estimated from {n_gold} votes on gold items"


def elimination(
    item: ArrayLike,
    cl_label: ArrayLike,
    *,
    num_items: int,
    num_classes: int,
    seed: int = 0,
) -> Aggregate:
    """Baseline: a random class among those no vote has excluded (seeded).

    Args:
        item: (V,) int item per complementary vote.
        cl_label: (V,) int excluded class per vote.
        num_items: N.
        num_classes: K >= 2.
        seed: generator seed.
    Returns:
        Aggregate with labels (N,) (-1 for items without votes or with every class excluded) and
        probs (N, K) uniform over the classes not excluded.
    Raises:
        ValueError: empty votes, lengths differ, indices out of range.
    """
    it, cl, _, k = _check_complementary(item, cl_label, None, num_items, num_classes)
    n = int(num_items)
    excluded = np.bincount(it * k + cl, minlength=n * k).reshape(n, k) > 0
    allowed = (~excluded).astype(np.float64)
    probs, alive = _shares(allowed)
    voted = np.bincount(it, minlength=n) > 0
    rng = np.random.default_rng(seed)
    draws = np.where(excluded, -1.0, rng.random((n, k)))
    labels = np.argmax(draws, axis=1).astype(np.int64)
    labels[~voted | ~alive] = -1
    return _finish(probs, labels, "elimination")
