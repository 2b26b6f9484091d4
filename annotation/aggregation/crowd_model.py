"""Crowd + model: a latent-class model whose prior is a classifier's out-of-sample probabilities.

The model is one more source of evidence about each item's true class, as in CROWDLAB (Goh,
Mueller and Tkachenko, 2022), but inside a latent-class likelihood fitted by EM (Dawid and
Skene, 1979; the classifier-as-prior form of Raykar et al., 2010)::

    P(y_i = c)               = (1 - eps) * p_ic ** beta / sum_d p_id ** beta  +  eps * pi_c
    P(m answers l | y_i = c) = acc_m                                                if l == c
                             = (1 - acc_m) * (lam / (K - 1)
                                 + (1 - lam) * p_il ** gamma / sum_{d != c} p_id ** gamma)  else

* ``beta`` (the model's weight, a temperature) and ``eps`` (the share of items on which the
  model says nothing, so that its confident mistakes can be outvoted) calibrate the model
  against the crowd: a model no better than chance gets ``beta`` near 0 and the crowd decides
  alone.
* ``pi``, what is believed where the model says nothing, is uniform, not fitted. The model
  already carries the class frequencies; and a fitted ``pi`` absorbs what one accuracy per
  worker cannot describe (wrong votes that pile up on look-alike classes, a spammer who always
  gives the same class) as class prevalence, which then decides split votes, as in one-coin
  Dawid–Skene (``one_coin``'s default prior is uniform for the same reason).
* A worker's mistake is either a slip to any other class (share ``lam``) or a look-alike: a
  class the model also finds likely (people and models confuse the same classes), sharpened by
  ``gamma``, which stays in [0, beta] so that mistakes never follow the model more closely than
  the prior does (otherwise "the model's favourite is always a mistake" would fit as well as
  "the model is right"). With ``lam = 1`` this is one-coin Dawid–Skene.
* Each worker has one accuracy ``acc_m``, shrunk toward the pool's with ``prior_strength``
  pseudo-votes: with one to three votes per item, a full confusion matrix per worker lets the
  busiest workers confirm themselves.

``beta``, ``eps``, ``gamma`` and ``lam`` are fitted on the votes' marginal likelihood by
golden-section search in each M-step (a step is kept only when it raises the likelihood). With
few votes per item the likelihood has several maxima, so EM starts from the votes, from the
model and from both, and keeps the fit with the highest likelihood. The posterior is the
confidence: it is calibrated in so far as the fitted model describes the crowd.

Shape letters: N items, M workers, K classes, V votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .kernels import _finish, _normalise_log_, _vote_counts

if TYPE_CHECKING:
    import scipy.sparse as sp
from .types import (
    _EPS,
    Aggregate,
    FloatArray,
    IntArray,
    VoteTable,
    _check_em,
    _check_positive,
    _check_votes,
)

_MAX_BETA = 10.0  # the model's weight (temperature) stays in [0, _MAX_BETA]
# The share of items on which the model says nothing stays in [_MIN_EPS, _MAX_EPS]: a model that
# is wrong more often than that is weighed down through beta instead.
_MIN_EPS, _MAX_EPS = 1e-4, 0.5
_SEARCH_STEPS = 16  # golden-section steps per parameter and EM iteration
# EM starts as (weight of the vote counts, weight of the model's probabilities).
_STARTS = ((1.0, 1.0), (0.0, 1.0), (1.0, 1e-3))
_SHORT_RUN = 20  # iterations each start runs before all but the best are dropped
_LOG_FLOOR = 1e-12  # model probabilities are floored here before the log


def check_pred_probs(pred_probs: object, num_items: int, num_classes: int) -> FloatArray:
    """(N, K) float64 probabilities: finite, non-negative, rows with a positive sum (normalised).

    Raises:
        ValueError: naming ``pred_probs`` and what is wrong with it.
    """
    arr = np.asarray(pred_probs)
    if arr.ndim != 2 or arr.shape != (num_items, num_classes):
        raise ValueError(
            f"pred_probs: expected shape (N, K) = ({num_items}, {num_classes}), got {arr.shape}"
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"pred_probs: expected floats, got dtype {arr.dtype}")
    out = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        raise ValueError(f"pred_probs: row {int(np.flatnonzero(~finite)[0])} holds NaN or inf")
    negative = (out < 0).any(axis=1)
    if negative.any():
        raise ValueError(f"pred_probs: row {int(np.flatnonzero(negative)[0])} is negative")
    total = out.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(f"pred_probs: row {int(np.flatnonzero(total[:, 0] <= 0)[0])} is all 0")
    return out / total


def _log_softmax(scores: FloatArray) -> FloatArray:
    top = scores.max(axis=1, keepdims=True)
    shifted = scores - top
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _model_prior(logp: FloatArray, pi: FloatArray, beta: float, eps: float) -> FloatArray:
    """(N, K) prior: the tempered model with probability 1 - eps, the class prior otherwise."""
    return (1.0 - eps) * np.exp(_log_softmax(beta * logp)) + eps * pi


def _marginal(lik: FloatArray, logp: FloatArray, pi: FloatArray, beta: float, eps: float) -> float:
    """sum_i log sum_c prior_ic * lik_ic: the votes' log-likelihood up to a constant."""
    return float(np.log((_model_prior(logp, pi, beta, eps) * lik).sum(axis=1)).sum())


def _golden(fn, lo: float, hi: float, steps: int) -> tuple[float, float]:
    """The maximiser of a unimodal ``fn`` on [lo, hi] and its value, by golden-section search."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = fn(c), fn(d)
    for _ in range(steps):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = fn(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = fn(d)
    return (c, fc) if fc >= fd else (d, fd)


def _search(fn, current: float, lo: float, hi: float) -> float:
    """Golden-section search of ``fn`` on [lo, hi]; ``current`` unless the result beats it."""
    found, value = _golden(fn, lo, hi, _SEARCH_STEPS)
    return found if value > fn(current) else current


def _fit_calibration(
    evidence: FloatArray, logp: FloatArray, pi: FloatArray, beta: float, eps: float, gamma: float
) -> tuple[float, float]:
    """(beta, eps) that raise the votes' marginal likelihood, the workers held fixed.

    ``evidence`` (N, K) is each voted item's log P(its votes | class). One coordinate search
    each: beta on [gamma, _MAX_BETA], then eps on a logit scale in [_MIN_EPS, _MAX_EPS].
    """
    lik = np.exp(evidence - evidence.max(axis=1, keepdims=True))
    beta = _search(lambda b: _marginal(lik, logp, pi, b, eps), beta, gamma, _MAX_BETA)
    # With beta fixed the prior is (1 - eps) * model + eps * pi: each item's likelihood under
    # either part is computed once, and each step of the eps search is a sum over items.
    model_part = (np.exp(_log_softmax(beta * logp)) * lik).sum(axis=1)
    class_part = lik @ pi

    def by_eps(x: float) -> float:
        e = 1.0 / (1.0 + np.exp(-x))
        return float(np.log((1.0 - e) * model_part + e * class_part).sum())

    z = _search(
        by_eps,
        float(np.log(eps / (1 - eps))),
        float(np.log(_MIN_EPS / (1 - _MIN_EPS))),
        float(np.log(_MAX_EPS / (1 - _MAX_EPS))),
    )
    return beta, float(1.0 / (1.0 + np.exp(-z)))


def _log_others(lpg: FloatArray) -> FloatArray:
    """(N, K) log sum_{d != c} exp(lpg_id), without cancellation when class c dominates."""
    top = lpg.max(axis=1, keepdims=True)
    e = np.exp(lpg - top)
    total = e.sum(axis=1, keepdims=True)
    others = total - e  # >= 1 wherever c is not the row's maximum
    arg = np.argmax(lpg, axis=1)
    rows = np.arange(lpg.shape[0])
    e[rows, arg] = 0.0
    others[rows, arg] = e.sum(axis=1)
    return top + np.log(np.maximum(others, 1e-300))


@dataclass(frozen=True)
class _Votes:
    """The voted items' votes: item (V,) as a row of the voted items, worker, label; per row
    the model's log-probabilities (Nv, K); and the (Nv, V) row-by-vote incidence matrix."""

    row: IntArray
    worker: IntArray
    label: IntArray
    logp: FloatArray
    incidence: sp.csr_matrix

    @classmethod
    def build(cls, row: IntArray, worker: IntArray, label: IntArray, logp: FloatArray) -> _Votes:
        import scipy.sparse as sp  # here: importing the aggregation package stays light

        v = row.size
        inc = sp.csr_matrix((np.ones(v), (row, np.arange(v))), shape=(logp.shape[0], v))
        return cls(row, worker, label, logp, inc)

    def follow(self, gamma: float) -> FloatArray:
        """(V, K): the share of a look-alike mistake on class c that goes to the vote's label."""
        lpg = gamma * self.logp
        return np.exp(lpg[self.row, self.label][:, None] - _log_others(lpg)[self.row])

    def evidence(self, acc: FloatArray, follow: FloatArray, lam: float) -> FloatArray:
        """(Nv, K) log P(the row's votes | class), with ``follow`` from :meth:`follow`."""
        k = self.logp.shape[1]
        per_vote = np.log(lam / (k - 1) + (1.0 - lam) * follow)
        per_vote += np.log1p(-acc)[self.worker][:, None]
        per_vote[np.arange(self.row.size), self.label] = np.log(acc)[self.worker]
        return np.asarray(self.incidence @ per_vote)


def _marginal_ll(prior: FloatArray, evidence: FloatArray) -> float:
    top = evidence.max(axis=1, keepdims=True)
    return float(np.log((prior * np.exp(evidence - top)).sum(axis=1)).sum() + top.sum())


def _fit_mistakes(
    vt: _Votes, prior: FloatArray, acc: FloatArray, gamma: float, lam: float, beta: float
) -> tuple[float, float]:
    """(gamma, lam) that raise the votes' marginal likelihood, the rest held fixed; gamma stays
    in [0, beta] (mistakes follow the model no more closely than the prior does)."""
    gamma = _search(
        lambda g: _marginal_ll(prior, vt.evidence(acc, vt.follow(g), lam)), gamma, 0.0, beta
    )
    if gamma == 0.0:
        # Look-alikes are then every other class alike, as slips are: lam changes nothing.
        return gamma, lam
    follow = vt.follow(gamma)
    lam = _search(lambda x: _marginal_ll(prior, vt.evidence(acc, follow, x)), lam, 0.0, 1.0)
    return gamma, lam


class _EM:
    """One EM run from a start, advanced by ``run``; its state is the fit so far."""

    def __init__(self, vt: _Votes, start: FloatArray, m: int, strength: float):
        """``start`` (Nv, K) non-negative, row-normalised into the first posteriors."""
        k = start.shape[1]
        self.vt, self.strength = vt, strength
        self.q = start / start.sum(axis=1, keepdims=True)  # (Nv, K) posteriors of voted items
        self.n_by_worker = np.bincount(vt.worker, minlength=m).astype(np.float64)
        self.beta, self.eps, self.gamma, self.lam = 1.0, 0.1, 0.0, 0.5
        self.acc = np.full(m, 0.5)
        self.pi = np.full(k, 1.0 / k)  # uniform: see the module docstring
        self.ll = self.prev = -np.inf  # mean per-vote marginal log-likelihood
        self.n_iter = 0
        self.converged = False

    def run(self, until: int, tol: float) -> None:
        """Iterate until the likelihood changes by less than ``tol`` or ``until`` iterations
        have run in all."""
        vt, m = self.vt, self.n_by_worker.size
        while not self.converged and self.n_iter < until:
            self.n_iter += 1
            # M-step: worker accuracies in closed form, then gamma, lam, beta and eps by search
            # on the marginal likelihood.
            correct = np.bincount(vt.worker, weights=self.q[vt.row, vt.label], minlength=m)
            pooled = correct.sum() / vt.row.size
            self.acc = np.clip(
                (correct + self.strength * pooled) / (self.n_by_worker + self.strength),
                _EPS,
                1 - _EPS,
            )
            prior = _model_prior(vt.logp, self.pi, self.beta, self.eps)
            self.gamma, self.lam = _fit_mistakes(
                vt, prior, self.acc, self.gamma, self.lam, self.beta
            )
            evidence = vt.evidence(self.acc, vt.follow(self.gamma), self.lam)
            self.beta, self.eps = _fit_calibration(
                evidence, vt.logp, self.pi, self.beta, self.eps, self.gamma
            )
            # E-step.
            self.q = np.log(_model_prior(vt.logp, self.pi, self.beta, self.eps)) + evidence
            self.ll = _normalise_log_(self.q) / vt.row.size
            self.converged = abs(self.ll - self.prev) < tol
            self.prev = self.ll


def crowd_model(
    votes: VoteTable,
    pred_probs: FloatArray,
    *,
    num_classes: int,
    max_iter: int = 200,
    tol: float = 1e-7,
    prior_strength: float = 2.0,
) -> Aggregate:
    """Labels from crowd votes and a classifier's out-of-sample probabilities together.

    Args:
        votes: item (V,), worker (V,), label (V,) int64; one row per vote.
        pred_probs: (N, K) float, the model's out-of-sample class probabilities per item (rows
            are normalised here).
        num_classes: K >= 2; labels must lie in 0..K-1.
        max_iter: at most this many EM iterations.
        tol: stop when the mean per-vote log-likelihood changes by less than this.
        prior_strength: pseudo-votes pulling each worker's accuracy toward the pool's (> 0).
    Returns:
        Aggregate with labels (N,) int64 (-1 for items without votes), probs (N, K) posteriors
        (the calibrated model prior for items without votes), confidence (N,) their maximum,
        class_prior (K,) the mean of the posteriors (the estimated class shares),
        worker_accuracy (M,) the quality score (probability that the worker
        names the true class) and worker_weight (M,) the log-odds one of the worker's votes
        adds to its class when mistakes are spread evenly, ``log(acc * (K - 1) / (1 - acc))``.
    Raises:
        ValueError: empty table, label outside 0..K-1, pred_probs not (N, K) finite
            non-negative, bad options.
    """
    k = _check_votes(votes, num_classes)
    _check_em(max_iter, tol)
    strength = _check_positive("prior_strength", prior_strength)
    probs = check_pred_probs(pred_probs, votes.num_items, k)
    counts_all = _vote_counts(votes, k)
    voted = counts_all.sum(axis=1) > 0
    row_of = np.cumsum(voted) - 1
    logp = np.log(np.maximum(probs, _LOG_FLOOR))
    vt = _Votes.build(row_of[votes.item], votes.worker, votes.label, logp[voted])
    # EM from three starts (the votes, the model, both): with one or two votes per item the
    # likelihood has several maxima. Each start runs a short while, and only the one with the
    # highest likelihood then runs on to convergence ("short runs" initialisation: Biernacki,
    # Celeux and Govaert, 2003); a start that is behind after the short run is dropped rather
    # than iterated, which was most of the time where one converged slowly to a worse fit.
    runs = [
        _EM(vt, counts_all[voted] * w_votes + probs[voted] * w_model, votes.num_workers,
            strength)
        for w_votes, w_model in _STARTS
    ]  # fmt: skip
    for run in runs:
        run.run(min(_SHORT_RUN, max_iter), tol)
    best = max(runs, key=lambda r: r.ll)
    best.run(max_iter, tol)
    beta, eps, acc = best.beta, best.eps, best.acc
    post = _model_prior(logp, best.pi, beta, eps)
    post[voted] = best.q
    labels = np.argmax(post, axis=1).astype(np.int64)
    labels[~voted] = -1
    return _finish(
        post,
        labels,
        "crowd_model",
        n_iter=sum(r.n_iter for r in runs),
        converged=best.converged,
        class_prior=post.mean(axis=0),
        worker_accuracy=acc,
        worker_weight=np.log(acc * (k - 1) / (1 - acc)),
    )
