"""Crowd + model: a latent-class model whose prior is a classifier's out-of-sample probabilities.

The model is one more source of evidence about each item's true class, as in CROWDLAB (Goh,
Mueller and Tkachenko, 2022), but inside a latent-class likelihood fitted by EM (Dawid and
Skene, 1979; the classifier-as-prior form of Raykar et al., 2010). Each item has a true class
c and a look-alike d != c, the class its wrong votes crowd on::

    P(y_i = c)                     = (1 - eps) * p_ic ** beta / sum_e p_ie ** beta + eps * pi_c
    P(d_i = d | y_i = c)           = f_d(c) = p_id ** gamma / sum_{e != c} p_ie ** gamma
    P(m answers l | y_i = c, d_i)  = acc_m                                         if l == c
                                   = (1 - acc_m) * (lam_m / (K - 1) + (1 - lam_m) * [l == d_i])
                                                                                   else

* ``beta`` (the model's weight, a temperature) and ``eps`` (the share of items on which the
  model says nothing, so that its confident mistakes can be outvoted) calibrate the model
  against the crowd: a model no better than chance gets ``beta`` near 0 and the crowd decides
  alone.
* ``pi``, what is believed where the model says nothing, is uniform, not fitted. The model
  already carries the class frequencies; and a fitted ``pi`` absorbs what one accuracy per
  worker cannot describe (a spammer who always gives the same class) as class prevalence,
  which then decides split votes, as in one-coin Dawid–Skene (``one_coin``'s default prior is
  uniform for the same reason).
* A worker's mistake is either a slip to any other class (share ``lam_m``) or the item's
  look-alike. The look-alike is one class per item, shared by all its voters: people who get a
  hard item wrong tend to give the same wrong answer, so two wrong votes that agree are far
  likelier than independent slips would make them. It is drawn from the classes the model also
  finds likely (people and models confuse the same classes), sharpened by ``gamma``, which
  stays in [0, beta] so that mistakes never follow the model more closely than the prior does
  (otherwise "the model's favourite is always a mistake" would fit as well as "the model is
  right"); with a useless model it is any other class alike, and still shared.
* Each worker has an accuracy ``acc_m`` and a slip share ``lam_m``, each shrunk toward the
  pool's with ``prior_strength`` pseudo-votes (pseudo-mistakes for ``lam_m``): with one to three
  votes per item, a full confusion matrix per worker lets the busiest workers confirm
  themselves. A random clicker's "mistakes" land anywhere (``lam_m`` near 1); an honest
  worker's follow the look-alike. No worker names the look-alike more often than the true
  class: ``acc_m >= (1 - acc_m) * (1 - lam_m + lam_m / (K - 1))`` bounds ``lam_m`` from below.
  Without that bound "every vote names the look-alike, never the class" fits the votes as well
  as the truth does wherever the model says nothing. With every ``lam_m = 1`` this is one-coin
  Dawid–Skene.

``acc_m`` and ``lam_m`` have closed-form M-steps (the expected right votes, and the expected
look-alike votes among the wrong ones); ``gamma``, ``beta`` and ``eps`` are fitted on the votes'
marginal likelihood by golden-section search in each M-step (a step is kept only when it raises
the likelihood). With few votes per item the likelihood has several maxima, so EM starts from
the votes, from the model and from both, and keeps the fit with the highest likelihood. The
posterior is the confidence: it is calibrated in so far as the fitted model describes the
crowd.

Shape letters: N items, M workers, K classes, V votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .kernels import _finish, _normalise_log_

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
# gamma is searched to this width, no finer: it scales log-probabilities floored at
# log(_LOG_FLOOR), so 1e-3 moves the look-alike odds between two classes by at most 3%.
_GAMMA_WIDTH = 1e-3
# EM starts as (weight of the vote counts, weight of the model's probabilities).
_STARTS = ((1.0, 1.0), (0.0, 1.0), (1.0, 1e-3))
_SHORT_RUN = 20  # iterations each start runs before all but the best are dropped
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # each golden-section step keeps this share
_LOG_FLOOR = 1e-12  # model probabilities are floored here before the log
_MIN_LAM = 1e-3  # every mistake going to the item's one look-alike is not a model to fit


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
    ratio = _GOLDEN
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


def _search(fn, current: float, lo: float, hi: float, steps: int = _SEARCH_STEPS) -> float:
    """Golden-section search of ``fn`` on [lo, hi]; ``current`` unless the result beats it."""
    found, value = _golden(fn, lo, hi, steps)
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


def _weighted_count(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """(size,) float64 sums of ``weights`` per index (np.bincount, typed as floats)."""
    return np.asarray(np.bincount(index, weights=weights, minlength=size), dtype=np.float64)


@dataclass(frozen=True)
class _Votes:
    """The voted items' votes: item (V,) as a row of the voted items, worker, label; per row
    the model's log-probabilities (Nv, K) and the vote counts (Nv, K); the voted (row, class)
    pairs (P,), row-major, each vote's pair, and the (Nv, P) row-by-pair incidence."""

    row: IntArray
    worker: IntArray
    label: IntArray
    logp: FloatArray
    counts: FloatArray
    pair_row: IntArray
    pair_class: IntArray
    pair_of_vote: IntArray
    pair_start: IntArray
    pair_incidence: sp.csr_matrix

    @classmethod
    def build(cls, row: IntArray, worker: IntArray, label: IntArray, logp: FloatArray) -> _Votes:
        import scipy.sparse as sp  # here: importing the aggregation package stays light

        nv, k = logp.shape
        counts = np.bincount(row * k + label, minlength=nv * k).reshape(nv, k).astype(float)
        pr, pc = np.nonzero(counts)
        index = np.full((nv, k), -1, dtype=np.int64)
        index[pr, pc] = np.arange(pr.size)
        start = np.searchsorted(pr, np.arange(nv))
        inc = sp.csr_matrix((np.ones(pr.size), (pr, np.arange(pr.size))), shape=(nv, pr.size))
        return cls(row, worker, label, logp, counts, pr, pc, index[row, label], start, inc)

    def lookalike(self, gamma: float) -> tuple[FloatArray, FloatArray]:
        """(P, K) f_d(c), the chance that an item of class c has the pair's class d as its
        look-alike (0 where d == c), and (Nv, K) its sum over each row's voted classes."""
        lpg = gamma * self.logp
        logf = lpg[self.pair_row, self.pair_class][:, None] - _log_others(lpg)[self.pair_row]
        f = np.exp(logf)
        f[np.arange(self.pair_row.size), self.pair_class] = 0.0
        return f, np.asarray(self.pair_incidence @ f)

    def accuracy_part(self, acc: FloatArray, lam: FloatArray) -> FloatArray:
        """(Nv, K) log of each row's acc_m for the votes on class c and (1 - acc_m) * u_m for
        the rest, u_m = lam_m / (K - 1) a slip's chance of naming one given class."""
        nv, k = self.logp.shape
        right = np.log(acc)[self.worker]
        wrong = (np.log1p(-acc) + np.log(lam / (k - 1)))[self.worker]
        base = _weighted_count(self.row, wrong, nv)
        on_c = _weighted_count(self.row * k + self.label, right - wrong, nv * k)
        return base[:, None] + on_c.reshape(nv, k)

    def rho_minus_one(self, lam: FloatArray) -> FloatArray:
        """(M,) rho_m - 1 = (1 - lam_m) / u_m: how much likelier a wrong vote names the
        item's look-alike than any one other class (see :meth:`mistake_part`)."""
        return (1.0 - lam) * (self.logp.shape[1] - 1) / lam

    def mistake_part(
        self, look: tuple[FloatArray, FloatArray], lam: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(Nv, K) log sum_{d != c} f_d(c) prod_{m votes d} rho_m, and the pieces the M-step
        reuses: (P,) log prod rho_m per pair and (Nv,) each row's largest of these.

        Given class c and the item's look-alike d, worker m's wrong vote names d with
        probability ``u_m + 1 - lam_m`` and each other class ``u_m``, so relative to slips
        alone the votes for d weigh ``rho_m = 1 + (1 - lam_m) / u_m`` each. Unvoted classes
        weigh 1, so only the voted pairs are summed and the rest is ``1 - sum_{voted d} f_d(c)``.
        """
        f, voted_f = look
        log_rho = np.log1p(self.rho_minus_one(lam))[self.worker]
        grow = _weighted_count(self.pair_of_vote, log_rho, self.pair_row.size)
        shift = np.maximum.reduceat(grow, self.pair_start)
        rest = np.clip(1.0 - voted_f, 0.0, 1.0) * np.exp(-shift)[:, None]
        rest += self.pair_incidence @ (f * np.exp(grow - shift[self.pair_row])[:, None])
        with np.errstate(divide="ignore"):
            return np.log(rest) + shift[:, None], grow, shift

    def look_share(
        self,
        q: FloatArray,
        f: FloatArray,
        lam: FloatArray,
        part: FloatArray,
        grow: FloatArray,
        shift: FloatArray,
    ) -> FloatArray:
        """(V,) each vote's posterior chance of being a look-alike mistake, from posteriors q
        and :meth:`mistake_part`'s output: P(class != label, look-alike == label | votes)
        times the share of such a vote that is not a slip, 1 - 1 / rho_m."""
        # P(y = c, d = the pair's class | votes) / P(y = c | votes) for each pair and class.
        ratio = f * np.exp(grow - shift[self.pair_row])[:, None]
        ratio /= np.exp(part - shift[:, None])[self.pair_row]
        pair_share = (q[self.pair_row] * ratio).sum(axis=1)
        excess = self.rho_minus_one(lam)
        return pair_share[self.pair_of_vote] * (excess / (1.0 + excess))[self.worker]


def _marginal_ll(prior: FloatArray, evidence: FloatArray) -> float:
    top = evidence.max(axis=1, keepdims=True)
    return float(np.log((prior * np.exp(evidence - top)).sum(axis=1)).sum() + top.sum())


class _EM:
    """One EM run from a start, advanced by ``run``; its state is the fit so far."""

    def __init__(self, vt: _Votes, start: FloatArray, m: int, strength: float):
        """``start`` (Nv, K) non-negative, row-normalised into the first posteriors."""
        k = start.shape[1]
        self.vt, self.strength = vt, strength
        self.q = start / start.sum(axis=1, keepdims=True)  # (Nv, K) posteriors of voted items
        self.n_by_worker = np.bincount(vt.worker, minlength=m).astype(np.float64)
        self.beta, self.eps, self.gamma = 1.0, 0.1, 0.0
        self.acc = np.full(m, 0.5)
        self.lam = np.full(m, 0.5)
        self.pi = np.full(k, 1.0 / k)  # uniform: see the module docstring
        self.ll = self.prev = -np.inf  # mean per-vote marginal log-likelihood
        self.n_iter = 0
        self.converged = False
        self.look_share: FloatArray | None = None  # (V,) from the last E-step

    def _weighted_mean(self, num: FloatArray, den: FloatArray) -> FloatArray:
        """num / den per worker, with ``strength`` pseudo-counts of the pool's num / den."""
        pooled = num.sum() / max(den.sum(), _EPS)
        return (num + self.strength * pooled) / (den + self.strength)

    def _fit_workers(self) -> None:
        """M-step for acc and lam: the expected right votes per vote, and the expected
        look-alike votes per wrong vote, each worker's shrunk toward the pool's."""
        vt, m, k = self.vt, self.n_by_worker.size, self.vt.logp.shape[1]
        right = self.q[vt.row, vt.label]
        correct = _weighted_count(vt.worker, right, m)
        self.acc = np.clip(self._weighted_mean(correct, self.n_by_worker), _EPS, 1 - _EPS)
        if self.look_share is None or k == 2:  # K = 2: the look-alike is the other class
            return
        wrong = _weighted_count(vt.worker, 1.0 - right, m)
        looks = _weighted_count(vt.worker, self.look_share, m)
        # acc >= (1 - acc) * (1 - lam + lam / (K - 1)): see the module docstring.
        floor = (1.0 - self.acc / (1.0 - self.acc)) / (1.0 - 1.0 / (k - 1))
        lam = np.maximum(self._weighted_mean(wrong - looks, wrong), floor)
        self.lam = np.clip(lam, _MIN_LAM, 1.0)

    def _fit_gamma(self, prior: FloatArray, base: FloatArray) -> float:
        vt, lam = self.vt, self.lam

        def by_gamma(g: float) -> float:
            return _marginal_ll(prior, base + vt.mistake_part(vt.lookalike(g), lam)[0])

        # Enough steps to narrow [0, beta] to _GAMMA_WIDTH, no more: a model that says nothing
        # (beta near 0) leaves nothing to search.
        steps = int(np.ceil(np.log(max(self.beta / _GAMMA_WIDTH, 1.0)) / -np.log(_GOLDEN)))
        return _search(by_gamma, self.gamma, 0.0, self.beta, min(steps, _SEARCH_STEPS))

    def run(self, until: int, tol: float) -> None:
        """Iterate until the likelihood changes by less than ``tol`` or ``until`` iterations
        have run in all."""
        vt = self.vt
        while not self.converged and self.n_iter < until:
            self.n_iter += 1
            # M-step: each worker's accuracy and slip share in closed form, then gamma, beta
            # and eps by search on the marginal likelihood.
            self._fit_workers()
            prior = _model_prior(vt.logp, self.pi, self.beta, self.eps)
            base = vt.accuracy_part(self.acc, self.lam)
            self.gamma = self._fit_gamma(prior, base)
            look = vt.lookalike(self.gamma)
            part, grow, shift = vt.mistake_part(look, self.lam)
            evidence = base + part
            self.beta, self.eps = _fit_calibration(
                evidence, vt.logp, self.pi, self.beta, self.eps, self.gamma
            )
            # E-step: the posteriors, and each vote's chance of being a look-alike mistake.
            self.q = np.log(_model_prior(vt.logp, self.pi, self.beta, self.eps)) + evidence
            self.ll = _normalise_log_(self.q) / vt.row.size
            self.look_share = vt.look_share(self.q, look[0], self.lam, part, grow, shift)
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
        prior_strength: pseudo-votes pulling each worker's accuracy and slip share toward the
            pool's (> 0).
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
    voted = np.bincount(votes.item, minlength=votes.num_items) > 0
    row_of = np.cumsum(voted) - 1
    logp = np.log(np.maximum(probs, _LOG_FLOOR))
    vt = _Votes.build(row_of[votes.item], votes.worker, votes.label, logp[voted])
    # EM from three starts (the votes, the model, both): with one or two votes per item the
    # likelihood has several maxima. Each start runs a short while, and only the one with the
    # highest likelihood then runs on to convergence ("short runs" initialisation: Biernacki,
    # Celeux and Govaert, 2003); a start that is behind after the short run is dropped rather
    # than iterated, which was most of the time where one converged slowly to a worse fit.
    runs = [
        _EM(vt, vt.counts * w_votes + probs[voted] * w_model, votes.num_workers, strength)
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
