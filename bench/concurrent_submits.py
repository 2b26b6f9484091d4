"""Concurrent task submissions on PostgreSQL: are all votes stored, exactly once, and how fast?

Starts the site under gunicorn on loopback (DJANGO_ENV=development, DEBUG off) against a fresh
PostgreSQL database (``--pg``/``--db``, dropped and created here, dropped again at the end
unless ``--keep``), migrates, imports the demo dataset (scikit-learn's digits) and launches one
built-in-marketplace batch through the project's own services (``hit_batch_launch``, publishing
eagerly): ``--submits / --assignments-per-item`` HITs of ``--items-per-hit`` items, each place
taken by a different simulated worker through ``market_accept``, as the marketplace hands work
out, with the signed task token the task page gives that assignment (``token_issue``) and a
valid answer to each of its items.

The measured burst: ``--submits`` threads, released together, each post one assignment's
answers to ``/task/<pk>/submit/``; ``--races`` of them post the same answers a second time in
the same burst (a double click), which must store nothing more. Afterwards the database is
asked how many votes the batch holds against the number expected (one per item of every
submitted assignment) and how many (assignment, item) or (worker, item) pairs hold more than
one vote. Loopback only; nothing else is contacted.

    .venv/bin/python bench/concurrent_submits.py [--submits 200] [--races 20] [--workers 5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from task_pages import free_port, gunicorn, manage, pct, request

SETUP = r"""
import json
from annotation.models import Dataset
from hits.models import HitBatch
from hits.planning import hit_item_ids
from hits.services import hit_batch_launch, market_accept, market_next_hit
from hits.task_tokens import token_issue
from annotation.services import worker_get_or_create

n, per_item, per_hit = {submits}, {per_item}, {per_hit}
ds = Dataset.objects.get(name="digits-demo")
hits_needed = -(-n // per_item)
batch = HitBatch.objects.create(
    name="bench concurrent submits", dataset=ds, kind="verify", provider="market",
    environment="market", item_selection="explicit", items_per_hit=per_hit,
    assignments_per_item=per_item, assignment_duration_seconds=3600, reward="0.05",
)
batch.items.set(ds.items.order_by("index")[: hits_needed * per_hit])
hit_batch_launch(batch)
batch.refresh_from_db()
assert batch.status == "open", (batch.status, batch.error)
out = []
for i in range(n):
    raw = f"BENCHSUBMIT{{i:05d}}"
    hit = market_next_hit(batch, worker_get_or_create("market", raw))
    a = market_accept(hit, raw)
    answers = [
        {{"item": i, "answer": (i + n) % 2, "duration_ms": 2000}}
        for n, i in enumerate(hit_item_ids(batch.kind, hit.items))
    ]
    out.append([hit.pk, token_issue(a), answers])
print("BATCH=" + json.dumps({{"batch": batch.pk, "hits": batch.hits.count(), "taken": out}}))
"""

COUNT = r"""
import json
from django.db.models import Count
from annotation.models import Vote
from hits.models import Assignment
from hits.planning import hit_item_ids

batch_id = {batch}
votes = Vote.objects.filter(assignment__hit__batch_id=batch_id)
submitted = Assignment.objects.filter(hit__batch_id=batch_id, status="Submitted").select_related(
    "hit__batch"
)
expected = sum(len(hit_item_ids(a.hit.batch.kind, a.hit.items)) for a in submitted)
dup_assignment = (
    votes.values("assignment_id", "item_id").annotate(n=Count("id")).filter(n__gt=1).count()
)
dup_worker = votes.values("worker_id", "item_id").annotate(n=Count("id")).filter(n__gt=1).count()
statuses = dict(
    Assignment.objects.filter(hit__batch_id=batch_id).values_list("status").annotate(n=Count("id"))
)
print("COUNT=" + json.dumps({{
    "votes": votes.count(), "expected": expected, "submitted": submitted.count(),
    "dup_assignment_item": dup_assignment, "dup_worker_item": dup_worker, "statuses": statuses,
}}))
"""


def database_fresh(server: str, name: str, *, drop_only: bool = False) -> None:
    """Drop (and unless ``drop_only`` create) the bench database on ``server``."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def burst(port: int, posts: list[tuple[int, bytes]]) -> list[tuple[float, int, dict]]:
    """Post every body at once (one thread each, released together): latency, status, reply."""
    results: list[tuple[float, int, dict]] = [(0.0, 0, {})] * len(posts)
    gate = threading.Barrier(len(posts))

    def post(i: int) -> None:
        hit_pk, body = posts[i]
        gate.wait()
        t0 = time.perf_counter()
        try:
            status, raw = request(
                port, "POST", f"/task/{hit_pk}/submit/", body, {"Content-Type": "application/json"}
            )
            reply = json.loads(raw) if raw.startswith(b"{") else {"raw": raw[:200].decode()}
        except OSError as exc:
            status, reply = 0, {"error": str(exc)}
        results[i] = (time.perf_counter() - t0, status, reply)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=200, help="assignments submitted at once")
    parser.add_argument("--races", type=int, default=20, help="of those, posted twice at once")
    parser.add_argument("--assignments-per-item", type=int, default=5)
    parser.add_argument("--items-per-hit", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="annotation_bench_submits")
    parser.add_argument("--keep", action="store_true", help="keep the database and VAR_DIR")
    args = parser.parse_args()
    races = min(args.races, args.submits)

    var = Path(tempfile.mkdtemp(prefix="submit-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "VAR_DIR": str(var),
        "DATABASE_URL": f"{args.pg}/{args.db}",
        "LOG_LEVEL": "WARNING",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    server = None
    try:
        print(f"setting up {args.db} and {var} ...", file=sys.stderr)
        database_fresh(args.pg, args.db)
        manage(env, "migrate", "--noinput")
        manage(env, "import_dataset", "--demo")
        code = SETUP.format(
            submits=args.submits, per_item=args.assignments_per_item, per_hit=args.items_per_hit
        )
        # Publishing runs as a Celery task; eager here, as no worker is running.
        out = manage({**env, "CELERY_TASK_ALWAYS_EAGER": "true"}, "shell", "-c", code)
        setup = json.loads(re.search(r"BATCH=(.*)", out)[1])
        server = gunicorn(env, port, args.workers)

        posts = [
            (hit_pk, json.dumps({"token": token, "answers": answers}).encode())
            for hit_pk, token, answers in setup["taken"]
        ]
        posts += posts[:races]  # the double clicks, in the same burst
        t0 = time.perf_counter()
        results = burst(port, posts)
        wall = time.perf_counter() - t0
        count = json.loads(
            re.search(r"COUNT=(.*)", manage(env, "shell", "-c", COUNT.format(**setup)))[1]
        )

        latencies = [r[0] for r in results]
        codes = collections.Counter(r[1] for r in results)
        stored = sum(1 for r in results if r[1] == 200 and r[2].get("ok") and r[2]["votes"])
        replayed = sum(1 for r in results if r[1] == 200 and r[2].get("already_submitted"))
        failed = [r for r in results if r[1] != 200 or not r[2].get("ok")]
        print(
            f"# concurrent submits: gunicorn {args.workers} sync workers on {os.cpu_count()} "
            f"CPUs, PostgreSQL ({args.pg}/{args.db}); one verify batch, {setup['hits']} HITs "
            f"x {args.assignments_per_item} assignments x {args.items_per_hit} items; load "
            "average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        print(
            f"requests {len(posts)} at once ({args.submits} assignments + {races} repeated), "
            f"answered in {wall:.2f} s; HTTP {dict(sorted(codes.items()))}"
        )
        print(
            f"submits stored {stored}/{args.submits}, repeats answered already_submitted "
            f"{replayed}/{races}, failures {len(failed)}"
        )
        print(
            f"votes stored / expected: {count['votes']} / {count['expected']} "
            f"(assignments submitted {count['submitted']}; statuses {count['statuses']})"
        )
        print(
            f"duplicates: {count['dup_assignment_item']} (assignment, item) pairs, "
            f"{count['dup_worker_item']} (worker, item) pairs with more than one vote"
        )
        print(
            f"latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {pct(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        for r in failed[:5]:
            print(f"  failed: HTTP {r[1]} {r[2]}")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
            database_fresh(args.pg, args.db, drop_only=True)


if __name__ == "__main__":
    main()
