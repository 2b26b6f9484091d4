"""Verification to a precision target: walk a class's ranked list in stretches, check a sample
of each stretch with the crowd, and keep the stretch while the lower confidence bound of its
precision reaches the target. No Django, numpy and scipy only.

A class stops when a stretch's bound falls below the target (its sampled items verified correct
are still kept: each was checked), when its list ends, or when the budget or rounds run out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

BoundMethod = Literal["clopper-pearson", "wilson"]
BOUND_METHODS: tuple[str, ...] = ("clopper-pearson", "wilson")


def precision_lower_bound(
    correct: int, total: int, *, confidence: float = 0.95, method: BoundMethod = "clopper-pearson"
) -> float:
    """One-sided lower confidence bound on a proportion (``correct`` of ``total``).

    Clopper-Pearson (exact, conservative) or Wilson score; 0.0 when ``total`` is 0.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if total < 0 or not 0 <= correct <= max(total, 0):
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")
    if total == 0:
        return 0.0
    alpha = 1.0 - confidence
    if method == "clopper-pearson":
        if correct == 0:
            return 0.0
        from scipy.stats import beta

        return float(beta.ppf(alpha, correct, total - correct + 1))
    if method == "wilson":
        from scipy.stats import norm

        z = float(norm.ppf(confidence))
        p = correct / total
        centre = p + z * z / (2 * total)
        spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
        return max(0.0, (centre - spread) / (1 + z * z / total))
    raise ValueError(f"method must be one of {BOUND_METHODS}, got {method!r}")


@dataclass(frozen=True)
class VerifyPolicy:
    """How far to verify: target precision at a confidence, stretch and sample sizes, limits."""

    target: float = 0.99
    confidence: float = 0.95
    stretch: int = 1000
    sample: int = 300
    max_rounds: int = 20
    method: BoundMethod = "clopper-pearson"

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"target must lie strictly between 0 and 1, got {self.target}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")
        if self.stretch < 1 or not 1 <= self.sample <= self.stretch:
            raise ValueError(
                f"need 1 <= sample <= stretch, got sample {self.sample}, stretch {self.stretch}"
            )
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {self.max_rounds}")
        if self.method not in BOUND_METHODS:
            raise ValueError(f"method must be one of {BOUND_METHODS}, got {self.method!r}")


@dataclass
class StretchResult:
    """One checked stretch: positions [start, stop) of the list, its sample's verdicts."""

    start: int
    stop: int
    sampled: int
    correct: int
    estimate: float
    lower: float
    accepted: bool


@dataclass
class ClassProgress:
    """Where a class stands: next list position, stretches checked, why it stopped."""

    position: int = 0
    stretches: list[StretchResult] = field(default_factory=list)
    stopped: str = ""  # "", "target" (bound fell below), "end", "budget", "rounds"


def next_sample(
    list_length: int, progress: ClassProgress, policy: VerifyPolicy, *, seed: int
) -> np.ndarray:
    """List positions to verify next for a class (sorted); empty when it has stopped or ended.

    The sample is drawn uniformly from the next stretch, so its precision estimates the whole
    stretch's, not only its top.
    """
    if progress.stopped or progress.position >= list_length:
        return np.zeros(0, dtype=np.int64)
    start = progress.position
    stop = min(start + policy.stretch, list_length)
    size = min(policy.sample, stop - start)
    rng = np.random.default_rng([seed, start])
    return np.sort(rng.choice(np.arange(start, stop), size=size, replace=False))


def record_stretch(
    list_length: int,
    progress: ClassProgress,
    policy: VerifyPolicy,
    verdicts: Sequence[bool],
) -> StretchResult:
    """Fold the verdicts on a stretch's sample (True = verified correct) into ``progress``: the
    stretch is accepted while the precision bound reaches the target, else the class stops."""
    start = progress.position
    stop = min(start + policy.stretch, list_length)
    correct, total = int(sum(bool(v) for v in verdicts)), len(verdicts)
    if total == 0:
        raise ValueError("verdicts must not be empty")
    lower = precision_lower_bound(
        correct, total, confidence=policy.confidence, method=policy.method
    )
    result = StretchResult(
        start, stop, total, correct, correct / total, lower, lower >= policy.target
    )
    progress.stretches.append(result)
    if result.accepted:
        progress.position = stop
        if stop >= list_length:
            progress.stopped = "end"
    else:
        progress.stopped = "target"
    return result


def majority_accuracy(accuracy: float, votes: int) -> float:
    """How often a strict majority of ``votes`` independent workers of ``accuracy`` is right."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must lie in 0..1, got {accuracy}")
    if votes < 1:
        raise ValueError(f"votes must be at least 1, got {votes}")
    need = votes // 2 + 1
    return float(
        sum(
            math.comb(votes, j) * accuracy**j * (1 - accuracy) ** (votes - j)
            for j in range(need, votes + 1)
        )
    )


@dataclass(frozen=True)
class KeptPrecision:
    """Precision of the images a class keeps: estimate and lower bound (from the stretches'
    samples and the precision of a crowd verdict)."""

    kept: int
    estimate: float
    lower: float


def kept_precision(
    progress: ClassProgress, *, correct_in_rejected: int, verified_precision: float = 1.0
) -> KeptPrecision:
    """Kept = accepted stretches less their verified-wrong images, plus the verified-correct
    images of the stretch that stopped the class.

    Unverified kept images are correct at their stretch's precision (estimate, or its lower
    bound for the bound); verified-correct ones at ``verified_precision`` (how often a crowd
    verdict is right, e.g. ``majority_accuracy`` of the workers' accuracy on gold).
    """
    if not 0.0 <= verified_precision <= 1.0:
        raise ValueError(f"verified_precision must lie in 0..1, got {verified_precision}")
    verified = float(correct_in_rejected)
    kept = est = low = 0.0
    for s in progress.stretches:
        if not s.accepted:
            continue
        unverified = (s.stop - s.start) - s.sampled
        verified += s.correct
        kept += unverified
        est += s.estimate * unverified
        low += s.lower * unverified
    kept += verified
    if kept == 0:
        return KeptPrecision(0, 0.0, 0.0)
    est += verified * verified_precision
    low += verified * verified_precision
    return KeptPrecision(int(kept), est / kept, low / kept)
