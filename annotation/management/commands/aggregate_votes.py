"""Aggregate crowd votes from a CSV file, or a dataset's votes in the database.

File mode reads crowd-kit's long format (``task,worker,label``; extra columns are ignored, so the
``votes-csv`` export reads as is) and writes ``task,label,confidence`` CSV, or ``.npz`` with
``tasks``, ``labels``, ``probs`` when the output ends in ``.npz``. Tasks keep the order of their
first appearance in the input, with their original ids. Without ``--method``, class votes use
:data:`annotation.aggregation.DEFAULT_METHOD`. Both modes report Fleiss' kappa and
Krippendorff's alpha of the class votes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from annotation import aggregation as agg
from annotation.aggregated_labels import labels_apply_aggregated
from annotation.aggregation.methods import MODEL_METHODS
from annotation.aggregation_services import (
    METHODS_BY_KIND,
    AggregationOptions,
    aggregation_run_start,
    dataset_aggregate,
)
from annotation.exceptions import AggregationError
from annotation.label_errors import check_probabilities
from annotation.models import Dataset

COMPLEMENTARY_METHODS = ("complementary", "elimination")
KINDS = ("review", "verify", "complementary", "select", "label")


@dataclass
class ParsedVotes:
    tasks: list[str]  # original ids, in order of first appearance
    item: np.ndarray  # (V,) int64
    worker: np.ndarray  # (V,) int64
    label: np.ndarray  # (V,) int64
    candidates: np.ndarray | None  # (V, C) int64, -1 padded; None when no row lists any
    num_workers: int


def _int(text: str, where: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise CommandError(f"{where}: {what} {text!r} is not an integer") from None


def _open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - callers use `with`
    except OSError as exc:
        raise CommandError(f"{path}: cannot read ({exc.strerror})") from None


def _codes(names: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct names in order of first appearance, and each name's index among them."""
    try:
        ints = np.array(names, dtype=np.int64)
    except (ValueError, OverflowError):
        ints = None
    if ints is not None and ints.min() >= 0:
        # canonical decimal ids (no sign, no leading zero): code them by sorting integers
        digits = np.ones(ints.size, dtype=np.int64)
        digits[ints > 0] += np.log10(ints[ints > 0].astype(np.float64)).astype(np.int64)
        if np.array_equal(np.fromiter(map(len, names), np.int64, len(names)), digits):
            by_value = np.argsort(ints, kind="stable")
            sorted_ints = ints[by_value]
            starts = np.flatnonzero(np.diff(sorted_ints, prepend=-1))
            first = by_value[starts]  # the first occurrence of each distinct id
            group = np.cumsum(np.diff(sorted_ints, prepend=-1) != 0) - 1
            order = np.argsort(first, kind="stable")
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            codes = np.empty(ints.size, dtype=np.int64)
            codes[by_value] = rank[group]
            return [names[i] for i in first[order].tolist()], codes
    distinct = list(dict.fromkeys(names))
    pos = {name: i for i, name in enumerate(distinct)}
    return distinct, np.fromiter(map(pos.__getitem__, names), dtype=np.int64, count=len(names))


def read_votes_plain(path: Path, *, num_classes: int, kind: str | None) -> ParsedVotes | None:
    """The common file, read with whole-file string operations and numpy instead of a per-row
    csv loop: no quotes, no ``kind`` column, every line with the header's number of fields, every
    label an integer in range. Returns None for any other file; :func:`read_votes` then parses
    it row by row and names the first problem."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    if '"' in text:
        return None
    spaced = " " in text or "\t" in text
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    if not text.endswith("\n"):
        text += "\n"
    header = text[: text.find("\n")].split(",")
    if (
        len(set(header)) != len(header)
        or "kind" in header
        or not {"task", "worker", "label"} <= set(header)
        or (kind == "review" and {"shown_label", "suggested_label"} <= set(header))
    ):
        return None
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    commas = np.diff(np.searchsorted(np.flatnonzero(raw == ord(",")), ends), prepend=0)
    width = len(header)
    # a blank line has no comma, so this also refuses blank lines
    if ends.size < 2 or not (commas == width - 1).all():
        return None
    del raw, ends, commas
    fields = text[text.find("\n") + 1 : -1].replace("\n", ",").split(",")
    del text
    tasks, workers = fields[header.index("task") :: width], fields[header.index("worker") :: width]
    try:
        label = np.array(fields[header.index("label") :: width], dtype=np.int64)
    except (ValueError, OverflowError):
        return None
    del fields
    if spaced:
        tasks = [t.strip() for t in tasks]
        workers = [w.strip() for w in workers]
    if not all(tasks) or not all(workers) or label.min() < 0 or label.max() >= num_classes:
        return None
    task_names, item = _codes(tasks)
    worker_names, worker = _codes(workers)
    return ParsedVotes(
        tasks=task_names,
        item=item,
        worker=worker,
        label=label,
        candidates=None,
        num_workers=len(worker_names),
    )


def read_votes(
    path: Path, *, num_classes: int, kind: str | None, complementary: bool
) -> ParsedVotes:
    """Parse a long-format votes CSV; every problem is a CommandError naming file and line."""
    if not complementary:
        plain = read_votes_plain(path, num_classes=num_classes, kind=kind)
        if plain is not None:
            return plain
    fh = _open_csv(path)
    with fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        if not header:
            raise CommandError(f"{path}: empty file, expected a header task,worker,label")
        missing = [c for c in ("task", "worker", "label") if c not in header]
        if missing:
            raise CommandError(
                f"{path}: missing column {missing[0]!r} (header: {','.join(header)}); "
                "expected task,worker,label"
            )
        has_kind = "kind" in header
        review_map = kind == "review" and {"shown_label", "suggested_label"} <= set(header)
        task_pos: dict[str, int] = {}
        worker_pos: dict[str, int] = {}
        items, workers, labels, cands = [], [], [], []
        kinds_seen: set[str] = set()
        for row in reader:
            line = reader.line_num
            where = f"{path} line {line}"
            if has_kind:
                row_kind = (row.get("kind") or "").strip()
                kinds_seen.add(row_kind)
                if kind is None and len(kinds_seen) > 1:
                    raise CommandError(
                        f"{where}: votes of several kinds ({', '.join(sorted(kinds_seen))}); "
                        "choose one with --kind"
                    )
                if kind is not None and row_kind != kind:
                    continue
            if None in row:
                raise CommandError(f"{where}: more fields than the header has")
            task, worker = (row["task"] or "").strip(), (row["worker"] or "").strip()
            if not task or not worker:
                raise CommandError(f"{where}: empty {'task' if not task else 'worker'}")
            label = _int(row["label"] or "", where, "label")
            if review_map:
                # review answers: given, suggested, both (keeps given), neither (no class)
                if label == agg.REVIEW_NEITHER:
                    continue
                column = "suggested_label" if label == agg.REVIEW_SUGGESTED else "shown_label"
                if not (row[column] or "").strip():
                    continue
                label = _int(row[column], where, column)
            if not 0 <= label < num_classes:
                raise CommandError(
                    f"{where}: label {label} outside 0..{num_classes - 1} "
                    f"(--num-classes {num_classes})"
                )
            row_cands: list[int] = []
            if complementary and (row.get("candidates") or "").strip():
                row_cands = [_int(c, where, "candidate") for c in row["candidates"].split()]
                bad = [c for c in row_cands if not 0 <= c < num_classes]
                if bad:
                    raise CommandError(f"{where}: candidate {bad[0]} outside 0..{num_classes - 1}")
                if label not in row_cands:
                    raise CommandError(
                        f"{where}: label {label} is not among its candidates {row_cands}"
                    )
            items.append(task_pos.setdefault(task, len(task_pos)))
            workers.append(worker_pos.setdefault(worker, len(worker_pos)))
            labels.append(label)
            cands.append(row_cands)
    if not items:
        if has_kind and kind is not None and kind not in kinds_seen:
            raise CommandError(
                f"{path}: no votes of kind {kind!r} (kinds in the file: "
                f"{', '.join(sorted(kinds_seen)) or 'none'})"
            )
        raise CommandError(f"{path}: no votes (the file has a header and no usable rows)")
    width = max(len(c) for c in cands)
    candidates = None
    if width:
        candidates = np.full((len(cands), width), -1, dtype=np.int64)
        for v, row_cands in enumerate(cands):
            candidates[v, : len(row_cands)] = row_cands
    return ParsedVotes(
        tasks=list(task_pos),
        item=np.asarray(items, dtype=np.int64),
        worker=np.asarray(workers, dtype=np.int64),
        label=np.asarray(labels, dtype=np.int64),
        candidates=candidates,
        num_workers=len(worker_pos),
    )


def votes_by_row(
    votes: ParsedVotes, path: Path, num_classes: int, source: Path
) -> tuple[ParsedVotes, np.ndarray]:
    """Load ``--pred-probs`` (N, K) and renumber the votes' items by row: each task must be an
    integer 0..N-1, the row of its item. Returns the votes over all N rows, and the array."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CommandError(f"{path}: cannot read as a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise CommandError(f"{path}: expected one N x K .npy array, not an archive of several")
    if arr.ndim != 2:
        raise CommandError(f"{path}: expected an N x K array, got shape {arr.shape}")
    if arr.shape[1] != num_classes:
        raise CommandError(
            f"{path}: {arr.shape[1]} columns, but --num-classes is {num_classes} (K differs)"
        )
    try:
        probs = check_probabilities(arr, arr.shape[0], num_classes, str(path))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    n = probs.shape[0]
    rows = []
    for task in votes.tasks:
        try:
            row = int(task)
        except ValueError:
            row = -1
        if not 0 <= row < n:
            raise CommandError(
                f"{source}: task {task!r} is not a row of {path} (with --pred-probs the task "
                f"column is the 0-based row, an integer 0..{n - 1})"
            )
        rows.append(row)
    item = np.asarray(rows, dtype=np.int64)[votes.item]
    tasks = [str(i) for i in range(n)]
    return replace(votes, tasks=tasks, item=item), probs


def read_gold(path: Path, tasks: list[str], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``task,label`` rows of known answers; tasks absent from the votes are skipped."""
    pos = {t: i for i, t in enumerate(tasks)}
    gi, gl = [], []
    fh = _open_csv(path)
    with fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"task", "label"} <= set(reader.fieldnames):
            raise CommandError(f"{path}: expected columns task,label")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            label = _int(row["label"] or "", where, "label")
            if not 0 <= label < num_classes:
                raise CommandError(f"{where}: label {label} outside 0..{num_classes - 1}")
            task = (row["task"] or "").strip()
            if task in pos:
                gi.append(pos[task])
                gl.append(label)
    return np.asarray(gi, dtype=np.int64), np.asarray(gl, dtype=np.int64)


class Command(BaseCommand):
    help = (
        "Aggregate votes: --input votes.csv --num-classes K --method M --output OUT "
        "(task,label,confidence CSV or .npz), or --dataset NAME --kind KIND to write the "
        "dataset's AggregatedLabel rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--input", type=Path, help="long-format CSV: task,worker,label")
        parser.add_argument("--output", type=Path, help="OUT.csv or OUT.npz")
        parser.add_argument("--num-classes", type=int, help="K; labels lie in 0..K-1")
        parser.add_argument("--dataset", help="aggregate this dataset's votes in the database")
        parser.add_argument("--kind", choices=KINDS, help="which votes (filters a kind column)")
        parser.add_argument(
            "--method",
            action="append",
            help=f"file mode: one of {', '.join(agg.CATEGORICAL_METHODS)} (default "
            f"{agg.DEFAULT_METHOD}), or {', '.join(COMPLEMENTARY_METHODS)} with --kind "
            "complementary; dataset mode: repeat for several; default: the kind's defaults",
        )
        parser.add_argument("--k", type=int, default=3, help="consensus: votes that must agree")
        parser.add_argument("--n", type=int, default=None, help="consensus: votes per item")
        parser.add_argument("--gold", type=Path, help="task,label CSV of known answers")
        parser.add_argument(
            "--pred-probs",
            type=Path,
            help="file mode: N x K .npy of a model's out-of-sample probabilities; the task "
            "column is then the 0-based row, the method defaults to crowd_model and the output "
            "has one row per array row",
        )
        parser.add_argument(
            "--min-gold-votes",
            type=int,
            default=None,
            help="complementary: votes on gold items needed to estimate the transition "
            f"(default {agg.GOLD_VOTES_PER_CLASS} per class); fewer means the uniform model",
        )
        parser.add_argument("--threshold", type=float, default=0.5, help="select: clean share")
        parser.add_argument("--seed", type=int, default=0, help="tie-breaking seed")
        parser.add_argument(
            "--background", action="store_true", help="dataset mode: enqueue as a Celery task"
        )
        parser.add_argument(
            "--apply",
            metavar="METHOD",
            help="dataset mode, label or review votes: set each item's current label to the "
            "resolved label of METHOD (recorded in its label history)",
        )

    def handle(self, *args, **opts):
        if opts["dataset"]:
            return self.handle_dataset(opts)
        for name in ("input", "output", "num_classes"):
            if opts[name] is None:
                raise CommandError(f"--{name.replace('_', '-')} is required (or use --dataset)")
        if opts["pred_probs"] is not None and not opts["method"]:
            opts["method"] = [MODEL_METHODS[0]]
        if opts["method"] and len(opts["method"]) != 1:
            raise CommandError("give exactly one --method in file mode")
        k = opts["num_classes"]
        if k < 2:
            raise CommandError(f"--num-classes must be at least 2, got {k}")
        complementary = opts["kind"] == "complementary"
        default = COMPLEMENTARY_METHODS[0] if complementary else agg.DEFAULT_METHOD
        method = opts["method"][0] if opts["method"] else default
        allowed = COMPLEMENTARY_METHODS if complementary else agg.CATEGORICAL_METHODS
        if method not in allowed:
            raise CommandError(
                f"unknown method {method!r} for {opts['kind'] or 'class'} votes; "
                f"use one of {', '.join(allowed)}"
            )
        if method == "gold_weighted" and not opts["gold"]:
            raise CommandError("--method gold_weighted needs --gold task,label CSV")
        if (method in MODEL_METHODS) != (opts["pred_probs"] is not None):
            raise CommandError(
                f"--method {method} needs --pred-probs FILE.npy"
                if method in MODEL_METHODS
                else f"--pred-probs is used by {', '.join(MODEL_METHODS)} only, not {method}"
            )
        votes = read_votes(
            opts["input"], num_classes=k, kind=opts["kind"], complementary=complementary
        )
        probs = None
        if opts["pred_probs"] is not None:
            votes, probs = votes_by_row(votes, opts["pred_probs"], k, opts["input"])
        n = len(votes.tasks)
        gold = read_gold(opts["gold"], votes.tasks, k) if opts["gold"] else None
        notes: list[str] = []
        try:
            if complementary:
                result = self.complementary(
                    votes, method, k, gold, opts["seed"], opts["min_gold_votes"], notes
                )
            else:
                table = agg.VoteTable.from_arrays(
                    votes.item, votes.worker, votes.label, num_items=n,
                    num_workers=votes.num_workers,
                )  # fmt: skip
                result = agg.aggregate_by_name(
                    table,
                    method,
                    num_classes=k,
                    k=opts["k"],
                    n=opts["n"],
                    gold_items=None if gold is None else gold[0],
                    gold_labels=None if gold is None else gold[1],
                    seed=opts["seed"],
                    pred_probs=probs,
                )
        except ValueError as exc:
            raise CommandError(f"{opts['input']}: {method}: {exc}") from None
        self.write(opts["output"], votes.tasks, result)
        resolved = int((result.labels >= 0).sum())
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.method}: {n} tasks, {votes.item.size} votes, {resolved} resolved; "
                f"wrote {opts['output']}"
            )
        )
        if not complementary:
            self.stdout.write(f"agreement: {agg.agreement(table, num_classes=k).describe()}")
        for note in notes:
            self.stdout.write(note)

    @staticmethod
    def complementary(
        votes: ParsedVotes,
        method: str,
        k: int,
        gold,
        seed: int,
        min_gold_votes: int | None,
        notes: list[str],
    ) -> agg.Aggregate:
        n = len(votes.tasks)
        if method == "elimination":
            return agg.elimination(votes.item, votes.label, num_items=n, num_classes=k, seed=seed)
        transition = None
        if gold is not None:
            truth = np.full(n, -1, dtype=np.int64)
            truth[gold[0]] = gold[1]
            transition, note = agg.complementary_transition_from_gold(
                votes.item,
                votes.label,
                votes.candidates,
                truth,
                num_classes=k,
                min_votes=min_gold_votes,
            )
            notes.append(note)
        return agg.complementary_posterior(
            votes.item,
            votes.label,
            votes.candidates,
            num_items=n,
            num_classes=k,
            transition=transition,
        )

    @staticmethod
    def write(path: Path, tasks: list[str], result: agg.Aggregate) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npz":
            np.savez(
                path,
                tasks=np.asarray(tasks, dtype=str),
                labels=result.labels.astype(np.int64),
                probs=result.probs.astype(np.float64),
            )
            return
        rows = zip(tasks, result.labels.tolist(), result.confidence.tolist(), strict=True)
        with open(path, "w", newline="") as fh:
            joined = "".join(tasks)
            if any(c in joined for c in ',"\r\n'):  # ids that need csv quoting
                w = csv.writer(fh)
                w.writerow(["task", "label", "confidence"])
                w.writerows([task, label, f"{conf:.6f}"] for task, label, conf in rows)
                return
            fh.write("task,label,confidence\r\n")
            fh.write("".join([f"{task},{label},{conf:.6f}\r\n" for task, label, conf in rows]))

    def handle_dataset(self, opts) -> None:
        if opts["pred_probs"] is not None:
            raise CommandError(
                "--pred-probs is for file mode; with --dataset, crowd_model takes the "
                "probabilities of the dataset's latest curation run"
            )
        try:
            dataset = Dataset.objects.get(name=opts["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset named {opts['dataset']!r}") from None
        if not opts["kind"]:
            raise CommandError(f"--kind is required with --dataset: one of {', '.join(KINDS)}")
        options = AggregationOptions(
            consensus_k=opts["k"],
            consensus_n=opts["n"],
            select_threshold=opts["threshold"],
            min_gold_votes=opts["min_gold_votes"],
            seed=opts["seed"],
        )
        try:
            if opts["background"] and opts["apply"]:
                raise CommandError("--apply runs in the foreground only; drop --background")
            if opts["background"]:
                run = aggregation_run_start(
                    dataset, kind=opts["kind"], methods=opts["method"], options=options
                )
                self.stdout.write(self.style.SUCCESS(f"queued aggregation run {run.pk}"))
                return
            outcome = dataset_aggregate(
                dataset, kind=opts["kind"], methods=opts["method"], options=options
            )
        except AggregationError as exc:
            known = ", ".join(METHODS_BY_KIND[opts["kind"]])
            raise CommandError(f"{exc} (methods for {opts['kind']}: {known})") from None
        for method, written in outcome.labels_written.items():
            self.stdout.write(
                f"{method}: {written} labels, {outcome.resolved[method]} resolved "
                f"({outcome.num_votes} votes)"
            )
        for note in outcome.notes:
            self.stdout.write(note)
        from annotation.dashboards import dataset_agreement

        agreement = dataset_agreement(dataset, opts["kind"])
        if agreement is not None:
            self.stdout.write(f"agreement: {agreement.describe()}")
        if opts["apply"]:
            try:
                changed = labels_apply_aggregated(dataset, kind=opts["kind"], method=opts["apply"])
            except AggregationError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{changed} item labels set from {opts['apply']}")
