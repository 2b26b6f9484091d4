"""Turning crowd votes into labels: plain functions over numpy arrays, no Django.

Shape letters: N items, M workers, K classes, V votes, C candidates shown per complementary vote.
Every method that produces labels returns an :class:`Aggregate`; ``-1`` in a label array means
"unresolved" (no votes, a tie left unresolved, or no consensus).

Conventions shared by all methods:

* Items with no votes get label ``-1`` and uniform probabilities ``1/K`` (or the supplied prior,
  where a method takes one): there is no human evidence about them.
* The EM methods (:func:`dawid_skene`, :func:`one_coin`, :func:`mace`) start from the majority-vote
  shares and stop when the mean per-vote log-likelihood changes by less than ``tol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

Tie = Literal["random", "unresolved", "agreement"]
ConfusionPrior = Literal["dirichlet", "pooled", "none"]
DurationsPer = Literal["vote", "worker"]
ClassPrior = Literal["uniform", "estimate"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Verify answers and item statuses (int codes; names in VERIFY_ANSWERS / STATUS_NAMES).
ANSWER_CORRECT, ANSWER_UNSURE, ANSWER_WRONG = 0, 1, 2
VERIFY_ANSWERS = ("correct", "unsure", "wrong")
STATUS_NONE, STATUS_CLEAN, STATUS_NOISY, STATUS_AMBIGUOUS = -1, 0, 1, 2
STATUS_NAMES = ("clean", "noisy", "ambiguous")

_EPS = 1e-10


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True, eq=False)
class VoteTable:
    """One row per vote: which worker gave which label to which item.

    Attributes:
        item: (V,) int64, item index in 0..N-1.
        worker: (V,) int64, worker index in 0..M-1.
        label: (V,) int64, class index (checked against K by each method).
        num_items: N; items with no row in the table have no votes.
        num_workers: M.
    """

    item: IntArray
    worker: IntArray
    label: IntArray
    num_items: int
    num_workers: int

    def __post_init__(self) -> None:
        for name in ("item", "worker", "label"):
            object.__setattr__(self, name, _int_vector(name, getattr(self, name)))
        n = self.item.shape[0]
        for name in ("worker", "label"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(
                    f"{name}: length {getattr(self, name).shape[0]} differs from item length {n}"
                )
        for name, bound in (("num_items", self.item), ("num_workers", self.worker)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
            object.__setattr__(self, name, int(value))
            if n and int(bound.max()) >= int(value):
                raise ValueError(
                    f"{'item' if name == 'num_items' else 'worker'}: index {int(bound.max())} "
                    f"out of range for {name}={int(value)}"
                )
        if n and int(self.label.min()) < 0:
            raise ValueError(f"label: negative label {int(self.label.min())}")

    @classmethod
    def from_arrays(
        cls,
        item: ArrayLike,
        worker: ArrayLike,
        label: ArrayLike,
        *,
        num_items: int | None = None,
        num_workers: int | None = None,
    ) -> VoteTable:
        """Build a table from three equal-length non-negative int arrays.

        Args:
            item: (V,) ints, item index per vote.
            worker: (V,) ints, worker index per vote.
            label: (V,) ints, class chosen per vote.
            num_items: N; defaults to ``max(item) + 1`` (0 for an empty table).
            num_workers: M; defaults to ``max(worker) + 1``.
        Raises:
            ValueError: on lengths that differ, negative or non-integer values, or an index at or
                above ``num_items`` / ``num_workers``.
        """
        it = _int_vector("item", item)
        wk = _int_vector("worker", worker)
        lb = _int_vector("label", label)
        for name, arr in (("item", it), ("worker", wk), ("label", lb)):
            if arr.size and int(arr.min()) < 0:
                raise ValueError(f"{name}: negative value {int(arr.min())}")
        if num_items is None:
            num_items = int(it.max()) + 1 if it.size else 0
        if num_workers is None:
            num_workers = int(wk.max()) + 1 if wk.size else 0
        return cls(it, wk, lb, num_items, num_workers)

    @property
    def num_votes(self) -> int:
        """V, the number of rows."""
        return int(self.item.shape[0])


@dataclass(frozen=True, eq=False)
class Aggregate:
    """Labels inferred from votes, with per-item posteriors and (per method) worker parameters.

    Attributes:
        labels: (N,) int64; ``-1`` = unresolved (no votes, unresolved tie, no consensus).
        probs: (N, K) float64 rows summing to 1; uniform for items with no votes.
        confidence: (N,) float64, ``probs.max(axis=1)``.
        method: name of the method that produced it.
        n_iter: EM iterations run (0 for non-iterative rules).
        converged: False when an EM method stopped at ``max_iter``.
        class_prior: (K,) float64 estimated class frequencies, or None.
        worker_confusion: (M, K, K) float64, ``[m, true, given]`` = P(worker m answers ``given``
            | true class), rows summing to 1; Dawid–Skene only.
        worker_accuracy: (M,) float64; one-coin accuracy, MACE competence (1 - spamming
            probability), or smoothed gold accuracy; None where the method has none.
        worker_weight: (M,) float64 vote weight (gold-weighted majority), or None.
        worker_strategy: (M, K) float64 MACE answer distribution when spamming, or None.
    """

    labels: IntArray
    probs: FloatArray
    confidence: FloatArray
    method: str
    n_iter: int = 0
    converged: bool = True
    class_prior: FloatArray | None = None
    worker_confusion: FloatArray | None = None
    worker_accuracy: FloatArray | None = None
    worker_weight: FloatArray | None = None
    worker_strategy: FloatArray | None = None


@dataclass(frozen=True, eq=False)
class VerifySummary:
    """Per-item verify counts, statuses under two rules, and the vote-pattern distribution.

    Attributes:
        n_votes, n_correct, n_unsure, n_wrong: (N,) int64 counts.
        majority_status: (N,) int8; ``STATUS_CLEAN`` if "correct" has a strict majority,
            ``STATUS_NOISY`` if "wrong" has a strict majority, else ``STATUS_AMBIGUOUS``;
            ``STATUS_NONE`` (-1) for items with no votes.
        strict_status: (N,) int8; clean only when every vote is "correct"; otherwise noisy if
            "wrong" has a strict majority, else ambiguous; -1 for items with no votes.
        distribution: percentages over items with at least one vote, keys ``all_correct``,
            ``two_correct_one_unsure``, ``two_correct_one_wrong``, ``else``. With n votes the two
            middle keys mean "n-1 correct and one unsure / wrong" (2 + 1 for three votes).
        n_items_voted: items with at least one vote (the denominator of ``distribution``).
    """

    n_votes: IntArray
    n_correct: IntArray
    n_unsure: IntArray
    n_wrong: IntArray
    majority_status: NDArray[np.int8]
    strict_status: NDArray[np.int8]
    distribution: dict[str, float]
    n_items_voted: int

    def status_names(self, rule: Literal["majority", "strict"] = "majority") -> list[str]:
        """Statuses as strings (``""`` for items with no votes)."""
        codes = self.majority_status if rule == "majority" else self.strict_status
        return ["" if c < 0 else STATUS_NAMES[c] for c in codes.tolist()]


@dataclass(frozen=True, eq=False)
class SelectSummary:
    """Selection shares from "pick the images that match" tasks.

    Attributes:
        share: (N,) float64 fraction of viewers who selected the image; NaN when never seen.
        n_seen: (N,) int64 workers who saw the image.
        n_selected: (N,) int64 workers who selected it.
        clean: (N,) bool, ``n_seen > 0 and share >= threshold``.
    """

    share: FloatArray
    n_seen: IntArray
    n_selected: IntArray
    clean: BoolArray


@dataclass(frozen=True, eq=False)
class WorkerQuality:
    """Per-worker quality figures and spammer flags.

    Attributes:
        n_votes: (M,) int64 votes cast.
        n_gold: (M,) int64 votes cast on gold items.
        gold_accuracy: (M,) float64 share of gold votes equal to the gold label; NaN if none.
        agreement: (M,) float64 share of votes equal to the consensus label, over items whose
            consensus is resolved; NaN if none.
        confusion: (M, K, K) int64 counts ``[m, consensus, given]`` over resolved items.
        median_seconds: (M,) float64 median time per vote; NaN when unknown.
        top_label_share: (M,) float64 share of the worker's votes on their most used label.
        too_fast: (M,) bool, median time below ``fast_floor_s``.
        one_answer: (M,) bool, at least ``min_votes`` votes and ``top_label_share`` at or above
            ``one_answer_share``.
        spammer: (M,) bool, ``too_fast | one_answer``.
    """

    n_votes: IntArray
    n_gold: IntArray
    gold_accuracy: FloatArray
    agreement: FloatArray
    confusion: IntArray
    median_seconds: FloatArray
    top_label_share: FloatArray
    too_fast: BoolArray
    one_answer: BoolArray
    spammer: BoolArray


# --------------------------------------------------------------------------- validation helpers


def _int_vector(name: str, value: ArrayLike) -> IntArray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes: expected an int, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes: need at least 2 classes to aggregate, got {num_classes}")
    return int(num_classes)


def _check_votes(votes: VoteTable, num_classes: int) -> int:
    """Validate the table against K; return K."""
    k = _check_num_classes(num_classes)
    if not isinstance(votes, VoteTable):
        raise ValueError(f"votes: expected a VoteTable, got {type(votes).__name__}")
    if votes.num_votes == 0:
        raise ValueError("votes: empty vote table (V=0); nothing to aggregate")
    top = int(votes.label.max())
    if top >= k:
        raise ValueError(f"votes.label: label {top} out of range 0..{k - 1} (num_classes={k})")
    return k


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(
            f"{name}: expected a {'non-negative' if allow_zero else 'positive'} "
            f"finite number, got {value!r}"
        )
    return v


def _check_em(max_iter: int, tol: float) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter: expected an int >= 1, got {max_iter!r}")
    _check_positive("tol", tol, allow_zero=True)


def _check_index(name: str, arr: IntArray, bound: int, bound_name: str) -> None:
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= bound):
        bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
        raise ValueError(f"{name}: value {bad} out of range 0..{bound - 1} ({bound_name}={bound})")


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- shared kernels


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


# --------------------------------------------------------------------------- simple rules


def majority_vote(
    votes: VoteTable, *, num_classes: int, tie: Tie = "random", seed: int = 0
) -> Aggregate:
    """Plurality vote per item.

    Args:
        votes: the vote table; item (V,), worker (V,), label (V,) int64.
        num_classes: K >= 2; labels must lie in 0..K-1.
        tie: ``"random"`` picks one of the tied classes with a seeded generator;
            ``"unresolved"`` sets the label to -1; ``"agreement"`` prefers the tied class whose
            voters agree most often with the plurality on untied items (remaining ties random).
        seed: seed for the tie-breaking generator.
    Returns:
        Aggregate with labels (N,) int64 (-1 = no votes or unresolved tie) and probs (N, K) =
        vote shares (uniform for items with no votes).
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2, unknown ``tie``.
    """
    k = _check_votes(votes, num_classes)
    _check_tie(tie)
    counts = _vote_counts(votes, k)
    probs, voted = _shares(counts)
    if tie == "agreement":
        return _finish(
            probs,
            _pick_max(_agreement_tiebreak(votes, counts), voted, "random", seed),
            "majority_vote",
        )
    return _finish(probs, _pick_max(counts, voted, tie, seed), "majority_vote")


def consensus(votes: VoteTable, *, num_classes: int, k: int, n: int | None = None) -> Aggregate:
    """k-of-n consensus: an item gets a label only when at least ``k`` votes agree on it.

    Args:
        votes: the vote table.
        num_classes: K >= 2.
        k: votes that must agree (e.g. 3 for "3 of 5", 5 for "5 of 5").
        n: votes each item is meant to have. When given, items with fewer than ``n`` votes stay
            unresolved (their vote is not complete) and an item with more than ``n`` votes is an
            error.
    Returns:
        Aggregate with labels (N,) int64: the agreed class, or -1 when no class reaches ``k``,
        more than one does, the item has fewer than ``n`` votes, or none at all. probs (N, K)
        are vote shares.
    Raises:
        ValueError: bad table or K; ``k < 1``; ``n < k``; an item with more than ``n`` votes.
    """
    kk = _check_votes(votes, num_classes)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer) or n < k):
        raise ValueError(f"n: expected an int >= k={k}, got {n!r}")
    counts = _vote_counts(votes, kk)
    probs, voted = _shares(counts)
    total = counts.sum(axis=1)
    if n is not None and total.size and int(total.max()) > n:
        worst = int(np.argmax(total))
        raise ValueError(f"n: item {worst} has {int(total[worst])} votes, more than n={n}")
    reached = counts >= k
    ok = reached.sum(axis=1) == 1
    if n is not None:
        ok &= total >= n
    labels = np.where(ok, np.argmax(counts, axis=1), -1).astype(np.int64)
    return _finish(probs, labels, f"consensus_{k}_of_{n if n is not None else 'any'}")


# --------------------------------------------------------------------------- Dawid–Skene


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

    # A[i, m*K + l] = number of times worker m answered l on item i. The loop works in float32:
    # it halves the memory traffic of the two products, and EM needs no more precision.
    cols = votes.worker * k + votes.label
    ones = np.ones(n_votes, dtype=np.float32)
    a = sp.csr_matrix((ones, (votes.item, cols)), shape=(n_items, n_workers * k))
    a.sum_duplicates()
    a_t = a.T  # CSC: the product walks items in order, which keeps reads of post sequential
    counts0 = _vote_counts(votes, k)
    post64, voted = _shares(counts0)
    # Flat index of each item's majority class: a cheap reference score for the softmax shift.
    ref = np.arange(n_items) * k + np.argmax(counts0, axis=1)
    del counts0
    post = post64.astype(np.float32)
    del post64
    post[~voted] = 0.0
    n_voted = int(voted.sum())
    unvoted = np.flatnonzero(~voted)
    ones_n = np.ones(n_items, dtype=np.float32)

    prev = -np.inf
    converged = False
    it = 0
    log_conf = np.zeros((n_workers * k, k))
    class_prior = np.full(k, 1.0 / k)
    while it < max_iter:
        it += 1
        # M-step: counts[m, given, true] = sum of posteriors of votes (m, given).
        counts = np.asarray(a_t @ post, dtype=np.float64).reshape(n_workers, k, k)
        class_prior = (np.asarray(ones_n @ post, dtype=np.float64) + 1.0) / (n_voted + k)
        conf = _ds_confusion(counts, prior, strength)  # [m, given, true]
        log_conf = np.log(conf).reshape(n_workers * k, k)
        # E-step: log-posterior = log prior + sum of log P(given | true) over the item's votes.
        log_conf32 = log_conf.astype(np.float32)
        log_prior = np.log(class_prior).astype(np.float32)
        post = np.asarray(a @ log_conf32)
        post += log_prior
        # Shift each row by an upper bound of its maximum (best class per vote), which needs
        # one sparse mat-vec instead of a row-wise max over (N, K).
        upper = np.asarray(a @ log_conf32.max(axis=1)) + log_prior.max()
        ll = _softmax_shifted_(post, upper, ref) / n_votes
        post[unvoted] = 0.0
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    probs = post.astype(np.float64)
    del post
    probs[unvoted] = 1.0 / k
    probs /= probs.sum(axis=1, keepdims=True)
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


def _softmax_shifted_(
    scores: NDArray[np.float32], upper: NDArray[np.float32], ref: IntArray
) -> float:
    """Softmax of finite (N, K) log-scores in place, shifted by ``upper`` >= each row's max.

    ``ref`` (N,) flat indices name one class per row; rows whose upper bound lies far above that
    class's score (where exp could underflow in float32) are shifted by their exact maximum.
    Returns the summed log-normaliser.
    """
    loose = np.flatnonzero(upper - scores.reshape(-1)[ref] > 60.0)
    if loose.size:
        upper[loose] = scores[loose].max(axis=1)
    scores -= upper[:, None]
    np.exp(scores, out=scores)
    total = scores @ np.ones(scores.shape[1], dtype=scores.dtype)
    scores /= total[:, None]
    return float(np.sum(upper, dtype=np.float64) + np.sum(np.log(total), dtype=np.float64))


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
        ll /= votes.num_votes
        post[unvoted] = 0.0
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    post[unvoted] = 1.0 / k
    labels = np.argmax(post, axis=1).astype(np.int64)
    labels[unvoted] = -1
    return _finish(
        post,
        labels,
        "one_coin",
        n_iter=it,
        converged=converged,
        class_prior=pi,
        worker_accuracy=acc,
    )


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
        ll /= votes.num_votes
        post[unvoted] = 0.0
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    post[unvoted] = 1.0 / k
    labels = np.argmax(post, axis=1).astype(np.int64)
    labels[unvoted] = -1
    return _finish(
        post,
        labels,
        "mace",
        n_iter=it,
        converged=converged,
        class_prior=class_prior,
        worker_accuracy=theta,
        worker_strategy=xi,
    )


# --------------------------------------------------------------------------- gold-weighted


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


# --------------------------------------------------------------------------- complementary votes


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


# --------------------------------------------------------------------------- verify and select


def verify_summary(item: ArrayLike, answer: ArrayLike, *, num_items: int) -> VerifySummary:
    """Summarise verify votes (0 = correct, 1 = unsure, 2 = wrong) per item.

    Args:
        item: (V,) int item index per vote, in 0..N-1.
        answer: (V,) int answer code per vote, in {0, 1, 2}.
        num_items: N.
    Returns:
        VerifySummary with per-item counts, majority and strict statuses (int8, -1 = no votes)
        and the vote-pattern distribution in percent.
    Raises:
        ValueError: lengths differ, an item out of range, an answer outside {0, 1, 2}.
    """
    n = _check_count("num_items", num_items)
    it = _int_vector("item", item)
    ans = _int_vector("answer", answer)
    if it.shape != ans.shape:
        raise ValueError(f"answer: length {ans.shape[0]} differs from item length {it.shape[0]}")
    _check_index("item", it, n, "num_items")
    _check_index("answer", ans, 3, "answer codes")
    counts = np.bincount(it * 3 + ans, minlength=n * 3).reshape(n, 3)
    c, u, w = counts[:, 0], counts[:, 1], counts[:, 2]
    total = counts.sum(axis=1)
    voted = total > 0

    majority = np.full(n, STATUS_AMBIGUOUS, dtype=np.int8)
    majority[2 * c > total] = STATUS_CLEAN
    majority[2 * w > total] = STATUS_NOISY
    majority[~voted] = STATUS_NONE
    strict = np.where(majority == STATUS_NOISY, STATUS_NOISY, STATUS_AMBIGUOUS).astype(np.int8)
    strict[voted & (c == total)] = STATUS_CLEAN
    strict[~voted] = STATUS_NONE

    all_c = voted & (c == total)
    one_u = voted & (c == total - 1) & (u == 1) & (total >= 2)
    one_w = voted & (c == total - 1) & (w == 1) & (total >= 2)
    n_voted = int(voted.sum())
    denom = max(n_voted, 1)
    dist = {
        "all_correct": 100.0 * int(all_c.sum()) / denom,
        "two_correct_one_unsure": 100.0 * int(one_u.sum()) / denom,
        "two_correct_one_wrong": 100.0 * int(one_w.sum()) / denom,
    }
    dist["else"] = 100.0 * (n_voted - int(all_c.sum() + one_u.sum() + one_w.sum())) / denom
    return VerifySummary(
        n_votes=total.astype(np.int64),
        n_correct=c.astype(np.int64),
        n_unsure=u.astype(np.int64),
        n_wrong=w.astype(np.int64),
        majority_status=majority,
        strict_status=strict,
        distribution=dist,
        n_items_voted=n_voted,
    )


def select_share(
    image: ArrayLike, selected: ArrayLike, *, num_images: int, threshold: float = 0.5
) -> SelectSummary:
    """Share of viewers who selected each image in "pick the matching images" tasks.

    Args:
        image: (V,) int image index per (worker, image) viewing, in 0..N-1.
        selected: (V,) bool, whether that worker selected the image.
        num_images: N.
        threshold: an image is clean when at least this share of its viewers selected it.
    Returns:
        SelectSummary with share (N,) float64 (NaN when never seen), n_seen (N,),
        n_selected (N,), clean (N,) bool.
    Raises:
        ValueError: lengths differ, an image out of range, ``selected`` not boolean,
            ``threshold`` outside [0, 1].
    """
    n = _check_count("num_images", num_images)
    img = _int_vector("image", image)
    sel = np.asarray(selected)
    if sel.shape != img.shape:
        raise ValueError(f"selected: shape {sel.shape} differs from image shape {img.shape}")
    if (
        sel.size
        and sel.dtype != np.bool_
        and (not np.issubdtype(sel.dtype, np.integer) or not np.isin(sel, (0, 1)).all())
    ):
        raise ValueError(f"selected: expected booleans, got dtype {sel.dtype}")
    th = float(threshold)
    if not 0.0 <= th <= 1.0:
        raise ValueError(f"threshold: expected a value in [0, 1], got {threshold!r}")
    _check_index("image", img, n, "num_images")
    seen = np.bincount(img, minlength=n)
    picked = np.bincount(img[sel.astype(bool)], minlength=n)
    share = np.full(n, np.nan)
    np.divide(picked, seen, out=share, where=seen > 0)
    clean = (seen > 0) & (np.nan_to_num(share, nan=-1.0) >= th)
    return SelectSummary(
        share=share, n_seen=seen.astype(np.int64), n_selected=picked.astype(np.int64), clean=clean
    )


# --------------------------------------------------------------------------- worker quality


def _group_median(group: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    """(n_groups,) median of ``values`` per group id; NaN for empty groups."""
    order = np.lexsort((values, group))
    g, x = group[order], values[order]
    count = np.bincount(g, minlength=n_groups)
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    out = np.full(n_groups, np.nan)
    has = count > 0
    lo = start[has] + (count[has] - 1) // 2
    hi = start[has] + count[has] // 2
    out[has] = 0.5 * (x[lo] + x[hi])
    return out


def worker_quality(
    votes: VoteTable,
    consensus_labels: ArrayLike,
    *,
    num_classes: int,
    gold_items: ArrayLike | None = None,
    gold_labels: ArrayLike | None = None,
    durations: ArrayLike | None = None,
    durations_per: DurationsPer = "vote",
    fast_floor_s: float = 1.0,
    one_answer_share: float = 0.9,
    min_votes: int = 10,
) -> WorkerQuality:
    """Per-worker accuracy, agreement, confusion, speed and spammer flags.

    Args:
        votes: the vote table.
        consensus_labels: (N,) int aggregated label per item (-1 = unresolved, skipped).
        num_classes: K >= 2.
        gold_items: (G,) int items with a known label, or None.
        gold_labels: (G,) int their labels.
        durations: seconds, (V,) per vote or (M,) per worker (see ``durations_per``), or None.
        durations_per: whether ``durations`` is per ``"vote"`` or per ``"worker"``.
        fast_floor_s: a median time per vote below this flags the worker as too fast.
        one_answer_share: share of one label that flags "one answer for everything" ...
        min_votes: ... among at least this many votes.
    Returns:
        WorkerQuality with (M,) arrays and confusion (M, K, K).
    Raises:
        ValueError: bad table or K, consensus of the wrong length or out of range, bad gold,
            durations of the wrong length or negative.
    """
    k = _check_votes(votes, num_classes)
    m, n = votes.num_workers, votes.num_items
    cons = _int_vector("consensus_labels", consensus_labels)
    if cons.shape != (n,):
        raise ValueError(f"consensus_labels: expected length {n}, got {cons.shape[0]}")
    if cons.size and (int(cons.min()) < -1 or int(cons.max()) >= k):
        bad = int(cons.min()) if int(cons.min()) < -1 else int(cons.max())
        raise ValueError(f"consensus_labels: value {bad} out of range -1..{k - 1}")
    if durations_per not in ("vote", "worker"):
        raise ValueError(f"durations_per: expected 'vote' or 'worker', got {durations_per!r}")
    floor = _check_positive("fast_floor_s", fast_floor_s, allow_zero=True)
    min_v = _check_count("min_votes", min_votes)

    n_votes = np.bincount(votes.worker, minlength=m).astype(np.int64)
    n_gold = np.zeros(m, dtype=np.int64)
    gold_acc = np.full(m, np.nan)
    if gold_items is not None or gold_labels is not None:
        if gold_items is None or gold_labels is None:
            raise ValueError("gold_labels: gold_items and gold_labels must be given together")
        gi, gl = _check_gold(gold_items, gold_labels, n, k)
        on_gold, hit = _gold_hits(votes, gi, gl)
        n_gold = np.bincount(votes.worker[on_gold], minlength=m).astype(np.int64)
        n_hit = np.bincount(votes.worker[hit], minlength=m)
        np.divide(n_hit, n_gold, out=gold_acc, where=n_gold > 0)

    c = cons[votes.item]
    resolved = c >= 0
    wr = votes.worker[resolved]
    confusion = np.bincount(
        (wr * k + c[resolved]) * k + votes.label[resolved], minlength=m * k * k
    ).reshape(m, k, k)
    n_res = np.bincount(wr, minlength=m)
    agree = np.full(m, np.nan)
    np.divide(np.trace(confusion, axis1=1, axis2=2), n_res, out=agree, where=n_res > 0)

    median = np.full(m, np.nan)
    if durations is not None:
        d = np.asarray(durations, dtype=np.float64)
        want = votes.num_votes if durations_per == "vote" else m
        if d.shape != (want,):
            raise ValueError(
                f"durations: expected shape ({want},) per {durations_per}, got {d.shape}"
            )
        if np.any(d[np.isfinite(d)] < 0):
            raise ValueError("durations: negative seconds")
        if durations_per == "worker":
            median = d.copy()
        else:
            ok = np.isfinite(d)
            median = _group_median(votes.worker[ok], d[ok], m)

    per_label = np.bincount(votes.worker * k + votes.label, minlength=m * k).reshape(m, k)
    top_share = np.full(m, np.nan)
    np.divide(per_label.max(axis=1), n_votes, out=top_share, where=n_votes > 0)
    too_fast = np.nan_to_num(median, nan=np.inf) < floor
    one_answer = (n_votes >= max(min_v, 1)) & (np.nan_to_num(top_share) >= one_answer_share)
    return WorkerQuality(
        n_votes=n_votes,
        n_gold=n_gold,
        gold_accuracy=gold_acc,
        agreement=agree,
        confusion=confusion.astype(np.int64),
        median_seconds=median,
        top_label_share=top_share,
        too_fast=too_fast,
        one_answer=one_answer,
        spammer=too_fast | one_answer,
    )


# --------------------------------------------------------------------------- methods by name

CATEGORICAL_METHODS = (
    "majority", "dawid_skene", "one_coin", "mace", "gold_weighted", "consensus", "strict",
)  # fmt: skip


def strict_vote(votes: VoteTable, *, num_classes: int) -> Aggregate:
    """Unanimity: an item gets a label only when every one of its votes names that class.

    Returns:
        Aggregate with labels (N,) (-1 = any disagreement or no votes), probs (N, K) vote shares.
    Raises:
        ValueError: as :func:`majority_vote`.
    """
    agg = majority_vote(votes, num_classes=num_classes, tie="unresolved")
    labels = np.where(agg.probs.max(axis=1) >= 1.0 - 1e-12, agg.labels, -1).astype(np.int64)
    return _finish(agg.probs, labels, "strict")


def aggregate_by_name(
    votes: VoteTable,
    method: str,
    *,
    num_classes: int,
    k: int = 3,
    n: int | None = None,
    gold_items: ArrayLike | None = None,
    gold_labels: ArrayLike | None = None,
    seed: int = 0,
) -> Aggregate:
    """Run one of :data:`CATEGORICAL_METHODS` on class votes; the one switch for command/service.

    Args:
        votes: the vote table (labels are class indices).
        method: a name in :data:`CATEGORICAL_METHODS`.
        num_classes: K >= 2.
        k, n: the ``consensus`` rule's k-of-n.
        gold_items, gold_labels: (G,) gold items and labels, needed by ``gold_weighted``.
        seed: tie-breaking seed for ``majority`` and ``gold_weighted``.
    Returns:
        The method's Aggregate.
    Raises:
        ValueError: an unknown method, ``gold_weighted`` without gold, or the method's own errors.
    """
    if method == "majority":
        return majority_vote(votes, num_classes=num_classes, seed=seed)
    if method == "dawid_skene":
        return dawid_skene(votes, num_classes=num_classes)
    if method == "one_coin":
        return one_coin(votes, num_classes=num_classes)
    if method == "mace":
        return mace(votes, num_classes=num_classes)
    if method == "consensus":
        return consensus(votes, num_classes=num_classes, k=k, n=n)
    if method == "strict":
        return strict_vote(votes, num_classes=num_classes)
    if method == "gold_weighted":
        if gold_items is None or gold_labels is None or np.asarray(gold_items).size == 0:
            raise ValueError("method: gold_weighted needs gold items with known labels")
        return gold_weighted_majority(
            votes,
            num_classes=num_classes,
            gold_items=gold_items,
            gold_labels=gold_labels,
            seed=seed,
        )
    raise ValueError(f"method: unknown {method!r}; use one of {', '.join(CATEGORICAL_METHODS)}")
