"""Long jobs run on a real Celery worker through the configured broker (filesystem by default,
Redis in CI), not only eagerly."""

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from annotation.celery import app
from annotation.services import dataset_import_from_args
from annotation.tasks import dataset_export_task

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_export_task_runs_on_a_worker_through_the_broker(make_climage, tmp_path, settings):
    path, data = make_climage(n=6, k=3, size=8)
    ds = dataset_import_from_args(
        name="viabroker", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    out = tmp_path / "via-broker.pkl"
    app.conf.task_always_eager = False
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            dataset_export_task.apply_async(args=[ds.pk, "climage", str(out)], ignore_result=True)
            import time

            deadline = time.monotonic() + 60
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        app.conf.task_always_eager = True
    assert out.exists(), f"the worker did not run the task via {app.conf.broker_url}"
    with open(out, "rb") as fh:
        assert pickle.load(fh)["ord_labels"] == data["ord_labels"]


def test_web_process_and_tasks_never_import_torch():
    code = (
        "import importlib,os,sys,django;os.environ.setdefault('DJANGO_SETTINGS_MODULE','annotation.settings');"
        "django.setup();import annotation.urls;"
        "from django.apps import apps;"
        "[importlib.import_module(a.name+'.tasks') for a in apps.get_app_configs() "
        " if importlib.util.find_spec(a.name+'.tasks')];"
        "import annotation.admin, hits.admin, curation.admin;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_embedded_broker_never_shows_a_worker_a_half_written_message(tmp_path, monkeypatch):
    """A worker polling the folder must find whole messages only: while a message is being
    written no empty ``*.msg`` file may exist (kombu's own transport creates it empty first,
    and a worker that read it then stopped with a JSONDecodeError)."""
    import os

    from kombu import Connection

    import annotation.broker as broker

    seen_while_writing = []
    real_dumps = broker.dumps

    def dumps(payload):
        seen_while_writing.extend(
            f
            for f in os.listdir(tmp_path)
            if f.endswith(".msg") and not (tmp_path / f).stat().st_size
        )
        return real_dumps(payload)

    monkeypatch.setattr(broker, "dumps", dumps)
    folders = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
    }
    with Connection(
        "filesystem://", transport="annotation.broker:Transport", transport_options=folders
    ) as conn:
        queue = conn.SimpleQueue("jobs")
        for n in range(3):
            queue.put({"n": n})
        got = [queue.get(timeout=5) for _ in range(3)]
        for message in got:
            message.ack()
        queue.close()
    assert sorted(m.payload["n"] for m in got) == [0, 1, 2]
    assert seen_while_writing == [] and not list(tmp_path.glob("*.part"))


def test_embedded_broker_is_the_atomic_one():
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert app.conf.broker_transport == "annotation.broker:Transport"
