"""Benchmark the retrieval verification policy; prints figures, asserts nothing.

    .venv/bin/python bench/retrieval.py            # 200 seeded runs per scenario
    .venv/bin/python bench/retrieval.py --quick    # 40 runs per scenario

A labeled dataset is treated as unlabeled: a noisy ranker scores every image for every class,
each image goes to its best class, and each class's list is verified with the product's policy
(curation.engine.verification: a sample of each stretch, Clopper-Pearson bound, stop below the
target) by simulated workers of known accuracy (3 votes, majority). The figures: the true
precision of the images kept against the target, images kept, votes spent, next to verifying
every image of the same stretches (3 votes each, the verified-correct kept).

Scenarios: (a) the label-errors MNIST test set (10,000 images, labels as truth) with the
published cross-validated probabilities plus seeded noise as the ranker; (b) a CLEAR-like pool
of 100,000 images where 30% belong to one of 10 classes and the rest to none, scored by a
ranker whose class signal is 2.5 noise standard deviations.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.engine.verification import (  # noqa: E402
    ClassProgress,
    VerifyPolicy,
    kept_precision,
    majority_accuracy,
    next_sample,
    record_stretch,
)

MNIST = REPO.parent / "shared" / "fixtures" / "label-errors" / "arrays"
VOTES = 3


@dataclass
class RunResult:
    kept: int
    true_correct: int
    votes: int
    baseline_votes: int
    baseline_kept: int
    baseline_correct: int
    bound_ok: int  # classes whose printed lower bound <= the true precision of what they kept
    classes: int


def crowd_verdicts(truth: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Majority of VOTES simulated votes per image (True = "correct")."""
    right = rng.random((len(truth), VOTES)) < accuracy
    says_correct = np.where(truth[:, None], right, ~right)
    return says_correct.sum(axis=1) * 2 > VOTES


def run_once(
    lists: list[np.ndarray], policy: VerifyPolicy, accuracy: float, seed: int
) -> RunResult:
    """``lists[k]``: per position of class k's ranked list, whether the image truly is k."""
    rng = np.random.default_rng(seed)
    kept = true_correct = votes = base_votes = base_kept = base_correct = 0
    bound_ok = 0
    for k, truth in enumerate(lists):
        progress = ClassProgress()
        keep = np.zeros(len(truth), dtype=bool)
        verified_correct_last = 0
        for _ in range(policy.max_rounds):
            positions = next_sample(len(truth), progress, policy, seed=seed * 101 + k)
            if len(positions) == 0:
                break
            verdicts = crowd_verdicts(truth[positions], accuracy, rng)
            votes += VOTES * len(positions)
            result = record_stretch(len(truth), progress, policy, list(verdicts))
            if result.accepted:
                keep[result.start : result.stop] = True
                keep[positions[~verdicts]] = False
            else:
                keep[positions[verdicts]] = True
                verified_correct_last = int(verdicts.sum())
        depth = progress.stretches[-1].stop if progress.stretches else 0
        # Verifying everything down to the same depth.
        base = crowd_verdicts(truth[:depth], accuracy, rng)
        base_votes += VOTES * depth
        base_kept += int(base.sum())
        base_correct += int((base & truth[:depth]).sum())
        n_kept, n_true = int(keep.sum()), int((keep & truth).sum())
        kept += n_kept
        true_correct += n_true
        printed = kept_precision(
            progress,
            correct_in_rejected=verified_correct_last,
            verified_precision=majority_accuracy(accuracy, VOTES),
        )
        bound_ok += int(not n_kept or printed.lower <= n_true / n_kept)
    return RunResult(
        kept, true_correct, votes, base_votes, base_kept, base_correct, bound_ok, len(lists)
    )


def mnist_lists(seed: int, noise: float) -> list[np.ndarray]:
    labels = np.load(MNIST / "mnist_test_set_original_labels.npy").astype(np.int64)
    probs = np.load(MNIST / "mnist_test_set_pyx.npy")
    rng = np.random.default_rng(seed)
    scores = np.log(np.clip(probs, 1e-12, 1)) + noise * rng.standard_normal(probs.shape)
    return ranked_truth(scores, labels)


def clear_like_lists(seed: int, n: int, signal: float, k: int = 10) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), -1)
    scores = rng.standard_normal((n, k))
    hit = labels >= 0
    scores[np.flatnonzero(hit), labels[hit]] += signal
    return ranked_truth(scores, labels)


def ranked_truth(scores: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Each image to its best class; per class, truth along the list sorted by score."""
    best = scores.argmax(axis=1)
    out = []
    for c in range(scores.shape[1]):
        idx = np.flatnonzero(best == c)
        idx = idx[np.argsort(-scores[idx, c], kind="stable")]
        out.append(labels[idx] == c)
    return out


def scenario(name: str, make, policy: VerifyPolicy, accuracy: float, runs: int) -> None:
    t0 = time.perf_counter()
    results = [run_once(make(seed), policy, accuracy, seed) for seed in range(runs)]
    precision = np.array([r.true_correct / max(r.kept, 1) for r in results])
    reached = float((precision >= policy.target).mean())
    kept = np.mean([r.kept for r in results])
    votes = np.mean([r.votes for r in results])
    base_votes = np.mean([r.baseline_votes for r in results])
    base_prec = np.mean([r.baseline_correct / max(r.baseline_kept, 1) for r in results])
    base_kept = np.mean([r.baseline_kept for r in results])
    bound_ok = sum(r.bound_ok for r in results) / sum(r.classes for r in results)
    print(
        f"{name:<34} {accuracy:>5.2f} {runs:>5} {precision.mean():>9.4f} {precision.min():>8.4f} "
        f"{reached:>8.1%} {bound_ok:>8.1%} {kept:>8.0f} {votes:>8.0f} | {base_prec:>9.4f} "
        f"{base_kept:>8.0f} {base_votes:>9.0f} {base_votes / max(votes, 1):>6.1f}x "
        f"{time.perf_counter() - t0:>6.1f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 runs per scenario")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--stretch", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=300)
    args = parser.parse_args()
    runs = args.runs or (40 if args.quick else 200)
    policy = VerifyPolicy(
        target=0.99, confidence=0.95, stretch=args.stretch, sample=args.sample, max_rounds=50
    )
    print(
        f"# Retrieval verification: target {policy.target} at {policy.confidence:.0%} "
        f"confidence, stretch {policy.stretch}, sample {policy.sample}, {VOTES} votes per image, "
        f"{runs} seeded runs per row"
    )
    print(
        f"{'scenario':<34} {'acc':>5} {'runs':>5} {'precision':>9} {'worst':>8} {'reached':>8} "
        f"{'bound ok':>8} {'kept':>8} {'votes':>8} | {'all: prec':>9} {'kept':>8} {'votes':>9} "
        f"{'saved':>7} {'time':>7}"
    )
    for n, signal in ((300_000, 4.0), (100_000, 2.5)):
        for accuracy in (0.98, 0.95):
            scenario(
                f"clear-like pool {n // 1000}k, signal {signal}",
                lambda seed, n=n, signal=signal: clear_like_lists(seed, n, signal),
                policy,
                accuracy,
                runs,
            )
    if (MNIST / "mnist_test_set_pyx.npy").is_file():
        small = VerifyPolicy(target=0.95, confidence=0.95, stretch=300, sample=90, max_rounds=50)
        print(
            f"# MNIST test set (label-errors arrays), ranker = cross-validated log-probs + "
            f"N(0, 1); target {small.target}, stretch {small.stretch}, sample {small.sample}"
        )
        for accuracy in (0.98, 0.95):
            scenario(
                "mnist 10k, noisy cross-val ranker",
                lambda seed: mnist_lists(seed, 1.0),
                small,
                accuracy,
                runs,
            )
    else:
        print(f"# MNIST arrays not found under {MNIST}; that scenario was skipped")


if __name__ == "__main__":
    main()
