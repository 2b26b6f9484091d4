"""Combining detectors (rank-averaged scores tempered by crowd evidence), and
find_label_issues, the single entry point that runs one detector by name (missing_inputs says
which inputs a method lacks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from curation.engine._checks import as_labels, check_choice, check_fraction
from curation.engine.confident import find_issues_confident_learning, find_issues_low_confidence
from curation.engine.issues import LabelIssues, rank_flagged

if TYPE_CHECKING:
    import torch

    from curation.engine.knn import DevicePreference

Require = Literal["any", "majority", "all"]
Method = Literal["confident_learning", "knn", "low_confidence", "combined"]

# The inputs each method of find_label_issues reads; it needs at least one of them.
_METHOD_INPUTS: dict[str, tuple[str, ...]] = {
    "confident_learning": ("pred_probs",),
    "knn": ("features",),
    "low_confidence": ("pred_probs",),
    "combined": ("pred_probs", "features"),
}


def combine_issues(
    results: Sequence[LabelIssues],
    labels: np.ndarray,
    *,
    require: Require = "majority",
    crowd_labels: np.ndarray | None = None,
    crowd_confidence: np.ndarray | None = None,
    crowd_threshold: float = 0.8,
    flag_on_crowd_disagreement: bool = True,
) -> LabelIssues:
    """Combine detectors by rank-averaging their scores, tempered by crowd evidence.

    The combined score is the mean over detectors of each item's score percentile (average rank
    / N, in (0, 1]). An item is flagged when "any", at least half ("majority") or "all" of the
    detectors flag it. Crowd evidence then overrides the models: where the aggregated crowd label
    equals the given label with confidence >= crowd_threshold the item is not flagged and its
    score shrinks by (1 - confidence); where it differs with such confidence the score rises to
    score + confidence * (1 - score), the crowd label becomes the suggestion and, if
    flag_on_crowd_disagreement, the item is flagged.

    Args:
        results: one or more LabelIssues over the same N items.
        labels: (N,) int, given labels.
        require: how many detectors must flag an item.
        crowd_labels: (N,) int, aggregated crowd label per item, -1 = no crowd label.
        crowd_confidence: (N,) float in [0, 1], the crowd label's confidence (e.g. its posterior
            or the share of agreeing votes); required with crowd_labels.
        crowd_threshold: confidence from which the crowd's view is taken as strong, in [0, 1].
        flag_on_crowd_disagreement: flag items whose crowd label strongly disagrees.

    Returns:
        LabelIssues with method "combined".

    Raises:
        ValueError: if results is empty or lengths differ, or crowd arrays are inconsistent.
    """
    check_choice(require, name="require", choices=("any", "majority", "all"))
    crowd_threshold = check_fraction(crowd_threshold, name="crowd_threshold")
    if len(results) == 0:
        raise ValueError("results must hold at least one LabelIssues, got none")
    given = as_labels(labels)
    n = given.size
    for pos, res in enumerate(results):
        if res.score.shape != (n,):
            raise ValueError(
                f"results[{pos}] ({res.method}) must cover N={n} items, got {res.score.shape[0]}"
            )
    from scipy.stats import rankdata  # only combining needs scipy

    percentiles = np.stack([rankdata(res.score, method="average") / n for res in results])
    votes = np.stack([res.flagged for res in results]).sum(axis=0)
    needed = {"any": 1, "majority": (len(results) + 1) // 2, "all": len(results)}[require]
    flagged = votes >= needed
    score = percentiles.mean(axis=0)
    best = percentiles.argmax(axis=0)
    suggested = np.stack([res.suggested for res in results])[best, np.arange(n)]

    if crowd_labels is not None or crowd_confidence is not None:
        if crowd_labels is None or crowd_confidence is None:
            raise ValueError("crowd_labels and crowd_confidence must be given together")
        crowd = np.asarray(crowd_labels)
        if crowd.dtype.kind not in "iu" or crowd.shape != (n,):
            raise ValueError(
                f"crowd_labels must be an (N={n},) int array, got {crowd.dtype} {crowd.shape}"
            )
        crowd = crowd.astype(np.int64)
        if crowd.min() < -1:
            raise ValueError(f"crowd_labels must be -1 (none) or a class, got {int(crowd.min())}")
        conf = np.asarray(crowd_confidence, dtype=np.float64)
        if conf.shape != (n,) or not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1:
            raise ValueError(
                f"crowd_confidence must be (N={n},) floats in [0, 1], got shape {conf.shape}"
            )
        strong = (crowd >= 0) & (conf >= crowd_threshold)
        agrees = strong & (crowd == given)
        disagrees = strong & (crowd != given)
        score = np.where(agrees, score * (1.0 - conf), score)
        score = np.where(disagrees, score + conf * (1.0 - score), score)
        flagged = flagged & ~agrees
        if flag_on_crowd_disagreement:
            flagged = flagged | disagrees
        suggested = np.where(disagrees, crowd, suggested)
    return LabelIssues(
        flagged=flagged,
        score=score,
        suggested=suggested.astype(np.int64),
        ranked=rank_flagged(flagged, score),
        method="combined",
    )


def missing_inputs(method: str, *, pred_probs: bool, features: bool) -> tuple[str, ...]:
    """The inputs that method of find_label_issues still lacks, as names of its parameters.

    confident_learning and low_confidence read pred_probs, knn reads features, and combined reads
    either or both; each method needs at least one of the inputs it reads.

    Args:
        method: "confident_learning", "knn", "low_confidence" or "combined".
        pred_probs: whether pred_probs is given.
        features: whether features is given.

    Returns:
        () when the method can run, else the inputs it reads, at least one of which must be given.

    Raises:
        ValueError: if method is not one of the above.
    """
    check_choice(method, name="method", choices=tuple(_METHOD_INPUTS))
    given = {"pred_probs": pred_probs, "features": features}
    reads = _METHOD_INPUTS[method]
    return () if any(given[name] for name in reads) else reads


def find_label_issues(
    labels: np.ndarray,
    *,
    method: Method = "confident_learning",
    pred_probs: np.ndarray | None = None,
    features: np.ndarray | None = None,
    low_confidence_fraction: float = 0.1,
    knn_k: int = 10,
    seed: int = 0,
    crowd_labels: np.ndarray | None = None,
    crowd_confidence: np.ndarray | None = None,
    device: DevicePreference | str | torch.device = "auto",
) -> LabelIssues:
    """Run one detector by name; the single entry point for callers outside the engine.

    "combined" rank-averages confident learning (when pred_probs is given) and kNN voting (when
    features is given), and applies crowd evidence when given.

    Args:
        labels: (N,) int, given labels.
        method: "confident_learning", "knn", "low_confidence" or "combined".
        pred_probs: (N, K) float out-of-sample probabilities; needed by confident_learning and
            low_confidence.
        features: (N, D) float features; needed by knn.
        low_confidence_fraction: share flagged by low_confidence.
        knn_k: neighbours per item for knn.
        seed: seeds knn's subsampling.
        crowd_labels: (N,) int, -1 = none; only used by combined.
        crowd_confidence: (N,) float in [0, 1]; only used by combined.
        device: see pick_device.

    Returns:
        LabelIssues (or a subclass) from the chosen detector.

    Raises:
        ValueError: if the method's inputs are missing or invalid.
    """
    check_choice(method, name="method", choices=tuple(_METHOD_INPUTS))
    num_classes = None if pred_probs is None else np.asarray(pred_probs).shape[-1]
    missing = missing_inputs(
        method, pred_probs=pred_probs is not None, features=features is not None
    )
    if len(missing) == 1:
        raise ValueError(f"{missing[0]} must be given for method {method!r}, got None")
    if missing:
        raise ValueError(f"{' or '.join(missing)} must be given for method {method!r}")
    if method == "confident_learning":
        return find_issues_confident_learning(pred_probs, labels)  # type: ignore[arg-type]
    if method == "low_confidence":
        return find_issues_low_confidence(
            pred_probs,  # type: ignore[arg-type]
            labels,
            fraction=low_confidence_fraction,
        )
    # kNN voting imports torch: loaded only for the methods that read features.
    from curation.engine.knn_vote import find_issues_knn

    if method == "knn":
        return find_issues_knn(
            features, labels, k=knn_k, seed=seed, num_classes=num_classes, device=device
        )
    parts: list[LabelIssues] = []
    if pred_probs is not None:
        parts.append(find_issues_confident_learning(pred_probs, labels))
    if features is not None:
        parts.append(
            find_issues_knn(
                features, labels, k=knn_k, seed=seed, num_classes=num_classes, device=device
            )
        )
    return combine_issues(
        parts, labels, crowd_labels=crowd_labels, crowd_confidence=crowd_confidence
    )
