"""Per-worker reports: gold accuracy, agreement with the consensus, speed, spammer flags."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .gold import _check_gold, _gold_hits
from .types import (
    DurationsPer,
    FloatArray,
    IntArray,
    VoteTable,
    WorkerQuality,
    _check_count,
    _check_positive,
    _check_votes,
    _int_vector,
)


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
