"""Detectors over out-of-sample predicted probabilities: confident learning and low confidence.

Confident learning is written from Northcutt, Jiang & Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels" (JAIR 2021).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from curation.engine._checks import (
    as_labels,
    as_probs,
    check_choice,
    check_fraction,
    check_positive_int,
    check_same_length,
)
from curation.engine.issues import (
    ConfidentLearningIssues,
    LabelIssues,
    best_other,
    num_classes_for,
    rank_flagged,
    top_n,
)

CLFilter = Literal["prune_by_noise_rate", "prune_by_class", "both", "cl_off_diagonal"]
RankBy = Literal["self_confidence", "normalized_margin"]

_CL_FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "cl_off_diagonal")
_RANK_BY = ("self_confidence", "normalized_margin")
# Tolerance for "probability at least the class threshold", so an item whose probability equals
# its class mean up to float rounding still counts as confident.
_THRESHOLD_TOL = 1e-6


def class_thresholds(pred_probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class thresholds t_j = mean of p_j over items labelled j; (K,) float64, inf if none."""
    sums = np.zeros(num_classes)
    np.add.at(sums, labels, pred_probs[np.arange(labels.size), labels])
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)


def _round_rows(matrix: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row to integers summing to totals[row] (largest remainder first)."""
    floors = np.floor(matrix)
    out = floors.astype(np.int64)
    missing = totals.astype(np.int64) - out.sum(axis=1)
    remainders = matrix - floors
    for row in np.flatnonzero(missing > 0):
        top = np.argsort(-remainders[row], kind="stable")[: missing[row]]
        out[row, top] += 1
    return out


def confident_joint(
    pred_probs: np.ndarray, labels: np.ndarray, *, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count the confident joint of given and likely-true labels.

    An item is confidently of class j when p_j >= t_j; if several classes pass, the most
    probable of them counts; an item passing none is left out.

    Args:
        pred_probs: (N, K) float, out-of-sample predicted probabilities, rows sum to 1.
        labels: (N,) int, given labels in 0..K-1.
        num_classes: K; defaults to pred_probs' width.

    Returns:
        confident_joint (K, K) int64, calibrated_joint (K, K) float64 (sums to 1),
        thresholds (K,) float64, and true_guess (N,) int64 (-1 = not confident of any class).

    Raises:
        ValueError: if shapes disagree, probabilities are not finite rows summing to 1, or a label
            is outside 0..K-1.
    """
    probs = as_probs(pred_probs)
    given = as_labels(labels)
    check_same_length(probs.shape[0], given, name="labels", expected_from="pred_probs")
    k = num_classes_for(given, num_classes, probs.shape[1])
    thresholds = class_thresholds(probs, given, k)
    confident = probs >= thresholds[None, :] - _THRESHOLD_TOL
    guess = np.where(confident, probs, -np.inf).argmax(axis=1)
    guess = np.where(confident.any(axis=1), guess, -1).astype(np.int64)
    keep = guess >= 0
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (given[keep], guess[keep]), 1)
    label_counts = np.bincount(given, minlength=k).astype(np.float64)
    row_sums = joint.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        calibrated = np.where(row_sums > 0, joint / np.maximum(row_sums, 1), 0.0)
    calibrated = calibrated * label_counts[:, None]
    total = calibrated.sum()
    calibrated = calibrated / total if total > 0 else calibrated
    return joint, calibrated, thresholds, guess


def _prune_counts(
    calibrated: np.ndarray, label_counts: np.ndarray, *, frac_noise: float, min_per_class: int
) -> np.ndarray:
    """Integer counts to prune per (given i, true j), at most n_i - min_per_class per row."""
    scaled = calibrated * label_counts.sum()
    counts = _round_rows(scaled, np.rint(scaled.sum(axis=1)))
    np.fill_diagonal(counts, 0)
    counts = np.rint(counts * frac_noise).astype(np.int64)
    allowed = np.maximum(label_counts.astype(np.int64) - min_per_class, 0)
    off = counts.sum(axis=1)
    for row in np.flatnonzero(off > allowed):
        shrunk = counts[row] * (allowed[row] / off[row])
        counts[row] = _round_rows(shrunk[None, :], np.array([allowed[row]]))[0]
    return counts


def find_issues_confident_learning(
    pred_probs: np.ndarray,
    labels: np.ndarray,
    *,
    filter_by: CLFilter = "prune_by_noise_rate",
    rank_by: RankBy = "self_confidence",
    frac_noise: float = 1.0,
    min_examples_per_class: int = 1,
    require_argmax_disagreement: bool = True,
    num_classes: int | None = None,
) -> ConfidentLearningIssues:
    """Flag label errors by confident learning on out-of-sample predicted probabilities.

    The calibrated confident joint estimates, for each given label i and true label j != i, how
    many items labelled i are really j. "prune_by_noise_rate" flags, for each such (i, j), that
    many items labelled i with the largest margin p_j - p_i; "prune_by_class" flags, for each i,
    as many items labelled i as its off-diagonal row sum, lowest p_i first; "both" is the
    intersection of the two; "cl_off_diagonal" flags the items counted off the diagonal of the
    confident joint itself.

    Args:
        pred_probs: (N, K) float, out-of-sample predicted probabilities (e.g. from K-fold cross
            validation), rows sum to 1.
        labels: (N,) int, given labels in 0..K-1 (any integer dtype, e.g. uint16).
        filter_by: pruning rule, see above.
        rank_by: order of `ranked` and meaning of `score`: "self_confidence" scores 1 - p_given;
            "normalized_margin" scores (1 - (p_given - max_{k != given} p_k)) / 2.
        frac_noise: share of the estimated error counts to flag, in (0, 1].
        min_examples_per_class: never prune a given class below this many items.
        require_argmax_disagreement: leave unflagged any item whose given label is the model's
            top prediction.
        num_classes: K; must match pred_probs' width when given.

    Returns:
        ConfidentLearningIssues.

    Raises:
        ValueError: on bad shapes, dtypes, non-finite or unnormalised probabilities, labels out
            of range, or an unknown option.
    """
    check_choice(filter_by, name="filter_by", choices=_CL_FILTERS)
    check_choice(rank_by, name="rank_by", choices=_RANK_BY)
    frac_noise = check_fraction(frac_noise, name="frac_noise")
    min_examples_per_class = check_positive_int(
        min_examples_per_class, name="min_examples_per_class", minimum=0
    )
    probs = as_probs(pred_probs)
    given = as_labels(labels)
    check_same_length(probs.shape[0], given, name="labels", expected_from="pred_probs")
    joint, calibrated, thresholds, guess = confident_joint(probs, given, num_classes=num_classes)
    k = probs.shape[1]
    n = given.size
    label_counts = np.bincount(given, minlength=k)

    if filter_by == "cl_off_diagonal":
        flagged = (guess >= 0) & (guess != given)
    else:
        prune = _prune_counts(
            calibrated, label_counts, frac_noise=frac_noise, min_per_class=min_examples_per_class
        )
        by_noise = np.zeros(n, dtype=bool)
        by_class = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(prune.sum(axis=1) > 0):
            members = np.flatnonzero(given == i)
            if filter_by in ("prune_by_noise_rate", "both"):
                for j in np.flatnonzero(prune[i]):
                    margin = probs[members, j] - probs[members, i]
                    by_noise[members[top_n(margin, int(prune[i, j]))]] = True
            if filter_by in ("prune_by_class", "both"):
                chosen = top_n(-probs[members, i], int(prune[i].sum()))
                by_class[members[chosen]] = True
        flagged = {
            "prune_by_noise_rate": by_noise,
            "prune_by_class": by_class,
            "both": by_noise & by_class,
        }[filter_by]
    if require_argmax_disagreement:
        flagged = flagged & (probs.argmax(axis=1) != given)

    rows = np.arange(n)
    self_conf = probs[rows, given]
    suggested = best_other(probs, given)
    if rank_by == "self_confidence":
        score = 1.0 - self_conf
    else:
        score = (1.0 - (self_conf - probs[rows, suggested])) / 2.0
    return ConfidentLearningIssues(
        flagged=flagged,
        score=score,
        suggested=suggested,
        ranked=rank_flagged(flagged, score),
        method="confident_learning",
        confident_joint=joint,
        calibrated_joint=calibrated,
        thresholds=thresholds,
    )


def find_issues_low_confidence(
    pred_probs: np.ndarray, labels: np.ndarray, *, fraction: float = 0.1
) -> LabelIssues:
    """Flag the items whose given label has the lowest predicted probability.

    Args:
        pred_probs: (N, K) float, predicted probabilities, rows sum to 1.
        labels: (N,) int, given labels in 0..K-1.
        fraction: share of items to flag, in [0, 1]; round(fraction * N) items are flagged.

    Returns:
        LabelIssues with score 1 - p_given.

    Raises:
        ValueError: on bad shapes, probabilities, labels, or fraction outside [0, 1].
    """
    fraction = check_fraction(fraction, name="fraction")
    probs = as_probs(pred_probs)
    given = as_labels(labels, num_classes=probs.shape[1])
    check_same_length(probs.shape[0], given, name="labels", expected_from="pred_probs")
    n = given.size
    score = 1.0 - probs[np.arange(n), given]
    flagged = np.zeros(n, dtype=bool)
    flagged[top_n(score, int(round(fraction * n)))] = True
    return LabelIssues(
        flagged=flagged,
        score=score,
        suggested=best_other(probs, given),
        ranked=rank_flagged(flagged, score),
        method="low_confidence",
    )
