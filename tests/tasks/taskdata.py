"""Datasets, batches and HITs for the task-page tests, made directly (no launch code).

Loaded by path from the conftests of tests/tasks and tests/browser (tests has no packages).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from annotation import kinds
from annotation.importers import ImportRecord, ParsedDataset
from annotation.models import Item
from annotation.services import dataset_import

SHAPES = [
    ("circle", "Navy", (30, 50, 140)),
    ("square", "Red", (200, 40, 40)),
    ("triangle", "Green", (30, 140, 60)),
    ("diamond", "Orange", (235, 140, 20)),
    ("ring", "Purple", (120, 50, 170)),
    ("cross", "Teal", (20, 140, 150)),
    ("bar", "Brown", (130, 80, 40)),
    ("frame", "Pink", (220, 90, 160)),
    ("dot", "Black", (20, 20, 20)),
    ("stripe", "Olive", (120, 130, 30)),
]


def shape_image(cls: int, rng: random.Random, size: int = 32) -> np.ndarray:
    name, _, color = SHAPES[cls]
    bg = tuple(rng.randint(225, 250) for _ in range(3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    j = rng.randint(-2, 2)
    a, b = 6 + j, size - 7 + j
    c = size // 2 + j
    if name == "circle":
        d.ellipse([a, a, b, b], fill=color)
    elif name == "square":
        d.rectangle([a, a, b, b], fill=color)
    elif name == "triangle":
        d.polygon([(c, a), (b, b), (a, b)], fill=color)
    elif name == "diamond":
        d.polygon([(c, a), (b, c), (c, b), (a, c)], fill=color)
    elif name == "ring":
        d.ellipse([a, a, b, b], outline=color, width=4)
    elif name == "cross":
        d.rectangle([c - 3, a, c + 3, b], fill=color)
        d.rectangle([a, c - 3, b, c + 3], fill=color)
    elif name == "bar":
        d.rectangle([a, c - 4, b, c + 4], fill=color)
    elif name == "frame":
        d.rectangle([a, a, b, b], outline=color, width=3)
    elif name == "dot":
        d.ellipse([c - 4, c - 4, c + 4, c + 4], fill=color)
    else:
        for y in range(a, b, 6):
            d.rectangle([a, y, b, y + 2], fill=color)
    return np.asarray(im, dtype=np.uint8)


def make_dataset(name: str = "shapes", *, n: int = 120, k: int = 10, gold_every: int = 7, seed=7):
    """``n`` 32x32 shape images over ``k`` classes; every ``gold_every``-th item has a known
    (gold) label; class attributes (Color, Style) for select tasks."""
    rng = random.Random(seed)
    labels = [i % k for i in range(n)]
    records = [
        ImportRecord(name=f"shape-{i:04d}.png", label=y, array=shape_image(y, rng))
        for i, y in enumerate(labels)
    ]
    names = [s[0] for s in SHAPES[:k]]
    ds = dataset_import(ParsedDataset(names, records, "shapes"), name=name)
    ds.class_attributes = {s[0]: {"Color": s[1], "Style": "filled"} for s in SHAPES[:k]}
    ds.attribute_schema = ["Color", "Style"]
    ds.save()
    for item in ds.items.all():
        if gold_every and item.index % gold_every == 0:
            item.gold_label = item.given_label
            item.save(update_fields=["gold_label"])
    return ds


def make_hit(
    dataset,
    kind: str,
    *,
    items_per_hit: int | None = None,
    gold_rate: float = 0.2,
    params: dict | None = None,
    provider_hit_id: str = "PHIT-1",
    duration: int = 3600,
    seed: int = 11,
    regular=None,
    number: int = 1,
    batch=None,
):
    """One batch (built-in marketplace) and its first HIT, built by the kind's build_hits."""
    from hits.models import Hit, HitBatch

    spec = kinds.get(kind)
    items_per_hit = items_per_hit or spec.default_items_per_hit
    params = dict(params or {})
    all_items = list(Item.objects.filter(dataset=dataset).order_by("index"))
    gold_pool = [i for i in all_items if i.gold_label is not None]
    if regular is None:
        regular = [i for i in all_items if i.gold_label is None]
    if kind == "review" and "suggested" not in params:
        k = dataset.num_classes
        params["suggested"] = {str(i.pk): (i.label + 1) % k for i in regular}
    if batch is None:
        batch = HitBatch.objects.create(
            name=f"{kind} batch",
            dataset=dataset,
            kind=kind,
            params=params,
            provider="market",
            environment="market",
            items_per_hit=items_per_hit,
            gold_rate=gold_rate,
            assignments_per_item=spec.default_assignments_per_item,
            assignment_duration_seconds=duration,
            status="open",
        )
    built = spec.build_hits(
        regular,
        items_per_hit=items_per_hit,
        gold_items=gold_pool,
        gold_rate=gold_rate,
        params=params,
        rng=random.Random(seed),
    )
    items_json, gold = built[0]
    return Hit.objects.create(
        batch=batch,
        number=number,
        provider_hit_id=provider_hit_id,
        items=items_json,
        gold_items=gold,
        max_assignments=spec.default_assignments_per_item,
        status="Assignable",
    )


def valid_answers(hit, assignment, *, pick: int = 0) -> list[dict]:
    """A complete, valid answer list for ``hit`` (choice ``pick`` everywhere, or the first
    ``min_select`` images of each select task)."""
    spec = kinds.get(hit.batch.kind)
    if spec.name == "select":
        out = []
        for group in hit.items:
            need = spec.min_select(hit, group)
            for n, item_id in enumerate(group["items"]):
                out.append({"item": item_id, "answer": int(n < need), "duration_ms": 900})
        return out
    answers = []
    for item_id in spec.item_ids(hit.items):
        if spec.name == "complementary":
            value = spec.candidates_for(hit, assignment, item_id)[pick]
        else:
            value = pick
        answers.append({"item": item_id, "answer": value, "duration_ms": 1200})
    return answers
