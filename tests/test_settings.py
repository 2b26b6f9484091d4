"""Settings come from the environment; production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROD_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 30 + "-production-secret-with-enough-entropy-0123456789",
    "WORKER_ID_HASH_KEY": "another-long-production-hash-key",
    "ALLOWED_HOSTS": "annotate.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/annotation",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


def run(*argv, env):
    """Run ``python *argv`` in a fresh process with exactly the settings variables in ``env``."""
    # Test-only switches (e.g. the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE) stay out of it.
    skip = {*PROD_ENV, "LOCALTURK_ENABLED", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in skip}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(*args, env):
    return run("manage.py", *args, env=env)


def test_check_deploy_passes_with_production_variables():
    out = manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert out.returncode == 0, out.stderr + out.stdout


def test_check_deploy_warns_when_localturk_is_on_in_production():
    env = {**PROD_ENV, "LOCALTURK_ENABLED": "true"}
    out = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert out.returncode != 0
    assert "localturk.W001" in out.stderr, out.stderr + out.stdout
    assert "unauthenticated MTurk-protocol stand-in" in out.stderr
    assert "LOCALTURK_ENABLED=false" in out.stderr


def test_production_without_secret_key_refuses_to_start():
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    out = manage("check", env=env)
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr


def test_embedded_defaults_only_in_development(tmp_path):
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='annotation.settings';"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    out = run("-c", code, env={"DJANGO_ENV": "development", "VAR_DIR": str(tmp_path)})
    assert out.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"], out.stderr


def test_production_schema_is_staff_only_by_default():
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='annotation.settings';"
        "from django.conf import settings as s;print(s.API_SCHEMA_PUBLIC)"
    )
    assert run("-c", code, env=PROD_ENV).stdout.split() == ["False"]


def test_check_deploy_refuses_a_weak_worker_id_hash_key():
    weak = {
        "dev-only-worker-hash-key": "is the development default published in the source",
        "short-but-random-Zq8x": "is 21 characters long, shorter than 32",
        PROD_ENV["SECRET_KEY"]: "equals SECRET_KEY",
        "a" * 40: "uses fewer than 5 different characters",
    }
    for key, says in weak.items():
        out = manage("check", "--deploy", env={**PROD_ENV, "WORKER_ID_HASH_KEY": key})
        assert out.returncode != 0, key
        assert "annotation.E001" in out.stderr, out.stderr + out.stdout
        assert f"WORKER_ID_HASH_KEY {says}" in out.stderr, out.stderr
        assert key not in out.stderr  # the check names the problem, never the key itself
    assert len(PROD_ENV["WORKER_ID_HASH_KEY"]) >= 32  # the clean deploy test's key passes


def test_manage_py_in_a_plain_shell_runs_on_the_local_defaults(tmp_path):
    """The README's commands work as written: no DJANGO_ENV and no secrets means development;
    a shell that carries a SECRET_KEY but no DJANGO_ENV is still treated as production."""
    plain = manage("check", env={"VAR_DIR": str(tmp_path)})
    assert plain.returncode == 0, plain.stderr
    secrets_only = manage("check", env={"VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 50})
    assert secrets_only.returncode != 0
    assert "WORKER_ID_HASH_KEY" in secrets_only.stderr or "DATABASE_URL" in secrets_only.stderr


def test_the_demo_sites_worker_links_follow_its_port(tmp_path):
    """A demo started with PORT=8767 hands out links to port 8767, not 8000."""
    show = "from django.conf import settings; print(settings.SITE_URL)"
    env = {"VAR_DIR": str(tmp_path), "DJANGO_ENV": "demo"}

    def site_url(**extra) -> str:
        out = manage("shell", "--no-imports", "-c", show, env={**env, **extra})
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert site_url(PORT="8767") == "http://127.0.0.1:8767"
    assert site_url() == "http://127.0.0.1:8000"
    assert site_url(PORT="8767", SITE_URL="https://a.b") == "https://a.b"


def test_commands_before_migrate_say_so_instead_of_a_traceback(tmp_path):
    """A command run on a database without its tables, or with no database server, names the
    problem and the fix (ours and Django's own commands alike)."""
    env = {"DJANGO_ENV": "development", "VAR_DIR": str(tmp_path)}
    for argv in (
        ("aggregate_votes", "--dataset", "demo"),
        ("createsuperuser", "--noinput", "--username", "x", "--email", "x@example.org"),
    ):
        out = manage(*argv, env=env)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        assert f"manage.py {argv[0]}: error: the database has no tables yet" in out.stderr
        assert "run `python manage.py migrate` first" in out.stderr
    unreachable = {"DJANGO_ENV": "development", "DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"}
    out = manage("aggregate_votes", "--dataset", "demo", env=unreachable)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "cannot reach the database" in out.stderr
