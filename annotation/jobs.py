"""Background work by task name: the one way a service starts a Celery task.

Services never import a ``tasks`` module (tasks import services, not the reverse). They name the
task, e.g. ``enqueue_on_commit("hits.tasks.hit_batch_publish_task", batch.pk)``, and the broker
routes it (``curation.tasks.*`` goes to the curation queue, so the web process never imports
torch). In eager mode (tests) the task runs here and now, as ``.delay`` would run it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .celery import app


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> None:
    """Send one task by its registered name (``<app>.tasks.<function>``)."""
    if app.conf.task_always_eager:
        app.loader.import_default_modules()
        app.tasks[task_name].apply(args=args, kwargs=kwargs, throw=True)
        return
    app.send_task(task_name, args=args, kwargs=kwargs)


def enqueue_on_commit(task_name: str, *args: Any, **kwargs: Any) -> None:
    """Send a task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue(task_name, *args, **kwargs))
