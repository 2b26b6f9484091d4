"""Accuracy of every class-vote method against crowd-kit, on real crowds and synthetic shapes.

Usage:
    .venv/bin/python bench/crowds.py            # the four real crowds + synthetic shapes, 3 seeds
    .venv/bin/python bench/crowds.py --quick    # smaller synthetic crowds, one seed
    .venv/bin/python bench/crowds.py --no-peer  # without crowd-kit

Real crowds: ``../shared/fixtures/crowd-truth/`` (dog, face, duck, product; votes with the
experts' truth). Synthetic shapes (seeded): few votes per item, many sparse workers, adversarial
workers, K = 100, and the long-tail crowd of ``bench/aggregation.py``. crowd-kit 1.4.2's
MajorityVote, DawidSkene, OneCoinDawidSkene, GLAD and MACE (defaults) run in
``bench/.venv-peers`` in a subprocess on the same votes. Prints one table of accuracies against
the truth (unresolved items count as wrong; synthetic rows are the mean over seeds); nothing here
asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aggregation import distinct_workers, make_crowd, peers_python

ROOT = Path(__file__).resolve().parents[1]
CROWD_TRUTH = ROOT.parent / "shared" / "fixtures" / "crowd-truth"
REAL = {"dog": 4, "face": 4, "duck": 2, "product": 2}
PEERS = ("MajorityVote", "DawidSkene", "OneCoinDawidSkene", "GLAD", "MACE")
PEER_TIMEOUT_S = 1800


# --------------------------------------------------------------------------- peer subprocess


def run_peers(data_dir: Path) -> None:
    """Peers venv side: every crowd-kit method on ``data_dir``'s votes; labels saved as .npy."""
    import pandas as pd
    from crowdkit import aggregation as ck

    item = np.load(data_dir / "item.npy")
    df = pd.DataFrame(
        {
            "task": item,
            "worker": np.load(data_dir / "worker.npy"),
            "label": np.load(data_dir / "label.npy"),
        }
    )
    n_items = int(json.loads((data_dir / "meta.json").read_text())["num_items"])
    for name in PEERS:
        result = getattr(ck, name)().fit_predict(df)
        labels = np.full(n_items, -1, dtype=np.int64)
        labels[result.index.to_numpy(dtype=np.int64)] = result.to_numpy(dtype=np.int64)
        np.save(data_dir / f"ck_{name}.npy", labels)


def peer_labels(python: Path | None, crowd: dict, k: int) -> dict[str, np.ndarray]:
    if python is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for key in ("item", "worker", "label"):
            np.save(d / f"{key}.npy", crowd[key])
        (d / "meta.json").write_text(json.dumps({"num_items": crowd["truth"].size, "k": k}))
        cmd = [str(python), str(Path(__file__).resolve()), "--run-peers", str(d)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=PEER_TIMEOUT_S)
        if out.returncode != 0:
            print(f"  crowd-kit failed: {out.stderr.strip().splitlines()[-1:]}")
            return {}
        return {name: np.load(d / f"ck_{name}.npy") for name in PEERS}


# --------------------------------------------------------------------------- crowds


def load_real(name: str) -> dict:
    tasks: dict[str, int] = {}
    workers: dict[str, int] = {}
    item, worker, label = [], [], []
    with open(CROWD_TRUTH / f"{name}-answers.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            item.append(tasks.setdefault(row["task"], len(tasks)))
            worker.append(workers.setdefault(row["worker"], len(workers)))
            label.append(int(row["label"]))
    truth = np.full(len(tasks), -1, dtype=np.int64)
    with open(CROWD_TRUTH / f"{name}-truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["task"] in tasks:
                truth[tasks[row["task"]]] = int(row["truth"])
    return {
        "item": np.asarray(item, dtype=np.int64),
        "worker": np.asarray(worker, dtype=np.int64),
        "label": np.asarray(label, dtype=np.int64),
        "truth": truth,
    }


def simulate(rng, truth, per_item, acc, k, adversary=None) -> dict:
    """Votes from workers of accuracy ``acc`` (M,) drawn uniformly, ``per_item`` (N,) each;
    errors land on a per-worker favourite wrong class half the time. Adversaries (bool (M,))
    answer the class after the true one 80% of the time."""
    m = acc.size
    worker = np.concatenate(
        [distinct_workers(rng, int((per_item == c).sum()), c, np.full(m, 1.0 / m)).ravel()
         for c in np.unique(per_item)]
    )  # fmt: skip
    order = np.concatenate([np.flatnonzero(per_item == c) for c in np.unique(per_item)])
    item = np.repeat(order, per_item[order])
    y = truth[item]
    v = item.size
    shift = rng.integers(1, k, (m, k))  # favourite wrong class per worker and true class
    err = np.where(rng.random(v) < 0.5, (y + shift[worker, y]) % k, (y + rng.integers(1, k, v)) % k)
    label = np.where(rng.random(v) < acc[worker], y, err)
    if adversary is not None:
        bad = adversary[worker] & (rng.random(v) < 0.8)
        label = np.where(bad, (y + 1) % k, label)
    return {"item": item, "worker": worker, "label": label, "truth": truth}


def synthetic(shape: str, seed: int, scale: float) -> tuple[dict, int]:
    rng = np.random.default_rng(seed)
    n = int(3000 * scale)
    if shape == "few votes (1-3), K=4, M=100":
        k, m = 4, 100
        per = rng.integers(1, 4, n)
        acc = np.clip(rng.beta(4, 2, m), 0.3, 0.95)
        return simulate(rng, rng.integers(0, k, n), per, acc, k), k
    if shape == "sparse workers, K=5, M=1500":
        k, m = 5, 1500
        acc = np.clip(rng.beta(4, 2, m), 0.25, 0.95)
        return simulate(rng, rng.integers(0, k, n), np.full(n, 3), acc, k), k
    if shape == "25% adversarial, K=3, M=40":
        k, m = 3, 40
        acc = np.clip(rng.beta(5, 2, m), 0.4, 0.95)
        adv = rng.random(m) < 0.25
        return simulate(rng, rng.integers(0, k, n), np.full(n, 5), acc, k, adv), k
    if shape == "K=100, 5 votes, M=200":
        k, m = 100, 200
        acc = np.clip(rng.beta(4, 2, m), 0.2, 0.95)
        return simulate(rng, rng.integers(0, k, n), np.full(n, 5), acc, k), k
    crowd = make_crowd(int(5000 * scale), 500, 10, "long-tail", seed)
    return crowd, 10


SHAPES = (
    "few votes (1-3), K=4, M=100",
    "sparse workers, K=5, M=1500",
    "25% adversarial, K=3, M=40",
    "K=100, 5 votes, M=200",
    "long-tail K=10, 3 votes, M=500",
)


# --------------------------------------------------------------------------- ours


def our_labels(crowd: dict, k: int) -> dict[str, np.ndarray]:
    from annotation import aggregation as agg
    from annotation.aggregation.methods import MODEL_METHODS

    votes = agg.VoteTable.from_arrays(
        crowd["item"], crowd["worker"], crowd["label"], num_items=crowd["truth"].size
    )
    out = {}
    for method in agg.CATEGORICAL_METHODS:
        # gold_weighted needs gold answers and crowd_model a model's probabilities: none here
        if method != "gold_weighted" and method not in MODEL_METHODS:
            out[method] = agg.aggregate_by_name(votes, method, num_classes=k).labels
    return out


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    known = truth >= 0
    return float((labels[known] == truth[known]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller crowds, one seed")
    parser.add_argument("--no-peer", action="store_true", help="skip crowd-kit")
    parser.add_argument("--run-peers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_peers:
        run_peers(args.run_peers)
        return
    sys.path.insert(0, str(ROOT))
    from annotation.aggregation.methods import DEFAULT_METHOD

    peer_py = peers_python(args.no_peer)
    seeds = (0,) if args.quick else (0, 1, 2)
    scale = 0.5 if args.quick else 1.0
    start = time.perf_counter()
    rows: list[tuple[str, dict[str, float]]] = []
    for name, k in REAL.items():
        if not (CROWD_TRUTH / f"{name}-answers.csv").exists():
            print(f"{name}: {CROWD_TRUTH} missing, skipped")
            continue
        crowd = load_real(name)
        labels = {**our_labels(crowd, k), **peer_labels(peer_py, crowd, k)}
        rows.append((name, {m: accuracy(lab, crowd["truth"]) for m, lab in labels.items()}))
    for shape in SHAPES:
        per_seed: dict[str, list[float]] = {}
        for seed in seeds:
            crowd, k = synthetic(shape, seed, scale)
            labels = {**our_labels(crowd, k), **peer_labels(peer_py, crowd, k)}
            for m, lab in labels.items():
                per_seed.setdefault(m, []).append(accuracy(lab, crowd["truth"]))
        rows.append((shape, {m: float(np.mean(a)) for m, a in per_seed.items()}))

    methods = list(rows[0][1])
    ours = [m for m in methods if m not in PEERS]
    width = max(len(r[0]) for r in rows)
    print(f"\n# Crowd accuracy ({time.strftime('%Y-%m-%d')}; default method: {DEFAULT_METHOD}; "
          f"synthetic rows: mean of {len(seeds)} seed(s), scale {scale})\n")  # fmt: skip
    heads = (
        [m[:9] for m in ours]
        + [f"ck_{m[:6]}" for m in PEERS if m in methods]
        + ["best ck", "ours-ck"]
    )
    print(f"{'crowd':<{width}} " + " ".join(f"{h:>9}" for h in heads))
    for name, acc in rows:
        cells = [acc[m] for m in methods]
        peer = [acc[m] for m in PEERS if m in acc]
        best = max(peer) if peer else float("nan")
        gap = acc[DEFAULT_METHOD] - best if peer else float("nan")
        print(f"{name:<{width}} " + " ".join(f"{c:9.4f}" for c in cells + [best, gap]))
    print(f"\n'ours-ck': {DEFAULT_METHOD} minus the best crowd-kit method on that crowd; "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
