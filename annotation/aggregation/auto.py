"""The default class-vote method: Dawid–Skene or one-coin, chosen by held-out likelihood.

Two latent-class models answer the same question with different numbers of parameters:

* Dawid–Skene (1979) with a full confusion matrix per worker, each row given a weak Dirichlet
  prior centred on the pooled confusion of the crowd (empirical-Bayes shrinkage: a worker with
  few votes keeps the crowd's confusion, a worker with many keeps their own), run to convergence;
* one-coin Dawid–Skene (one accuracy per worker, shrunk toward the pooled accuracy): one free
  parameter per worker instead of K (K - 1), which wins when workers answer too few items for a
  confusion matrix.

Which one describes a crowd is decided by the crowd itself: the votes are split into folds, each
model is fitted without one fold and scores the held-out votes by their predictive probability
P(vote | the item's other votes) (cross-validated likelihood, e.g. Smyth 2000 for choosing
mixture models). The model with the higher held-out log-likelihood is refitted on every vote.
The Dawid–Skene posterior includes the estimated class prior, so when an item's votes are even
the more frequent class wins (the Bayes decision, not a coin flip; one-coin keeps a uniform prior,
see :func:`~.em.one_coin`); ties that remain exactly even go to the lower class index.
"""

from __future__ import annotations

import numpy as np

from .em import dawid_skene, one_coin
from .kernels import _finish
from .types import Aggregate, FloatArray, VoteTable, _check_votes

CANDIDATES = ("dawid_skene", "one_coin")
# Pseudo-votes per confusion row: enough to keep rows of workers who never saw a class at the
# crowd's confusion, small enough to leave the rows of workers with tens of votes their own.
DS_PRIOR_STRENGTH = 0.1
DS_MAX_ITER = 500
DS_TOL = 1e-8
# Held-out votes that settle the choice: folds are scored in turn until this many votes have
# been (every fold on crowds smaller than this); the mean's standard error is then ~0.003 nats.
HELDOUT_VOTES = 100_000


def _fit(votes: VoteTable, model: str, k: int) -> Aggregate:
    if model == "dawid_skene":
        return dawid_skene(
            votes,
            num_classes=k,
            prior="pooled",
            prior_strength=DS_PRIOR_STRENGTH,
            max_iter=DS_MAX_ITER,
            tol=DS_TOL,
        )
    return one_coin(votes, num_classes=k)


def _confusion(result: Aggregate, k: int) -> FloatArray:
    """(M, K, K) ``[m, true, given]`` answer probabilities of a fitted model."""
    if result.worker_confusion is not None:
        return result.worker_confusion
    acc = np.asarray(result.worker_accuracy, dtype=np.float64)
    conf = np.repeat(((1.0 - acc) / (k - 1))[:, None, None], k, axis=1).repeat(k, axis=2)
    diag = np.arange(k)
    conf[:, diag, diag] = acc[:, None]
    return conf


def heldout_log_likelihood(
    votes: VoteTable, *, num_classes: int, model: str, folds: int = 5, seed: int = 0
) -> float:
    """Mean log P(held-out vote | the item's remaining votes) over random vote folds.

    Folds are scored in turn until :data:`HELDOUT_VOTES` votes have been held out, so on a small
    crowd every vote is held out once (``folds``-fold cross-validation) and on a large one a
    single fold (a hold-out set of V / ``folds`` votes) decides.

    Args:
        votes: the vote table.
        num_classes: K >= 2.
        model: one of :data:`CANDIDATES`.
        folds: number of folds (>= 2).
        seed: seed of the fold assignment.
    Returns:
        The mean per-vote held-out log-likelihood (higher is better); minus infinity when no
        fold leaves votes to fit on (a table of one vote).
    Raises:
        ValueError: an unknown model, folds < 2, or the vote table's own errors.
    """
    k = _check_votes(votes, num_classes)
    if model not in CANDIDATES:
        raise ValueError(f"model: expected one of {', '.join(CANDIDATES)}, got {model!r}")
    if folds < 2:
        raise ValueError(f"folds: expected at least 2, got {folds}")
    fold = np.random.default_rng(seed).integers(0, folds, votes.num_votes)
    total = 0.0
    scored = 0
    for j in range(folds):
        if scored >= HELDOUT_VOTES:
            break
        train, test = fold != j, fold == j
        if not test.any() or not train.any():
            continue
        scored += int(test.sum())
        fitted = _fit(
            VoteTable.from_arrays(
                votes.item[train],
                votes.worker[train],
                votes.label[train],
                num_items=votes.num_items,
                num_workers=votes.num_workers,
            ),
            model,
            k,
        )
        post = fitted.probs.copy()
        unseen = np.bincount(votes.item[train], minlength=votes.num_items) == 0
        if fitted.class_prior is not None:
            post[unseen] = fitted.class_prior
        conf = _confusion(fitted, k)
        p = np.einsum(
            "vk,vk->v", post[votes.item[test]], conf[votes.worker[test], :, votes.label[test]]
        )
        total += float(np.log(np.maximum(p, 1e-300)).sum())
    if not scored:  # a single vote: nothing to hold out, no evidence either way
        return -np.inf
    return total / scored


def auto(votes: VoteTable, *, num_classes: int, folds: int = 5, seed: int = 0) -> Aggregate:
    """Labels from the model (of :data:`CANDIDATES`) that best predicts held-out votes.

    Args:
        votes: item (V,), worker (V,), label (V,) int64; one row per vote.
        num_classes: K >= 2; labels must lie in 0..K-1.
        folds: cross-validation folds for the model choice (>= 2).
        seed: seed of the fold assignment.
    Returns:
        Aggregate named ``"auto"`` with labels (N,) int64 (-1 for items without votes), probs
        (N, K), class_prior (K,), and the chosen model's worker parameters: worker_confusion
        (M, K, K) for Dawid–Skene, worker_accuracy (M,) for one-coin.
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2, folds < 2.
    """
    k = _check_votes(votes, num_classes)
    scores = {
        model: heldout_log_likelihood(votes, num_classes=k, model=model, folds=folds, seed=seed)
        for model in CANDIDATES
    }
    chosen = max(CANDIDATES, key=lambda model: scores[model])  # ties keep the richer model
    fitted = _fit(votes, chosen, k)
    return _finish(
        fitted.probs,
        fitted.labels,
        "auto",
        n_iter=fitted.n_iter,
        converged=fitted.converged,
        class_prior=fitted.class_prior,
        worker_confusion=fitted.worker_confusion,
        worker_accuracy=fitted.worker_accuracy,
    )
