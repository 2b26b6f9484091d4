"""Task pages side by side with Turkle 3.1 (the Django MTurk clone), under the same load.

Both sites serve the same task, a 10-item verify HIT (10 images, each with its label and
Correct / Not sure / Wrong radio buttons), under gunicorn with the same worker count, on SQLite
and on PostgreSQL (127.0.0.1:5432, user postgres; a bench database is created and dropped).
After a warm-up (untimed: the same page views and submits, on assignments of their own, four
per gunicorn worker) so that each worker has loaded its code and templates, the same load
generator (``task_pages.run_phase``: ``--clients`` concurrent clients) drives:

- page: a worker's first load of a newly accepted assignment. Ours: ``/task/<hit>/`` with the
  marketplace's link and the worker's signed cookie. Turkle: its task page plus the iframe that
  holds the HIT's form (a worker's browser needs both; both count as one page view);
- submit: that worker posting the answers read from the page (ours: JSON with the page's
  token; Turkle: the form with its CSRF token and session cookie).

Each assignment is accepted beforehand, as the marketplace's accept (ours) or Turkle's own
accept does. Printed per site and database: CPU seconds per page view / submit (user + system
time of the gunicorn master and workers, from /proc), views or submits per second, p50 and
p99 latency, and Turkle's figure divided by ours.

Turkle is installed into its own virtualenv, ``bench/.venv-turkle`` (gitignored), on first use:
``pip install turkle==3.1 gunicorn psycopg2-binary``. Loopback only.

    .venv/bin/python bench/task_pages_turkle.py [--clients 20] [--requests 300] [--db both]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from task_pages import (  # noqa: E402
    MARKET_COOKIE,
    ROOT,
    answers_from,
    free_port,
    gunicorn,
    manage,
    pct,
    request,
    run_phase,
    site_env,
)

TURKLE_VENV = ROOT / "bench" / ".venv-turkle"
TURKLE_PY = TURKLE_VENV / "bin" / "python"
ITEMS = 10
CHOICES = ("correct", "unsure", "wrong")
PG = "postgres://postgres@127.0.0.1:5432/"

OUR_SETUP = r"""
import json, os, random
from annotation import kinds
from annotation.models import Dataset, Item
from hits.market_identity import market_cookie_value
from hits.models import Hit, HitBatch
from hits.services import market_accept

ds = Dataset.objects.get(name="digits-demo")
items = list(Item.objects.filter(dataset=ds).order_by("index")[:10])
batch = HitBatch.objects.create(
    name="bench verify", dataset=ds, kind="verify", provider="market", environment="market",
    items_per_hit=10, gold_rate=0, assignments_per_item=10**6, assignment_duration_seconds=3600,
    status="open",
)
(hit_items, gold), = kinds.get("verify").build_hits(
    items, items_per_hit=10, gold_items=[], gold_rate=0, params={}, rng=random.Random(1)
)
hit = Hit.objects.create(
    batch=batch, number=1, provider_hit_id="BENCH-verify", items=hit_items, gold_items=gold,
    max_assignments=10**6, status="Assignable",
)
taken = []
for n in range(int(os.environ["BENCH_ACCEPTS"])):
    worker = f"BENCHWORKER{n}"
    a = market_accept(hit, worker)
    taken.append([a.provider_assignment_id, worker, market_cookie_value(worker)])
names = [ds.class_names[i.label] for i in items]
urls = [i.image.url for i in items]
print("HIT=" + json.dumps({"pk": hit.pk, "taken": taken, "names": names, "urls": urls}))
"""

TURKLE_SETTINGS = r"""
import os
SECRET_KEY = "bench-only-turkle-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.humanize", "djaa_list_filter2", "guardian", "rest_framework", "turkle",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend", "guardian.backends.ObjectPermissionBackend",
]
ROOT_URLCONF = "turkle_bench_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "turkle.utils.turkle_vars",
    ]},
}]
WSGI_APPLICATION = "turkle_bench_wsgi.application"
url = os.environ["TURKLE_DB"]
if url.startswith("sqlite:"):
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:"):],
        "OPTIONS": {"timeout": 30},
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": url.rsplit("/", 1)[1],
        "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432",
    }}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
STATIC_URL = "/static/"
TURKLE_AUTO_ACCEPT_DEFAULT = False
GUARDIAN_MONKEY_PATCH = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
"""

TURKLE_URLS = r"""
from django.contrib import admin
from django.urls import include, path
urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django.contrib.auth.urls")),
    path("", include("turkle.urls")),
]
"""

TURKLE_WSGI = r"""
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turkle_bench_settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""

TURKLE_SETUP = r"""
import csv, io, json, os
from turkle.models import Batch, Project, Task, TaskAssignment

fields = json.loads(os.environ["BENCH_FIELDS"])
rows = []
for n in range(10):
    rows.append(
        f'<p><img src="${{image{n}}}" width="200" height="200" alt=""> Labelled '
        f'<b>${{label{n}}}</b>: ' + " ".join(
            f'<label><input type="radio" name="item{n}" value="{v}" required> {v}</label>'
            for v in ("correct", "unsure", "wrong")
        ) + "</p>"
    )
template = "<h1>Is each label right?</h1>" + "".join(rows)
project = Project.objects.create(
    name="bench verify", html_template=template, login_required=False,
    assignments_per_task=1,
)
batch = Batch.objects.create(
    project=project, name="bench verify", login_required=False, assignments_per_task=1,
)
accepts = int(os.environ["BENCH_ACCEPTS"])
out = io.StringIO()
writer = csv.writer(out)
writer.writerow(list(fields))
for _ in range(accepts):
    writer.writerow(list(fields.values()))
batch.create_tasks_from_csv(io.StringIO(out.getvalue()))
taken = []
for task in Task.objects.filter(batch=batch).order_by("id"):
    ta = TaskAssignment(task=task, assigned_to=None)
    ta.save()
    taken.append([task.id, ta.id])
print("TASKS=" + json.dumps(taken))
"""


def turkle_ready() -> bool:
    """Turkle 3.1 in its own virtualenv, made on first use."""
    if TURKLE_PY.exists():
        return True
    print("installing Turkle 3.1 into bench/.venv-turkle ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TURKLE_VENV)], check=True)
        subprocess.run(
            [str(TURKLE_PY), "-m", "pip", "install", "-q", "turkle==3.1", "gunicorn",
             "psycopg2-binary"],
            check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"Turkle could not be installed ({exc}); it is skipped", file=sys.stderr)
        shutil.rmtree(TURKLE_VENV, ignore_errors=True)
        return False
    return True


def server_cpu(server: subprocess.Popen) -> float:
    """User + system CPU seconds of the gunicorn master and its live workers (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def warmed_phases(server, args, page, submit, opened: dict) -> tuple[dict, dict]:
    """Warm up, then time the page views and the submits.

    ``page(n)`` opens assignment n (recording what a submit needs in ``opened``), ``submit(n)``
    posts it. Assignments ``args.requests`` and on are the warm-up's: four page views and
    submits per worker, untimed, so that each worker has run both before anything counts."""
    warm = 4 * args.workers
    first = args.requests
    run_phase(args.workers, warm, 60.0, lambda n: page(first + n))
    run_phase(args.workers, warm, 60.0, lambda n: first + n in opened and submit(first + n))
    p = measure(server, args.clients, args.requests, args.seconds, page)
    ready = sorted(n for n in opened if n < first)
    s = measure(server, args.clients, len(ready), args.seconds, lambda i: submit(ready[i]))
    return p, s


def measure(server, clients: int, limit: int, seconds: float, job) -> dict:
    """One phase: latencies, rate, failures and server CPU per request."""
    cpu0, t0 = server_cpu(server), time.perf_counter()
    lat, fail = run_phase(clients, limit, seconds, job)
    wall, cpu = time.perf_counter() - t0, server_cpu(server) - cpu0
    return {
        "n": len(lat),
        "fail": fail,
        "rate": len(lat) / wall,
        "p50": statistics.median(lat) * 1000,
        "p99": pct(lat, 99) * 1000,
        "cpu": cpu / max(1, len(lat)),
    }


def cookies(headers) -> dict[str, str]:
    out = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            out[key.strip()] = rest.split(";", 1)[0]
    return out


def raw_request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """``task_pages.request`` with the response headers too (Turkle's cookies)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheaders()
    finally:
        conn.close()


def run_ours(args, db_url: str | None, var: Path) -> tuple[dict, dict, dict]:
    port = free_port()
    env = site_env(var, port, db_url)
    manage(env, "migrate", "--noinput")
    manage(env, "import_dataset", "--demo")
    warm = 4 * args.workers
    accepts = str(args.requests + warm)
    out = manage({**env, "BENCH_ACCEPTS": accepts}, "shell", "-c", OUR_SETUP)
    hit = json.loads(re.search(r"HIT=(.*)", out)[1])
    server = gunicorn(env, port, args.workers)
    try:
        pages: dict[int, str] = {}

        def page(n: int) -> bool:
            assignment_id, worker, cookie = hit["taken"][n]
            query = urlencode(
                {
                    "assignmentId": assignment_id,
                    "hitId": "BENCH-verify",
                    "workerId": worker,
                    "turkSubmitTo": f"http://127.0.0.1:{port}/market",
                }
            )
            status, body = request(
                port,
                "GET",
                f"/task/{hit['pk']}/?{query}",
                headers={"Cookie": f"{MARKET_COOKIE}={cookie}"},
            )
            if status == 200:
                pages[n] = body.decode()
            return status == 200

        def submit(n: int) -> bool:
            token, answers = answers_from(pages[n])
            status, body = request(
                port,
                "POST",
                f"/task/{hit['pk']}/submit/",
                json.dumps({"token": token, "answers": answers}).encode(),
                {"Content-Type": "application/json"},
            )
            return status == 200 and json.loads(body).get("ok") is True

        p, s = warmed_phases(server, args, page, submit, pages)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    hit["taken"] = hit["taken"][: args.requests]
    return p, s, hit


def run_turkle(args, db_url: str, var: Path, hit: dict) -> tuple[dict, dict]:
    site = var / "turkle-site"
    site.mkdir()
    (site / "turkle_bench_settings.py").write_text(TURKLE_SETTINGS)
    (site / "turkle_bench_urls.py").write_text(TURKLE_URLS)
    (site / "turkle_bench_wsgi.py").write_text(TURKLE_WSGI)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "turkle_bench_settings",
        "PYTHONPATH": str(site),
        "TURKLE_DB": db_url,
    }
    for key in ("VIRTUAL_ENV", "DATABASE_URL"):
        env.pop(key, None)

    def django_admin(*argv: str, extra: dict | None = None) -> str:
        out = subprocess.run(
            [str(TURKLE_PY), "-m", "django", *argv],
            cwd=site,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode != 0:
            raise SystemExit(f"turkle {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    django_admin("migrate", "--noinput")
    fields = {}
    for n in range(ITEMS):
        fields[f"image{n}"] = hit["urls"][n]
        fields[f"label{n}"] = hit["names"][n]
    out = django_admin(
        "shell",
        "-c",
        TURKLE_SETUP,
        extra={
            "BENCH_ACCEPTS": str(args.requests + 4 * args.workers),
            "BENCH_FIELDS": json.dumps(fields),
        },
    )
    tasks = json.loads(re.search(r"TASKS=(.*)", out)[1])
    port = free_port()
    server = gunicorn(
        env, port, args.workers, python=str(TURKLE_PY), app="turkle_bench_wsgi", cwd=site
    )
    try:
        forms: dict[int, tuple[str, str, str]] = {}

        def page(n: int) -> bool:
            task_id, ta_id = tasks[n]
            status, _, headers = raw_request(port, "GET", f"/task/{task_id}/assignment/{ta_id}/")
            jar = cookies(headers)
            if status != 200 or "sessionid" not in jar:
                return False
            status, body, headers = raw_request(
                port,
                "GET",
                f"/task/{task_id}/assignment/iframe/{ta_id}/",
                headers={"Cookie": f"sessionid={jar['sessionid']}"},
            )
            jar.update(cookies(headers))
            m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
            if status != 200 or m is None or "csrftoken" not in jar:
                return False
            forms[n] = (jar["sessionid"], jar["csrftoken"], m[1].decode())
            return True

        def submit(n: int) -> bool:
            task_id, ta_id = tasks[n]
            session, csrf_cookie, csrf_form = forms[n]
            form = {"csrfmiddlewaretoken": csrf_form}
            form.update({f"item{k}": CHOICES[k % 3] for k in range(ITEMS)})
            status, _, _ = raw_request(
                port,
                "POST",
                f"/task/{task_id}/assignment/{ta_id}/",
                urlencode(form).encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": f"sessionid={session}; csrftoken={csrf_cookie}",
                    "Referer": f"http://127.0.0.1:{port}/",
                    "Origin": f"http://127.0.0.1:{port}",
                },
            )
            return status == 302

        p, s = warmed_phases(server, args, page, submit, forms)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return p, s


def psql(sql: str, *, check: bool = True) -> None:
    """One statement as postgres on 127.0.0.1 (trust auth)."""
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", sql],
        check=check,
        capture_output=True,
    )


def line(site: str, db: str, p: dict, s: dict) -> None:
    print(
        f"{site:<8}{db:<11}{p['cpu'] * 1000:>9.2f}{p['rate']:>8.0f}{p['p50']:>8.1f}"
        f"{p['p99']:>8.1f}{s['cpu'] * 1000:>11.2f}{s['rate']:>8.0f}{s['p50']:>8.1f}"
        f"{s['p99']:>8.1f}{p['fail'] + s['fail']:>6}"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="page views per site")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    if not turkle_ready():
        raise SystemExit("Turkle 3.1 is not available: nothing to compare with")
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"# task pages vs Turkle 3.1: a 10-item verify HIT, gunicorn {args.workers} sync "
        f"workers each, {args.clients} concurrent clients, {args.requests} page views then "
        f"as many submits per site; {os.cpu_count()} CPUs, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(
        f"{'site':<8}{'db':<11}{'page ms':>9}{'views/s':>8}{'p50':>8}{'p99':>8}"
        f"{'submit ms':>11}{'subm/s':>8}{'p50':>8}{'p99':>8}{'fail':>6}"
    )
    for db in dbs:
        var = Path(tempfile.mkdtemp(prefix="turkle-bench-"))
        names = ("bench_ours", "bench_turkle")
        try:
            if db == "postgres":
                for name in names:
                    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    psql(f'CREATE DATABASE "{name}"')
                ours_url, turkle_url = PG + names[0], PG + names[1]
            else:
                ours_url, turkle_url = None, f"sqlite:{var / 'turkle.sqlite3'}"
            (var / "ours").mkdir()
            op, osub, hit = run_ours(args, ours_url, var / "ours")
            line("ours", db, op, osub)
            tp, tsub = run_turkle(args, turkle_url, var, hit)
            line("Turkle", db, tp, tsub)
            print(
                f"{'ours/Turkle':<19}{op['cpu'] / tp['cpu']:>9.2f}x{'':>23}"
                f"{osub['cpu'] / tsub['cpu']:>11.2f}x   (CPU per page view / per submit)"
            )
        finally:
            if db == "postgres":
                for name in names:
                    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
            shutil.rmtree(var, ignore_errors=True)
    print(
        "page ms / submit ms = server CPU (gunicorn master + workers, user + system) per page "
        "view / per submit, in ms; p50 / p99 in ms; a Turkle page view is its task page plus "
        "the iframe with the form"
    )


if __name__ == "__main__":
    main()
