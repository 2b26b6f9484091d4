"""Curation runs: create one, start it on the curation queue, and execute it (on the curation
worker) into LabelIssues. The engine, and with it torch, is imported only inside the functions
that execute a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from annotation.jobs import enqueue_on_commit
from annotation.models import Dataset, Item

from ..exceptions import RunInputError
from ..models import CurationRun, LabelIssue
from .inputs import RunInputs, features_and_probs, run_inputs

logger = logging.getLogger(__name__)
R = LabelIssue.Resolution
DETECTORS = ("knn", "confident_learning", "low_confidence")
DEFAULT_DETECTORS = {
    CurationRun.FeatureSource.BUILTIN: ["knn"],
    CurationRun.FeatureSource.NPY: ["knn"],
    CurationRun.FeatureSource.TORCHSCRIPT: ["knn"],
    CurationRun.FeatureSource.PRED_PROBS: ["confident_learning"],
}


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
    enqueue_on_commit("curation.tasks.curation_run_execute_task", run.pk)


def _progress(run: CurationRun, value: float, **fields: Any) -> None:
    run.progress = value
    for name, v in fields.items():
        setattr(run, name, v)
    CurationRun.objects.filter(pk=run.pk).update(progress=value, **fields)


def _detect(run: CurationRun, inp: RunInputs, features, probs, detectors, device):
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
        from curation.engine import device_name, pick_device

        params = run.params or {}
        detectors = list(run.detectors) or DEFAULT_DETECTORS[run.feature_source]
        try:
            device = pick_device(params.get("device", "auto"))
        except ValueError as exc:
            raise RunInputError(str(exc)) from None
        name = device_name(device)
        _progress(run, 0.05, device=name[:64])
        t = time.perf_counter()
        inp = run_inputs(run)
        timings["load_s"] = round(time.perf_counter() - t, 3)
        _progress(run, 0.1, num_items=len(inp.items))
        features, probs, loss = features_and_probs(
            run, inp, detectors, device, timings, progress=lambda v: _progress(run, v)
        )
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


def _write_issues(run, inp: RunInputs, positions, suggested, score, names) -> int:
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
