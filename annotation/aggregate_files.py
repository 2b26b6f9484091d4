"""``aggregate_votes`` in file mode: its arguments, and the work, without Django.

``manage.py aggregate_votes --input ...`` runs :data:`COMMAND` directly when the command line
uses file mode only, so the command starts without setting up the site (a tenth of a second instead
of over half a second); the management command calls :func:`add_arguments` and :func:`run` for
the same options, and keeps dataset mode for itself.
"""

from __future__ import annotations

import argparse
import importlib
import threading
from pathlib import Path

import numpy as np

from annotation import aggregation as agg
from annotation.aggregation.methods import MODEL_METHODS
from annotation.file_commands import FileCommand, Say
from annotation.vote_files import (
    ParsedVotes,
    VoteFileError,
    read_gold,
    read_votes,
    votes_by_row,
    write_labels,
)

COMPLEMENTARY_METHODS = ("complementary", "elimination")
KINDS = ("review", "verify", "complementary", "select", "label")
SPARSE_METHODS = ("auto", "dawid_skene", "crowd_model")  # the methods that use scipy.sparse
HELP = (
    "Aggregate votes: --input votes.csv --num-classes K --method M --output OUT "
    "(task,label,confidence CSV or .npz), or --dataset NAME --kind KIND to write the "
    "dataset's AggregatedLabel rows."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(opts: dict, say: Say) -> None:
    """File mode: read, aggregate, write, report through ``say(text, success)``.

    Raises:
        VoteFileError: naming the file or option and what is wrong.
    """
    for name in ("input", "output", "num_classes"):
        if opts[name] is None:
            raise VoteFileError(f"--{name.replace('_', '-')} is required (or use --dataset)")
    if opts["pred_probs"] is not None and not opts["method"]:
        opts["method"] = [MODEL_METHODS[0]]
    if opts["method"] and len(opts["method"]) != 1:
        raise VoteFileError("give exactly one --method in file mode")
    k = opts["num_classes"]
    if k < 2:
        raise VoteFileError(f"--num-classes must be at least 2, got {k}")
    complementary = opts["kind"] == "complementary"
    default = COMPLEMENTARY_METHODS[0] if complementary else agg.DEFAULT_METHOD
    method = opts["method"][0] if opts["method"] else default
    allowed = COMPLEMENTARY_METHODS if complementary else agg.CATEGORICAL_METHODS
    if method not in allowed:
        raise VoteFileError(
            f"unknown method {method!r} for {opts['kind'] or 'class'} votes; "
            f"use one of {', '.join(allowed)}"
        )
    if method == "gold_weighted" and not opts["gold"]:
        raise VoteFileError("--method gold_weighted needs --gold task,label CSV")
    if (method in MODEL_METHODS) != (opts["pred_probs"] is not None):
        raise VoteFileError(
            f"--method {method} needs --pred-probs FILE.npy"
            if method in MODEL_METHODS
            else f"--pred-probs is used by {', '.join(MODEL_METHODS)} only, not {method}"
        )
    if method in SPARSE_METHODS:
        # The sparse products load while the file is parsed (numpy lets go of the interpreter
        # lock in its loops, so the import's Python code runs meanwhile).
        threading.Thread(target=importlib.import_module, args=("scipy.sparse",)).start()
    votes = read_votes(opts["input"], num_classes=k, kind=opts["kind"], complementary=complementary)
    probs = None
    if opts["pred_probs"] is not None:
        votes, probs = votes_by_row(votes, opts["pred_probs"], k, opts["input"])
    n = votes.num_tasks
    gold = read_gold(opts["gold"], votes.tasks, k) if opts["gold"] else None
    notes: list[str] = []
    try:
        if complementary:
            result = _complementary(
                votes, method, k, gold, opts["seed"], opts["min_gold_votes"], notes
            )
        else:
            table = agg.VoteTable.from_arrays(
                votes.item, votes.worker, votes.label, num_items=n, num_workers=votes.num_workers
            )
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
        raise VoteFileError(f"{opts['input']}: {method}: {exc}") from None
    write_labels(opts["output"], votes, result.labels, result.probs, result.confidence)
    resolved = int((result.labels >= 0).sum())
    say(
        f"{result.method}: {n} tasks, {votes.item.size} votes, {resolved} resolved; "
        f"wrote {opts['output']}",
        True,
    )
    if not complementary:
        say(f"agreement: {agg.agreement(table, num_classes=k).describe()}", False)
    for note in notes:
        say(note, False)


def _complementary(
    votes: ParsedVotes,
    method: str,
    k: int,
    gold,
    seed: int,
    min_gold_votes: int | None,
    notes: list[str],
) -> agg.Aggregate:
    n = votes.num_tasks
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


COMMAND = FileCommand(
    name="aggregate_votes",
    description=HELP,
    add_arguments=add_arguments,
    run=run,
    required="--input",
    other_mode=frozenset(("--dataset",)),
)
