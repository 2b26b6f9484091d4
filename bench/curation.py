"""Benchmark the curation engine; prints figures, asserts nothing about timing.

    .venv/bin/python bench/curation.py            # everything (a few minutes on 2 cores)
    .venv/bin/python bench/curation.py --quick    # smaller kNN, fewer repeats, no float32 rerun
    .venv/bin/python bench/curation.py --no-peer  # skip cleanlab

(a) Confident learning on the label-errors MNIST test-set arrays (published cross-validated
    probabilities) against cleanlab.filter.find_label_issues, which runs in its own virtualenv
    (bench/.venv-peers, created here on first use; never a project dependency), in a subprocess
    fed through .npy files. Confirmed errors are the MTurk-reviewed items where fewer than 3 of 5
    workers chose the given label.
(b) scikit-learn's digits with 20% of labels flipped (seeded): SmallConvNet early-learning
    features + kNN voting, plus cross-validated probabilities + confident learning.
(c) Exact cosine kNN throughput at 100,000 x 512 on the CPU, and 1,000,000 x 512 on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.engine import (  # noqa: E402
    combine_issues,
    cross_val_probs,
    early_learning_features,
    find_issues_confident_learning,
    find_issues_knn,
    knn_cosine,
    pick_device,
)

PEER_VENV = REPO / "bench" / ".venv-peers"
PEER_PACKAGES = ["cleanlab", "numpy", "scikit-learn"]

PEER_SCRIPT = r"""
import json, sys, time
import numpy as np
import cleanlab
from cleanlab.filter import find_label_issues

labels = np.load(sys.argv[1]).astype(int)
probs = np.load(sys.argv[2])
repeats = int(sys.argv[4])
find_label_issues(labels, probs)  # warm-up: imports, worker pool
times = []
for _ in range(repeats):
    start = time.perf_counter()
    mask = find_label_issues(labels, probs)
    times.append(time.perf_counter() - start)
ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
np.save(sys.argv[3], np.asarray(ranked, dtype=np.int64))
print(json.dumps({"version": cleanlab.__version__, "times": times, "flagged": int(mask.sum())}))
"""


def find_shared() -> Path:
    for base in (REPO / "shared", REPO.parent / "shared"):
        if (base / "fixtures" / "label-errors").is_dir():
            return base / "fixtures" / "label-errors"
    raise SystemExit("shared/fixtures/label-errors not found beside the repository")


def peer_python() -> Path:
    """The peers venv's python, creating the venv with pip on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV} with {' '.join(PEER_PACKAGES)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def section(title: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n== {title} ==  (load average {load})", flush=True)


def show(name: str, value: object) -> None:
    print(f"{name}: {value}", flush=True)


def bench_mnist(*, peer: bool, repeats: int) -> None:
    section("(a) confident learning on label-errors MNIST test set (10,000 x 10)")
    fixtures = find_shared()
    labels_path = fixtures / "arrays" / "mnist_test_set_original_labels.npy"
    probs_path = fixtures / "arrays" / "mnist_test_set_pyx.npy"
    labels = np.load(labels_path)
    probs = np.load(probs_path)
    mturk = json.loads((fixtures / "mturk" / "mnist_mturk.json").read_text())
    reviewed = np.array([row["id"] for row in mturk])
    confirmed = np.array([row["id"] for row in mturk if row["mturk"]["given"] < 3])
    show("arrays", f"labels {labels.dtype}{labels.shape}, pred_probs {probs.dtype}{probs.shape}")
    show("MTurk-reviewed candidates", reviewed.size)
    show("confirmed errors (given label chosen by < 3 of 5 workers)", confirmed.size)

    find_issues_confident_learning(probs, labels)  # warm-up
    ours_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ours = find_issues_confident_learning(probs, labels)
        ours_times.append(time.perf_counter() - start)
    ours_t = float(np.median(ours_times))
    show("ours: default filter", "prune_by_noise_rate, self_confidence ranking")
    show("ours: flagged", int(ours.flagged.sum()))
    show("ours: confirmed errors found", f"{int(ours.flagged[confirmed].sum())} / {confirmed.size}")
    show("ours: recall of confirmed errors", f"{ours.flagged[confirmed].mean():.3f}")
    show("ours: median time (s)", f"{ours_t:.4f}")
    for filter_by in ("prune_by_class", "both", "cl_off_diagonal"):
        other = find_issues_confident_learning(probs, labels, filter_by=filter_by)
        show(
            f"ours ({filter_by}): flagged / confirmed found",
            f"{int(other.flagged.sum())} / {int(other.flagged[confirmed].sum())}",
        )

    if not peer:
        show("cleanlab", "skipped (--no-peer)")
        return
    python = peer_python()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "peer.py"
        script.write_text(PEER_SCRIPT)
        out = Path(tmp) / "ranked.npy"
        done = subprocess.run(
            [str(python), str(script), str(labels_path), str(probs_path), str(out), str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        peer_info = json.loads(done.stdout.strip().splitlines()[-1])
        peer_ranked = np.load(out)
    peer_mask = np.zeros(labels.size, dtype=bool)
    peer_mask[peer_ranked] = True
    peer_t = float(np.median(peer_info["times"]))
    both = int((peer_mask & ours.flagged).sum())
    either = int((peer_mask | ours.flagged).sum())
    show("cleanlab version", peer_info["version"])
    show("cleanlab: flagged", int(peer_mask.sum()))
    show(
        "cleanlab: confirmed errors found",
        f"{int(peer_mask[confirmed].sum())} / {confirmed.size}",
    )
    show("cleanlab: recall of confirmed errors", f"{peer_mask[confirmed].mean():.3f}")
    show("cleanlab: median time (s)", f"{peer_t:.4f}")
    show("agreement: flagged by both / by either", f"{both} / {either}")
    show("agreement: Jaccard", f"{both / max(either, 1):.3f}")
    show("agreement: identical ranking", bool(np.array_equal(peer_ranked, ours.ranked)))
    show("time ratio cleanlab / ours (x faster)", f"{peer_t / ours_t:.1f}")


def _flip(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = labels.size
    chosen = rng.choice(n, size=int(round(share * n)), replace=False)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + rng.integers(1, 10, size=chosen.size)) % 10
    return noisy


def _prf(flagged: np.ndarray, planted: np.ndarray) -> str:
    hits = int((flagged & planted).sum())
    precision = hits / max(int(flagged.sum()), 1)
    recall = hits / max(int(planted.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  (flagged {flagged.sum()})"


def bench_digits(*, quick: bool, epochs: int) -> None:
    from sklearn.datasets import load_digits

    section("(b) scikit-learn digits, 20% of labels flipped at random (seed 0)")
    digits = load_digits()
    images = np.rint(digits.images / 16.0 * 255.0).astype(np.uint8)  # (1797, 8, 8)
    true = digits.target
    noisy = _flip(true, 0.2, seed=0)
    planted = noisy != true
    show("items / flipped", f"{true.size} / {int(planted.sum())}")
    show("device", pick_device().type)

    start, cpu_start = time.perf_counter(), time.process_time()
    trained = early_learning_features(images, noisy, epochs=epochs, size=32, seed=0)
    t_train, cpu_train = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    knn_vote = find_issues_knn(trained.features, noisy, rule="vote", seed=0)
    t_knn = time.perf_counter() - start
    show(f"SmallConvNet {epochs} epochs: train + embed (s)", f"{t_train:.2f}")
    show("SmallConvNet: CPU time of this process (s)", f"{cpu_train:.2f}")
    show("SmallConvNet: epoch losses", np.round(trained.epoch_losses, 3).tolist())
    show(
        "SmallConvNet: accuracy of its argmax vs the true labels",
        f"{(trained.probs.argmax(1) == true).mean():.3f}",
    )
    show("kNN voting (vote rule, k=10, 21 rounds)", _prf(knn_vote.flagged, planted))
    show("kNN voting: time (s)", f"{t_knn:.2f}")
    show("features + kNN voting: wall time (s)", f"{t_train + t_knn:.2f}")
    knn_rank = find_issues_knn(trained.features, noisy, rule="rank", seed=0)
    show("kNN voting (rank rule)", _prf(knn_rank.flagged, planted))
    show("rank rule: mean estimated noise rate", f"{knn_rank.noise_rates.mean():.3f}")
    pixels = find_issues_knn(digits.data, noisy, rule="vote", seed=0)
    show("baseline: kNN voting on raw pixels", _prf(pixels.flagged, planted))
    if quick:
        return
    start = time.perf_counter()
    probs = cross_val_probs(images, noisy, folds=5, epochs=epochs, size=32, seed=0)
    t_cv = time.perf_counter() - start
    cl = find_issues_confident_learning(probs, noisy)
    show(f"5-fold SmallConvNet probabilities ({epochs} epochs): time (s)", f"{t_cv:.2f}")
    show("confident learning on them", _prf(cl.flagged, planted))
    combined = combine_issues([cl, knn_vote], noisy)
    show("combined (CL + kNN voting, flagged by at least one)", _prf(combined.flagged, planted))


def bench_knn(*, quick: bool) -> None:
    import torch

    section("(c) exact cosine kNN throughput, k=10, self excluded")
    n_cpu = 20_000 if quick else 100_000
    feats = np.random.default_rng(0).standard_normal((n_cpu, 512), dtype=np.float32)
    show("data", f"{n_cpu:,} x 512 standard normal (the hardest case for the shortlist proof)")
    show("CPU threads", torch.get_num_threads())
    start = time.perf_counter()
    idx, sims = knn_cosine(feats, k=10, device="cpu")
    elapsed = time.perf_counter() - start
    show("CPU auto precision: seconds", f"{elapsed:.1f}")
    show("CPU auto precision: items per second", f"{n_cpu / elapsed:,.0f}")
    if not quick:
        start = time.perf_counter()
        idx32, sims32 = knn_cosine(feats, k=10, device="cpu", precision="float32")
        elapsed32 = time.perf_counter() - start
        show("CPU float32 only: seconds", f"{elapsed32:.1f}")
        show("CPU float32 only: items per second", f"{n_cpu / elapsed32:,.0f}")
        same = np.mean(np.sort(idx, axis=1) == np.sort(idx32, axis=1))
        show("neighbour sets identical to float32 (share of entries)", f"{same:.6f}")
        show("max |similarity difference|", f"{np.abs(sims - sims32).max():.2e}")
    if not torch.cuda.is_available():
        show("GPU 1,000,000 x 512", "skipped: no CUDA device on this machine")
        return
    n_gpu = 200_000 if quick else 1_000_000
    gen = torch.Generator(device="cuda").manual_seed(0)
    big = torch.randn(n_gpu, 512, device="cuda", generator=gen)
    knn_cosine(big[:20_000], k=10, device="cuda")  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    knn_cosine(big, k=10, device="cuda")
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    show("GPU", torch.cuda.get_device_name())
    show(f"GPU {n_gpu:,} x 512: seconds", f"{elapsed:.1f}")
    show(f"GPU {n_gpu:,} x 512: items per second", f"{n_gpu / elapsed:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--no-peer", action="store_true", help="skip the cleanlab comparison")
    parser.add_argument("--epochs", type=int, default=2, help="SmallConvNet epochs for (b)")
    parser.add_argument("--only", choices=["mnist", "digits", "knn"], help="run one part only")
    args = parser.parse_args()
    show("date", time.strftime("%Y-%m-%d %H:%M %Z"))
    show("command", " ".join([Path(sys.executable).name, *sys.argv]))
    show("cpu cores", os.cpu_count())
    repeats = 3 if args.quick else 7
    if args.only in (None, "mnist"):
        bench_mnist(peer=not args.no_peer, repeats=repeats)
    if args.only in (None, "digits"):
        bench_digits(quick=args.quick, epochs=args.epochs)
    if args.only in (None, "knn"):
        bench_knn(quick=args.quick)


if __name__ == "__main__":
    main()
