"""What a run reads: its items, the labels to check and the crowd's, and the features or predicted
probabilities its detectors need (trained here for the built-in source)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from annotation.models import AggregatedLabel, Item, TaskKind, Vote

from ..exceptions import RunInputError
from ..models import CurationRun
from ..selectors import run_items


def _load_images(items: list[Item], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8, every image converted to RGB and resized bilinearly."""
    out = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for pos, item in enumerate(items):
        try:
            with item.image.open("rb") as fh, Image.open(fh) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                out[pos] = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise RunInputError(f"item {item} image {item.image.name!r}: {exc}") from None
    return out


def _latest_aggregates(item_ids: list[int]) -> dict[int, tuple[int, float]]:
    """Per item, the newest AggregatedLabel with a label: (label, confidence)."""
    out: dict[int, tuple[int, float]] = {}
    rows = (
        AggregatedLabel.objects.filter(item_id__in=item_ids, label__gte=0)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "label", "confidence")
    )
    for item_id, label, conf in rows.iterator(chunk_size=5000):
        out[item_id] = (int(label), float(min(max(conf, 0.0), 1.0)))
    return out


def _rows_by_index(arr: np.ndarray, items: list[Item], what: str) -> np.ndarray:
    """The rows of a whole-dataset array (row = item index) for these items."""
    top = max(item.index for item in items)
    if arr.ndim != 2 or arr.shape[0] <= top:
        raise RunInputError(
            f"{what} must be 2-D with a row per dataset item (at least {top + 1} rows, row = "
            f"item index), got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr[[item.index for item in items]])


def _complementary_votes(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    pos = {item.pk: i for i, item in enumerate(items)}
    rows = (
        Vote.objects.counted()
        .filter(item_id__in=list(pos), kind=TaskKind.COMPLEMENTARY, is_gold=False)
        .values_list("item_id", "answer")
    )
    pairs = [(pos[i], a) for i, a in rows.iterator(chunk_size=5000)]
    if not pairs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    arr = np.asarray(pairs, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


@dataclass
class RunInputs:
    items: list[Item]
    labels: np.ndarray  # (N,) int64, -1 = no label to check
    crowd: np.ndarray  # (N,) int64, -1 = no crowd label
    crowd_conf: np.ndarray  # (N,) float64


def run_inputs(run: CurationRun) -> RunInputs:
    items = list(run_items(run))
    if len(items) < 2:
        raise RunInputError(f"the run selects {len(items)} items; it needs at least 2")
    agg = _latest_aggregates([i.pk for i in items])
    n = len(items)
    labels = np.full(n, -1, dtype=np.int64)
    crowd = np.full(n, -1, dtype=np.int64)
    conf = np.zeros(n)
    for pos, item in enumerate(items):
        current = item.label if item.label is not None else item.given_label
        if current is not None:
            labels[pos] = current
            if item.pk in agg:
                crowd[pos], conf[pos] = agg[item.pk]
        elif item.pk in agg:
            # Only the crowd's label exists (complementary collection): that is what is checked,
            # so it cannot also vouch for itself.
            labels[pos] = agg[item.pk][0]
    k = run.dataset.num_classes
    if labels.max() >= k or crowd.max() >= k:
        raise RunInputError(f"labels must lie in 0..{k - 1} ({k} classes in the dataset)")
    return RunInputs(items, labels, crowd, conf)


def features_and_probs(
    run: CurationRun,
    inp: RunInputs,
    detectors: list[str],
    device,
    timings: dict,
    progress: Callable[[float], None],
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Features (N, D) and/or out-of-sample probabilities (N, K) from the run's source, and the
    training loss used ("" when nothing was trained)."""
    from curation import engine

    params = run.params or {}
    source = run.feature_source
    k = run.dataset.num_classes
    size = int(params.get("size", 32))
    seed = int(params.get("seed", 0))
    features = probs = None
    loss = ""
    if source == CurationRun.FeatureSource.NPY:
        features = _rows_by_index(engine.load_features_npy(run.feature_path), inp.items, "features")
    elif source == CurationRun.FeatureSource.PRED_PROBS:
        try:
            arr = np.load(run.feature_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RunInputError(f"pred_probs {run.feature_path!r}: {exc}") from None
        probs = _rows_by_index(arr, inp.items, "pred_probs").astype(np.float64)
        if probs.shape[1] != k:
            raise RunInputError(f"pred_probs must have K={k} columns, got {probs.shape[1]}")
    else:
        t = time.perf_counter()
        images = _load_images(inp.items, size)
        timings["images_s"] = round(time.perf_counter() - t, 3)
        progress(0.15)
        t = time.perf_counter()
        if source == CurationRun.FeatureSource.TORCHSCRIPT:
            features = engine.features_from_torchscript(
                run.feature_path,
                images,
                method=params.get("method", "forward"),
                size=params.get("model_size"),
                mean=params.get("mean"),
                std=params.get("std"),
                device=device,
            )
        else:
            epochs = int(params.get("epochs", 2))
            cl_items, cl_labels = _complementary_votes(inp.items)
            unlabelled_given = any(i.given_label is None for i in inp.items)
            loss = params.get("loss") or (
                "scl_nl" if cl_items.size and unlabelled_given else "cross_entropy"
            )
            if loss == "cross_entropy":
                m = inp.labels >= 0
                train = dict(labels=inp.labels[m], num_classes=k)
                imgs = images[m]
            else:
                m = np.ones(len(inp.items), dtype=bool)
                train = dict(complementary=(cl_items, cl_labels), loss=loss, num_classes=k)
                imgs = images
            if "knn" in detectors:
                out = engine.early_learning_features(
                    imgs, epochs=epochs, size=size, seed=seed, device=device, **train
                )
                features = np.zeros((len(inp.items), out.features.shape[1]), np.float32)
                features[m] = out.features
            if {"confident_learning", "low_confidence"} & set(detectors):
                probs = np.full((len(inp.items), k), 1.0 / k)
                probs[m] = engine.cross_val_probs(
                    imgs,
                    folds=int(params.get("folds", 3)),
                    epochs=epochs,
                    size=size,
                    seed=seed,
                    device=device,
                    **train,
                )
        timings["features_s"] = round(time.perf_counter() - t, 3)
    if source == CurationRun.FeatureSource.TORCHSCRIPT and params.get("outputs") == "logits":
        z = features - features.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    if "knn" in detectors and features is None:
        raise RunInputError(f"detector knn needs features; source {source!r} gives none")
    if {"confident_learning", "low_confidence"} & set(detectors) and probs is None:
        raise RunInputError(
            f"detectors {detectors} need predicted probabilities; source {source!r} gives none"
        )
    if probs is not None:
        probs = probs / probs.sum(axis=1, keepdims=True)
    return features, probs, loss
