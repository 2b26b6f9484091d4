"""Task pages under load: time to serve a page and to accept a submission, and bytes per HIT.

Starts the site under gunicorn on loopback (DJANGO_ENV=development, DEBUG off, a temporary
VAR_DIR with a fresh SQLite database), migrates, imports the demo dataset (scikit-learn's
digits), marks every 20th item gold, and builds one HIT per kind with the kind's own
``build_hits`` (gold mixed in at 10%). Then, per kind:

- page: ``--clients`` threads open the task page of newly accepted assignments (each one taken
  beforehand by its own worker through the marketplace's accept, the only way a marketplace
  assignment comes to be; the request carries that worker's signed cookie);
- submit: the same threads post each of those assignments' answers to ``/task/<pk>/submit/``;
- bytes: what one worker downloads for the HIT: HTML + CSS + JS + every image the page names.

Each phase stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first.
Loopback only; nothing else is contacted.

    .venv/bin/python bench/task_pages.py [--clients 20] [--requests 400] [--workers 5]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("complementary", "verify", "select", "review")
MARKET_COOKIE = "market_worker"  # settings.MARKET_WORKER_COOKIE

SETUP = r"""
import json, os, random
from annotation import kinds
from hits.market_identity import market_cookie_value
from hits.services import market_accept
from annotation.models import Dataset, Item
from hits.models import Hit, HitBatch

ds = Dataset.objects.get(name="digits-demo")
items = list(Item.objects.filter(dataset=ds).order_by("index"))
for it in items[::20]:
    it.gold_label = it.label
Item.objects.bulk_update(items[::20], ["gold_label"])
gold = [it for it in items if it.gold_label is not None]
regular = [it for it in items if it.gold_label is None]
per_label = {}
for it in regular:
    per_label.setdefault(it.label, [])
    if len(per_label[it.label]) < 18:
        per_label[it.label].append(it)
chosen = {
    "complementary": regular[:9],
    "verify": regular[:18],
    "select": [it for k in sorted(per_label) for it in per_label[k]],
    "review": regular[:9],
}
out = {}
for kind, its in chosen.items():
    spec = kinds.get(kind)
    params = {"min_select": 4} if kind == "select" else {}
    if kind == "review":
        params["suggested"] = {str(i.pk): (i.label + 1) % 10 for i in its}
    batch = HitBatch.objects.create(
        name=f"bench {kind}", dataset=ds, kind=kind, params=params, provider="market",
        environment="market", items_per_hit=spec.default_items_per_hit, gold_rate=0.1,
        assignments_per_item=10**6, assignment_duration_seconds=3600, status="open",
    )
    (hit_items, hit_gold), = spec.build_hits(
        its, items_per_hit=spec.default_items_per_hit, gold_items=gold, gold_rate=0.1,
        params=params, rng=random.Random(1),
    )[:1]
    hit = Hit.objects.create(
        batch=batch, number=1, provider_hit_id=f"BENCH-{kind}", items=hit_items,
        gold_items=hit_gold, max_assignments=10**6, status="Assignable",
    )
    taken = []
    for n in range(int(os.environ["BENCH_ACCEPTS"])):
        worker = f"BENCHWORKER{kind}{n}"
        a = market_accept(hit, worker)
        taken.append([a.provider_assignment_id, worker, market_cookie_value(worker)])
    out[kind] = {"pk": hit.pk, "taken": taken}
print("HITS=" + json.dumps(out))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def page_request(hit_pk: int, taken: list, port: int, kind: str) -> tuple[str, dict]:
    """The task link the marketplace hands a worker after accept, and that worker's cookie."""
    assignment_id, worker, cookie = taken
    query = urlencode(
        {
            "assignmentId": assignment_id,
            "hitId": f"BENCH-{kind}",
            "workerId": worker,
            "turkSubmitTo": f"http://127.0.0.1:{port}/market",
        }
    )
    return f"/task/{hit_pk}/?{query}", {"Cookie": f"{MARKET_COOKIE}={cookie}"}


def gunicorn(
    env: dict,
    port: int,
    workers: int,
    *,
    python: str = sys.executable,
    app: str = "annotation.wsgi:application",
    cwd: Path = ROOT,
) -> subprocess.Popen:
    """A site (ours unless told) under gunicorn on loopback, once it answers."""
    server = subprocess.Popen(
        [
            python, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--backlog", "2048", "--log-level", "warning",
        ],
        cwd=cwd,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    for _ in range(300):
        try:
            if request(port, "GET", "/")[0] in (200, 302):
                return server
        except OSError:
            time.sleep(0.1)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not come up")


def answers_from(html: str) -> tuple[str, list[dict]]:
    """The token and a valid answer list, read from the page as a browser would."""
    data = json.loads(re.search(r'id="task-data" type="application/json">(.*?)</script>', html)[1])
    answers = []
    if data["mode"] == "select":
        for section in re.findall(r'<section class="task".*?</section>', html, re.S):
            need = int(re.search(r'data-min="(\d+)"', section)[1])
            for pos, item in enumerate(re.findall(r'class="tile" data-item="(\d+)"', section)):
                answers.append({"item": int(item), "answer": int(pos < need), "duration_ms": 4000})
    else:
        seen = set()
        for item, value in re.findall(r'name="item_(\d+)" value="(\d+)"', html):
            if item not in seen:
                seen.add(item)
                answers.append({"item": int(item), "answer": int(value), "duration_ms": 2000})
    return data["token"], answers


def run_phase(clients: int, limit: int, seconds: float, job) -> tuple[list[float], int]:
    """Run ``job(n)`` for n = 0.. from ``clients`` threads; latencies (s) and failures."""
    lock = threading.Lock()
    counter = iter(range(limit))
    latencies: list[float] = []
    failures = [0]
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            t0 = time.perf_counter()
            ok = job(n)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                failures[0] += not ok

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures[0]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def hit_bytes(port: int, hit_pk: int, kind: str, taken: list) -> dict[str, int]:
    path, headers = page_request(hit_pk, taken, port, kind)
    status, body = request(port, "GET", path, headers=headers)
    assert status == 200, status
    html = body.decode()
    sizes = {"html": len(body), "css": 0, "js": 0, "images": 0, "n_images": 0}
    text_gz = len(gzip.compress(body))
    for url in sorted(set(re.findall(r'<link rel="stylesheet" href="([^"]+)"', html))):
        s, b = request(port, "GET", url)
        sizes["css"] += len(b)
        text_gz += len(gzip.compress(b))
    for url in sorted(set(re.findall(r'<script src="([^"]+)"', html))):
        s, b = request(port, "GET", url)
        sizes["js"] += len(b)
        text_gz += len(gzip.compress(b))
    for url in sorted(set(re.findall(r'<img src="([^"]+)"', html))):
        s, b = request(port, "GET", url)
        assert s == 200, (url, s)
        sizes["images"] += len(b)
        sizes["n_images"] += 1
    sizes["total"] = sizes["html"] + sizes["css"] + sizes["js"] + sizes["images"]
    sizes["total_gzip_text"] = text_gz + sizes["images"]
    return sizes


def site_env(var: Path, port: int, db_url: str | None = None) -> dict[str, str]:
    """The environment our site runs under in a bench: the local defaults without DEBUG, its
    own VAR_DIR, this port, and SQLite unless ``db_url`` names another database."""
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "VAR_DIR": str(var),
        "LOG_LEVEL": "WARNING",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("DATABASE_URL", None)
    if db_url:
        env["DATABASE_URL"] = db_url
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="per kind and phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per kind and phase")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="task-bench-"))
    port = free_port()
    env = site_env(var, port)
    server = None
    try:
        print(f"setting up in {var} ...", file=sys.stderr)
        manage(env, "migrate", "--noinput")
        manage(env, "import_dataset", "--demo")
        out = manage({**env, "BENCH_ACCEPTS": str(args.requests + 1)}, "shell", "-c", SETUP)
        hits = json.loads(re.search(r"HITS=(.*)", out)[1])
        import sqlite3

        with sqlite3.connect(var / "db.sqlite3") as db:
            journal = db.execute("PRAGMA journal_mode").fetchone()[0]
        server = gunicorn(env, port, args.workers)

        print(
            f"# task pages: gunicorn {args.workers} sync workers on {os.cpu_count()} CPUs, "
            f"SQLite (journal {journal}), {args.clients} concurrent clients, up to {args.requests} requests or "
            f"{args.seconds:.0f} s per kind and phase; load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        header = (
            f"{'kind':<14}{'items':>6}{'page p50':>10}{'page p99':>10}{'page/s':>8}"
            f"{'submit p50':>12}{'submit p99':>12}{'submit/s':>10}{'fail':>6}"
            f"{'bytes/HIT':>11}{'(gz text)':>11}{'imgs':>6}"
        )
        print(header)
        for kind in KINDS:
            pk, taken = hits[kind]["pk"], hits[kind]["taken"]
            # One more worker's page for the sizes (also renders and caches the renditions).
            sizes = hit_bytes(port, pk, kind, taken.pop())
            pages: dict[int, str] = {}

            def open_page(n, pk=pk, kind=kind, pages=pages, taken=taken):
                path, headers = page_request(pk, taken[n], port, kind)
                status, body = request(port, "GET", path, headers=headers)
                if status == 200:
                    pages[n] = body.decode()
                return status == 200

            t0 = time.perf_counter()
            page_lat, page_fail = run_phase(args.clients, args.requests, args.seconds, open_page)
            page_rate = len(page_lat) / (time.perf_counter() - t0)
            ready = sorted(pages)

            def submit(i, pk=pk, pages=pages, ready=ready):
                token, answers = answers_from(pages[ready[i]])
                status, body = request(
                    port,
                    "POST",
                    f"/task/{pk}/submit/",
                    json.dumps({"token": token, "answers": answers}).encode(),
                    {"Content-Type": "application/json"},
                )
                return status == 200 and json.loads(body).get("ok") is True

            t0 = time.perf_counter()
            sub_lat, sub_fail = run_phase(args.clients, len(ready), args.seconds, submit)
            sub_rate = len(sub_lat) / (time.perf_counter() - t0)
            n_items = len(re.findall(r'name="item_\d+" value="', pages[ready[0]]))
            if kind != "select":
                n_items = len(set(re.findall(r'name="item_(\d+)"', pages[ready[0]])))
            print(
                f"{kind:<14}{n_items:>6}"
                f"{statistics.median(page_lat) * 1000:>8.1f}ms{pct(page_lat, 99) * 1000:>8.1f}ms"
                f"{page_rate:>8.0f}"
                f"{statistics.median(sub_lat) * 1000:>10.1f}ms{pct(sub_lat, 99) * 1000:>10.1f}ms"
                f"{sub_rate:>10.0f}{page_fail + sub_fail:>6}"
                f"{sizes['total'] / 1024:>9.1f}kB{sizes['total_gzip_text'] / 1024:>9.1f}kB"
                f"{sizes['n_images']:>6}"
            )
            sys.stdout.flush()
        print(
            "page = first load of a newly accepted assignment; submit = validate "
            "and store one vote per item; bytes/HIT = HTML+CSS+JS+images as served here "
            "(uncompressed), (gz text) = with HTML/CSS/JS gzipped as production serves them"
        )
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
