"""Latent-class models fitted by EM: Dawid–Skene, one-coin Dawid–Skene and MACE.

All three start from the majority-vote shares and stop when the mean per-vote log-likelihood
changes by less than ``tol``. Items with no votes get label ``-1`` and uniform probabilities.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from .kernels import _finish, _normalise_log_, _shares, _vote_counts
from .types import (
    _EPS,
    Aggregate,
    ClassPrior,
    ConfusionPrior,
    FloatArray,
    IntArray,
    VoteTable,
    _check_em,
    _check_positive,
    _check_votes,
)


def dawid_skene(
    votes: VoteTable,
    *,
    num_classes: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    prior: ConfusionPrior = "pooled",
    prior_strength: float = 2.0,
) -> Aggregate:
    """Estimate true labels and a full confusion matrix per worker by EM (Dawid & Skene, 1979).

    Each iteration is two sparse-dense products and one sparse mat-vec over the (N, M*K)
    vote-indicator matrix, so the cost is O(V*K) with no Python loop over votes or items. The
    loop runs in float32; results are float64. Starts from the majority-vote shares.

    Args:
        votes: item (V,), worker (V,), label (V,) int64; one row per vote.
        num_classes: K >= 2; labels must lie in 0..K-1.
        max_iter: at most this many EM iterations.
        tol: stop when the mean per-vote log-likelihood changes by less than this.
        prior: pseudo-counts added to each row of each worker's confusion counts, so workers
            with few votes do not overfit. ``"pooled"``: ``prior_strength`` votes distributed like
            the pooled confusion of all workers (empirical-Bayes shrinkage toward the crowd);
            ``"dirichlet"``: ``prior_strength`` votes spread evenly over the K answers (Laplace
            smoothing); ``"none"``: maximum likelihood (floored at 1e-10 to keep logs finite).
        prior_strength: pseudo-votes per confusion row (ignored for ``"none"``).
    Returns:
        Aggregate with labels (N,) int64 (-1 for items without votes), probs (N, K) posteriors
        (uniform for items without votes), class_prior (K,), and worker_confusion (M, K, K)
        with ``[m, true, given]`` rows summing to 1.
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2, bad options.
    """
    k = _check_votes(votes, num_classes)
    _check_em(max_iter, tol)
    if prior not in ("dirichlet", "pooled", "none"):
        raise ValueError(f"prior: expected 'dirichlet', 'pooled' or 'none', got {prior!r}")
    strength = 0.0 if prior == "none" else _check_positive("prior_strength", prior_strength)
    n_items, n_workers, n_votes = votes.num_items, votes.num_workers, votes.num_votes

    # A[i, m*K + l] = number of times worker m answered l on item i, plus one last column of
    # ones that adds the class prior in the same product. The loop works in float32: it halves
    # the memory traffic of the two products, and EM needs no more precision.
    import scipy.sparse as sp  # here: a command that never runs EM starts without scipy

    mk = n_workers * k
    cols = votes.worker * k + votes.label
    a = sp.csr_matrix(
        (
            np.ones(n_votes + n_items, dtype=np.float32),
            (
                np.concatenate([votes.item, np.arange(n_items)]),
                np.concatenate([cols, [mk] * n_items]),
            ),
        ),
        shape=(n_items, mk + 1),
    )
    a.sum_duplicates()
    col_votes = np.bincount(cols, minlength=mk).astype(np.float64)  # votes per (m, l)
    counts0 = _vote_counts(votes, k)
    post64, voted = _shares(counts0)
    # Flat index of each item's majority class: where to check that the shift is not too loose.
    ref = np.arange(n_items) * k + np.argmax(counts0, axis=1)
    del counts0
    scores = post64.astype(np.float32)
    del post64
    weight = voted.astype(np.float32)  # 1 / normaliser of each item's scores; 0 without votes
    n_voted = int(voted.sum())
    unvoted = np.flatnonzero(~voted)
    # Large tables are split into two halves of the items, each step run on both at once (the
    # sparse products and numpy's loops let go of the interpreter lock).
    cut = n_items // 2 if n_votes >= _PARALLEL_VOTES and (os.cpu_count() or 1) > 1 else n_items
    parts = [
        _Part(a[lo:hi], scores[lo:hi], weight[lo:hi], ref[lo:hi] - lo * k)
        for lo, hi in ((0, cut), (cut, n_items))
        if hi > lo
    ]
    del a, scores
    pool = _pool() if len(parts) > 1 else None

    def each(step, *args):
        if pool is None:
            return [step(parts[0], *args)]
        return list(pool.map(lambda part: step(part, *args), parts))

    prev = -np.inf
    converged = False
    it = 0
    log_conf = np.zeros((mk, k))
    class_prior = np.full(k, 1.0 / k)
    while it < max_iter:
        it += 1
        # M-step: counts[m, given, true] = sum of posteriors of votes (m, given).
        products: FloatArray = np.sum(each(_Part.m_step), axis=0, dtype=np.float64)
        counts = products[:mk].reshape(n_workers, k, k)
        class_prior = (products[mk] + 1.0) / (n_voted + k)
        conf = _ds_confusion(counts, prior, strength)  # [m, given, true]
        log_conf = np.log(conf).reshape(mk, k)
        # E-step: log-posterior = log prior + sum of log P(given | true) over the item's votes.
        # Each row of the table is shifted by its maximum first, so every product is at most 0
        # and its row's maximum is at least (sum of the shifts) below the true maximum.
        log_prior = np.log(class_prior)
        table = np.vstack([log_conf, log_prior[None]])
        shift = table.max(axis=1)
        table -= shift[:, None]
        log_norm = sum(each(_Part.e_step, table.astype(np.float32)))
        upper = float(col_votes @ shift[:mk]) + n_voted * float(shift[mk])
        ll = (upper + log_norm) / n_votes
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    scores = np.concatenate([part.scores for part in parts])
    probs = np.multiply(scores, weight[:, None], dtype=np.float64)
    del scores
    probs[unvoted] = 1.0 / k
    labels = np.argmax(probs, axis=1).astype(np.int64)
    labels[unvoted] = -1
    confusion = np.exp(log_conf).reshape(n_workers, k, k).transpose(0, 2, 1).copy()
    return _finish(
        probs,
        labels,
        "dawid_skene",
        n_iter=it,
        converged=converged,
        class_prior=class_prior,
        worker_confusion=confusion,
    )


_PARALLEL_VOTES = 100_000  # from this many votes, Dawid-Skene's steps run on two threads
_POOL: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child makes its own


def _pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _POOL:
        _POOL.clear()  # a pool inherited through fork has no threads behind it
        _POOL[pid] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dawid-skene")
    return _POOL[pid]


class _Part:
    """Dawid-Skene's state for a run of consecutive items: their rows of the vote-indicator
    matrix (with the prior column), its transpose for the M-step, and views of the items'
    scores, weights and reference classes."""

    def __init__(self, a, scores, weight, ref) -> None:
        self.a = a
        # The M-step's transpose (CSC: the product walks items in order, which keeps reads of
        # the scores sequential) has its own values, scaled each iteration by 1 / (each item's
        # normaliser), so the E-step never divides its (N, K) scores; its last row sums the
        # posteriors into the class totals.
        self.a_t = a.T.copy()
        self.base = a.data.copy()
        self.nnz_item = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        self.scores = scores
        self.weight = weight
        self.ref = ref

    def m_step(self) -> NDArray[np.float32]:
        np.multiply(self.base, self.weight[self.nnz_item], out=self.a_t.data)
        return np.asarray(self.a_t @ self.scores)

    def e_step(self, table: NDArray[np.float32]) -> float:
        self.scores = np.asarray(self.a @ table)
        return _exp_rows_(self.scores, self.ref, self.weight)


def _exp_rows_(scores: NDArray[np.float32], ref: IntArray, weight: NDArray[np.float32]) -> float:
    """Exponentiate (N, K) log-scores that are at most 0 in place, leaving them unnormalised,
    and set ``weight`` to each row's 1 / normaliser (rows with weight 0, items without votes,
    stay 0). Returns the summed log-normaliser relative to the shift already applied.

    ``ref`` (N,) flat indices name one likely class per row; rows whose score there lies far
    below 0 (where exp could underflow in float32) are shifted by their exact maximum first.
    """
    flat = scores.reshape(-1)
    extra = 0.0
    loose = np.flatnonzero(flat[ref] < -60.0)
    if loose.size:
        top = scores[loose].max(axis=1)
        scores[loose] -= top[:, None]
        extra = float(np.sum(top[weight[loose] > 0], dtype=np.float64))
    np.exp(flat, out=flat)
    # Row sums with einsum: numpy's row reductions and a BLAS product are slower on short rows.
    total = np.einsum("ij->i", scores)
    voted = weight > 0
    log_norm = float(np.sum(np.log(total[voted]), dtype=np.float64)) + extra
    np.divide(1.0, total, out=weight, where=voted)
    return log_norm


def _ds_confusion(counts: FloatArray, prior: str, strength: float) -> FloatArray:
    """(M, K given, K true) counts -> P(given | true) with the chosen prior, same layout."""
    k = counts.shape[1]
    if prior == "pooled":
        pooled = counts.sum(axis=0) + 1.0 / k  # the small constant keeps every cell positive
        pooled /= pooled.sum(axis=0, keepdims=True)
        smoothed = counts + strength * pooled[None]
    elif prior == "dirichlet":
        smoothed = counts + strength / k
    else:
        smoothed = counts + _EPS
    return smoothed / smoothed.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- one-coin and MACE


def _vote_posterior(post: FloatArray, votes: VoteTable) -> FloatArray:
    """(V,) posterior of each vote's own label, ``post[item, label]``."""
    k = post.shape[1]
    return post.reshape(-1)[votes.item * k + votes.label]


def _two_part_estep(
    votes: VoteTable, class_prior: FloatArray, base: FloatArray, bonus: FloatArray
) -> tuple[FloatArray, float]:
    """Posteriors for models where log P(l | y) = base_v + bonus_v * [l == y]."""
    k = class_prior.shape[0]
    n = votes.num_items
    flat = np.bincount(votes.item * k + votes.label, weights=bonus, minlength=n * k)
    scores = flat.reshape(n, k).astype(np.float64, copy=False)
    scores += np.bincount(votes.item, weights=base, minlength=n)[:, None]
    scores += np.log(class_prior)
    ll = _normalise_log_(scores)
    return scores, ll


def one_coin(
    votes: VoteTable,
    *,
    num_classes: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    prior_strength: float = 2.0,
    class_prior: ClassPrior = "uniform",
) -> Aggregate:
    """One-coin Dawid–Skene: each worker has one accuracy; errors are spread evenly.

    P(worker m answers l | true y) = p_m if l == y else (1 - p_m) / (K - 1). Accuracies are
    shrunk toward the pooled accuracy with ``prior_strength`` pseudo-votes.

    The class prior is uniform by default: with an estimated prior, a crowd where a few workers
    always give the same answer has a degenerate maximum (every item is that class, those
    workers are perfect, everyone else is at chance), because one accuracy per worker cannot
    describe "always answers 0" any other way.

    Args:
        votes: the vote table.
        num_classes: K >= 2.
        max_iter: at most this many EM iterations.
        tol: stop when the mean per-vote log-likelihood changes by less than this.
        prior_strength: pseudo-votes of shrinkage toward the pooled accuracy (> 0).
        class_prior: ``"uniform"`` keeps 1/K; ``"estimate"`` re-estimates it each iteration.
    Returns:
        Aggregate with labels (N,), probs (N, K), class_prior (K,), worker_accuracy (M,).
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2, bad options.
    """
    k = _check_votes(votes, num_classes)
    _check_em(max_iter, tol)
    strength = _check_positive("prior_strength", prior_strength)
    if class_prior not in ("uniform", "estimate"):
        raise ValueError(f"class_prior: expected 'uniform' or 'estimate', got {class_prior!r}")
    m = votes.num_workers
    post, voted = _shares(_vote_counts(votes, k))
    post[~voted] = 0.0
    n_voted = int(voted.sum())
    unvoted = np.flatnonzero(~voted)
    n_by_worker = np.bincount(votes.worker, minlength=m).astype(np.float64)

    prev = -np.inf
    converged = False
    it = 0
    acc = np.full(m, 0.5)
    pi = np.full(k, 1.0 / k)
    while it < max_iter:
        it += 1
        hit = _vote_posterior(post, votes)
        correct = np.bincount(votes.worker, weights=hit, minlength=m)
        pooled = correct.sum() / votes.num_votes
        acc = np.clip((correct + strength * pooled) / (n_by_worker + strength), _EPS, 1 - _EPS)
        if class_prior == "estimate":
            pi = (post.sum(axis=0) + 1.0) / (n_voted + k)
        log_off = np.log((1.0 - acc) / (k - 1))
        bonus = (np.log(acc) - log_off)[votes.worker]
        post, ll = _two_part_estep(votes, pi, log_off[votes.worker], bonus)
        converged, prev = _step_end(post, ll, votes, unvoted, prev, tol)
        if converged:
            break
    return _finish(
        post,
        _settle(post, unvoted, k),
        "one_coin",
        n_iter=it,
        converged=converged,
        class_prior=pi,
        worker_accuracy=acc,
    )


def _step_end(post, ll: float, votes: VoteTable, unvoted, prev: float, tol: float):
    """End of one EM step of the one-coin models: whether the mean per-vote log-likelihood
    moved by less than ``tol``, and that likelihood (items without votes are kept out of the
    next M-step)."""
    ll /= votes.num_votes
    post[unvoted] = 0.0
    return abs(ll - prev) < tol, ll


def _settle(post, unvoted, k: int):
    """Final labels: items without votes get a uniform posterior and label -1."""
    post[unvoted] = 1.0 / k
    labels = np.argmax(post, axis=1).astype(np.int64)
    labels[unvoted] = -1
    return labels


def mace(
    votes: VoteTable,
    *,
    num_classes: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    competence_prior: tuple[float, float] = (2.0, 1.0),
    strategy_smoothing: float = 1.0,
) -> Aggregate:
    """MACE (Hovy et al., 2013): each worker either knows the answer or spams.

    With probability theta_m the worker gives the true label; otherwise they answer from their own
    spamming distribution xi_m (K,). So P(l | y) = theta_m [l == y] + (1 - theta_m) xi_m[l].
    Fitted by EM with MAP pseudo-counts instead of MACE's variational Bayes.

    Args:
        votes: the vote table.
        num_classes: K >= 2.
        max_iter: at most this many EM iterations.
        tol: stop when the mean per-vote log-likelihood changes by less than this.
        competence_prior: (a, b) pseudo-counts of competent / spamming votes per worker.
        strategy_smoothing: pseudo-count added to every label of the spamming distribution.
    Returns:
        Aggregate with labels (N,), probs (N, K), class_prior (K,), worker_accuracy (M,) =
        competence theta_m, worker_strategy (M, K) = xi_m.
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2, bad options.
    """
    k = _check_votes(votes, num_classes)
    _check_em(max_iter, tol)
    if len(competence_prior) != 2:
        raise ValueError(f"competence_prior: expected a pair (a, b), got {competence_prior!r}")
    a0 = _check_positive("competence_prior[0]", competence_prior[0], allow_zero=True)
    b0 = _check_positive("competence_prior[1]", competence_prior[1], allow_zero=True)
    delta = _check_positive("strategy_smoothing", strategy_smoothing)
    m = votes.num_workers
    post, voted = _shares(_vote_counts(votes, k))
    post[~voted] = 0.0
    n_voted = int(voted.sum())
    unvoted = np.flatnonzero(~voted)
    n_by_worker = np.bincount(votes.worker, minlength=m).astype(np.float64)
    wl = votes.worker * k + votes.label

    theta = np.full(m, 0.5)
    xi = np.full((m, k), 1.0 / k)
    class_prior = np.full(k, 1.0 / k)
    prev = -np.inf
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        th = theta[votes.worker]
        spam_l = (1.0 - th) * xi.reshape(-1)[wl]
        competent = _vote_posterior(post, votes) * th / (th + spam_l)
        spam = 1.0 - competent
        theta = (np.bincount(votes.worker, weights=competent, minlength=m) + a0) / (
            n_by_worker + a0 + b0
        )
        theta = np.clip(theta, _EPS, 1 - _EPS)
        xi = np.bincount(wl, weights=spam, minlength=m * k).reshape(m, k) + delta
        xi /= xi.sum(axis=1, keepdims=True)
        class_prior = (post.sum(axis=0) + 1.0) / (n_voted + k)
        th = theta[votes.worker]
        spam_l = (1.0 - th) * xi.reshape(-1)[wl]
        base = np.log(spam_l)
        post, ll = _two_part_estep(votes, class_prior, base, np.log(th + spam_l) - base)
        converged, prev = _step_end(post, ll, votes, unvoted, prev, tol)
        if converged:
            break
    return _finish(
        post,
        _settle(post, unvoted, k),
        "mace",
        n_iter=it,
        converged=converged,
        class_prior=class_prior,
        worker_accuracy=theta,
        worker_strategy=xi,
    )
