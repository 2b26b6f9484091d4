"""Reads behind the per-dataset aggregation dashboard, and its charts as server-drawn SVG.

Everything here reads (``values_list`` over the columns it needs) and computes with
:mod:`annotation.aggregation`; nothing is written. Workers appear by a prefix of their keyed
hash only.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

from . import aggregation as agg
from .aggregation import REVIEW_BOTH, REVIEW_GIVEN, REVIEW_SUGGESTED
from .aggregation_services import (
    dataset_vote_kinds,
    dominant_per_item,
    item_index,
    label_vote_table,
    review_vote_table,
)
from .kinds import get as kind_get
from .models import AggregatedLabel, Dataset, TaskKind, Vote

HASH_PREFIX = 10
# "Too fast": a median time per problem under this share of the kind's typical time (a verify
# click is quicker than a classify choice; a select task of 20 images takes longer).
FAST_SHARE = 0.15
# A complementary label counts as resolved once its posterior gives it at least this much: a
# couple of "not this class" votes leave most classes possible.
COMPLEMENTARY_RESOLVED = 0.5
WORKER_SORTS = ("votes", "hits", "gold_accuracy", "agreement", "median_seconds", "spammer")
DISTRIBUTION_LABELS = {
    "all_correct": "all correct",
    "two_correct_one_unsure": "two correct, one unsure",
    "two_correct_one_wrong": "two correct, one wrong",
    "else": "else",
}


@dataclass
class WorkerRow:
    worker: str  # hash prefix
    votes: int
    hits: int
    gold_votes: int
    gold_accuracy: float
    agreement: float
    median_seconds: float
    top_label_share: float
    too_fast: bool
    one_answer: bool

    @property
    def spammer(self) -> bool:
        return self.too_fast or self.one_answer


@dataclass
class Dashboard:
    dataset: Dataset
    kinds: list[str]
    kind: str | None
    methods: list[str] = field(default_factory=list)
    method: str | None = None
    num_votes: int = 0
    num_items_voted: int = 0
    distribution: list[tuple[str, float]] = field(default_factory=list)
    status_counts: list[tuple[str, int, int]] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    confusion_rows: list[tuple[str, list[int], int]] = field(default_factory=list)
    confusion_max: int = 0
    hits_per_worker: list[int] = field(default_factory=list)
    seconds_per_hit: list[float] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)
    sort: str = "agreement"
    order: str = "desc"
    hits_chart: Histogram | None = None
    time_chart: Histogram | None = None
    agreement: agg.Agreement | None = None  # chance-corrected agreement of the kind's votes


def dataset_dashboard(
    dataset: Dataset,
    *,
    kind: str | None = None,
    method: str | None = None,
    sort: str = "agreement",
    order: str = "desc",
) -> Dashboard:
    """Vote distribution, confusion of aggregated vs given labels, worker plots and table."""
    kinds = dataset_vote_kinds(dataset)
    if kind not in kinds:
        kind = kinds[0] if kinds else None
    dash = Dashboard(dataset=dataset, kinds=kinds, kind=kind)
    dash.sort = sort if sort in WORKER_SORTS else "agreement"
    dash.order = "asc" if order == "asc" else "desc"
    if kind is None:
        return dash
    items = item_index(dataset)
    n = items.ids.size
    rows = (
        Vote.objects.filter(item__dataset=dataset, kind=kind)
        .order_by()
        .values_list(
            "item_id",
            "worker_id",
            "answer",
            "shown_label",
            "suggested_label",
            "duration_ms",
            "assignment_id",
            "assignment__accepted_at",
            "assignment__submitted_at",
        )  # fmt: skip
        .iterator(chunk_size=5000)
    )
    it, wk, ans, shown, sugg, dur, asg = (array("q") for _ in range(7))
    hit_seconds: dict[int, float] = {}
    for item_id, worker_id, answer, sh, sg, ms, asg_id, acc, sub in rows:
        it.append(item_id)
        wk.append(worker_id)
        ans.append(answer)
        shown.append(-1 if sh is None else sh)
        sugg.append(-1 if sg is None else sg)
        dur.append(-1 if ms is None else ms)
        asg.append(-1 if asg_id is None else asg_id)
        if asg_id is not None and asg_id not in hit_seconds and acc and sub:
            hit_seconds[asg_id] = max((sub - acc).total_seconds(), 0.0)
    pos = items.positions(np.asarray(it, dtype=np.int64))
    worker_ids, workers = np.unique(np.asarray(wk, dtype=np.int64), return_inverse=True)
    m = worker_ids.size
    a = np.asarray(ans, dtype=np.int64)
    sh = np.asarray(shown, dtype=np.int64)
    assignment = np.asarray(asg, dtype=np.int64)
    dash.num_votes = int(pos.size)
    dash.num_items_voted = int(np.unique(pos).size)

    # Per-vote seconds: the page's own timer when recorded, else the HIT's time shared evenly.
    seconds = np.asarray(dur, dtype=np.float64) / 1000.0
    seconds[seconds < 0] = np.nan
    if hit_seconds:
        asg_ids, per_asg = np.unique(assignment, return_counts=True)
        share = {int(x): hit_seconds.get(int(x), math.nan) / c for x, c in zip(asg_ids, per_asg)}
        fill = np.isnan(seconds) & (assignment >= 0)
        seconds[fill] = [share[int(x)] for x in assignment[fill]]

    hits = np.zeros(m, dtype=np.int64)
    has_asg = assignment >= 0
    if has_asg.any():
        pairs = np.unique(np.stack([workers[has_asg], assignment[has_asg]], axis=1), axis=0)
        hits = np.bincount(pairs[:, 0], minlength=m)
    dash.hits_per_worker = [int(h) for h in hits if h > 0]
    dash.seconds_per_hit = sorted(hit_seconds.values())

    labels, k, keep = a, 2, np.ones(a.size, dtype=bool)
    gold_items = np.flatnonzero(items.gold >= 0)
    gold_labels = items.gold[gold_items]
    invert = False
    if kind == TaskKind.VERIFY:
        k = 3
        summary_keep = sh == dominant_per_item(pos, sh, n)[pos]
        summary = agg.verify_summary(pos[summary_keep], a[summary_keep], num_items=n)
        dash.distribution = [
            (DISTRIBUTION_LABELS[key], round(v, 2)) for key, v in summary.distribution.items()
        ]
        for code, name in enumerate(agg.STATUS_NAMES):
            dash.status_counts.append(
                (
                    name,
                    int((summary.majority_status == code).sum()),
                    int((summary.strict_status == code).sum()),
                )
            )
        dominant = dominant_per_item(pos, sh, n)
        gold_items = gold_items[dominant[gold_items] >= 0]
        gold_labels = np.where(items.gold[gold_items] == dominant[gold_items], 0, 2)
        consensus_labels = agg.majority_vote(
            agg.VoteTable.from_arrays(pos, workers, a, num_items=n, num_workers=m),
            num_classes=3,
            tie="unresolved",
        ).labels
    elif kind == TaskKind.REVIEW:
        k = dataset.num_classes
        sg = np.asarray(sugg, dtype=np.int64)
        labels = np.where(
            a == REVIEW_SUGGESTED, sg, np.where(np.isin(a, (REVIEW_GIVEN, REVIEW_BOTH)), sh, -1)
        )
        keep = (labels >= 0) & (labels < k)
    elif kind == TaskKind.COMPLEMENTARY:
        k = dataset.num_classes
        keep = (a >= 0) & (a < k)
        invert = True
    elif kind == TaskKind.LABEL:
        k = dataset.num_classes
        keep = (a >= 0) & (a < k)
    else:  # select: 1 selected, 0 not
        keep = np.isin(a, (0, 1))
        gold_items = gold_items[:0]
        gold_labels = gold_labels[:0]

    table = agg.VoteTable.from_arrays(
        pos[keep], workers[keep], labels[keep], num_items=n, num_workers=m
    )
    if kind != TaskKind.VERIFY:
        consensus_labels = _stored_or_majority(dataset, kind, items, table, k)
    if table.num_votes and kind != TaskKind.COMPLEMENTARY:  # picks among shown candidates: no
        dash.agreement = agg.agreement(table, num_classes=k)
    dash.methods = list(
        AggregatedLabel.objects.filter(item__dataset=dataset, kind=kind)
        .order_by("method")
        .values_list("method", flat=True)
        .distinct()
    )
    dash.method = method if method in dash.methods else (dash.methods[0] if dash.methods else None)
    if dash.method:
        _confusion(dash, dataset, kind)
    if table.num_votes:
        quality = agg.worker_quality(
            table,
            consensus_labels,
            num_classes=k,
            gold_items=gold_items if gold_items.size else None,
            gold_labels=gold_labels if gold_items.size else None,
            durations=seconds[keep],
            fast_floor_s=FAST_SHARE * kind_get(kind).typical_seconds_per_problem,
        )
        gold_acc, agree = quality.gold_accuracy, quality.agreement
        if invert:  # a complementary pick is right when it is NOT the label
            gold_acc, agree = 1.0 - gold_acc, 1.0 - agree
        hashes, anonymous = _worker_hashes(worker_ids)
        dash.workers = [
            WorkerRow(
                worker=hashes[int(worker_ids[j])][:HASH_PREFIX],
                votes=int(quality.n_votes[j]),
                hits=int(hits[j]),
                gold_votes=int(quality.n_gold[j]),
                gold_accuracy=float(gold_acc[j]),
                agreement=float(agree[j]),
                median_seconds=float(quality.median_seconds[j]),
                top_label_share=float(quality.top_label_share[j]),
                too_fast=bool(quality.too_fast[j]),
                one_answer=bool(quality.one_answer[j]),
            )
            for j in range(m)
            # An imported release's pooled votes are nobody's in particular: no worker row.
            if int(worker_ids[j]) not in anonymous
        ]
        dash.workers = worker_rows_sorted(dash.workers, dash.sort, dash.order)
    dash.hits_chart = histogram(
        dash.hits_per_worker, title="HITs per worker", xlabel="HITs", integer=True
    )
    dash.time_chart = histogram(dash.seconds_per_hit, title="Time per HIT", xlabel="seconds")
    return dash


def dataset_agreement(dataset: Dataset, kind: str) -> agg.Agreement | None:
    """Fleiss' kappa and Krippendorff's alpha of a dataset's class votes of ``kind`` (review:
    the class each answer names; label: the class picked). None for other kinds or no votes."""
    builders = {TaskKind.REVIEW: review_vote_table, TaskKind.LABEL: label_vote_table}
    if kind not in builders:
        return None
    table = builders[kind](item_index(dataset), dataset)[0]
    if table.num_votes == 0:
        return None
    return agg.agreement(table, num_classes=dataset.num_classes)


def _worker_hashes(worker_ids: np.ndarray) -> tuple[dict[int, str], set[int]]:
    """Each worker's keyed hash, and which of them are an imported release's anonymous pool."""
    from .models import Worker

    rows = Worker.objects.filter(pk__in=worker_ids.tolist()).values_list(
        "id", "id_hash", "provider"
    )
    hashes, anonymous = {}, set()
    for pk, id_hash, provider in rows:
        hashes[pk] = id_hash
        if provider == Worker.Provider.IMPORTED:
            anonymous.add(pk)
    return hashes, anonymous


def _stored_or_majority(
    dataset: Dataset, kind: str, items, table: agg.VoteTable, k: int
) -> np.ndarray:
    """The consensus a worker is compared with: stored labels of the kind's first method
    (complementary: its posterior), else majority vote with ties unresolved."""
    n = items.ids.size
    preferred = {
        TaskKind.COMPLEMENTARY: "complementary",
        TaskKind.REVIEW: agg.DEFAULT_METHOD,
        TaskKind.LABEL: agg.DEFAULT_METHOD,
    }
    stored = AggregatedLabel.objects.filter(
        item__dataset=dataset, kind=kind, method=preferred.get(kind, "")
    ).values_list("item_id", "label")
    out = np.full(n, -1, dtype=np.int64)
    ids, labels = array("q"), array("q")
    for item_id, label in stored.iterator(chunk_size=5000):
        ids.append(item_id)
        labels.append(label if 0 <= label < k else -1)
    if ids or table.num_votes == 0:
        out[items.positions(np.asarray(ids, dtype=np.int64))] = np.asarray(labels)
        return out
    if kind == TaskKind.COMPLEMENTARY:
        return agg.complementary_posterior(
            table.item, table.label, None, num_items=n, num_classes=k
        ).labels
    return agg.majority_vote(table, num_classes=k, tie="unresolved").labels


def _confusion(dash: Dashboard, dataset: Dataset, kind: str) -> None:
    k = dataset.num_classes
    counts = np.zeros((k, k + 1), dtype=np.int64)  # last column: unresolved
    unsure = COMPLEMENTARY_RESOLVED if kind == TaskKind.COMPLEMENTARY else 0.0
    for given, label, confidence in (
        AggregatedLabel.objects.filter(item__dataset=dataset, kind=kind, method=dash.method)
        .order_by()
        .values_list("item__given_label", "label", "confidence")
        .iterator(chunk_size=5000)
    ):
        if given is None or not 0 <= given < k:
            continue
        resolved = 0 <= label < k and confidence >= unsure
        counts[given, label if resolved else k] += 1
    dash.confusion = counts.tolist()
    names = dataset.class_names
    dash.confusion_rows = [
        (str(names[g]), counts[g, :k].tolist(), int(counts[g, k])) for g in range(k)
    ]
    dash.confusion_max = int(counts[:, :k].max()) if counts.size else 0


def worker_rows_sorted(rows: list[WorkerRow], sort: str, order: str) -> list[WorkerRow]:
    """Sort by ``sort``; unknown figures (NaN) always go last, ties by hash."""
    desc = order != "asc"

    def key(row: WorkerRow):
        value = float(getattr(row, sort))
        missing = math.isnan(value)
        return (missing, 0.0 if missing else (-value if desc else value), row.worker)

    return sorted(rows, key=key)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    span: str  # the bin's range, for the tooltip


@dataclass(frozen=True)
class Histogram:
    """A bar histogram laid out in SVG coordinates; the template draws it (autoescaped)."""

    title: str
    xlabel: str
    n: int
    bars: list[Bar]
    peak: int
    lo: str
    hi: str
    width: int = 420
    height: int = 180
    left: int = 40
    bottom: int = 150
    top: int = 10


def histogram(
    values: list[float], *, title: str, xlabel: str, bins: int = 20, integer: bool = False
) -> Histogram:
    """Bin ``values`` (integer-width bins for counts) and lay the bars out for the template."""
    chart = Histogram(title=title, xlabel=xlabel, n=len(values), bars=[], peak=0, lo="", hi="")
    if not values:
        return chart
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if integer:
        step = max(1, math.ceil((hi - lo + 1) / bins))
        edges = np.arange(lo, hi + step + 1, step, dtype=np.float64)
        edges = edges[: int(np.searchsorted(edges, hi, side="right")) + 1]
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts, edges = np.histogram(x, bins=edges)
    plot_w = chart.width - chart.left - 10
    plot_h = chart.bottom - chart.top
    peak = max(int(counts.max()), 1)
    bar_w = plot_w / len(counts)
    bars = []
    for i, c in enumerate(counts.tolist()):
        a, b = edges[i], edges[i + 1]
        if integer:
            span = f"{int(a)}" if b - a <= 1 else f"{int(a)}–{int(b) - 1}"
        else:
            span = f"{a:.0f}–{b:.0f}"
        h = plot_h * c / peak
        bars.append(
            Bar(
                x=round(chart.left + i * bar_w + 1, 1),
                y=round(chart.bottom - h, 1),
                width=round(max(bar_w - 2, 1), 1),
                height=round(h, 1),
                count=int(c),
                span=span,
            )
        )
    hi_edge = edges[-1] - 1 if integer else edges[-1]
    lo_text, hi_text = f"{edges[0]:.0f}", f"{hi_edge:.0f}"
    if lo_text == hi_text:  # every value in one bin: one label under it, not "1 ... 1"
        lo_text, hi_text = f"all {lo_text}", ""
    return Histogram(
        title=title, xlabel=xlabel, n=int(x.size), bars=bars, peak=peak,
        lo=lo_text, hi=hi_text,
    )  # fmt: skip
