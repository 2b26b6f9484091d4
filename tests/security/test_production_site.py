"""The site as production runs it (gunicorn, DJANGO_ENV=production, DEBUG off), attacked over
real HTTP: the MTurk stand-in is not there, and the API schema is not public."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.test_settings import PROD_ENV, ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def production_site(tmp_path_factory):
    """gunicorn serving the project under production settings on loopback (its own SQLite file,
    so nothing here touches another database)."""
    var = tmp_path_factory.mktemp("prod-site")
    port = _free_port()
    skip = {*PROD_ENV, "LOCALTURK_ENABLED", "API_SCHEMA_PUBLIC", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(
        PROD_ENV,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback; the proxy terminates TLS
        VAR_DIR=str(var),
        MEDIA_ROOT=str(var / "media"),
        STATIC_ROOT=str(var / "static"),
    )
    for command in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        done = subprocess.run(
            [sys.executable, "manage.py", *command, "-v0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "annotation.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not come up under production settings")
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def status_of(url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_mturk_standin_is_not_served_in_production(production_site):
    assert status_of(production_site + "/") == 200  # the site itself is up
    for path in ("/localturk/", "/localturk/worker/", "/localturk/realm/live/"):
        assert status_of(production_site + path) == 404, path
    # Its requester API neither, whatever the caller sends.
    call = status_of(
        production_site + "/localturk/",
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "MTurkRequesterServiceV20170117.GetAccountBalance",
            "X-LocalTurk-Fault": "delay=5000",
        },
    )
    assert call == 404


def test_the_api_schema_is_not_public_in_production(production_site):
    assert status_of(production_site + "/api/schema/") in (401, 403)
