"""Retrieval from an unlabeled pool: rank the pool per class with an embedding backend, then
verify the ranked lists with the crowd in rounds of verify HITs until each class's precision
bound falls below the target, its list ends, or the budget or rounds run out.

The engine (torch, when the backend needs it) is imported inside the ranking function only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image

from annotation.jobs import enqueue_on_commit
from annotation.models import Dataset, Item
from annotation.pool_imports import BUCKET_FIELDS

from ..exceptions import RetrievalRefused
from ..models import RetrievalCandidate, RetrievalRun

C = RetrievalCandidate.State
S = RetrievalRun.Status
Progress = Callable[[int, int], None]
CLIP_WEIGHTS_SETTING = "CLIP_WEIGHTS"


def _policy(run: RetrievalRun):
    from curation.engine.verification import VerifyPolicy

    try:
        return VerifyPolicy(
            target=run.target,
            confidence=run.confidence,
            stretch=run.stretch,
            sample=run.sample,
            max_rounds=run.max_rounds,
        )
    except ValueError as exc:
        raise RetrievalRefused(str(exc)) from None


def retrieval_run_create(dataset: Dataset, **fields: Any) -> RetrievalRun:
    """A retrieval run over ``dataset`` (or one bucket of it); checked before it is saved."""
    run = RetrievalRun(dataset=dataset, **fields)
    if run.backend not in RetrievalRun.Backend.values:
        raise RetrievalRefused(
            f"backend must be one of {', '.join(RetrievalRun.Backend.values)}, got {run.backend!r}"
        )
    if run.bucket and run.bucket_field not in BUCKET_FIELDS:
        raise RetrievalRefused(f"bucket field must be one of {', '.join(BUCKET_FIELDS)}")
    _policy(run)
    if run.budget is not None and run.budget < 0:
        raise RetrievalRefused(f"budget must be at least 0, got {run.budget}")
    if not 0.0 <= run.gold_rate < 1.0:
        raise RetrievalRefused(f"gold rate must lie in [0, 1), got {run.gold_rate}")
    if run.review_margin < 0:
        raise RetrievalRefused(f"review margin must be at least 0, got {run.review_margin}")
    if run.assignments_per_item < 1 or run.items_per_hit < 1:
        raise RetrievalRefused("assignments per item and items per HIT must be at least 1")
    bad = [t for t in run.templates if not isinstance(t, str) or "{}" not in t]
    if bad:
        raise RetrievalRefused(f"prompt template {bad[0]!r} has no {{}} for the class name")
    for what, mapping in (("examples", run.examples), ("negatives", run.negatives)):
        if not isinstance(mapping, dict):
            raise RetrievalRefused(f"{what} must map class names to lists")
        unknown = sorted(set(mapping) - set(dataset.class_names))
        if unknown:
            raise RetrievalRefused(f"{what}: {unknown[:5]} are not classes of {dataset.name}")
    names = [n for lst in run.examples.values() for n in lst]
    found = set(dataset.items.filter(name__in=names).values_list("name", flat=True))
    missing = sorted(set(names) - found)
    if missing:
        raise RetrievalRefused(f"examples: no items named {missing[:5]} in {dataset.name}")
    pool = _pool_items(run)
    if not pool.exists():
        where = f" with {run.bucket_field} {run.bucket!r}" if run.bucket else ""
        raise RetrievalRefused(f"dataset {dataset.name} has no items{where}")
    run.save()
    return run


def _pool_items(run: RetrievalRun):
    items = Item.objects.filter(dataset=run.dataset)
    if run.bucket:
        items = items.filter(**{f"metadata__{run.bucket_field}": run.bucket})
    return items


def _load_rgb(item: Item) -> np.ndarray:
    with item.image.open("rb") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _npy(path: str, what: str) -> np.ndarray:
    from curation.engine import load_features_npy

    if not path:
        raise RetrievalRefused(f"the npy backend needs the {what} .npy path")
    try:
        return load_features_npy(path)
    except ValueError as exc:
        raise RetrievalRefused(f"{what}: {exc}") from None


def _backend(run: RetrievalRun, num_items: int):
    from curation.engine import embeddings as emb

    if run.backend == RetrievalRun.Backend.OFFLINE:
        return emb.OfflineBackend()
    if run.backend == RetrievalRun.Backend.NPY:
        images = _npy(run.embeddings_path, "image embeddings")
        texts = _npy(run.text_path, "text embeddings") if run.text_path else None
        if images.shape[0] != num_items:
            raise RetrievalRefused(
                f"image embeddings have {images.shape[0]} rows, the dataset {num_items} items"
            )
        if texts is not None and texts.shape[0] != run.dataset.num_classes:
            raise RetrievalRefused(
                f"text embeddings have {texts.shape[0]} rows, the dataset "
                f"{run.dataset.num_classes} classes"
            )
        try:
            return emb.PrecomputedBackend(images, texts)
        except ValueError as exc:
            raise RetrievalRefused(str(exc)) from None
    weights = getattr(settings, CLIP_WEIGHTS_SETTING, "")
    if not weights or not Path(weights).is_file():
        raise RetrievalRefused(
            f"open_clip weights file not found: set {CLIP_WEIGHTS_SETTING} to a local weights "
            f"file (now {weights or 'unset'!r})"
        )
    try:
        return emb.OpenClipBackend(model=settings.CLIP_MODEL, weights=weights)
    except (ImportError, RuntimeError, ValueError) as exc:
        raise RetrievalRefused(str(exc).splitlines()[0]) from None


def embeddings_store(dataset: Dataset, key: str) -> Path:
    """Where a dataset's embeddings by one backend are kept (reused by later rankings)."""
    return Path(settings.VAR_DIR) / "embeddings" / f"dataset-{dataset.pk}-{key}.npy"


def retrieval_run_rank(run: RetrievalRun, *, progress: Progress | None = None) -> RetrievalRun:
    """Embed the pool (resuming a stored embedding), rank it per class and write the lists.

    Example items become gold items of their class (they check the workers) and stay off the
    lists; an image two classes claim within the review margin is kept aside for review.
    """
    from curation.engine.embeddings import PrecomputedBackend, embed_pool, normalise
    from curation.engine.ranking import DEFAULT_TEMPLATES, class_queries, prompts_for, rank_pool

    if run.status != S.PENDING:
        raise RetrievalRefused(f"run {run.pk} is {run.get_status_display()}, already ranked")
    dataset = run.dataset
    items = list(Item.objects.filter(dataset=dataset).order_by("index"))
    backend = _backend(run, len(items))
    if isinstance(backend, PrecomputedBackend):
        x = backend.images
    else:

        def load(start: int, stop: int) -> list[np.ndarray]:
            return [_load_rgb(item) for item in items[start:stop]]

        try:
            stored = embed_pool(
                load,
                len(items),
                backend,
                store=embeddings_store(dataset, backend.key()),
                progress=progress,
            )
            x = np.asarray(stored.embeddings)
        except ValueError as exc:
            raise RetrievalRefused(f"cannot embed {dataset.name}: {exc}") from None
    # Embedding rows follow the items in index order (their positions, not their index values).
    row = {item.name: position for position, item in enumerate(items)}
    examples = [
        np.asarray(x[[row[n] for n in run.examples.get(name, [])]])
        if name in run.examples
        else None
        for name in dataset.class_names
    ]
    text = None
    offline_with_examples = run.backend == RetrievalRun.Backend.OFFLINE and all(
        e is not None and len(e) for e in examples
    )
    if isinstance(backend, PrecomputedBackend):
        text = backend.texts
    elif not offline_with_examples:
        templates = run.templates or list(DEFAULT_TEMPLATES)
        text = np.stack(
            [
                normalise(backend.embed_texts(prompts_for(n, templates)).mean(0))
                for n in dataset.class_names
            ]
        )
    negatives = None
    if run.negatives and not isinstance(backend, PrecomputedBackend):
        negatives = [
            backend.embed_texts(run.negatives[n]) if run.negatives.get(n) else None
            for n in dataset.class_names
        ]
    try:
        queries = class_queries(text, examples if any(e is not None for e in examples) else None)
    except ValueError as exc:
        raise RetrievalRefused(f"cannot rank: {exc}") from None
    pool = list(_pool_items(run).exclude(name__in=[n for v in run.examples.values() for n in v]))
    pool_rows = np.array([row[item.name] for item in pool], dtype=np.int64)
    ranking = rank_pool(
        np.asarray(x)[pool_rows], queries, negatives=negatives, review_margin=run.review_margin
    )
    rows = []
    for k in range(dataset.num_classes):
        for rank, j in enumerate(ranking.ranked(k)):
            rows.append(
                RetrievalCandidate(
                    run=run,
                    item=pool[j],
                    label=k,
                    score=float(ranking.scores[j, k]),
                    rank=rank,
                )
            )
    for j in np.flatnonzero(ranking.review):
        k = int(ranking.assigned[j])
        rows.append(
            RetrievalCandidate(
                run=run,
                item=pool[j],
                label=k,
                runner_up=int(np.argsort(-ranking.scores[j], kind="stable")[1]),
                score=float(ranking.scores[j, k]),
                rank=0,
                state=C.REVIEW,
            )
        )
    with transaction.atomic():
        RetrievalCandidate.objects.bulk_create(rows, batch_size=1000)
        for name, names in run.examples.items():
            Item.objects.filter(dataset=dataset, name__in=names).update(
                gold_label=dataset.class_names.index(name)
            )
        run.progress = {
            str(k): {"position": 0, "stopped": "", "stretches": []}
            for k in range(dataset.num_classes)
        }
        for k in range(dataset.num_classes):
            if not len(ranking.ranked(k)):
                run.progress[str(k)]["stopped"] = "end"
        run.status = S.RANKED
        run.message = f"ranked {len(pool)} images with {backend.key()}"
        run.save()
    return run


def retrieval_run_enqueue(run: RetrievalRun) -> None:
    """Rank the run on the curation queue once the current transaction commits."""
    enqueue_on_commit("curation.tasks.retrieval_run_rank_task", run.pk)


def retrieval_run_rank_background(run_id: int) -> str:
    """What the rank task runs: progress goes to the run's message, a refusal marks it failed."""
    run = RetrievalRun.objects.filter(pk=run_id).first()
    if run is None or run.status != S.PENDING:
        return "skipped"

    def progress(done: int, total: int) -> None:
        RetrievalRun.objects.filter(pk=run_id).update(message=f"embedded {done} of {total}")

    try:
        retrieval_run_rank(run, progress=progress)
    except RetrievalRefused as exc:
        RetrievalRun.objects.filter(pk=run_id).update(status=S.FAILED, message=str(exc))
        return S.FAILED
    return run.status
