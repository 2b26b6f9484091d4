"""What every task kind shares: HIT building with gold mixed in, answer parsing, page parts.

A kind is an object with ``build_hits``, ``item_ids``, ``page_context``, ``validate`` and
``answer_fields``; the registry in ``annotation.kinds`` maps ``TaskKind`` values to them.
"""

from __future__ import annotations

import json
import random
import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError

from ..images import rendition_url
from ..models import Dataset, Item
from ..prepared import Prepared
from . import markup

# What a HIT stores per kind (Hit.items) is documented on each kind module.
HitItems = list[Any]
BuiltHit = tuple[HitItems, list[int]]

IMAGE_SIZE = 200
THUMB_SIZE = 128
EXAMPLE_SIZE = 64
_INT_RE = re.compile(r"-?[0-9]{1,12}")
_ITEM_FIELDS = (
    "id",
    "dataset_id",
    "index",
    "image",
    "width",
    "height",
    "label",
    "given_label",
    "gold_label",
)


@dataclass(frozen=True)
class Answer:
    """One answer as posted by a task page: the chosen value and the time spent on the item."""

    answer: int
    duration_ms: int | None = None


@dataclass(frozen=True)
class Choice:
    value: str
    text: str
    key: str
    hint: str = ""


@dataclass
class Problem:
    """One item as the page shows it. Numbers are kept as text: the template engine would
    otherwise localize each of them, which is most of the cost of a 200-image page."""

    number: str
    item_id: str
    image_url: str
    width: str
    height: str
    choices: list[Choice] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def as_rng(rng: Any) -> random.Random:
    """A ``random.Random`` from None, an int seed, a ``random.Random`` or a numpy Generator."""
    if rng is None:
        return random.Random()
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, int):
        return random.Random(rng)
    if hasattr(rng, "integers"):
        return random.Random(int(rng.integers(0, 2**63 - 1)))
    raise ValueError(f"rng must be None, an int, random.Random or a numpy Generator, got {rng!r}")


def as_items(items: Iterable[Item | int]) -> list[Item]:
    """Items in the order given; ids are fetched in one query."""
    items = list(items)
    ids = [i for i in items if not isinstance(i, Item)]
    if not ids:
        return items  # type: ignore[return-value]
    by_id = Item.objects.only(*_ITEM_FIELDS).in_bulk(ids)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"items {missing[:10]} do not exist")
    return [i if isinstance(i, Item) else by_id[i] for i in items]


def current_label(item: Item) -> int | None:
    return item.label if item.label is not None else item.given_label


def gold_count(slots: int, gold_rate: float, pool: int) -> int:
    """How many of ``slots`` problems on a HIT are gold: at least one when the rate is positive,
    never all of them."""
    if not 0.0 <= gold_rate < 1.0:
        raise ValueError(f"gold_rate must be in [0, 1), got {gold_rate}")
    if gold_rate == 0.0 or pool == 0 or slots < 2:
        return 0
    return min(max(1, round(slots * gold_rate)), slots - 1, pool)


def check_items_per_hit(items_per_hit: int) -> int:
    if not isinstance(items_per_hit, int) or items_per_hit < 1:
        raise ValueError(f"items_per_hit must be a positive int, got {items_per_hit!r}")
    return items_per_hit


@dataclass(frozen=True)
class BuildRequest:
    """``build_hits``'s arguments, checked: items, the gold pool (known gold labels only)."""

    items: list[Item]
    gold: list[Item]
    items_per_hit: int
    gold_rate: float
    params: dict[str, Any]
    rng: random.Random

    def num_classes(self) -> int:
        for item in (*self.items, *self.gold):
            return Dataset.objects.only("class_names").get(pk=item.dataset_id).num_classes
        return 0


def build_flat_hits(req: BuildRequest, entry, gold_entry=None) -> list[BuiltHit]:
    """Chunk items into HITs of ``items_per_hit`` problems, a share of them gold, shuffled.

    ``entry(item)`` / ``gold_entry(item, rng)`` give what Hit.items stores for an item. Gold items
    are drawn afresh for each HIT from the pool, are never also regular items, and sit at random
    positions, so the page cannot tell them apart.
    """
    pool_ids = {g.pk for g in req.gold}
    regular = [i for i in req.items if i.pk not in pool_ids]
    n_gold = gold_count(req.items_per_hit, req.gold_rate, len(req.gold))
    per_hit = req.items_per_hit - n_gold
    gold_entry = gold_entry or (lambda item, _r: entry(item))
    hits: list[BuiltHit] = []
    for start in range(0, len(regular), per_hit):
        chunk = [(entry(i), False) for i in regular[start : start + per_hit]]
        golds = req.rng.sample(req.gold, n_gold)
        chunk += [(gold_entry(g, req.rng), True) for g in golds]
        req.rng.shuffle(chunk)
        hits.append(([e for e, _ in chunk], [g.pk for g in golds]))
    return hits


def entry_item_id(entry: Any) -> int:
    """The item id of one Hit.items entry: a bare id or an object with ``item``."""
    if isinstance(entry, dict):
        return int(entry["item"])
    return int(entry)


# Unordered: the rows go into a dict, and the model's ordering would join the dataset.
_ITEM_ROWS = Prepared(
    Item, lambda ids: Item.objects.only(*_ITEM_FIELDS).filter(pk__in=ids).order_by()
)


def hit_item_rows(item_ids: Sequence[int]) -> dict[int, Item]:
    """The rows of these items that exist, by id (compiled once per number of items)."""
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        return {}
    return {item.pk: item for item in _ITEM_ROWS(ids)}


def image_url(item: Item, size: int) -> str:
    """Where a worker's browser fetches the image: a resized, content-hashed rendition."""
    if getattr(settings, "TASK_SEND_ORIGINAL_IMAGES", False):
        return item.image.url
    return rendition_url(item, size)


def display_size(item: Item, size: int) -> tuple[int, int]:
    """Width and height the rendition of ``item`` has (longer side ``size``)."""
    w, h = max(1, item.width), max(1, item.height)
    scale = size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def problem_for(number: int, item: Item, size: int = IMAGE_SIZE, **extra) -> Problem:
    w, h = display_size(item, size)
    return Problem(str(number), str(item.pk), image_url(item, size), str(w), str(h), extra=extra)


def class_name(dataset: Dataset, label: int | None) -> str:
    if label is None or not 0 <= label < len(dataset.class_names):
        return "(none)"
    return str(dataset.class_names[label])


def _batch_gold_pool(batch) -> set[int]:
    key = f"tasks:gold-pool:{batch.pk}"
    pool = cache.get(key)
    if pool is None:
        pool = set()
        for golds in batch.hits.values_list("gold_items", flat=True):
            pool.update(int(g) for g in golds or ())
        cache.set(key, pool, 600)
    return pool


def examples_by_class(hit, *, per_class: int = 2, limit: int = 4000) -> dict[int, list[Item]]:
    """Example images per class for the instructions, by known (gold) label.

    ``HitBatch.params["example_items"]`` (item ids) names them explicitly; otherwise they are
    gold-labelled items of the dataset that are not gold in this batch, so an example never gives
    away the answer to a gold problem.
    """
    batch = hit.batch
    # The picks and their rows are kept together (10 minutes), so a task page reads no example
    # rows of its own.
    key = f"tasks:examples:{batch.pk}:{per_class}:rows"
    found = cache.get(key)
    if found is None:
        explicit = (batch.params or {}).get("example_items")
        if explicit:
            qs = Item.objects.filter(pk__in=[int(i) for i in explicit])
        else:
            qs = Item.objects.filter(dataset_id=batch.dataset_id, gold_label__isnull=False).exclude(
                pk__in=_batch_gold_pool(batch)
            )
        picked = {}
        for pk, gold, label in qs.order_by("index").values_list("pk", "gold_label", "label")[
            :limit
        ]:
            cls = gold if gold is not None else label
            if cls is not None and len(picked.setdefault(cls, [])) < per_class:
                picked[cls].append(pk)
        found = (picked, hit_item_rows([pk for pks in picked.values() for pk in pks]))
        cache.set(key, found, 600)
    picked, all_rows = found
    own = set(hit_item_ids(hit))
    rows = {pk: row for pk, row in all_rows.items() if pk not in own}
    out: dict[int, list[Item]] = {}
    for cls, pks in picked.items():
        items = [rows[pk] for pk in pks if pk in rows]
        if items:
            out[int(cls)] = items
    return out


def example_view(item: Item, dataset: Dataset, *, size: int = EXAMPLE_SIZE) -> dict[str, Any]:
    w, h = display_size(item, size)
    cls = item.gold_label if item.gold_label is not None else current_label(item)
    return {
        "url": image_url(item, size),
        "width": str(w),
        "height": str(h),
        "label": cls,
        "name": class_name(dataset, cls),
    }


def hit_item_ids(hit) -> list[int]:
    from . import get

    return get(hit.batch.kind).item_ids(hit.items)


def parse_answers(raw: Any, *, max_duration_ms: int) -> dict[int, Answer]:
    """Answers posted by a page: a list of ``{"item": id, "answer": n, "duration_ms": t}``.

    A JSON string is accepted too. Durations are optional; an unusable one becomes None rather
    than costing the worker the vote.
    """
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep to parse
            raise ValidationError("answers are not valid JSON") from None
    if not isinstance(raw, list) or not raw:
        raise ValidationError("answers must be a non-empty list")
    out: dict[int, Answer] = {}
    for row in raw:
        if not isinstance(row, dict):
            raise ValidationError("each answer must be an object with item and answer")
        item, answer = row.get("item"), row.get("answer")
        if not _is_int(item):
            raise ValidationError(f"answer without a valid item id: {_shown(item)}")
        if answer is None:
            raise ValidationError(f"item {item}: no answer")
        if not _is_int(answer):
            raise ValidationError(f"item {item}: answer {_shown(answer)} is not a whole number")
        if int(item) in out:
            raise ValidationError(f"item {item} is answered twice")
        duration = row.get("duration_ms")
        duration = min(int(duration), max_duration_ms) if _is_int(duration) else None
        if duration is not None and duration < 0:
            duration = None
        out[int(item)] = Answer(int(answer), duration)
    return out


def _shown(value: Any) -> str:
    # reprlib caps depth (a posted value may be nested deep enough to exhaust plain repr) and
    # the cut keeps a huge value out of the message.
    text = reprlib.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63  # what a database integer column can hold
    return isinstance(value, str) and _INT_RE.fullmatch(value.strip()) is not None


class Kind:
    """What every kind offers; see ``annotation.kinds``."""

    name = ""
    template = ""
    default_items_per_hit = 10
    default_assignments_per_item = 3
    # A worker's typical seconds on one problem of the page (select: one task of up to 20
    # images), used to estimate a HIT's time until votes of the kind have measured it.
    typical_seconds_per_problem = 5.0
    # Whether the page's problems differ between assignments of one HIT (choices drawn or
    # ordered per assignment); a page that does not is built once and kept per process.
    page_per_assignment = False
    # What task.js does with the page: "choice" (one choice per image) or "select".
    page_mode = "choice"

    def build_hits(
        self,
        items: Iterable[Item | int],
        *,
        items_per_hit: int | None = None,
        gold_items: Iterable[Item | int] = (),
        gold_rate: float = 0.0,
        params: dict | None = None,
        rng: Any = None,
    ) -> list[BuiltHit]:
        """The HITs for ``items``: a list of (``Hit.items`` JSON, gold item ids on that HIT).

        Args:
            items: Items (or ids) to annotate, in the order they should be used.
            items_per_hit: problems per HIT (select: tasks); the kind's default when None.
            gold_items: the pool of gold items (those without a gold label are ignored).
            gold_rate: share of each HIT's problems drawn from the pool, in [0, 1).
            params: ``HitBatch.params`` (kind-specific options).
            rng: ``random.Random``, numpy Generator, int seed or None.
        Raises:
            ValueError: naming the parameter or the items that cannot be used.
        """
        req = BuildRequest(
            items=as_items(items),
            gold=[g for g in as_items(gold_items) if g.gold_label is not None],
            items_per_hit=check_items_per_hit(
                self.default_items_per_hit if items_per_hit is None else items_per_hit
            ),
            gold_rate=float(gold_rate),
            params=dict(params or {}),
            rng=as_rng(rng),
        )
        gold_count(req.items_per_hit, req.gold_rate, 0)  # checks the rate
        return self.build(req)

    def build(self, req: BuildRequest) -> list[BuiltHit]:
        raise NotImplementedError

    def item_ids(self, hit_items: HitItems) -> list[int]:
        raise NotImplementedError

    def page_markup(self, ctx: dict[str, Any], *, preview: bool) -> dict[str, Any]:
        """Markup the kind writes for its page in Python (added to the template's context)."""
        return {}


class FlatKind(Kind):
    """A kind whose HIT is a flat list of items, each answered with one choice."""

    def item_ids(self, hit_items: HitItems) -> list[int]:
        return [entry_item_id(e) for e in hit_items]

    def answer_fields(self, hit) -> list[str]:
        """Fields the page posts to ``{turkSubmitTo}/mturk/externalSubmit`` besides assignmentId:
        ``answers`` (the JSON list accepted by ``hits.submissions``) and ``item_<id>``."""
        return ["answers", *(f"item_{i}" for i in self.item_ids(hit.items))]

    def allowed_answers(self, hit, assignment, entry, item: Item) -> Sequence[int]:
        raise NotImplementedError

    def vote_fields(self, hit, assignment, entry, item: Item, answer: int) -> dict[str, Any]:
        return {}

    def question_html(self, problem: Problem, ctx: dict[str, Any]) -> str:
        """The question of one problem on the page, as markup (values escaped)."""
        raise NotImplementedError

    def before_choices_html(self, problem: Problem, ctx: dict[str, Any]) -> str:
        """What the page shows between the question and the choices: examples of the labels
        a problem asks about, where it has them."""
        return markup.refs_markup(problem.extra.get("refs") or ())

    def page_markup(self, ctx: dict[str, Any], *, preview: bool) -> dict[str, Any]:
        """The page's problems and its jump bar, as markup (``templates/tasks/choice_page``)."""
        problems = ctx.get("problems", ())
        return {
            "problems_html": markup.problems_markup(self, problems, ctx, preview=preview),
            "jump_html": markup.jump_markup(problems),
        }

    def needs_item_row(self, hit, entry) -> bool:
        """Whether checking an answer to ``entry`` reads the item's row (its current label).
        A kind whose entries carry all it checks says no, and then a submit reads no items:
        that an item still exists is left to the votes' foreign key (``hits.submissions``)."""
        return True

    def validate(self, hit, assignment, answers: dict[int, Answer]) -> list[dict[str, Any]]:
        """Vote kwargs for every problem on the HIT; ValidationError unless each problem has
        exactly one allowed answer and nothing else is answered."""
        entries = list(hit.items)
        ids = self.item_ids(entries)
        foreign = [i for i in answers if i not in set(ids)]
        if foreign:
            raise ValidationError(f"items {sorted(foreign)[:10]} are not on this HIT")
        if any(self.needs_item_row(hit, entry) for entry in entries):
            rows = hit_item_rows(ids)
        else:
            rows = {item_id: Item(pk=item_id) for item_id in ids}  # the id is all that is read
        gold = {int(g) for g in hit.gold_items or ()}
        votes = []
        for number, (entry, item_id) in enumerate(zip(entries, ids, strict=True), start=1):
            if item_id not in answers:
                raise ValidationError(f"problem {number} has no answer")
            item = rows.get(item_id)
            if item is None:
                raise ValidationError(f"problem {number}: item {item_id} no longer exists")
            ans = answers[item_id]
            if ans.answer not in self.allowed_answers(hit, assignment, entry, item):
                raise ValidationError(
                    f"problem {number}: answer {ans.answer} is not one of the choices"
                )
            votes.append(
                {
                    "item_id": item_id,
                    "kind": self.name,
                    "answer": ans.answer,
                    "is_gold": item_id in gold,
                    "duration_ms": ans.duration_ms,
                    **self.vote_fields(hit, assignment, entry, item, ans.answer),
                }
            )
        return votes
