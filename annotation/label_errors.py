"""The label-errors release layout ("Pervasive Label Errors in Test Sets"), out and back in.

A release folder holds, for a prefix ``<prefix>`` (the release's own is e.g. ``mnist_test_set``)::

    original_test_labels/<prefix>_original_labels.npy                      uint16 (N,)
    cross_validated_predicted_probabilities/<prefix>_pyx.npy               float64 (N, K)
    cross_validated_predicted_labels/<prefix>_pyx_argmax_predicted_labels.npy  uint16 (N,)
    mturk/<base>_mturk.json    one object per reviewed example (id, given/guessed labels and
                               names, ``mturk`` = counts of given / guessed / neither / both)

where ``<base>`` is the prefix without a trailing ``_test_set`` (the release names its votes
file ``mnist_mturk.json`` beside ``mnist_test_set_*.npy``). With the release's prefix these are
its own file names, so its one-line loaders (``np.load(...)``, ``json.load(...)``) read what we
write.

Row ``i`` of every array is the dataset's ``i``-th item in index order, and a mturk ``id`` is
that row number (equal to ``Item.index`` for datasets whose indices run 0..N-1, as every import
makes them). The release carries no images, so importing attaches it to an existing dataset of
N items (see label_errors_import).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import transaction

from .aggregation import REVIEW_ANSWERS
from .exceptions import DatasetImportError, ExportError
from .models import Dataset, Item, TaskKind, Vote, Worker
from .vote_files import check_probabilities

logger = logging.getLogger(__name__)

# progress(message): what the export or import is doing now, for a command's stderr.
Progress = Callable[[str], None]
# fn(dataset, progress, train=...) -> (N, K) out-of-sample predicted probabilities, row = item in
# index order, or None when it has none to give; with train=False it only looks up what a
# finished run left, computing nothing. The curation app registers one when it loads.
ProbabilitiesSource = Callable[..., "np.ndarray | None"]
_PROBABILITIES_SOURCES: list[ProbabilitiesSource] = []

LABELS_DIR = "original_test_labels"
PROBS_DIR = "cross_validated_predicted_probabilities"
ARGMAX_DIR = "cross_validated_predicted_labels"
MTURK_DIR = "mturk"
# Our review answer names (annotation.aggregation.REVIEW_ANSWERS) -> the release's mturk keys.
RELEASE_KEYS = {"given": "given", "suggested": "guessed", "both": "both", "neither": "neither"}
MTURK_KEYS = ("given", "guessed", "neither", "both")  # the release's key order
_ANSWER_OF_KEY = {RELEASE_KEYS[name]: code for code, name in enumerate(REVIEW_ANSWERS)}
_KEY_OF_ANSWER = {code: RELEASE_KEYS[name] for code, name in enumerate(REVIEW_ANSWERS)}
_MAX_VOTES_PER_ITEM = 1000


def probabilities_source_register(fn: ProbabilitiesSource) -> None:
    """Set where an export finds predicted probabilities when none are passed (latest wins)."""
    _PROBABILITIES_SOURCES[:] = [fn]


def dataset_probabilities_find(
    dataset: Dataset, progress: Progress, *, train: bool = True
) -> np.ndarray | None:
    """The registered source's (N, K) probabilities for ``dataset`` (unchecked), or None; with
    ``train=False`` only those a finished curation run left (nothing is computed)."""
    for fn in _PROBABILITIES_SOURCES:
        arr = fn(dataset, progress, train=train)
        if arr is not None:
            return np.asarray(arr)
    return None


def dataset_probabilities_latest(dataset: Dataset, n: int, progress: Progress) -> np.ndarray:
    """The latest finished curation run's (n, K) probabilities, checked; computes nothing.

    Raises:
        ValueError: there are none, or they are not n x K probabilities.
    """
    found = dataset_probabilities_find(dataset, progress, train=False)
    if found is None:
        raise ValueError(
            "no finished curation run has out-of-sample probabilities for this dataset; run "
            "curation with predicted probabilities first (find_label_issues), or choose "
            "another method"
        )
    return check_probabilities(found, n, dataset.num_classes, "the latest curation run")


def release_base(prefix: str) -> str:
    """The prefix, checked: it names files and must not leave the folder."""
    if not prefix or not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"prefix {prefix!r} must be letters, digits, '-', '_' or '.'")
    if prefix.startswith("."):
        raise ValueError(f"prefix {prefix!r} must not start with '.'")
    return prefix


def release_paths(root: Path, prefix: str) -> dict[str, Path]:
    """The four files of a release folder for ``prefix``."""
    stem = release_base(prefix)
    base = stem.removesuffix("_test_set") or stem
    return {
        "labels": root / LABELS_DIR / f"{stem}_original_labels.npy",
        "probs": root / PROBS_DIR / f"{stem}_pyx.npy",
        "argmax": root / ARGMAX_DIR / f"{stem}_pyx_argmax_predicted_labels.npy",
        "mturk": root / MTURK_DIR / f"{base}_mturk.json",
    }


def _load_npy(path: Path, what: str) -> np.ndarray:
    """An array file, never unpickled; errors name the file."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} file is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None


# ---------------------------------------------------------------------------------------------
# Export


def _given_labels(dataset: Dataset, items: list[Item]) -> np.ndarray:
    k = dataset.num_classes
    missing = [it.index for it in items if it.given_label is None]
    if missing:
        raise ExportError(
            f"dataset {dataset.name}: {len(missing)} items have no given label (first: index "
            f"{missing[0]}); the release's original_labels need one per item"
        )
    labels = np.asarray([it.given_label for it in items], dtype=np.int64)
    if labels.min() < 0 or labels.max() >= k or k > np.iinfo(np.uint16).max:
        raise ExportError(f"dataset {dataset.name}: given labels must lie in 0..{k - 1}")
    return labels.astype(np.uint16)


def _export_probabilities(
    dataset: Dataset, n: int, pred_probs: np.ndarray | str | Path | None, progress: Progress
) -> np.ndarray:
    k = dataset.num_classes
    if pred_probs is not None:
        source = "--pred-probs array"
        if not isinstance(pred_probs, np.ndarray):
            source = str(pred_probs)
            pred_probs = _load_npy(Path(pred_probs), "predicted probabilities")
        return check_probabilities(pred_probs, n, k, source)
    arr = dataset_probabilities_find(dataset, progress)
    if arr is not None:
        return check_probabilities(arr, n, k, "the curation app's probabilities")
    raise ExportError(
        f"dataset {dataset.name}: no predicted probabilities to export; pass --pred-probs "
        f"FILE.npy with one row per item ({n} x {k}, rows summing to 1)"
    )


def _mturk_records(dataset: Dataset, items: list[Item], given: np.ndarray) -> list[dict]:
    """The dataset's counted review votes in the release's mturk.json shape, by row."""
    names = list(dataset.class_names)
    k = len(names)
    row_of = {it.pk: i for i, it in enumerate(items)}
    votes: dict[int, list[tuple[int, int | None]]] = {}
    rows = (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind=TaskKind.REVIEW, is_gold=False)
        .order_by("id")
        .values_list("item_id", "answer", "suggested_label")
    )
    for item_id, answer, suggested in rows.iterator(chunk_size=5000):
        votes.setdefault(row_of[item_id], []).append((answer, suggested))
    records = []
    for i in sorted(votes):
        suggestions = Counter(s for _, s in votes[i] if s is not None and 0 <= s < k)
        if not suggestions:
            continue
        # The release shows one guessed label per example: the one most workers saw; votes
        # about another suggestion would count for a question nobody asked here, so they are left.
        guessed = suggestions.most_common(1)[0][0]
        counts = dict.fromkeys(MTURK_KEYS, 0)
        for answer, suggested in votes[i]:
            if suggested == guessed and answer in _KEY_OF_ANSWER:
                counts[_KEY_OF_ANSWER[answer]] += 1
        g = int(given[i])
        records.append(
            {
                "id": i,
                # The release links its own image host; ours are served to staff only.
                "url": "",
                "given_original_label": g,
                "given_original_label_name": names[g],
                "our_guessed_label": int(guessed),
                "our_guessed_label_name": names[guessed],
                "mturk": counts,
            }
        )
    return records


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def label_errors_export(
    dataset: Dataset,
    output_dir: str | Path,
    *,
    prefix: str,
    pred_probs: np.ndarray | str | Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write ``dataset`` as a label-errors release folder under ``output_dir``; returns it.

    Labels are the items' given labels in index order. Probabilities: ``pred_probs`` (an array
    or a .npy path, N x K), else the registered source (the curation app: its latest finished
    run's probabilities, else a cross-validated run), else an ExportError saying to pass them.
    ``mturk/<base>_mturk.json`` is written only when the dataset has review votes. Everything
    is checked before the first file is written.
    """
    say = progress or (lambda message: None)
    try:
        paths = release_paths(Path(output_dir), prefix)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    items = list(Item.objects.filter(dataset=dataset).order_by("index"))
    if not items:
        raise ExportError(f"dataset {dataset.name} has no items")
    given = _given_labels(dataset, items)
    try:
        probs = _export_probabilities(dataset, len(items), pred_probs, say)
    except ValueError as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(str(exc)) from None
    argmax = probs.argmax(axis=1).astype(np.uint16)
    records = _mturk_records(dataset, items, given)
    say(f"writing {len(items)} labels, {probs.shape[1]} classes, {len(records)} reviewed items")
    _write_atomic(paths["labels"], _npy_bytes(given))
    _write_atomic(paths["probs"], _npy_bytes(probs))
    _write_atomic(paths["argmax"], _npy_bytes(argmax))
    if records:
        _write_atomic(paths["mturk"], json.dumps(records, indent=2).encode())
    logger.info("exported dataset %s as label-errors %s", dataset.name, paths["labels"].name)
    return Path(output_dir)


# ---------------------------------------------------------------------------------------------
# Import


def _slots(records: list[tuple[int, int, dict]]) -> int:
    return max((sum(counts.values()) for _, _, counts in records), default=0)


def _worker(raw_id: str) -> Worker:
    from .services import worker_get_or_create

    return worker_get_or_create(Worker.Provider.IMPORTED, raw_id)


def _fill_labels(items: list[Item], labels: np.ndarray) -> int:
    """Set the release's label where an item has no given label (and its current label too)."""
    changed = []
    for it, g in zip(items, labels.tolist(), strict=True):
        if it.given_label is None:
            it.given_label = g
            if it.label is None:
                it.label = g
            changed.append(it)
    Item.objects.bulk_update(changed, ["given_label", "label"], batch_size=2000)
    return len(changed)


def _record_votes(
    items: list[Item], labels: np.ndarray, records: list[tuple[int, int, dict]], workers: list
) -> int:
    from .services import votes_record

    by_worker: dict[int, list[dict]] = {}
    for row, guessed, counts in records:
        answers = [_ANSWER_OF_KEY[key] for key in MTURK_KEYS for _ in range(counts.get(key, 0))]
        for slot, answer in enumerate(answers):
            by_worker.setdefault(slot, []).append(
                {
                    "item": items[row],
                    "kind": TaskKind.REVIEW,
                    "answer": answer,
                    "shown_label": int(labels[row]),
                    "suggested_label": guessed,
                }
            )
    return sum(
        votes_record(rows, worker=workers[slot], source=Vote.Source.IMPORTED)
        for slot, rows in by_worker.items()
    )


@dataclass
class LabelErrorsImport:
    """What an import of a release folder did."""

    dataset: Dataset
    prefix: str
    num_items: int
    labels_set: int  # items whose missing given label the release filled in
    reviewed_items: int
    votes: int
    probs_path: Path | None  # the checked probabilities file, for a pred_probs curation run


def release_prefix_find(root: Path) -> str:
    """The one prefix whose original labels a release folder holds."""
    folder = root / LABELS_DIR
    found = sorted(folder.glob("*_original_labels.npy")) if folder.is_dir() else []
    if not found:
        raise DatasetImportError(
            f"{folder}: no *_original_labels.npy file; is {root} a label-errors release folder?"
        )
    if len(found) > 1:
        raise DatasetImportError(
            f"{folder}: {len(found)} *_original_labels.npy files; give the prefix of the one "
            "to import"
        )
    return found[0].name.removesuffix("_original_labels.npy")


def _check_label_array(arr: np.ndarray, path: Path, n: int, k: int) -> np.ndarray:
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{path}: must have shape ({n},), one label per item; got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integers, got {arr.dtype}")
    out = arr.astype(np.int64)
    bad = np.flatnonzero((out < 0) | (out >= k))
    if bad.size:
        raise ValueError(
            f"{path}: row {int(bad[0])} holds label {int(out[bad[0]])}, outside 0..{k - 1} "
            f"({k} classes in the dataset)"
        )
    return out


def _int_field(rec: dict, key: str, where: str, low: int, high: int) -> int:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise ValueError(f"{where}: {key} must be an integer in {low}..{high - 1}, got {value!r}")
    return value


def mturk_json_read(path: Path, *, max_bytes: int | None = None) -> list:
    """A release's ``mturk.json``: a JSON list, one object per reviewed example (ValueError
    naming the file and the problem otherwise). Its entries are checked by the reader."""
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise ValueError(f"{path}: larger than {max_bytes} bytes")
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror})") from None
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: must be a JSON list of objects, one per reviewed example")
    return data


def _parse_mturk(path: Path, labels: np.ndarray, k: int) -> list[tuple[int, int, dict]]:
    """(row, guessed label, counts by release key) per record, every field checked."""
    data = mturk_json_read(path)
    n = labels.shape[0]
    out: list[tuple[int, int, dict]] = []
    seen: set[int] = set()
    for pos, rec in enumerate(data):
        where = f"{path}: record {pos}"
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: must be an object")
        row = _int_field(rec, "id", where, 0, n)
        if row in seen:
            raise ValueError(f"{where}: id {row} appears twice")
        seen.add(row)
        given = _int_field(rec, "given_original_label", where, 0, k)
        if given != labels[row]:
            # A different id convention (e.g. ImageNet's 1-based file numbers) or another set.
            raise ValueError(
                f"{where}: given_original_label {given} differs from original_labels[{row}] = "
                f"{int(labels[row])}; the ids must be rows of the arrays"
            )
        guessed = _int_field(rec, "our_guessed_label", where, 0, k)
        counts = rec.get("mturk")
        if not isinstance(counts, dict):
            raise ValueError(f"{where}: mturk must be an object of counts")
        unknown = sorted(set(counts) - set(MTURK_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: mturk keys {unknown} are not among {list(MTURK_KEYS)} (only the "
                "given/guessed/both/neither review of the image sets can be imported)"
            )
        for key, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: mturk[{key!r}] must be a count >= 0, got {value!r}")
        if sum(counts.values()) > _MAX_VOTES_PER_ITEM:
            raise ValueError(f"{where}: more than {_MAX_VOTES_PER_ITEM} votes on one example")
        out.append((row, guessed, counts))
    return out


def _release_arrays(root: Path, prefix: str, n: int, k: int) -> tuple:
    paths = release_paths(root, prefix)
    labels = _check_label_array(
        _load_npy(paths["labels"], "original labels"), paths["labels"], n, k
    )
    probs_path = paths["probs"] if paths["probs"].exists() else None
    if probs_path is not None:
        check_probabilities(_load_npy(probs_path, "probabilities"), n, k, str(probs_path))
    if paths["argmax"].exists():
        _check_label_array(_load_npy(paths["argmax"], "argmax labels"), paths["argmax"], n, k)
    records = _parse_mturk(paths["mturk"], labels, k) if paths["mturk"].exists() else []
    return labels, probs_path, records


def label_errors_import(
    path: str | Path,
    *,
    name: str,
    prefix: str | None = None,
    progress: Progress | None = None,
) -> LabelErrorsImport:
    """Attach a label-errors release folder to the existing dataset ``name`` of N items.

    The release has no images, so the dataset (its N items, row i = i-th item in index order)
    must be imported first. Original labels fill in missing given labels (and current labels)
    and must agree with those already there; the probabilities and argmax files are checked;
    each mturk record becomes imported review votes, one per counted choice, from anonymous
    imported workers of this release (the k-th vote on every example comes from worker k, so
    no worker votes twice on one example). All or nothing: a malformed folder is refused with
    the file and the problem named, and a release already imported onto the dataset is refused.
    """
    say = progress or (lambda message: None)
    root = Path(path)
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise DatasetImportError(
            f"no dataset named {name!r}: a label-errors release has no images, so import the "
            "test set's images first (import_dataset --format npy|folder|climage) and then "
            "attach the release to that dataset"
        )
    if not root.is_dir():
        raise DatasetImportError(f"{root}: not a folder (a label-errors release is a folder)")
    try:
        base = release_base(prefix) if prefix else release_prefix_find(root)
        items = list(Item.objects.filter(dataset=dataset).order_by("index"))
        n, k = len(items), dataset.num_classes
        if n == 0:
            raise ValueError(f"dataset {name} has no items to attach the release to")
        say(f"checking the release {base} against {n} items of {name}")
        labels, probs_path, records = _release_arrays(root, base, n, k)
    except DatasetImportError:
        raise
    except ValueError as exc:
        raise DatasetImportError(str(exc)) from None
    clash = [
        it.index
        for it, g in zip(items, labels.tolist(), strict=True)
        if it.given_label not in (None, g)
    ]
    if clash:
        raise DatasetImportError(
            f"{release_paths(root, base)['labels']}: {len(clash)} labels differ from the "
            f"dataset's given labels (first: item index {clash[0]}); is this the same test set, "
            "in the same order?"
        )
    raw_ids = [f"label-errors:{dataset.name}:{base}:{slot}" for slot in range(_slots(records))]
    with transaction.atomic():
        workers = [_worker(raw) for raw in raw_ids]
        if Vote.objects.filter(item__dataset=dataset, worker__in=workers).exists():
            raise DatasetImportError(
                f"the release {base} was already imported onto dataset {name}; nothing was written"
            )
        filled = _fill_labels(items, labels)
        votes = _record_votes(items, labels, records, workers)
    say(f"attached {base}: {filled} labels filled in, {votes} votes on {len(records)} items")
    logger.info("imported label-errors %s onto %s: %d votes", base, name, votes)
    return LabelErrorsImport(dataset, base, n, filled, len(records), votes, probs_path)
