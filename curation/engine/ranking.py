"""Rank an unlabeled pool per class from embeddings: prompt templates averaged into one text
query per class, optional example images (query by example) and negative prompts.

Shapes: N pool images, K classes, D embedding dimensions; every embedding L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curation.engine.embeddings import normalise

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a good photo of a {}.",
    "a blurry photo of a {}.",
)


def prompts_for(class_name: str, templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[str]:
    """The prompts of one class: each template with ``{}`` replaced by the class name."""
    if not templates:
        raise ValueError("templates must hold at least one template")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"templates must contain {{}} for the class name, got {bad[0]!r}")
    return [t.format(class_name) for t in templates]


def class_queries(
    text: np.ndarray | None,
    examples: Sequence[np.ndarray | None] | None = None,
    *,
    example_weight: float = 0.5,
) -> np.ndarray:
    """One query per class: its text embedding and/or the mean of its example images.

    Args:
        text: (K, D) text embedding per class (already averaged over prompts), or None.
        examples: K entries, each (n_k, D) example-image embeddings or None.
        example_weight: the examples' share of the query where a class has both (0..1).
    Returns:
        (K, D) float32 queries, L2-normalised.
    Raises:
        ValueError: if a class has neither text nor examples, or the shapes disagree.
    """
    if not 0.0 <= example_weight <= 1.0:
        raise ValueError(f"example_weight must lie in 0..1, got {example_weight}")
    if text is None and examples is None:
        raise ValueError("give text embeddings, example images, or both")
    k = len(text) if text is not None else len(examples or [])
    if examples is not None and len(examples) != k:
        raise ValueError(f"examples must have one entry per class ({k}), got {len(examples)}")
    rows: list[np.ndarray] = []
    for c in range(k):
        t = None if text is None else normalise(text[c])
        ex = None if examples is None else examples[c]
        e = None if ex is None or len(ex) == 0 else normalise(normalise(ex).mean(axis=0))
        if t is None and e is None:
            raise ValueError(f"class {c} has neither a text embedding nor example images")
        if t is None:
            assert e is not None
            rows.append(e)
        elif e is None:
            rows.append(t)
        else:
            rows.append((1 - example_weight) * t + example_weight * e)
    return normalise(np.stack(rows))


@dataclass(frozen=True)
class Ranking:
    """Scores and claims over the pool.

    scores: (N, K) float32 score of each image for each class.
    assigned: (N,) int class each image goes to (its best score), -1 = none.
    review: (N,) bool: claimed by two classes within ``review_margin`` — sent to review, not
        to either list.
    """

    scores: np.ndarray
    assigned: np.ndarray
    review: np.ndarray

    def ranked(self, k: int) -> np.ndarray:
        """Indices of the images assigned to class ``k``, best score first."""
        idx = np.flatnonzero((self.assigned == k) & ~self.review)
        return idx[np.argsort(-self.scores[idx, k], kind="stable")]


def rank_pool(
    embeddings: np.ndarray,
    queries: np.ndarray,
    *,
    negatives: Sequence[np.ndarray | None] | None = None,
    review_margin: float = 0.0,
    min_score: float | None = None,
) -> Ranking:
    """Score every image for every class and give each image to the class it scores best for.

    Args:
        embeddings: (N, D) pool image embeddings.
        queries: (K, D) class queries (see ``class_queries``).
        negatives: K entries, each (m_k, D) negative-prompt embeddings or None; an image that
            is closer to a class's negative than to the class loses the difference.
        review_margin: an image whose two best classes score within this margin goes to review.
        min_score: images scoring below it for every class are assigned to none (-1).
    Returns:
        Ranking with scores (N, K), assigned (N,) and review (N,).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    if x.ndim != 2 or q.ndim != 2 or x.shape[1] != q.shape[1]:
        raise ValueError(f"embeddings (N, D) and queries (K, D) disagree: {x.shape} vs {q.shape}")
    if review_margin < 0:
        raise ValueError(f"review_margin must be at least 0, got {review_margin}")
    scores = normalise(x) @ normalise(q).T
    if negatives is not None:
        if len(negatives) != q.shape[0]:
            raise ValueError(f"negatives must have one entry per class ({q.shape[0]})")
        for c, neg in enumerate(negatives):
            if neg is None or len(neg) == 0:
                continue
            near = (normalise(x) @ normalise(neg).T).max(axis=1)
            scores[:, c] -= np.maximum(0.0, near - scores[:, c])
    order = np.argsort(-scores, axis=1, kind="stable")
    best = order[:, 0]
    rows = np.arange(len(x))
    top = scores[rows, best]
    assigned = best.astype(np.int64)
    if min_score is not None:
        assigned[top < min_score] = -1
    review = np.zeros(len(x), dtype=bool)
    if q.shape[0] > 1 and review_margin > 0:
        second = scores[rows, order[:, 1]]
        review = (assigned >= 0) & (top - second < review_margin)
    return Ranking(scores.astype(np.float32), assigned, review)
