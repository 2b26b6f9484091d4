"""What a retrieval run found: per-class precision (estimate and lower bound), curves, cost;
and its kept images as a labeled dataset, exported in every format the project writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from annotation.aggregation import ANSWER_CORRECT
from annotation.exceptions import DatasetImportError, ExportError
from annotation.exporters import EXPORT_FORMATS, dataset_export
from annotation.importers import ImportRecord, ParsedDataset
from annotation.models import Dataset, TaskKind, Vote
from annotation.services import dataset_import
from curation.engine.verification import kept_precision, majority_accuracy

from ..exceptions import RetrievalRefused
from ..models import RetrievalCandidate, RetrievalRun
from .retrieval_rounds import class_progress, retrieval_spent

C = RetrievalCandidate.State
METADATA_FILE = "retrieval.json"
KEPT_STATES = (C.KEPT, C.CORRECT, C.REVIEW_KEPT)


@dataclass(frozen=True)
class ClassSummary:
    label: int
    name: str
    listed: int
    verified: int
    kept: int
    estimate: float
    lower: float
    stopped: str
    curve: list[dict]


@dataclass(frozen=True)
class RunSummary:
    classes: list[ClassSummary]
    rounds: int
    votes: int
    spent: Decimal
    kept: int
    review: int
    gold_accuracy: float | None
    verified_precision: float


def gold_accuracy(run: RetrievalRun) -> float | None:
    """The workers' accuracy on the gold problems of the run's rounds (None without gold): a
    gold answer is right when "correct" goes with the item's own class and only then."""
    gold = Vote.objects.counted().filter(
        assignment__hit__batch__retrieval_round__run=run, kind=TaskKind.VERIFY, is_gold=True
    )
    rows = list(gold.values_list("answer", "shown_label", "item__gold_label"))
    if not rows:
        return None
    right = sum((a == ANSWER_CORRECT) == (shown == truth) for a, shown, truth in rows)
    return right / len(rows)


def retrieval_run_summary(run: RetrievalRun) -> RunSummary:
    """Per class: list length, images verified and kept, the kept images' precision estimate
    and lower bound, why it stopped, and the precision curve (one point per stretch)."""
    accuracy = gold_accuracy(run)
    # Without gold, a crowd verdict is taken as right.
    verified = 1.0 if accuracy is None else majority_accuracy(accuracy, run.assignments_per_item)
    classes = []
    for k, name in enumerate(run.dataset.class_names):
        cands = run.candidates.on_list(k)
        reviewed = run.candidates.filter(label=k, state=C.REVIEW_KEPT).count()
        progress = class_progress(run, k)
        rejected = [s for s in progress.stretches if not s.accepted]
        correct_left = 0
        if rejected:
            last = rejected[-1]
            correct_left = cands.filter(
                state=C.CORRECT, rank__gte=last.start, rank__lt=last.stop
            ).count()
        prec = kept_precision(
            progress, correct_in_rejected=correct_left + reviewed, verified_precision=verified
        )
        curve = [
            {
                "start": s.start,
                "stop": s.stop,
                "estimate": round(s.estimate, 4),
                "lower": round(s.lower, 4),
                "accepted": s.accepted,
            }
            for s in progress.stretches
        ]
        classes.append(
            ClassSummary(
                label=k,
                name=name,
                listed=cands.count(),
                verified=cands.filter(state__in=[C.CORRECT, C.WRONG]).count(),
                kept=cands.filter(state__in=[C.KEPT, C.CORRECT]).count() + reviewed,
                estimate=prec.estimate,
                lower=prec.lower,
                stopped=progress.stopped,
                curve=curve,
            )
        )
    votes = sum(
        sum(v.values()) for v in run.candidates.exclude(votes={}).values_list("votes", flat=True)
    )
    return RunSummary(
        classes=classes,
        rounds=run.rounds.count(),
        votes=votes,
        spent=retrieval_spent(run),
        kept=sum(c.kept for c in classes),
        review=run.candidates.filter(state__in=[C.REVIEW, C.REVIEWING]).count(),
        gold_accuracy=accuracy,
        verified_precision=verified,
    )


def retrieval_metadata(run: RetrievalRun, summary: RunSummary) -> dict:
    """The export's metadata: the target and, per class, kept images and precision."""
    return {
        "pool": run.dataset.name,
        "bucket": {run.bucket_field: run.bucket} if run.bucket else None,
        "backend": run.backend,
        "target": run.target,
        "confidence": run.confidence,
        "rounds": summary.rounds,
        "votes": summary.votes,
        "cost": str(summary.spent),
        "gold_accuracy": summary.gold_accuracy,
        "verified_precision": round(summary.verified_precision, 4),
        "classes": {
            c.name: {
                "kept": c.kept,
                "verified": c.verified,
                "precision_estimate": round(c.estimate, 4),
                "precision_lower_bound": round(c.lower, 4),
                "stopped": c.stopped,
            }
            for c in summary.classes
        },
    }


def retrieval_run_export(
    run: RetrievalRun, output_dir: str | Path, *, name: str | None = None
) -> tuple[Dataset, Path]:
    """Make the kept images a labeled dataset (``<pool>-found-<run>``) and write it under
    ``output_dir`` in every export format, with ``retrieval.json`` (per-class precision
    estimate and bound); the metadata also goes into the dataset's description."""
    if run.status != RetrievalRun.Status.DONE:
        raise RetrievalRefused(f"run {run.pk} is {run.get_status_display()}, not done")
    kept = list(
        run.candidates.filter(state__in=KEPT_STATES)
        .select_related("item")
        .order_by("label", "rank")
    )
    if not kept:
        raise RetrievalRefused(f"run {run.pk} kept no images; there is nothing to export")
    summary = retrieval_run_summary(run)
    meta = retrieval_metadata(run, summary)
    records = [
        ImportRecord(name=c.item.name, label=c.label, path=Path(c.item.image.path)) for c in kept
    ]
    parsed = ParsedDataset(list(run.dataset.class_names), records, f"retrieval run {run.pk}")
    try:
        out = dataset_import(
            parsed,
            name=name or f"{run.dataset.name}-found-{run.pk}",
            description=json.dumps(meta),
        )
    except DatasetImportError as exc:
        raise RetrievalRefused(str(exc)) from None
    run.output = out
    run.save(update_fields=["output"])
    folder = Path(output_dir)
    k = out.num_classes
    # The ranking scores stand in for a model's probabilities in the label-errors release.
    scores = np.array([c.score for c in kept], dtype=np.float64)
    probs = np.full((len(kept), k), 0.0)
    for i, c in enumerate(kept):
        probs[i] = (1.0 - max(0.0, min(1.0, scores[i]))) / max(k - 1, 1)
        probs[i, c.label] = max(0.0, min(1.0, scores[i]))
    probs /= probs.sum(axis=1, keepdims=True)
    targets = {
        "climage": folder / f"{out.name}.pkl",
        "label-errors": folder / "label-errors",
        "votes-csv": folder / f"{out.name}-votes.csv",
        "worker-ids": folder / f"{out.name}-workers.csv",
    }
    try:
        for fmt in EXPORT_FORMATS:
            extra: dict[str, Any] = {"pred_probs": probs} if fmt == "label-errors" else {}
            # The crowd's verdicts (votes, workers) were cast on the pool's items.
            source = run.dataset if fmt in ("votes-csv", "worker-ids") else out
            target = targets.get(fmt, folder / f"{out.name}-{fmt}")
            dataset_export(source, fmt, target, **extra)
    except ExportError as exc:
        raise RetrievalRefused(f"export failed: {exc}") from None
    (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2))
    return out, folder
