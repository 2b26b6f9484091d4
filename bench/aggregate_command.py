"""``aggregate_votes`` end to end against a crowd-kit script doing the same job, as whole processes.

Usage:
    .venv/bin/python bench/aggregate_command.py            # 600,000 votes, best of 3
    .venv/bin/python bench/aggregate_command.py --quick    # 60,000 votes, best of 3
    .venv/bin/python bench/aggregate_command.py --no-peer  # ours only

Votes: 200,000 items x 3 distinct workers (of 300), K = 10, seeded (``bench/aggregation.py``'s
crowd: varied accuracy, look-alike errors, 10% spammers), written as ``task,worker,label`` CSV
with string worker ids. Ours: ``python manage.py aggregate_votes --input votes.csv
--num-classes 10 [--method dawid_skene] --output out.csv``. crowd-kit 1.4.2 (in
``bench/.venv-peers``): a script that reads the same CSV with pandas, runs
``DawidSkene(n_iter=100).fit_predict`` and writes its ``task,label`` CSV. Each process is timed
from spawn to exit: wall time, CPU time (user + system) and peak RSS from ``os.wait4``. Best
wall time of ``--repeat`` runs. Also prints the start-up: ``aggregate_votes --help`` (which sets
Django up) and file mode on a two-vote file (which does not). Prints figures only; nothing here
asserts.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aggregation import make_crowd, peers_python

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = """
import sys
import pandas as pd
from crowdkit.aggregation import DawidSkene
df = pd.read_csv(sys.argv[1])
labels = DawidSkene(n_iter=100).fit_predict(df)
labels.rename("label").rename_axis("task").reset_index().to_csv(sys.argv[2], index=False)
"""


def write_votes(path: Path, n_items: int, seed: int) -> np.ndarray:
    crowd = make_crowd(n_items, 300, 10, "uniform", seed)
    with open(path, "w", newline="") as fh:
        fh.write("task,worker,label\n")
        fh.writelines(
            f"{i},w{w:04d},{lab}\n"
            for i, w, lab in zip(crowd["item"], crowd["worker"], crowd["label"], strict=True)
        )
    return crowd["truth"]


def run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Spawn ``cmd``; wall seconds, CPU seconds and peak RSS (MB) of that process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def best(cmd: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    runs = [run(cmd, env) for _ in range(repeat)]
    return min(runs, key=lambda r: r["wall"])


def accuracy(path: Path, truth: np.ndarray) -> float:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    task = np.array([int(r["task"]) for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    return float((label == truth[task]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 items instead of 200,000")
    parser.add_argument("--no-peer", action="store_true", help="skip crowd-kit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_items = 20_000 if args.quick else 200_000
    peer_py = peers_python(args.no_peer)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("DJANGO_ENV", "development")
    manage = [sys.executable, "manage.py", "aggregate_votes"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        votes = d / "votes.csv"
        truth = write_votes(votes, n_items, seed=0)
        base = [*manage, "--input", str(votes), "--num-classes", "10"]
        tiny = d / "tiny.csv"
        tiny.write_text("task,worker,label\n0,a,1\n0,b,1\n")
        jobs = {
            "startup: aggregate_votes --help (Django)": ([*manage, "--help"], None),
            "startup: aggregate_votes on 2 votes": (
                [
                    *manage,
                    "--input",
                    str(tiny),
                    "--num-classes",
                    "10",
                    "--method",
                    "majority",
                    "--output",
                    str(d / "tiny-out.csv"),
                ],  # fmt: skip
                None,
            ),
            "ours: aggregate_votes --method dawid_skene": (
                [*base, "--method", "dawid_skene", "--output", str(d / "ds.csv")],
                d / "ds.csv",
            ),
            "ours: aggregate_votes (default method)": (
                [*base, "--output", str(d / "auto.csv")],
                d / "auto.csv",
            ),
        }
        if peer_py is not None:
            script = d / "peer.py"
            script.write_text(PEER_SCRIPT)
            jobs["crowd-kit: read_csv + DawidSkene + to_csv"] = (
                [str(peer_py), str(script), str(votes), str(d / "ck.csv")],
                d / "ck.csv",
            )
        results = {}
        for name, (cmd, out) in jobs.items():
            results[name] = best(cmd, env, args.repeat)
            results[name]["acc"] = accuracy(out, truth) if out else float("nan")
    print(
        f"\n# aggregate_votes end to end ({time.strftime('%Y-%m-%d')}): {3 * n_items:,} votes, "
        f"{n_items:,} items x 3, K=10, 300 workers; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; best wall of "
        f"{args.repeat}\n"
    )
    print(f"{'process':<44} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'accuracy':>9}")
    for name, r in results.items():
        acc = "" if np.isnan(r["acc"]) else f"{r['acc']:.4f}"
        print(f"{name:<44} {r['wall']:7.2f} {r['cpu']:7.2f} {r['rss']:8.0f} {acc:>9}")
    peer = results.get("crowd-kit: read_csv + DawidSkene + to_csv")
    if peer:
        print()
        for name in list(results)[2:4]:
            r = results[name]
            print(
                f"crowd-kit / {name[6:]}: {peer['wall'] / r['wall']:.1f}x wall, "
                f"{peer['cpu'] / r['cpu']:.1f}x CPU; peak RSS ours/crowd-kit "
                f"{r['rss'] / peer['rss']:.2f}"
            )


if __name__ == "__main__":
    main()
