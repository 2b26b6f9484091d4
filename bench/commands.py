"""Whole commands as a user runs them, timed end to end (process start included).

- find_label_issues: ``manage.py find_label_issues --method confident_learning`` on N x 10
  saved probabilities against a script that loads the same .npy files, calls cleanlab's
  ``cleanlab.filter.find_label_issues`` with the same rule (prune by noise rate, ranked by
  self-confidence) and saves its indices; best wall time of ``--repeat`` runs each, both outputs
  compared. cleanlab runs in ``bench/.venv-peers`` (never in the project's environment).
- start-up: the import time of ``manage.py find_label_issues --help`` (``python -X importtime``)
  and the wall time of the command on 10 items, with whether torch or scipy got imported.
- CLImage: import (``manage.py import_dataset --format climage``) and export (``manage.py
  export_dataset --format climage``) of a pickle of N 32x32 images, next to the floor: the time
  to merely unpickle the file and pickle it again.
- launch: 5,000 HITs (50,000 items, 10 per HIT) launched on the built-in marketplace: the
  admin's launch service plus the publish job it queues.
- admin: the queries that the "add HIT batch" admin page runs on a 50,000-item dataset.

Each Django step runs in a temporary VAR_DIR with a fresh SQLite database. Loopback only.

    .venv/bin/python bench/commands.py            # full sizes (1M x 10, 50,000 images)
    .venv/bin/python bench/commands.py --quick    # small sizes while developing
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"

CLEANLAB_SCRIPT = r"""
import sys
import numpy as np
from cleanlab.filter import find_label_issues

labels = np.load(sys.argv[1])
probs = np.load(sys.argv[2])
ranked = find_label_issues(
    labels, probs, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence"
)
np.save(sys.argv[3], np.asarray(ranked, dtype=np.int64))
"""

FLOOR_SCRIPT = r"""
import pickle, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    data = pickle.load(fh)
t1 = time.perf_counter()
with open(sys.argv[2], "wb") as fh:
    pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
t2 = time.perf_counter()
print(f"FLOOR={t1 - t0:.4f},{t2 - t1:.4f}")
"""

LAUNCH_SCRIPT = r"""
import os, time
from decimal import Decimal
from annotation.models import Dataset, Item
from hits.models import Hit, HitBatch
from hits.services import hit_batch_launch, hit_batch_publish

n_items = int(os.environ["BENCH_ITEMS"])
ds = Dataset.objects.create(name="launch-bench", class_names=["cat", "dog"])
Item.objects.bulk_create(
    (
        Item(dataset=ds, index=i, name=f"img{i}.png", image=f"datasets/bench/img{i}.png",
             width=32, height=32, given_label=i % 2, label=i % 2)
        for i in range(n_items)
    ),
    batch_size=5000,
)
batch = HitBatch.objects.create(
    name="launch bench", dataset=ds, kind="verify", provider="market", environment="market",
    reward=Decimal("0.05"), items_per_hit=10, assignments_per_item=3,
)
t0, c0 = time.perf_counter(), time.process_time()
hit_batch_launch(batch)
batch.refresh_from_db()
while not hit_batch_publish(batch):
    batch.refresh_from_db()
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
batch.refresh_from_db()
hits = Hit.objects.filter(batch=batch)
published = hits.exclude(provider_hit_id="").count()
print(f"LAUNCH={seconds:.4f},{cpu:.4f},{hits.count()},{published},{batch.status}")
"""

ADMIN_SCRIPT = r"""
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from annotation.models import Dataset, Item

ds = Dataset.objects.create(name="admin-bench", class_names=["cat", "dog"])
Item.objects.bulk_create(
    (
        Item(dataset=ds, index=i, name=f"img{i}.png", image=f"datasets/bench/img{i}.png",
             width=8, height=8, given_label=i % 2, label=i % 2)
        for i in range(50_000)
    ),
    batch_size=5000,
)
user = get_user_model().objects.create_superuser("bench", "bench@localhost", "bench-pw-1")
client = Client()
client.force_login(user)
client.get("/admin/hits/hitbatch/add/")  # warm caches, as a second visit would
with CaptureQueriesContext(connection) as ctx:
    response = client.get("/admin/hits/hitbatch/add/")
print(f"ADMIN={response.status_code},{len(ctx.captured_queries)},{len(response.content)}")
"""


def django_env(var: Path) -> dict:
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "VAR_DIR": str(var),
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    env.pop("DATABASE_URL", None)
    return env


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last timed process and its children


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Wall time of one process, and its output; its CPU time goes to LAST_CPU. Stops the
    bench when the process fails."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    LAST_CPU[0] = _children_cpu() - cpu0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return seconds, out.stdout + out.stderr


def best(cmd: list[str], env: dict | None, repeat: int) -> tuple[float, float]:
    """The best wall time of ``repeat`` runs, and that run's CPU time."""
    runs = []
    for _ in range(repeat):
        seconds, _ = timed(cmd, env)
        runs.append((seconds, LAST_CPU[0]))
    return min(runs)


def manage(env: dict, *args: str) -> tuple[float, str]:
    return timed([sys.executable, "manage.py", *args], env)


def fresh_site(tmp: Path, name: str) -> dict:
    var = tmp / name
    var.mkdir()
    env = django_env(var)
    manage(env, "migrate", "--noinput")
    return env


def row(what: str, ours: str, peer: str = "", ratio: str = "") -> None:
    print(f"{what:<44}{ours:>14}{peer:>14}{ratio:>10}")
    sys.stdout.flush()


def bench_find_label_issues(tmp: Path, n: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    k = 10
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), truth] += 2.5
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = rng.integers(0, k, int(flip.sum()))
    np.save(tmp / "labels.npy", labels.astype(np.int64))
    np.save(tmp / "probs.npy", probs.astype(np.float32))
    del logits, probs
    env = django_env(tmp / "fli-var")
    ours_cmd = [
        sys.executable, "manage.py", "find_label_issues", "--method", "confident_learning",
        "--labels", str(tmp / "labels.npy"), "--pred-probs", str(tmp / "probs.npy"),
        "--output", str(tmp / "ours.npy"),
    ]  # fmt: skip
    peer_cmd = [
        str(PEER_PYTHON), "-c", CLEANLAB_SCRIPT,
        str(tmp / "labels.npy"), str(tmp / "probs.npy"), str(tmp / "peer.npy"),
    ]  # fmt: skip
    ours, ours_cpu = best(ours_cmd, env, repeat)
    if not PEER_PYTHON.exists():
        row(f"find_label_issues {n:,} x {k}", f"{ours:.2f} s", "no peer venv")
        return
    peer, peer_cpu = best(peer_cmd, None, repeat)
    a, b = np.load(tmp / "ours.npy"), np.load(tmp / "peer.npy")
    only = len(set(a.tolist()) ^ set(b.tolist()))
    same = "the same items" if only == 0 else f"{only} items flagged by one only"
    row(
        f"find_label_issues {n:,} x {k}: wall s",
        f"{ours:.2f}",
        f"{peer:.2f}",
        f"{peer / ours:.2f}x",
    )
    row(
        "  CPU s (process + children)",
        f"{ours_cpu:.2f}",
        f"{peer_cpu:.2f}",
        f"{peer_cpu / ours_cpu:.2f}x",
    )
    print(f"  flagged: ours {a.size:,}, cleanlab {b.size:,}; {same}")


def bench_startup(tmp: Path) -> None:
    env = django_env(tmp / "fli-var")
    _, text = timed(
        [sys.executable, "-X", "importtime", "manage.py", "find_label_issues", "--help"], env
    )
    total = sum(int(m[1]) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| \S", text) if m)
    np.save(tmp / "l10.npy", np.arange(10) % 2)
    p10 = np.full((10, 2), 0.5)
    np.save(tmp / "p10.npy", p10)
    cmd = [
        sys.executable, "-X", "importtime", "manage.py", "find_label_issues",
        "--method", "confident_learning", "--labels", str(tmp / "l10.npy"),
        "--pred-probs", str(tmp / "p10.npy"), "--output", str(tmp / "o10.npy"),
    ]  # fmt: skip
    seconds, text = timed(cmd, env)
    seconds = min(seconds, *(timed(cmd, env)[0] for _ in range(2)))
    heavy = [
        m for m in ("torch", "scipy", "rest_framework") if re.search(rf"\|\s+{m}$", text, re.M)
    ]
    row("start-up: imports of find_label_issues --help", f"{total / 1e6:.2f} s")
    row("start-up: find_label_issues on 10 items", f"{seconds:.2f} s")
    print(f"  imported on that run: {', '.join(heavy) or 'neither torch, scipy nor DRF'}")


def bench_climage(tmp: Path, n: int) -> None:
    rng = np.random.default_rng(3)
    data = {
        "names": [f"img_{i:06d}.png" for i in range(n)],
        "images": list(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
        "ord_labels": [int(x) for x in rng.integers(0, 10, n)],
        "cl_labels": [[int(x) for x in rng.integers(0, 10, 3)] for _ in range(n)],
    }
    src = tmp / "climage.pkl"
    src.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
    del data
    _, text = timed([sys.executable, "-c", FLOOR_SCRIPT, str(src), str(tmp / "copy.pkl")])
    load, dump = (float(x) for x in re.search(r"FLOOR=(.*)", text)[1].split(","))
    env = fresh_site(tmp, "climage-var")
    imp, _ = manage(
        env, "import_dataset", str(src), "--format", "climage", "--name", "clbench",
        "--classes", "clcifar10",
    )  # fmt: skip
    imp_cpu = LAST_CPU[0]
    exp, _ = manage(
        env, "export_dataset", "clbench", "--format", "climage", "--output", str(tmp / "out.pkl")
    )
    exp_cpu = LAST_CPU[0]
    with (tmp / "out.pkl").open("rb") as fh:
        back = pickle.load(fh)
    ok = len(back["images"]) == n and back["names"][-1] == f"img_{n - 1:06d}.png"
    row(f"CLImage {n:,} images: import wall s", f"{imp:.2f}", f"floor {load:.2f}")
    row("  CPU s (command + its workers)", f"{imp_cpu:.2f}")
    row(f"CLImage {n:,} images: export wall s", f"{exp:.2f}", f"floor {dump:.2f}")
    row("  CPU s (command + its workers)", f"{exp_cpu:.2f}")
    print(f"  floor = unpickle / pickle the same data in one process; export round trip {ok}")


def bench_launch(tmp: Path, n_items: int) -> None:
    env = fresh_site(tmp, "launch-var")
    _, text = manage({**env, "BENCH_ITEMS": str(n_items)}, "shell", "-c", LAUNCH_SCRIPT)
    seconds, cpu, hits, published, status = re.search(r"LAUNCH=(.*)", text)[1].split(",")
    row(f"launch {int(hits):,} HITs on the marketplace: wall s", f"{float(seconds):.2f}")
    row("  CPU s (launch and publish, one process)", f"{float(cpu):.2f}")
    print(f"  {int(published):,} published, batch {status}")


def bench_admin(tmp: Path) -> None:
    env = fresh_site(tmp, "admin-var")
    _, text = manage(env, "shell", "-c", ADMIN_SCRIPT)
    status, queries, size = re.search(r"ADMIN=(.*)", text)[1].split(",")
    row("admin add-batch page, 50,000 items (queries)", queries)
    print(f"  HTTP {status}, {int(size) / 1024:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is shown)")
    parser.add_argument(
        "--only", nargs="*", default=["labels", "startup", "climage", "launch", "admin"]
    )
    args = parser.parse_args()
    n_probs, n_images, n_launch = (
        (100_000, 5_000, 5_000) if args.quick else (1_000_000, 50_000, 50_000)
    )
    tmp = Path(tempfile.mkdtemp(prefix="commands-bench-"))
    (tmp / "fli-var").mkdir()
    try:
        print(
            f"# commands bench ({time.strftime('%Y-%m-%d')}): python "
            f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average at start "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        row("what", "ours", "peer", "peer/ours")
        print("-" * 82)
        if "labels" in args.only:
            bench_find_label_issues(tmp, n_probs, args.repeat)
        if "startup" in args.only:
            bench_startup(tmp)
        if "climage" in args.only:
            bench_climage(tmp, n_images)
        if "launch" in args.only:
            bench_launch(tmp, n_launch)
        if "admin" in args.only:
            bench_admin(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
