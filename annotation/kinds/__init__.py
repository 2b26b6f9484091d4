"""The task kinds, one module each, behind one registry (classify is stored as ``label``).

Every kind offers:

- ``build_hits(items, *, items_per_hit, gold_items=(), gold_rate=0.0, params, rng)`` -> a list
  of ``(hit_items_json, gold_item_ids)``: what ``Hit.items`` and ``Hit.gold_items`` hold;
- ``item_ids(hit_items_json)`` -> the item ids on a HIT, in page order;
- ``page_context(hit, assignment)`` -> what the task page template needs (assignment None in
  preview);
- ``validate(hit, assignment, answers)`` -> Vote kwargs, or ``ValidationError`` with a message;
- ``answer_fields(hit)`` -> the fields the page posts to ``{turkSubmitTo}/mturk/externalSubmit``;
- ``default_items_per_hit`` and ``default_assignments_per_item``.
"""

from __future__ import annotations

from .classify import KIND as CLASSIFY
from .complementary import KIND as COMPLEMENTARY
from .review import KIND as REVIEW
from .select import KIND as SELECT
from .verify import KIND as VERIFY

_REGISTRY = {k.name: k for k in (COMPLEMENTARY, VERIFY, SELECT, REVIEW, CLASSIFY)}


def get(kind: str):
    """The kind registered under ``kind`` (a ``TaskKind`` value)."""
    try:
        return _REGISTRY[str(kind)]
    except KeyError:
        raise ValueError(f"unknown task kind {kind!r}; known: {sorted(_REGISTRY)}") from None


def names() -> list[str]:
    return list(_REGISTRY)
