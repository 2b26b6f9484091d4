"""Where the app above hits plugs into it: hooks called when a batch turns complete. A module
of its own, light to import, so the app can register at start-up without loading the services."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction

BatchHook = Callable[[int], None]
_complete_hooks: list[BatchHook] = []


def batch_complete_hook_register(hook: BatchHook) -> None:
    """Call ``hook(batch_id)`` each time a batch turns complete (after the change commits)."""
    if hook not in _complete_hooks:
        _complete_hooks.append(hook)


def hit_batch_complete_notify(batch_id: int) -> None:
    """Tell the registered hooks, once the current transaction commits, that a batch is done."""
    for hook in _complete_hooks:
        transaction.on_commit(partial(hook, batch_id))
