"""Vote tables, results, answer codes and the argument checks every aggregation module shares.

Shape letters: N items, M workers, K classes, V votes. Nothing here aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
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
# Review answers (int codes; names in REVIEW_ANSWERS): "both" keeps the given label,
# "neither" names no class.
REVIEW_GIVEN, REVIEW_SUGGESTED, REVIEW_BOTH, REVIEW_NEITHER = 0, 1, 2, 3
REVIEW_ANSWERS = ("given", "suggested", "both", "neither")

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
