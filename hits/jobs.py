"""Background work of the hits app, started by task name (services never import ``tasks``)."""

from __future__ import annotations

from typing import Any

from annotation import jobs


def enqueue_on_commit(task: str, *args: Any) -> None:
    """Run ``hits.tasks.<task>`` once the current transaction commits (at once outside one)."""
    jobs.enqueue_on_commit(task if "." in task else f"hits.tasks.{task}", *args)
