"""Aggregation of a dataset's votes: database → arrays → :mod:`annotation.aggregation` → labels.

One entry point per use: :func:`dataset_aggregate` does the work (command, task and tests call
it), :func:`aggregation_run_start` records a run and enqueues it, :func:`aggregation_run_execute`
is what the Celery task runs. Only the columns a kind needs are read, through ``values_list``
iterators, and labels are written with chunked upserts, so a re-run updates the rows of
(item, kind, method) in place and never duplicates them.

How each kind becomes labels (stored in :class:`~annotation.models.AggregatedLabel`):

* **review** — each vote names a class: "given" → its ``shown_label``, "suggested" → its
  ``suggested_label``, "both" → the given label (it stays correct), "neither" → no class, so the
  vote is left out of the class table (it still counts in ``num_votes``). Methods: ``majority``,
  ``auto`` (the default: Dawid–Skene or one-coin by held-out likelihood), ``dawid_skene``,
  ``one_coin``, ``mace``, ``gold_weighted`` (items with ``gold_label``),
  ``consensus`` (k of n; stored under :func:`~annotation.aggregation.consensus_method_name`,
  e.g. ``consensus_3of5``, or ``consensus_3ofany`` without n), ``strict`` (unanimous) and
  ``crowd_model`` (the votes with the latest finished curation run's out-of-sample
  probabilities; refused when there is none). Answers keep their meaning whatever order the
  page showed; a note gives the share of votes for the label shown first
  (:mod:`annotation.review_order`).
* **label** — each vote's answer is the class the worker picked; the same methods as review
  (default ``auto`` and ``majority``).
* **verify** — ``verify_majority`` and ``verify_strict``: label = the shown label when the item's
  status is clean, -1 when noisy or ambiguous; confidence = share of "correct" votes. An item
  verified under several shown labels is judged on its most frequent one.
* **complementary** — ``complementary``: the posterior of :func:`complementary_posterior`, with
  the transition chosen by :func:`~annotation.aggregation.complementary_transition_from_gold`:
  estimated from votes on gold items when there are at least ``min_gold_votes`` (default 10 per
  class), else the uniform model; the run's message says which.
* **select** — ``select_share``: label = the group's label (``shown_label``) when at least
  ``threshold`` of the workers who saw the image selected it, else -1; confidence = that share.

Items without votes of the kind get no row. ``probs`` holds the K class probabilities for review,
label and complementary labels and is null for verify and select (their shares are not class
probabilities).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from . import aggregation as agg
from .aggregation.methods import MODEL_METHODS
from .exceptions import AggregationError
from .jobs import enqueue_on_commit
from .label_errors import dataset_probabilities_latest
from .models import AggregatedLabel, AggregationRun, Dataset, Item, TaskKind, Vote
from .review_order import review_position_note

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
_READ_CHUNK = 5000
_WRITE_CHUNK = 1000

METHODS_BY_KIND: dict[str, tuple[str, ...]] = {
    TaskKind.REVIEW: agg.CATEGORICAL_METHODS,
    TaskKind.VERIFY: ("verify_majority", "verify_strict"),
    TaskKind.COMPLEMENTARY: ("complementary",),
    TaskKind.SELECT: ("select_share",),
    TaskKind.LABEL: agg.CATEGORICAL_METHODS,
}
DEFAULT_METHODS: dict[str, tuple[str, ...]] = {
    TaskKind.REVIEW: ("majority", agg.DEFAULT_METHOD, "consensus"),
    TaskKind.VERIFY: ("verify_majority", "verify_strict"),
    TaskKind.COMPLEMENTARY: ("complementary",),
    TaskKind.SELECT: ("select_share",),
    TaskKind.LABEL: (agg.DEFAULT_METHOD, "majority"),
}


@dataclass(frozen=True)
class AggregationOptions:
    """Options of the rules; every field is JSON-safe so a run can store them."""

    consensus_k: int = 3
    consensus_n: int | None = None
    select_threshold: float = 0.5
    min_gold_votes: int | None = None  # default 10 * K
    seed: int = 0


@dataclass
class AggregationOutcome:
    """What one aggregation wrote, per method."""

    kind: str
    num_items: int
    num_votes: int
    labels_written: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ItemIndex:
    """The dataset's items in export order: ids (N,) int64 sorted by ``index``."""

    ids: np.ndarray
    gold: np.ndarray  # (N,) int64, -1 = no gold label
    label: np.ndarray  # (N,) int64 current label, -1 = none

    def positions(self, item_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(self.ids, kind="stable")
        return order[np.searchsorted(self.ids, item_ids, sorter=order)]


def item_index(dataset: Dataset) -> ItemIndex:
    ids, gold, label = array("q"), array("q"), array("q")
    rows = (
        Item.objects.filter(dataset=dataset)
        .order_by("index")
        .values_list("id", "gold_label", "label")
        .iterator(chunk_size=_READ_CHUNK)
    )
    for item_id, g, lb in rows:
        ids.append(item_id)
        gold.append(-1 if g is None else g)
        label.append(-1 if lb is None else lb)
    return ItemIndex(np.asarray(ids), np.asarray(gold), np.asarray(label))


def _vote_columns(dataset: Dataset, kind: str, *columns: str) -> Iterable[tuple]:
    return (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind=kind)
        .order_by()
        .values_list("item_id", "worker_id", "answer", *columns)
        .iterator(chunk_size=_READ_CHUNK)
    )


def _compact(values: array) -> tuple[np.ndarray, int]:
    """Map arbitrary ids to 0..M-1; returns (codes (V,), M)."""
    uniq, codes = np.unique(np.asarray(values, dtype=np.int64), return_inverse=True)
    return codes.astype(np.int64), int(uniq.size)


# --------------------------------------------------------------------------- writing


def _rows(
    items: ItemIndex,
    kind: str,
    method: str,
    positions: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    num_votes: np.ndarray,
    probs: np.ndarray | None,
) -> Iterable[AggregatedLabel]:
    for i in positions.tolist():
        yield AggregatedLabel(
            item_id=int(items.ids[i]),
            kind=kind,
            method=method,
            label=int(labels[i]),
            confidence=float(confidence[i]),
            probs=None if probs is None else [round(float(p), 6) for p in probs[i]],
            num_votes=int(num_votes[i]),
        )


def _upsert(rows: Iterable[AggregatedLabel], progress: Callable[[int], None]) -> int:
    written, batch = 0, []

    def flush() -> None:
        nonlocal written, batch
        with transaction.atomic():
            AggregatedLabel.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["item", "kind", "method"],
                update_fields=["label", "confidence", "probs", "num_votes", "created_at"],
            )
        written += len(batch)
        batch = []
        progress(written)

    for row in rows:
        batch.append(row)
        if len(batch) >= _WRITE_CHUNK:
            flush()
    if batch:
        flush()
    return written


# --------------------------------------------------------------------------- per kind


@dataclass
class _Result:
    method: str
    labels: np.ndarray  # (N,) int64, -1 unresolved
    confidence: np.ndarray  # (N,) float64
    probs: np.ndarray | None  # (N, K) or None


def review_vote_table(
    items: ItemIndex, dataset: Dataset
) -> tuple[agg.VoteTable, np.ndarray, np.ndarray]:
    """Review votes as class votes; returns (table, voted positions, votes per item (N,))."""
    it, wk, lb, all_items = array("q"), array("q"), array("q"), array("q")
    k = dataset.num_classes
    for item_id, worker_id, answer, shown, suggested in _vote_columns(
        dataset, TaskKind.REVIEW, "shown_label", "suggested_label"
    ):
        all_items.append(item_id)
        if answer in (agg.REVIEW_GIVEN, agg.REVIEW_BOTH):
            label = shown
        elif answer == agg.REVIEW_SUGGESTED:
            label = suggested
        else:
            continue
        if label is None or not 0 <= label < k:
            continue
        it.append(item_id)
        wk.append(worker_id)
        lb.append(label)
    return _class_table(items, it, wk, lb, all_items)


def _class_table(
    items: ItemIndex, it: array, wk: array, lb: array, all_items: array
) -> tuple[agg.VoteTable, np.ndarray, np.ndarray]:
    """(table, voted positions, votes per item (N,)) from class votes (item id, worker id,
    class) and every voted item id (including votes that name no class)."""
    n = items.ids.size
    counts = np.bincount(items.positions(np.asarray(all_items, dtype=np.int64)), minlength=n)
    workers, m = _compact(wk)
    table = agg.VoteTable.from_arrays(
        items.positions(np.asarray(it, dtype=np.int64)),
        workers,
        np.asarray(lb, dtype=np.int64),
        num_items=n,
        num_workers=m,
    )
    return table, np.flatnonzero(counts > 0), counts


def label_vote_table(
    items: ItemIndex, dataset: Dataset
) -> tuple[agg.VoteTable, np.ndarray, np.ndarray]:
    """Label (classify) votes: the answer is the class; votes outside 0..K-1 are left out."""
    it, wk, lb, all_items = array("q"), array("q"), array("q"), array("q")
    k = dataset.num_classes
    for item_id, worker_id, answer in _vote_columns(dataset, TaskKind.LABEL):
        all_items.append(item_id)
        if 0 <= answer < k:
            it.append(item_id)
            wk.append(worker_id)
            lb.append(answer)
    return _class_table(items, it, wk, lb, all_items)


def _aggregate_review(
    items: ItemIndex, dataset: Dataset, methods: list[str], opts: AggregationOptions, notes: list
) -> tuple[list[_Result], np.ndarray, np.ndarray, int]:
    table, voted, counts = review_vote_table(items, dataset)
    if table.num_votes == 0:
        raise AggregationError(
            f"dataset {dataset.name}: its review votes all answer 'neither' or lack a label; "
            "there is no class to aggregate"
        )
    # Answers are stored in canonical codes whatever order was shown; report the order's pull.
    if note := review_position_note(dataset):
        notes.append(note)
    results = _categorical(items, dataset, methods, opts, table, notes)
    return results, voted, counts, int(counts.sum())


def _aggregate_label(
    items: ItemIndex, dataset: Dataset, methods: list[str], opts: AggregationOptions, notes: list
) -> tuple[list[_Result], np.ndarray, np.ndarray, int]:
    table, voted, counts = label_vote_table(items, dataset)
    if table.num_votes == 0:
        raise AggregationError(f"dataset {dataset.name}: no label vote names one of its classes")
    results = _categorical(items, dataset, methods, opts, table, notes)
    return results, voted, counts, int(counts.sum())


def _categorical(
    items: ItemIndex,
    dataset: Dataset,
    methods: list[str],
    opts: AggregationOptions,
    table: agg.VoteTable,
    notes: list,
) -> list[_Result]:
    """Run the class-vote methods (majority, Dawid–Skene, ...) on one table."""
    gold_items = np.flatnonzero(items.gold >= 0)
    probs = None
    if any(method in MODEL_METHODS for method in methods):
        try:  # the model methods take the latest finished curation run's probabilities
            probs = dataset_probabilities_latest(dataset, items.ids.size, notes.append)
        except ValueError as exc:
            name = ", ".join(MODEL_METHODS)
            raise AggregationError(f"dataset {dataset.name}: {name}: {exc}") from None
    results = []
    for method in methods:
        try:
            out = agg.aggregate_by_name(
                table,
                method,
                num_classes=dataset.num_classes,
                k=opts.consensus_k,
                n=opts.consensus_n,
                gold_items=gold_items,
                gold_labels=items.gold[gold_items],
                seed=opts.seed,
                pred_probs=probs,
            )
        except ValueError as exc:
            raise AggregationError(f"dataset {dataset.name}, method {method}: {exc}") from None
        name = out.method if method == "consensus" else method
        results.append(_Result(name, out.labels, out.confidence, out.probs))
    return results


def _aggregate_verify(
    items: ItemIndex, dataset: Dataset, methods: list[str], opts: AggregationOptions, notes: list
) -> tuple[list[_Result], np.ndarray, np.ndarray, int]:
    it, ans, shown = array("q"), array("q"), array("q")
    for item_id, _worker, answer, shown_label in _vote_columns(
        dataset, TaskKind.VERIFY, "shown_label"
    ):
        if not 0 <= answer < len(agg.VERIFY_ANSWERS):
            continue
        it.append(item_id)
        ans.append(answer)
        shown.append(-1 if shown_label is None else shown_label)
    n = items.ids.size
    pos = items.positions(np.asarray(it, dtype=np.int64))
    sh = np.asarray(shown, dtype=np.int64)
    a = np.asarray(ans, dtype=np.int64)
    counts = np.bincount(pos, minlength=n)
    # Judge each item on the label it was most often shown with (gold checks may show others).
    dominant = dominant_per_item(pos, sh, n)
    keep = sh == dominant[pos]
    summary = agg.verify_summary(pos[keep], a[keep], num_items=n)
    share = np.zeros(n)
    np.divide(summary.n_correct, summary.n_votes, out=share, where=summary.n_votes > 0)
    results = []
    for method in methods:
        status = summary.majority_status if method == "verify_majority" else summary.strict_status
        labels = np.where(status == agg.STATUS_CLEAN, dominant, -1).astype(np.int64)
        results.append(_Result(method, labels, share, None))
    return results, np.flatnonzero(counts > 0), counts, int(counts.sum())


def dominant_per_item(pos: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """(n,) the most frequent value per position (smallest on ties); -1 where none."""
    out = np.full(n, -1, dtype=np.int64)
    if pos.size == 0:
        return out
    pairs, freq = np.unique(np.stack([pos, values], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -freq, pairs[:, 0]))
    first = np.ones(order.size, dtype=bool)
    first[1:] = pairs[order[1:], 0] != pairs[order[:-1], 0]
    best = pairs[order[first]]
    out[best[:, 0]] = best[:, 1]
    return out


def _aggregate_complementary(
    items: ItemIndex, dataset: Dataset, methods: list[str], opts: AggregationOptions, notes: list
) -> tuple[list[_Result], np.ndarray, np.ndarray, int]:
    k = dataset.num_classes
    it, cl, cand_rows = array("q"), array("q"), []
    width = 0
    for item_id, _worker, answer, candidates in _vote_columns(
        dataset, TaskKind.COMPLEMENTARY, "candidates"
    ):
        if not 0 <= answer < k:
            continue
        row = [int(c) for c in candidates] if candidates else []
        if row and answer not in row:
            row = []  # a pick outside its recorded candidates: treat the shown set as unknown
        it.append(item_id)
        cl.append(answer)
        cand_rows.append(row)
        width = max(width, len(row))
    n = items.ids.size
    pos = items.positions(np.asarray(it, dtype=np.int64))
    picks = np.asarray(cl, dtype=np.int64)
    counts = np.bincount(pos, minlength=n)
    if pos.size == 0:
        raise AggregationError(f"dataset {dataset.name}: no complementary vote names a class")
    cands = np.full((pos.size, max(width, 1)), -1, dtype=np.int64)
    for v, row in enumerate(cand_rows):
        cands[v, : len(row)] = row
    if width == 0:
        cands = None
    try:
        transition, note = agg.complementary_transition_from_gold(
            pos, picks, cands, items.gold, num_classes=k, min_votes=opts.min_gold_votes
        )
        notes.append(note)
        out = agg.complementary_posterior(
            pos, picks, cands, num_items=n, num_classes=k, transition=transition
        )
    except ValueError as exc:
        raise AggregationError(f"dataset {dataset.name}, complementary: {exc}") from None
    results = [_Result(m, out.labels, out.confidence, out.probs) for m in methods]
    return results, np.flatnonzero(counts > 0), counts, int(counts.sum())


def _aggregate_select(
    items: ItemIndex, dataset: Dataset, methods: list[str], opts: AggregationOptions, notes: list
) -> tuple[list[_Result], np.ndarray, np.ndarray, int]:
    it, sel, shown = array("q"), array("b"), array("q")
    for item_id, _worker, answer, shown_label in _vote_columns(
        dataset, TaskKind.SELECT, "shown_label"
    ):
        it.append(item_id)
        sel.append(1 if answer == 1 else 0)
        shown.append(-1 if shown_label is None else shown_label)
    n = items.ids.size
    pos = items.positions(np.asarray(it, dtype=np.int64))
    counts = np.bincount(pos, minlength=n)
    summary = agg.select_share(
        pos, np.asarray(sel, dtype=bool), num_images=n, threshold=opts.select_threshold
    )
    group = dominant_per_item(pos, np.asarray(shown, dtype=np.int64), n)
    group = np.where(group >= 0, group, items.label)
    labels = np.where(summary.clean & (group >= 0), group, -1).astype(np.int64)
    share = np.nan_to_num(summary.share, nan=0.0)
    results = [_Result(m, labels, share, None) for m in methods]
    return results, np.flatnonzero(counts > 0), counts, int(counts.sum())


_BY_KIND = {
    TaskKind.REVIEW: _aggregate_review,
    TaskKind.VERIFY: _aggregate_verify,
    TaskKind.COMPLEMENTARY: _aggregate_complementary,
    TaskKind.SELECT: _aggregate_select,
    TaskKind.LABEL: _aggregate_label,
}


# --------------------------------------------------------------------------- entry points


def aggregation_methods_check(kind: str, methods: Iterable[str] | None) -> list[str]:
    """The methods to run for ``kind`` (its defaults when None); refuses unknown ones."""
    if kind not in METHODS_BY_KIND:
        raise AggregationError(
            f"unknown kind {kind!r}; use one of {', '.join(map(str, METHODS_BY_KIND))}"
        )
    chosen = list(dict.fromkeys(methods)) if methods else list(DEFAULT_METHODS[kind])
    bad = [m for m in chosen if m not in METHODS_BY_KIND[kind]]
    if bad:
        raise AggregationError(
            f"method {bad[0]!r} does not apply to {kind} votes; use "
            f"{', '.join(METHODS_BY_KIND[kind])}"
        )
    return chosen


def _aggregation_check(dataset: Dataset, kind: str, methods: Iterable[str] | None) -> list[str]:
    """The methods to run, once the kind, the methods and the votes are known to be there."""
    chosen = aggregation_methods_check(kind, methods)
    if not Vote.objects.counted().filter(item__dataset=dataset, kind=kind).exists():
        raise AggregationError(f"dataset {dataset.name} has no {kind} votes to aggregate")
    return chosen


def dataset_aggregate(
    dataset: Dataset,
    *,
    kind: str,
    methods: Iterable[str] | None = None,
    options: AggregationOptions | None = None,
    progress: Progress | None = None,
) -> AggregationOutcome:
    """Aggregate ``dataset``'s votes of ``kind`` and upsert one label row per (item, method).

    Raises:
        AggregationError: an unknown kind or method, no votes of the kind, or a method that
            cannot run on these votes (e.g. ``gold_weighted`` without gold items).
    """
    chosen = _aggregation_check(dataset, kind, methods)
    opts = options or AggregationOptions()
    report = progress or (lambda fraction, note: None)
    report(0.0, "reading votes")
    items = item_index(dataset)
    notes: list[str] = []
    results, voted, counts, num_votes = _BY_KIND[kind](items, dataset, chosen, opts, notes)
    report(0.4, "writing labels")
    outcome = AggregationOutcome(kind=str(kind), num_items=int(voted.size), num_votes=num_votes)
    outcome.notes.extend(notes)
    total = max(len(results) * voted.size, 1)
    done_before = 0
    for res in results:
        written = _upsert(
            _rows(items, kind, res.method, voted, res.labels, res.confidence, counts, res.probs),
            lambda w, base=done_before: report(0.4 + 0.6 * (base + w) / total, "writing labels"),
        )
        done_before += written
        outcome.labels_written[res.method] = written
        outcome.resolved[res.method] = int((res.labels[voted] >= 0).sum())
    report(1.0, "done")
    return outcome


def aggregation_run_start(
    dataset: Dataset,
    *,
    kind: str,
    methods: Iterable[str] | None = None,
    options: AggregationOptions | None = None,
) -> AggregationRun:
    """Record a queued run and enqueue it once the transaction commits."""
    chosen = _aggregation_check(dataset, kind, methods)
    run = AggregationRun.objects.create(
        dataset=dataset,
        kind=kind,
        methods=chosen,
        options=asdict(options or AggregationOptions()),
    )
    enqueue_on_commit("annotation.tasks.aggregate_votes_task", run.pk)
    return run


def aggregation_run_execute(run_id: int) -> AggregationRun:
    """Run a recorded aggregation, keeping its status and progress current.

    Safe to repeat after a crash: labels are upserts, so a second pass rewrites the same rows.
    """
    run = AggregationRun.objects.select_related("dataset").get(pk=run_id)
    if run.status == AggregationRun.Status.DONE:
        return run
    AggregationRun.objects.filter(pk=run.pk).update(
        status=AggregationRun.Status.RUNNING, started_at=timezone.now(), progress=0.0, message=""
    )
    last = [-1.0]

    def progress(fraction: float, note: str) -> None:
        if fraction - last[0] >= 0.02 or fraction >= 1.0:
            last[0] = fraction
            AggregationRun.objects.filter(pk=run.pk).update(progress=round(fraction, 4))

    try:
        outcome = dataset_aggregate(
            run.dataset,
            kind=run.kind,
            methods=run.methods,
            options=AggregationOptions(**run.options),
            progress=progress,
        )
    except Exception as exc:
        AggregationRun.objects.filter(pk=run.pk).update(
            status=AggregationRun.Status.FAILED, message=str(exc), finished_at=timezone.now()
        )
        if not isinstance(exc, AggregationError):
            logger.exception("aggregation run %s failed", run.pk)
            raise
        run.refresh_from_db()
        return run
    resolved = ", ".join(
        f"{m}: {r}/{outcome.num_items} resolved" for m, r in outcome.resolved.items()
    )
    AggregationRun.objects.filter(pk=run.pk).update(
        status=AggregationRun.Status.DONE,
        progress=1.0,
        num_items=outcome.num_items,
        num_votes=outcome.num_votes,
        num_labels=sum(outcome.labels_written.values()),
        message="; ".join([resolved, *outcome.notes]),
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


def dataset_vote_kinds(dataset: Dataset) -> list[str]:
    """Kinds with at least one vote in ``dataset``, in TaskKind order."""
    present = set(
        Vote.objects.filter(item__dataset=dataset).order_by().values_list("kind", flat=True)
        .distinct()
    )  # fmt: skip
    return [k.value for k in TaskKind if k.value in present]
