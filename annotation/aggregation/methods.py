"""Class-vote methods by name: the one switch the command and the services use."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .auto import auto
from .crowd_model import crowd_model
from .em import dawid_skene, mace, one_coin
from .gold import gold_weighted_majority
from .rules import consensus, majority_vote, strict_vote
from .types import Aggregate, VoteTable

CATEGORICAL_METHODS = (
    "auto", "majority", "dawid_skene", "one_coin", "mace", "gold_weighted", "consensus", "strict",
    "crowd_model",
)  # fmt: skip
# Methods that also need a model's (N, K) out-of-sample probabilities (``pred_probs``).
MODEL_METHODS = ("crowd_model",)
# The class-vote method used when none is named (command, services, admin): see :mod:`.auto`.
DEFAULT_METHOD = "auto"


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
    pred_probs: ArrayLike | None = None,
) -> Aggregate:
    """Run one of :data:`CATEGORICAL_METHODS` on class votes; the one switch for command/service.

    Args:
        votes: the vote table (labels are class indices).
        method: a name in :data:`CATEGORICAL_METHODS`.
        num_classes: K >= 2.
        k, n: the ``consensus`` rule's k-of-n.
        gold_items, gold_labels: (G,) gold items and labels, needed by ``gold_weighted``.
        seed: tie-breaking seed for ``majority`` and ``gold_weighted``.
        pred_probs: (N, K) a model's out-of-sample probabilities, needed by ``crowd_model``.
    Returns:
        The method's Aggregate.
    Raises:
        ValueError: an unknown method, ``gold_weighted`` without gold, ``crowd_model`` without
            ``pred_probs``, or the method's own errors.
    """
    if method == "crowd_model":
        if pred_probs is None:
            raise ValueError("method: crowd_model needs pred_probs, a model's (N, K) probabilities")
        return crowd_model(votes, np.asarray(pred_probs), num_classes=num_classes)
    if method == "auto":
        return auto(votes, num_classes=num_classes, seed=seed)
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
