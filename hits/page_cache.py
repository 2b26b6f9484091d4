"""A HIT's task page, built once per process and served to each of its workers.

Every worker on a HIT sees the same page but for two values: the data script (the signed
token and the assignment id) and, on the built-in marketplace, the Return link. For a kind
whose problems do not depend on the assignment (``Kind.page_per_assignment`` False: verify,
classify, select) the page is rendered once with stand-ins for those two values and cut there;
each request joins the pieces around its own values, escaped exactly as the template escapes
them. Complementary and review draw their choices per assignment and are rendered every time.

What a kept page shows can go stale only where the request's own query cannot see it: an item's
image or current label, and the instruction examples. A page is rebuilt after ``TTL_SECONDS``.
What the request does read (the HIT's items, the batch's kind, parameters and time limit, the
dataset's names) is compared on every request, and any difference rebuilds the page at once.
The pages kept are bounded in bytes; the least recently used go first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import conditional_escape, json_script

TTL_SECONDS = 60.0
MAX_BYTES = 32 * 1024 * 1024
DATA_ID = "task-data"
# Stand-ins the template writes unchanged (letters, digits, dashes and slashes need no escape).
_DATA_SLOT = "task-page-data-slot-7f3a9c"
_RETURN_SLOT = "/task-page-return-slot-7f3a9c/"
_DATA_MARK = str(json_script(_DATA_SLOT, DATA_ID))

Context = Callable[[Any, str], dict[str, Any]]


class _Pages:
    """Kept pages by key, with the stamp they were built for and when they expire."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple, tuple[tuple, float, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, stamp: tuple, now: float) -> tuple[str, ...] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            kept_stamp, expires, pieces = entry
            if now >= expires or kept_stamp != stamp:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return pieces

    def put(self, key: tuple, stamp: tuple, expires: float, pieces: tuple[str, ...]) -> None:
        size = sum(len(p) for p in pieces)
        if size > self._max_bytes:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = (stamp, expires, pieces)
            self._bytes += size
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= sum(len(p) for p in entry[2])


_PAGES = _Pages(MAX_BYTES)


def clear() -> None:
    """Forget every kept page of this process."""
    _PAGES.clear()


def _stamp(hit) -> tuple:
    """What the request's own query read that the page shows."""
    batch = hit.batch
    dataset = batch.dataset
    return (
        hit.items,
        batch.kind,
        batch.params,
        batch.assignment_duration_seconds,
        batch.provider,
        dataset.pk,
        dataset.name,
        dataset.class_names,
        dataset.class_attributes,
    )


def _cut(html: str, with_return: bool) -> tuple[str, ...] | None:
    """The page in pieces around the stand-ins, or None where they are not each there once."""
    if html.count(_DATA_MARK) != 1 or html.count(_RETURN_SLOT) != int(with_return):
        return None
    head, tail = html.split(_DATA_MARK)
    if with_return:
        before, after = head.split(_RETURN_SLOT)
        return before, after, tail
    return head, tail


def _join(pieces: tuple[str, ...], data: Any, return_url: str) -> str:
    script = str(json_script(data, DATA_ID))
    if len(pieces) == 3:
        before, after, tail = pieces
        return f"{before}{conditional_escape(return_url)}{after}{script}{tail}"
    head, tail = pieces
    return f"{head}{script}{tail}"


def task_page_html(
    kind, hit, *, preview: bool, data: Any, return_url: str, context: Context
) -> str:
    """The page of ``hit`` for one request: ``context(data, return_url)`` is the template's
    context with those two values in it."""
    if kind.page_per_assignment or not settings.TASK_PAGE_CACHE:
        return render_to_string(kind.template, context(data, return_url))
    key = (hit.pk, kind.name, preview, bool(return_url))
    stamp = _stamp(hit)
    now = time.monotonic()
    pieces = _PAGES.get(key, stamp, now)
    if pieces is None:
        slot_url = _RETURN_SLOT if return_url else ""
        html = render_to_string(kind.template, context(_DATA_SLOT, slot_url))
        pieces = _cut(html, bool(return_url))
        if pieces is None:  # a template that does not write both values once each
            return render_to_string(kind.template, context(data, return_url))
        _PAGES.put(key, stamp, now + TTL_SECONDS, pieces)
    return _join(pieces, data, return_url)
