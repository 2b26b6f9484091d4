"""What every label-error detector returns, and the helpers they share to build it.

A result's common part is LabelIssues: flagged (N,) bool, score (N,) float64 (higher = more likely
a label error), suggested (N,) int64 (the most likely class other than the given label), and
ranked (F,) int64, the indices of the flagged items, most likely error first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.engine._checks import check_positive_int


@dataclass(frozen=True)
class LabelIssues:
    """Result of a detector.

    Attributes:
        flagged: (N,) bool, True where the given label is judged wrong.
        score: (N,) float64, higher = more likely a label error; comparable within one result.
        suggested: (N,) int64, the most likely class other than the given label.
        ranked: (F,) int64, indices of flagged items, most likely error first.
        method: name of the detector that produced it.
    """

    flagged: np.ndarray
    score: np.ndarray
    suggested: np.ndarray
    ranked: np.ndarray
    method: str


@dataclass(frozen=True)
class ConfidentLearningIssues(LabelIssues):
    """LabelIssues plus the confident-learning estimates.

    Attributes:
        confident_joint: (K, K) int64, C[i][j] = items given label i confidently of class j.
        calibrated_joint: (K, K) float64, C calibrated so row i sums to the count of label i,
            divided by N: an estimate of the joint P(given=i, true=j).
        thresholds: (K,) float64, t_j = mean predicted probability of class j over items labelled
            j (inf for a class nobody was given).
    """

    confident_joint: np.ndarray
    calibrated_joint: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class KnnVoteIssues(LabelIssues):
    """LabelIssues plus the kNN voting estimates.

    Attributes:
        frequency: (N,) float64, share of the rounds containing the item in which it was flagged.
        soft_labels: (N, K) float64, similarity-weighted neighbour votes over all items, rows
            sum to one.
        transition: (K, K) float64, estimated T[i][j] = P(given=j | true=i), mean over rounds.
        noise_rates: (K,) float64, estimated P(true != j | given=j), mean over rounds.
    """

    frequency: np.ndarray
    soft_labels: np.ndarray
    transition: np.ndarray
    noise_rates: np.ndarray


def rank_flagged(flagged: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Flagged indices sorted by keys descending (first key most significant), stable."""
    idx = np.flatnonzero(flagged)
    if idx.size == 0:
        return idx.astype(np.int64)
    # np.lexsort sorts by the last key first and ascending; negate for descending.
    order = np.lexsort(tuple(-key[idx] for key in reversed(keys)))
    return idx[order].astype(np.int64)


def best_other(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Argmax per row over classes other than the given label."""
    masked = scores.astype(np.float64, copy=True)
    masked[np.arange(labels.size), labels] = -np.inf
    return masked.argmax(axis=1).astype(np.int64)


def num_classes_for(labels: np.ndarray, num_classes: int | None, width: int | None) -> int:
    """K from the caller's num_classes, the probabilities' width, else max(labels) + 1 (>= 2)."""
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, name="num_classes", minimum=2)
    if width is not None:
        if num_classes is not None and num_classes != width:
            raise ValueError(
                f"num_classes must equal pred_probs' K={width}, got num_classes={num_classes}"
            )
        num_classes = width
    if num_classes is None:
        num_classes = max(2, int(labels.max()) + 1)
    if int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.max())}")
    return num_classes


def top_n(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n largest values (ties broken towards the earlier position)."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if n >= values.size:
        return np.arange(values.size)
    # Partition instead of a full sort: only the n chosen positions are ordered.
    kth = np.partition(values, values.size - n)[values.size - n]
    above = np.flatnonzero(values > kth)
    chosen = np.concatenate([above, np.flatnonzero(values == kth)[: n - above.size]])
    return chosen[np.lexsort((chosen, -values[chosen]))]
