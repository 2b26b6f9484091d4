"""Counting rules: plurality, k-of-n consensus, unanimity, and the verify and select summaries.

Every rule that produces labels returns an :class:`~.types.Aggregate`; ``-1`` in a label array
means "unresolved" (no votes, a tie left unresolved, or no consensus). Items with no votes get
uniform probabilities ``1/K``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .kernels import _agreement_tiebreak, _check_tie, _finish, _pick_max, _shares, _vote_counts
from .types import (
    STATUS_AMBIGUOUS,
    STATUS_CLEAN,
    STATUS_NOISY,
    STATUS_NONE,
    Aggregate,
    SelectSummary,
    Tie,
    VerifySummary,
    VoteTable,
    _check_count,
    _check_index,
    _check_votes,
    _int_vector,
)


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


def consensus_method_name(k: int, n: int | None = None) -> str:
    """The method name of the k-of-n consensus rule: ``consensus_3of5``, or ``consensus_3ofany``
    when ``n`` is None (no fixed number of votes per item).

    :func:`consensus` names its result with this, and every stored consensus label should too,
    so that one rule has one name wherever labels are kept.
    """
    return f"consensus_{int(k)}of{'any' if n is None else int(n)}"


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
    return _finish(probs, labels, consensus_method_name(k, n))


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
