"""Writes for the curation app: run the engine over a dataset, send its issues to review, and
fold the review votes back into the items' labels.

Importing this module never imports torch: the engine is imported inside the function that runs
on the curation worker (curation_run_execute), so the web process can call everything else.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from annotation.aggregation import VoteTable, consensus
from annotation.models import AggregatedLabel, Dataset, Item, LabelChange, TaskKind, Vote

from .exceptions import ReviewBatchRefused, RunInputError
from .models import CurationRun, LabelIssue
from .selectors import run_items, runs_awaiting_resolution

logger = logging.getLogger(__name__)
R = LabelIssue.Resolution
DETECTORS = ("knn", "confident_learning", "low_confidence")
DEFAULT_DETECTORS = {
    CurationRun.FeatureSource.BUILTIN: ["knn"],
    CurationRun.FeatureSource.NPY: ["knn"],
    CurationRun.FeatureSource.TORCHSCRIPT: ["knn"],
    CurationRun.FeatureSource.PRED_PROBS: ["confident_learning"],
}
# Review answers (Vote.answer) and the verify answers, by position.
REVIEW_ANSWERS = ("given", "suggested", "both", "neither")
VERIFY_ANSWERS = ("correct", "unsure", "wrong")
# k of n: how many of the votes an item is meant to get must agree on one answer.
DEFAULT_RULES = {TaskKind.REVIEW: (3, 5), TaskKind.VERIFY: (2, 3)}
RULES = {"3of5": (3, 5), "4of5": (4, 5), "5of5": (5, 5), "2of3": (2, 3), "3of3": (3, 3)}


# --- runs ------------------------------------------------------------------------------------


def curation_run_create(
    dataset: Dataset,
    *,
    items: dict | Iterable[Item | int] | None = None,
    feature_source: str = CurationRun.FeatureSource.BUILTIN,
    feature_path: str = "",
    detectors: Iterable[str] = (),
    params: dict[str, Any] | None = None,
) -> CurationRun:
    """A pending run over ``items`` (None = every item; a selection dict, see
    CurationRun.item_selection; or Items / item ids). Call curation_run_enqueue to start it."""
    if feature_source not in CurationRun.FeatureSource.values:
        raise RunInputError(
            f"feature_source must be one of {CurationRun.FeatureSource.values}, "
            f"got {feature_source!r}"
        )
    chosen = list(detectors) or DEFAULT_DETECTORS[feature_source]
    unknown = [d for d in chosen if d not in DETECTORS]
    if unknown:
        raise RunInputError(f"detectors must be among {DETECTORS}, got {unknown}")
    if feature_source != CurationRun.FeatureSource.BUILTIN and not feature_path:
        raise RunInputError(f"feature source {feature_source!r} needs a feature_path")
    if items is None:
        selection: dict = {}
    elif isinstance(items, dict):
        selection = dict(items)
    else:
        selection = {"item_ids": sorted(i.pk if isinstance(i, Item) else int(i) for i in items)}
    return CurationRun.objects.create(
        dataset=dataset,
        item_selection=selection,
        feature_source=feature_source,
        feature_path=feature_path,
        detectors=chosen,
        params=params or {},
    )


def curation_run_enqueue(run: CurationRun) -> None:
    """Start the run on the curation queue once the current transaction commits."""
    from . import tasks

    transaction.on_commit(lambda: tasks.curation_run_execute_task.delay(run.pk))


def _progress(run: CurationRun, value: float, **fields: Any) -> None:
    run.progress = value
    for name, v in fields.items():
        setattr(run, name, v)
    CurationRun.objects.filter(pk=run.pk).update(progress=value, **fields)


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
    rows = Vote.objects.filter(
        item_id__in=list(pos), kind=TaskKind.COMPLEMENTARY, is_gold=False
    ).values_list("item_id", "answer")
    pairs = [(pos[i], a) for i, a in rows.iterator(chunk_size=5000)]
    if not pairs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    arr = np.asarray(pairs, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


@dataclass
class _Inputs:
    items: list[Item]
    labels: np.ndarray  # (N,) int64, -1 = no label to check
    crowd: np.ndarray  # (N,) int64, -1 = no crowd label
    crowd_conf: np.ndarray  # (N,) float64


def _inputs(run: CurationRun) -> _Inputs:
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
    return _Inputs(items, labels, crowd, conf)


def _features_and_probs(
    run: CurationRun, inp: _Inputs, detectors: list[str], device, timings: dict
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
        _progress(run, 0.15)
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


def _detect(run: CurationRun, inp: _Inputs, features, probs, detectors, device):
    """Run the detectors over the labelled items and combine them with the crowd's evidence.

    Returns (positions (F,), suggested (F,), score (F,), detector names per flagged item)."""
    from curation import engine

    params = run.params or {}
    k = run.dataset.num_classes
    m = np.flatnonzero(inp.labels >= 0)
    if m.size < 2:
        raise RunInputError("fewer than 2 of the run's items have a label to check")
    labels = inp.labels[m]
    parts = []
    for name in detectors:
        if name == "knn":
            parts.append(
                engine.find_issues_knn(
                    features[m],
                    labels,
                    k=min(int(params.get("knn_k", 10)), m.size - 1),
                    seed=int(params.get("seed", 0)),
                    num_classes=k,
                    device=device,
                )
            )
        elif name == "confident_learning":
            parts.append(engine.find_issues_confident_learning(probs[m], labels, num_classes=k))
        else:
            parts.append(
                engine.find_issues_low_confidence(
                    probs[m], labels, fraction=float(params.get("fraction", 0.1))
                )
            )
    crowd, conf = inp.crowd[m], inp.crowd_conf[m]
    has_crowd = bool((crowd >= 0).any())
    if len(parts) == 1 and not has_crowd:
        result = parts[0]
    else:
        result = engine.combine_issues(
            parts,
            labels,
            require=params.get("require", "majority"),
            crowd_labels=crowd if has_crowd else None,
            crowd_confidence=conf if has_crowd else None,
            crowd_threshold=float(params.get("crowd_threshold", 0.8)),
        )
    threshold = float(params.get("crowd_threshold", 0.8))
    ranked = result.ranked
    names = []
    for i in ranked.tolist():
        who = [d for d, p in zip(detectors, parts, strict=True) if p.flagged[i]]
        if crowd[i] >= 0 and conf[i] >= threshold and crowd[i] != labels[i]:
            who.append("crowd")
        names.append(who)
    return m[ranked], result.suggested[ranked], result.score[ranked], names


def curation_run_execute(run: CurationRun) -> CurationRun:
    """Run the engine and write the run's LabelIssues; a failure is recorded on the run.

    Re-running replaces the run's open issues and leaves the reviewed ones as they are.
    """
    run.refresh_from_db()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    _progress(
        run,
        0.0,
        status=CurationRun.Status.RUNNING,
        message="",
        started_at=timezone.now(),
        finished_at=None,
    )
    try:
        from curation.engine import pick_device

        params = run.params or {}
        detectors = list(run.detectors) or DEFAULT_DETECTORS[run.feature_source]
        try:
            device = pick_device(params.get("device", "auto"))
        except ValueError as exc:
            raise RunInputError(str(exc)) from None
        name = str(device)
        if device.type == "cuda":
            import torch

            name = f"{device} ({torch.cuda.get_device_name(device)})"
        _progress(run, 0.05, device=name[:64])
        t = time.perf_counter()
        inp = _inputs(run)
        timings["load_s"] = round(time.perf_counter() - t, 3)
        _progress(run, 0.1, num_items=len(inp.items))
        features, probs, loss = _features_and_probs(run, inp, detectors, device, timings)
        _progress(run, 0.7)
        t = time.perf_counter()
        positions, suggested, score, names = _detect(run, inp, features, probs, detectors, device)
        timings["detect_s"] = round(time.perf_counter() - t, 3)
        _progress(run, 0.9)
        t = time.perf_counter()
        written = _write_issues(run, inp, positions, suggested, score, names)
        timings["write_s"] = round(time.perf_counter() - t, 3)
    except Exception as exc:
        # Everything the engine or the inputs can raise ends here: the run says what went wrong.
        logger.exception("curation run %s failed", run.pk)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        _progress(
            run,
            run.progress,
            status=CurationRun.Status.FAILED,
            message=f"{type(exc).__name__}: {exc}"[:2000],
            timings=timings,
            finished_at=timezone.now(),
        )
        return run
    timings["total_s"] = round(time.perf_counter() - started, 3)
    checked = int((inp.labels >= 0).sum())
    note = f"flagged {written} of {checked} labelled items with {'+'.join(detectors)}"
    if loss and loss != "cross_entropy":
        note += f"; features trained on complementary labels ({loss})"
    _progress(
        run,
        1.0,
        status=CurationRun.Status.DONE,
        message=note,
        timings=timings,
        finished_at=timezone.now(),
    )
    return run


def _write_issues(run, inp: _Inputs, positions, suggested, score, names) -> int:
    with transaction.atomic():
        run.issues.filter(resolution=R.OPEN).delete()
        kept = set(run.issues.values_list("item_id", flat=True))
        rows = [
            LabelIssue(
                run=run,
                item=inp.items[p],
                current_label=int(inp.labels[p]),
                suggested_label=int(s),
                score=float(sc),
                detectors=who,
            )
            for p, s, sc, who in zip(
                positions.tolist(), suggested.tolist(), score.tolist(), names, strict=True
            )
            if inp.items[p].pk not in kept
        ]
        LabelIssue.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- review batches ----------------------------------------------------------------------------


def curation_run_review_batch(
    run: CurationRun,
    *,
    top_n: int | None = None,
    min_score: float | None = None,
    kind: str = TaskKind.REVIEW,
    provider: str = "local",
    environment: str | None = None,
    assignments_per_item: int | None = None,
    items_per_hit: int | None = None,
    reward: Decimal | str | None = None,
    name: str = "",
    launch: bool = False,
    user=None,
):
    """A HIT batch asking the crowd about the run's open issues (all, the top N by score, and/or
    those scoring at least min_score); those issues go ``in_review``.

    A batch over every open issue selects items "curation" (the run's issues in review); a part
    of them is an explicit item list, so a later batch can take the rest. ``launch`` launches a
    built-in marketplace batch at once; MTurk batches stay drafts for the launch preview.
    """
    from hits.models import Environment, HitBatch, ItemSelection, Provider
    from hits.services import hit_batch_launch

    if kind not in (TaskKind.REVIEW, TaskKind.VERIFY):
        raise ReviewBatchRefused(f"kind must be review or verify, got {kind!r}")
    if run.status != CurationRun.Status.DONE:
        raise ReviewBatchRefused(f"run {run.pk} is {run.get_status_display()}, not done")
    if top_n is not None and int(top_n) < 1:
        raise ReviewBatchRefused(f"top_n must be at least 1, got {top_n}")
    if provider not in Provider.values:
        raise ReviewBatchRefused(f"provider must be one of {Provider.values}, got {provider!r}")
    environment = environment or (
        Environment.LOCAL if provider == Provider.LOCAL else Environment.SANDBOX
    )
    default_k, default_n = DEFAULT_RULES[kind]
    with transaction.atomic():
        open_issues = run.issues.select_for_update().filter(resolution=R.OPEN)
        chosen = open_issues.order_by("-score", "item__index")
        if min_score is not None:
            chosen = chosen.filter(score__gte=float(min_score))
        ids = list(chosen.values_list("id", flat=True))
        if top_n is not None:
            ids = ids[: int(top_n)]
        if not ids:
            raise ReviewBatchRefused(f"run {run.pk} has no open issues matching the selection")
        everything = (
            len(ids) == open_issues.count()
            and not run.issues.filter(resolution=R.IN_REVIEW).exists()
        )
        batch = HitBatch.objects.create(
            name=name or f"{kind} of curation run {run.pk}",
            dataset=run.dataset,
            kind=kind,
            params={"curation_run": run.pk} if kind == TaskKind.REVIEW else {},
            item_selection=ItemSelection.CURATION if everything else ItemSelection.EXPLICIT,
            curation_run=run,
            provider=provider,
            environment=environment,
            title="Which label fits each image?"
            if kind == TaskKind.REVIEW
            else "Is the label right?",
            description="Look at each image and choose the label that fits it."
            if kind == TaskKind.REVIEW
            else "Look at each image and say whether its label is correct.",
            reward=Decimal(str(reward)) if reward is not None else Decimal("0.05"),
            assignments_per_item=assignments_per_item or default_n,
            items_per_hit=items_per_hit or (10 if kind == TaskKind.REVIEW else 20),
        )
        issues = LabelIssue.objects.filter(pk__in=ids)
        if not everything:
            batch.items.set(list(issues.values_list("item_id", flat=True)))
        issues.update(resolution=R.IN_REVIEW, review_batch=batch)
    if launch and provider == Provider.LOCAL:
        hit_batch_launch(batch, user=user)
        batch.refresh_from_db()
    return batch


# --- resolution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolveResult:
    corrected: int = 0
    errors: int = 0
    kept: int = 0
    no_consensus: int = 0
    waiting: int = 0

    @property
    def resolved(self) -> int:
        return self.corrected + self.errors + self.kept + self.no_consensus


def _rule(run: CurationRun, kind: str, k: int | None, n: int | None, batch) -> tuple[int, int]:
    """(k, n) for a review batch: explicit arguments, else run.params["review_rule"] (e.g.
    "5of5"), else 3 of 5 for review and 2 of 3 for verify, n never above the batch's votes."""
    rule = (run.params or {}).get("review_rule")
    if k is None and rule:
        if rule not in RULES:
            raise ValueError(f"review_rule must be one of {sorted(RULES)}, got {rule!r}")
        k, n = RULES[rule]
    dk, dn = DEFAULT_RULES[kind]
    n = n or batch.assignments_per_item or dn
    k = k or min(dk, n)
    if not 1 <= k <= n:
        raise ValueError(f"the rule needs 1 <= k <= n, got k={k}, n={n}")
    return k, n


def _verdict(kind: str, answer: int, issue: LabelIssue) -> tuple[str, int | None, str]:
    """(resolution, resolved label, outcome name) for the agreed answer (-1 = none).

    Review: "suggested" confirms the error and the suggested label becomes the label; "given"
    and "both" keep the label (the given label fits; "both" is an ambiguous image, not an error,
    as in the label-errors study); "neither" confirms the error but no label was agreed, so the
    label stays and the issue reads "error". Verify: "wrong" is such an error, "correct" keeps
    the label, "unsure" settles nothing.
    """
    if answer < 0:
        return R.NO_CONSENSUS, None, "no_consensus"
    if kind == TaskKind.REVIEW:
        outcome = REVIEW_ANSWERS[answer]
        if outcome == "suggested":
            return R.CONFIRMED, issue.suggested_label, outcome
        if outcome == "neither":
            return R.ERROR, None, outcome
        return R.KEPT, issue.current_label, outcome
    outcome = VERIFY_ANSWERS[answer]
    if outcome == "wrong":
        return R.ERROR, None, outcome
    if outcome == "correct":
        return R.KEPT, issue.current_label, outcome
    return R.NO_CONSENSUS, None, outcome


def curation_run_resolve(
    run: CurationRun, *, k: int | None = None, n: int | None = None, final: bool = False
) -> ResolveResult:
    """Resolve the run's issues in review whose items have all their votes (k of n agree).

    A confirmed error changes the item's current label, with a LabelChange from
    ``curation:run-<id>``; every verdict writes an AggregatedLabel (kind review or verify, method
    ``consensus_<k>of<n>``) so exports follow it. Items still short of n votes wait, unless
    ``final`` (or the batch has expired), when they resolve as no consensus. Idempotent.
    """
    from hits.models import Assignment, HitBatch

    totals: dict[str, int] = defaultdict(int)
    in_review = run.issues.filter(resolution=R.IN_REVIEW, review_batch__isnull=False)
    for batch in HitBatch.objects.filter(pk__in=in_review.values("review_batch")):
        kind = batch.kind
        answers = REVIEW_ANSWERS if kind == TaskKind.REVIEW else VERIFY_ANSWERS
        kk, nn = _rule(run, kind, k, n, batch)
        closing = final or batch.status == HitBatch.Status.EXPIRED
        issues = list(in_review.filter(review_batch=batch).select_related("item"))
        pos = {issue.item_id: i for i, issue in enumerate(issues)}
        votes = (
            Vote.objects.filter(
                item_id__in=list(pos), kind=kind, is_gold=False, assignment__hit__batch=batch
            )
            .exclude(assignment__status=Assignment.Status.REJECTED)
            .filter(Q(answer__gte=0) & Q(answer__lt=len(answers)))
            .order_by("id")
            .values_list("item_id", "worker_id", "answer")
        )
        per_item: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for item_id, worker_id, answer in votes:
            if len(per_item[item_id]) < nn:  # reposts may bring more than n; the first n count
                per_item[item_id].append((worker_id, answer))
        rows = [(pos[i], w, a) for i, vs in per_item.items() for w, a in vs]
        labels = np.full(len(issues), -1, dtype=np.int64)
        counts = np.zeros((len(issues), len(answers)), dtype=np.int64)
        if rows:
            arr = np.asarray(rows, dtype=np.int64)
            workers = np.unique(arr[:, 1], return_inverse=True)[1]
            table = VoteTable.from_arrays(arr[:, 0], workers, arr[:, 2], num_items=len(issues))
            labels = consensus(table, num_classes=len(answers), k=kk, n=nn).labels
            np.add.at(counts, (arr[:, 0], arr[:, 2]), 1)
        method = f"consensus_{kk}of{nn}"
        with transaction.atomic():
            for i, issue in enumerate(issues):
                total = int(counts[i].sum())
                if total < nn and not closing:
                    totals["waiting"] += 1
                    continue
                resolution, resolved, outcome = _verdict(kind, int(labels[i]), issue)
                _apply(run, issue, kind, method, resolution, resolved, outcome, counts[i], answers)
                totals[str(resolution)] += 1
    return ResolveResult(
        corrected=totals[R.CONFIRMED],
        errors=totals[R.ERROR],
        kept=totals[R.KEPT],
        no_consensus=totals[R.NO_CONSENSUS],
        waiting=totals["waiting"],
    )


def _apply(run, issue, kind, method, resolution, resolved, outcome, counts, answers) -> None:
    total = int(counts.sum())
    agreeing = int(counts.max()) if total else 0
    issue.resolution = resolution
    issue.resolved_label = resolved
    issue.review_counts = {a: int(c) for a, c in zip(answers, counts.tolist(), strict=True)}
    issue.resolved_at = timezone.now()
    issue.save(update_fields=["resolution", "resolved_label", "review_counts", "resolved_at"])
    item = Item.objects.select_for_update().get(pk=issue.item_id)
    if resolution == R.CONFIRMED and item.label != resolved:
        names = run.dataset.class_names
        LabelChange.objects.create(
            item=item,
            old_label=item.label,
            new_label=resolved,
            reason=(
                f"{kind} {method}: {agreeing} of {total} workers chose the suggested label "
                f"{names[resolved]!r} over {names[issue.current_label]!r}"
                if issue.current_label is not None
                else f"{kind} {method}: {agreeing} of {total} workers chose {names[resolved]!r}"
            ),
            source=run.source,
        )
        item.label = resolved
        item.save(update_fields=["label"])
    AggregatedLabel.objects.update_or_create(
        item=item,
        kind=kind,
        method=method,
        defaults={
            "label": -1 if resolved is None else int(resolved),
            "confidence": agreeing / total if total else 0.0,
            "probs": None,
            "num_votes": total,
        },
    )


def curation_runs_resolve() -> dict[int, int]:
    """The periodic job: resolve every run with issues in review; {run id: issues resolved}."""
    out = {}
    for run in runs_awaiting_resolution():
        try:
            out[run.pk] = curation_run_resolve(run).resolved
        except ValueError as exc:
            logger.error("resolving curation run %s: %s", run.pk, exc)
    return out
