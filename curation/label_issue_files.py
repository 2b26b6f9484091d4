"""``find_label_issues``: its arguments and its work, without Django.

The command works on saved arrays only, so ``manage.py find_label_issues`` runs :data:`COMMAND`
directly when the command line holds the command's own options only, and starts without setting
up the site; the management command calls :func:`add_arguments` and :func:`run` for the same
options (and keeps Django's own, such as ``--verbosity``, and ``--help``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from annotation.file_commands import FileCommand, FileCommandError, Say

HELP = (
    "Find likely label errors from saved arrays and write the flagged item indices, most "
    "likely error first (.npy, int64) or index,score,given_label,suggested_label rows (.csv)."
)


class LabelIssueFileError(FileCommandError):
    """An input or option that cannot be used; the message names the flag and the problem."""


METHODS = ("confident_learning", "knn", "low_confidence", "combined")


def _load(path: Path, flag: str) -> np.ndarray:
    if not path.is_file():
        raise LabelIssueFileError(f"{flag} {path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LabelIssueFileError(f"{flag} {path}: not a readable .npy array ({exc})") from None


def _labels(path: Path, flag: str, *, allow_missing: bool = False) -> np.ndarray:
    arr = _load(path, flag)
    if arr.ndim != 1 or arr.size == 0:
        raise LabelIssueFileError(
            f"{flag} {path}: expected a non-empty 1-D array, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise LabelIssueFileError(f"{flag} {path}: expected integer labels, got dtype {arr.dtype}")
    low = -1 if allow_missing else 0
    if int(arr.min()) < low:
        raise LabelIssueFileError(f"{flag} {path}: label {int(arr.min())} is out of range")
    return arr.astype(np.int64)


def _matrix(
    path: Path, flag: str, n: int, *, columns: str, kinds: str, kind_name: str
) -> np.ndarray:
    """Load a 2-D array with n rows, a dtype of a kind in kinds (kind_name in the message) and
    finite entries; columns names its width in the shape message, e.g. "K"."""
    arr = _load(path, flag)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise LabelIssueFileError(
            f"{flag} {path}: expected shape ({n}, {columns}) to match --labels, got {arr.shape}"
        )
    if arr.dtype.kind not in kinds or not np.isfinite(arr).all():
        raise LabelIssueFileError(f"{flag} {path}: contains NaN or inf, or is not {kind_name}")
    return arr


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", type=Path, required=True, help="(N,) int given labels")
    parser.add_argument("--pred-probs", type=Path, help="(N, K) out-of-sample probabilities")
    parser.add_argument("--features", type=Path, help="(N, D) features for kNN voting")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--output", type=Path, required=True, help="OUT.npy or OUT.csv")
    parser.add_argument("--k", type=int, default=10, help="knn: neighbours per item")
    parser.add_argument("--fraction", type=float, default=0.1, help="low_confidence: share to flag")
    parser.add_argument("--crowd-labels", type=Path, help="combined: (N,) int, -1 = none")
    parser.add_argument("--crowd-confidence", type=Path, help="combined: (N,) float in [0, 1]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:n]")


def run(opts: dict, say: Say) -> None:
    """Check the inputs, flag the issues, write them, report through ``say(text, success)``.

    Raises:
        LabelIssueFileError: naming the flag or file and what is wrong.
    """
    method = opts["method"]
    output: Path = opts["output"]
    if output.suffix not in (".npy", ".csv"):
        raise LabelIssueFileError(f"--output {output}: must end in .npy or .csv")
    labels = _labels(opts["labels"], "--labels")
    n = labels.size
    probs = features = crowd = crowd_conf = None
    if opts["pred_probs"] is not None:
        probs = _matrix(
            opts["pred_probs"], "--pred-probs", n, columns="K", kinds="f", kind_name="float"
        )
        if int(labels.max()) >= probs.shape[1]:
            raise LabelIssueFileError(
                f"--labels {opts['labels']}: label {int(labels.max())} is out of range for "
                f"K={probs.shape[1]} classes in --pred-probs"
            )
    if opts["features"] is not None:
        features = _matrix(
            opts["features"], "--features", n, columns="D", kinds="fiu", kind_name="numeric"
        )

    # Imported here so that loading management commands never imports torch.
    from curation.engine import find_label_issues, missing_inputs

    missing = missing_inputs(method, pred_probs=probs is not None, features=features is not None)
    if missing:
        flags = " and/or ".join("--" + name.replace("_", "-") for name in missing)
        raise LabelIssueFileError(f"--method {method} needs {flags}")
    if (opts["crowd_labels"] is None) != (opts["crowd_confidence"] is None):
        raise LabelIssueFileError("--crowd-labels and --crowd-confidence go together")
    if opts["crowd_labels"] is not None:
        crowd = _labels(opts["crowd_labels"], "--crowd-labels", allow_missing=True)
        crowd_conf = _load(opts["crowd_confidence"], "--crowd-confidence")
        if crowd.size != n or crowd_conf.shape != (n,):
            raise LabelIssueFileError(
                f"--crowd-labels / --crowd-confidence: expected ({n},) to match --labels, "
                f"got {crowd.shape} and {crowd_conf.shape}"
            )

    try:
        result = find_label_issues(
            labels,
            method=method,
            pred_probs=probs,
            features=features,
            low_confidence_fraction=opts["fraction"],
            knn_k=opts["k"],
            seed=opts["seed"],
            crowd_labels=crowd,
            crowd_confidence=crowd_conf,
            device=opts["device"],
        )
    except ValueError as exc:
        raise LabelIssueFileError(f"{method}: {exc}") from None

    output.parent.mkdir(parents=True, exist_ok=True)
    ranked = result.ranked.astype(np.int64)
    if output.suffix == ".npy":
        np.save(output, ranked)
    else:
        with output.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "score", "given_label", "suggested_label"])
            for i in ranked.tolist():
                writer.writerow(
                    [i, f"{result.score[i]:.6g}", int(labels[i]), int(result.suggested[i])]
                )
    say(f"{method}: flagged {ranked.size} of {n} items; wrote {output}", True)


COMMAND = FileCommand(
    name="find_label_issues",
    description=HELP,
    add_arguments=add_arguments,
    run=run,
    required="--labels",
)
