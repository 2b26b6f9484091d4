"""Start ``scripts/serve`` (gunicorn, PostgreSQL, Redis, Celery) and complete one HIT through it,
as a worker's browser would behind the TLS proxy: CI's check that the production shape works.

    python scripts/serve_check.py          # needs PostgreSQL and Redis on 127.0.0.1

It uses its own database (annotation_serve_check, made anew) and Redis database 14, and stops
everything it started. Exit status 0 when the HIT's votes are stored and counted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "annotation_serve_check"
PG = "postgres://postgres@127.0.0.1:5432"
WORKER = "SERVECHECKWORKER1"
SETUP = """
from django.core.management import call_command
from annotation.models import Dataset
from hits.models import HitBatch
from hits.services import hit_batch_launch
if not Dataset.objects.filter(name="serve-check").exists():
    call_command("import_dataset", "--demo", "--name", "serve-check", verbosity=0)
batch = HitBatch.objects.create(
    name="serve check", dataset=Dataset.objects.get(name="serve-check"), kind="verify",
    provider="market", environment="market", items_per_hit=10, assignments_per_item=1,
)
hit_batch_launch(batch)
print("BATCH", batch.pk, batch.uid)
"""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """A browser behind the site's TLS proxy: it says https (X-Forwarded-Proto), so the secure
    cookies production sets are kept and sent, and it follows redirects itself."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.origin = "https://" + urllib.parse.urlsplit(base).netloc
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(NoRedirect)

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None):
        head = {"X-Forwarded-Proto": "https", "Origin": self.origin, **(headers or {})}
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        req = urllib.request.Request(self.base + path, data=data, headers=head)  # noqa: S310
        try:
            resp = self.opener.open(req, timeout=60)
        except urllib.error.HTTPError as exc:
            resp = exc
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0].strip('"')
        body = resp.read().decode()
        location = resp.headers.get("Location")
        if resp.status in (301, 302, 303) and location:
            return self.request(
                urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl()
            )
        return resp.status, body

    def post_form(self, path: str, fields: dict) -> tuple[int, str]:
        fields = {**fields, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
        return self.request(path, urllib.parse.urlencode(fields).encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def env_file_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def wait_for(what: str, check, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"serve check: {what} did not happen within {timeout:.0f} s")


def main() -> int:
    fresh_database()
    var = Path(tempfile.mkdtemp(prefix="serve-check-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    drop = {"DJANGO_ENV", "LOCALTURK_ENABLED", "API_SCHEMA_PUBLIC", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        PORT=str(port),
        VAR_DIR=str(var),
        SERVE_ENV_FILE=str(var / "serve.env"),
        DATABASE_URL=f"{PG}/{DATABASE}",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/14",
    )
    log = open(var / "serve.log", "w")  # noqa: SIM115 - open for the server's whole life
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "serve")], cwd=ROOT, env=env, stdout=log, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    try:
        client = Client(base)

        def up() -> bool:
            if server.poll() is not None:
                raise SystemExit(f"scripts/serve exited:\n{(var / 'serve.log').read_text()}")
            try:
                return client.request("/market/")[0] == 200
            except OSError:
                return False

        wait_for("the site answering", up)
        # As scripts/serve reads them: what the shell sets wins over the file.
        settings_env = {**env_file_values(var / "serve.env"), **env, "DJANGO_ENV": "production"}
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", SETUP],
            cwd=ROOT, env=settings_env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        found = re.search(r"^BATCH (\d+) (\S+)$", out.stdout, re.M)
        if out.returncode or not found:
            raise SystemExit(f"serve check: setting up the batch failed:\n{out.stderr}")
        uid = found.group(2)
        # Celery's web worker publishes the HITs; then the landing page offers a task.
        wait_for(
            "the batch opening (Celery)",
            lambda: "Start a task" in client.request(f"/market/b/{uid}/")[1],
        )
        status, page = client.post_form(f"/market/b/{uid}/start/", {"worker_id": WORKER})
        data_match = re.search(
            r'<script id="task-data" type="application/json">(.*?)</script>', page, re.S
        )
        if status != 200 or not data_match:
            raise SystemExit(f"serve check: no task page ({status}): {page[:500]}")
        data = json.loads(data_match.group(1))
        items = sorted({int(i) for i in re.findall(r'data-item="(\d+)"', page)})
        answers = [{"item": i, "answer": 0} for i in items]
        status, body = client.request(
            data["submitUrl"],
            json.dumps({"token": data["token"], "answers": answers}).encode(),
            {"Content-Type": "application/json"},
        )
        stored = json.loads(body)
        if status != 200 or not stored.get("ok"):
            raise SystemExit(f"serve check: the submit was refused ({status}): {body[:500]}")
        fields = {"assignmentId": data["assignmentId"], "answers": json.dumps(stored["answers"])}
        status, done = client.request(
            "/market/mturk/externalSubmit", urllib.parse.urlencode(fields).encode()
        )
        if status != 200 or "Thank you" not in done:
            raise SystemExit(f"serve check: the HIT did not complete ({status}): {done[:500]}")
        check = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c",
             "from annotation.models import Vote; print('VOTES', Vote.objects.counted().count())"],
            cwd=ROOT, env=settings_env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        counted = re.search(r"^VOTES (\d+)$", check.stdout, re.M)
        if not counted or int(counted.group(1)) != len(items):
            raise SystemExit(f"serve check: expected {len(items)} counted votes: {check.stdout}")
        print(
            f"serve check: one HIT of {len(items)} items completed through gunicorn, "
            f"PostgreSQL, Redis and Celery on {base}; {counted.group(1)} votes counted"
        )
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
