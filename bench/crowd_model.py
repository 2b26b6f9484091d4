"""Crowd + model against CROWDLAB, on simulated crowds over a real model's probabilities.

Usage:
    .venv/bin/python bench/crowd_model.py             # every item, 3 seeds
    .venv/bin/python bench/crowd_model.py --quick     # 2,000 items, 2 seeds
    .venv/bin/python bench/crowd_model.py --no-peer   # without cleanlab

The model is real: the cross-validated predicted probabilities of the label-errors release
(``../shared/fixtures/label-errors/arrays/``, MNIST and 20news test sets). The truth is the
release's given label, replaced by the guessed label where the release's MTurk reviewers chose
it. The crowd is simulated: workers of varied accuracy (good, mediocre, spammers that answer at
random or always the same class), a long tail of workers with few votes, and errors that fall
half on the model's own runner-up class (hard items are hard for people too) and half anywhere.

Each scenario runs our ``crowd_model`` and cleanlab's ``get_label_quality_multiannotator``
(CROWDLAB, run in ``bench/.venv-peers`` in a subprocess) on identical votes and probabilities,
and prints consensus accuracy against the truth for both, the difference, majority vote,
Dawid-Skene and the model alone, and how well calibrated each confidence is. The bad-model rows feed both methods a useless model
(probabilities shuffled across items) or a badly miscalibrated one (40% of items given a wrong
class at 0.99, the rest sharpened to near one-hot). Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "label-errors"
DATASETS = {"mnist": ("mnist_test_set", "mnist"), "20news": ("20news_test_set", "20news")}
NUM_WORKERS = 60
# (name, votes per item: low..high inclusive, model variant)
SCENARIOS = (
    ("1 vote", (1, 1), "real"),
    ("1 vote, 2% of items 2", (1, 1), "real"),
    ("2 votes", (2, 2), "real"),
    ("1-3 votes", (1, 3), "real"),
    ("1-3 votes, shuffled model", (1, 3), "shuffled"),
    ("2 votes, shuffled model", (2, 2), "shuffled"),
    ("1-3 votes, miscalibrated model", (1, 3), "miscalibrated"),
)


# --------------------------------------------------------------------------- peer side


def run_peer(data_dir: Path) -> None:
    """CROWDLAB on the votes in ``data_dir`` (runs in the peers' virtualenv); saves labels."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    data = np.load(data_dir / "votes.npz")
    item, worker, label = data["item"], data["worker"], data["label"]
    probs = np.load(data_dir / "probs.npy")
    n, m = probs.shape[0], int(worker.max()) + 1
    table = np.full((n, m), np.nan)
    table[item, worker] = label
    used = ~np.isnan(table).all(axis=0)
    frame = pd.DataFrame(table[:, used])
    start = time.perf_counter()
    out = get_label_quality_multiannotator(frame, probs, verbose=False)
    seconds = time.perf_counter() - start
    quality = out["label_quality"]
    np.save(data_dir / "peer_labels.npy", quality["consensus_label"].to_numpy().astype(np.int64))
    np.save(data_dir / "peer_scores.npy", quality["consensus_quality_score"].to_numpy(np.float64))
    print(json.dumps({"seconds": seconds}))


# --------------------------------------------------------------------------- data


def load_model(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(probs (N, K), truth (N,)) of one label-errors test set."""
    prefix, base = DATASETS[name]
    probs = np.load(FIXTURES / "arrays" / f"{prefix}_pyx.npy").astype(np.float64)
    truth = np.load(FIXTURES / "arrays" / f"{prefix}_original_labels.npy").astype(np.int64)
    reviews = json.loads((FIXTURES / "mturk" / f"{base}_mturk.json").read_text())
    for rec in reviews:
        counts = rec["mturk"]
        if counts.get("guessed", 0) > counts.get("given", 0) + counts.get("both", 0):
            truth[rec["id"]] = rec["our_guessed_label"]
    return probs / probs.sum(axis=1, keepdims=True), truth


def simulate(
    probs: np.ndarray,
    truth: np.ndarray,
    per_item: tuple[int, int],
    rng: np.random.Generator,
    two_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes (item, worker, label) of a simulated crowd; each item's workers are distinct.

    ``per_item`` gives the votes per item (drawn evenly in the range); with one vote per item,
    ``two_share`` of the items get a second one.
    """
    n, k = probs.shape
    kind = rng.choice(3, size=NUM_WORKERS, p=[0.65, 0.25, 0.10])  # good, mediocre, spammer
    acc = np.where(
        kind == 0, rng.uniform(0.75, 0.95, NUM_WORKERS), rng.uniform(0.35, 0.7, NUM_WORKERS)
    )
    constant = rng.integers(0, k, NUM_WORKERS)
    always_same = rng.random(NUM_WORKERS) < 0.5
    share = 1.0 / np.arange(1, NUM_WORKERS + 1) ** 0.8  # a long tail of occasional workers
    share = rng.permutation(share / share.sum())
    masked = probs.copy()
    masked[np.arange(n), truth] = -1.0
    runner_up = masked.argmax(axis=1)
    items, workers, labels = [], [], []
    sizes = rng.integers(per_item[0], per_item[1] + 1, size=n)
    if per_item == (1, 1) and two_share:
        sizes[rng.random(n) < two_share] = 2
    for i in range(n):
        for w in rng.choice(NUM_WORKERS, size=sizes[i], replace=False, p=share):
            if kind[w] == 2:
                answer = constant[w] if always_same[w] else rng.integers(0, k)
            elif rng.random() < acc[w]:
                answer = truth[i]
            elif rng.random() < 0.5:
                answer = runner_up[i]
            else:
                answer = (truth[i] + rng.integers(1, k)) % k
            items.append(i)
            workers.append(w)
            labels.append(answer)
    return np.array(items), np.array(workers), np.array(labels)


def spoil(probs: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """The model the methods are given: the real one, shuffled, or badly miscalibrated."""
    if variant == "real":
        return probs
    if variant == "shuffled":
        return probs[rng.permutation(probs.shape[0])]
    n, k = probs.shape
    sharp = probs**8
    sharp /= sharp.sum(axis=1, keepdims=True)
    wrong = rng.random(n) < 0.4
    fake = (probs.argmax(axis=1) + rng.integers(1, k, n)) % k
    sharp[wrong] = 0.01 / (k - 1)
    sharp[np.flatnonzero(wrong), fake[wrong]] = 0.99
    return sharp


# --------------------------------------------------------------------------- main side


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the item-weighted mean |confidence - accuracy| over 15
    equal-width confidence bins (Naeini, Cooper and Hauskrecht, 2015)."""
    which = np.clip((confidence * bins).astype(np.int64), 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def peer_labels(item, worker, label, probs) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """CROWDLAB's consensus labels, its consensus quality scores and its seconds (run in the
    peers' virtualenv); (None, None, nan) when it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        np.savez(data_dir / "votes.npz", item=item, worker=worker, label=label)
        np.save(data_dir / "probs.npy", probs)
        proc = subprocess.run(
            [str(PEER_PYTHON), __file__, "--peer", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if proc.returncode != 0:
            print(f"  cleanlab failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            return None, None, float("nan")
        seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
        return (
            np.load(data_dir / "peer_labels.npy"),
            np.load(data_dir / "peer_scores.npy"),
            seconds,
        )


def dash(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 items, 2 seeds")
    parser.add_argument("--no-peer", action="store_true", help="skip cleanlab")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per scenario")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from annotation.aggregation import VoteTable, dawid_skene, majority_vote
    from annotation.aggregation.crowd_model import crowd_model

    seeds = args.seeds or (2 if args.quick else 3)
    peer = not args.no_peer and PEER_PYTHON.exists()
    print(f"# Crowd + model vs CROWDLAB ({time.strftime('%Y-%m-%d')})")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}; {NUM_WORKERS} simulated "
        f"workers; {seeds} seeds per row; peer: "
        f"{'cleanlab get_label_quality_multiannotator' if peer else 'skipped'}"
    )
    head = (
        f"{'data':7} {'scenario':31} {'ours':>7} {'crowdlab':>8} {'diff':>8} {'min diff':>8} "
        f"{'majority':>8} {'DS':>7} {'model':>7} {'ECE':>6} {'peer':>6} {'ours s':>7} "
        f"{'peer s':>7}"
    )
    print(head)
    print("-" * len(head))
    for name in args.datasets:
        full_probs, full_truth = load_model(name)
        for scenario, per_item, variant in SCENARIOS:
            rows = []
            for seed in range(seeds):
                rng = np.random.default_rng(1000 * seed + 7)
                n = 2000 if args.quick else full_probs.shape[0]
                pick = np.sort(rng.choice(full_probs.shape[0], size=n, replace=False))
                probs, truth = full_probs[pick], full_truth[pick]
                k = probs.shape[1]
                two = 0.02 if "2%" in scenario else 0.0
                item, worker, label = simulate(probs, truth, per_item, rng, two)
                given = spoil(probs, variant, rng)
                table = VoteTable.from_arrays(item, worker, label, num_items=n)
                start = time.perf_counter()
                fit = crowd_model(table, given, num_classes=k)
                ours_s = time.perf_counter() - start
                ours = fit.labels
                theirs, scores, peer_s = None, None, float("nan")
                if peer and item.size == n:
                    # cleanlab refuses one label per item and points to get_label_quality_scores,
                    # which scores the given label and keeps it: its consensus is the vote.
                    theirs, peer_s = label[np.argsort(item)], 0.0
                elif peer:
                    theirs, scores, peer_s = peer_labels(item, worker, label, given)
                rows.append(
                    (
                        float((ours == truth).mean()),
                        np.nan if theirs is None else float((theirs == truth).mean()),
                        float((majority_vote(table, num_classes=k).labels == truth).mean()),
                        float((dawid_skene(table, num_classes=k).labels == truth).mean()),
                        float((given.argmax(axis=1) == truth).mean()),
                        calibration_error(fit.confidence, ours == truth),
                        np.nan
                        if scores is None or theirs is None
                        else calibration_error(scores, theirs == truth),
                        ours_s,
                        peer_s,
                    )
                )
            r = np.array(rows)
            diff = r[:, 0] - r[:, 1]
            mean = r.mean(axis=0)
            print(
                f"{name:7} {scenario:31} {mean[0]:7.4f} {mean[1]:8.4f} {diff.mean():+8.4f} "
                f"{diff.min():+8.4f} {mean[2]:8.4f} {mean[3]:7.4f} {mean[4]:7.4f} "
                f"{mean[5]:6.3f} {dash(mean[6]):>6} {mean[7]:7.2f} {mean[8]:7.2f}",
                flush=True,
            )
    print(
        "accuracy against the truth, mean over seeds; diff = ours - crowdlab (min diff: the "
        "worst seed); model = the given model's argmax. With exactly one vote per item cleanlab "
        "refuses (it points to get_label_quality_scores, which keeps the given label), so its "
        "column there is the vote itself; the row with 2% of items voted twice runs CROWDLAB. "
        "ECE: expected calibration error of crowd_model's confidence (15 bins); peer: the same "
        "for CROWDLAB's consensus_quality_score, which cleanlab offers as a score to rank "
        "consensus labels by, not as a probability."
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peer":
        run_peer(Path(sys.argv[2]))
    else:
        main()
