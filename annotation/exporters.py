"""Writers for the published formats: CLImage pickle, label-errors arrays, votes CSV, worker ids."""

from __future__ import annotations

import csv
import json
import os
import pickle
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .exceptions import ExportError
from .models import Dataset, Item, Vote, Worker
from .selectors import dataset_labels

Progress = Callable[[int, int], None]
EXPORT_FORMATS = ("climage", "label-errors", "votes-csv", "worker-ids")
UINT16_MISSING = np.iinfo(np.uint16).max
REVIEW_KEYS = {0: "given", 1: "guessed", 2: "both", 3: "neither"}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def _load_rgb(item: Item) -> np.ndarray:
    with item.image.open("rb") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def export_climage(dataset: Dataset, output: Path, *, progress: Progress | None = None) -> Path:
    """``pickle.load`` gives {names, images (N,H,W,3) uint8, ord_labels, cl_labels}."""
    items = list(Item.objects.filter(dataset=dataset).order_by("index"))
    if not items:
        raise ExportError(f"dataset {dataset.name} has no items")
    sizes = {(it.height, it.width) for it in items}
    if len(sizes) != 1:
        raise ExportError(
            f"dataset {dataset.name}: the CLImage format needs one image size, "
            f"found {sorted(sizes)[:4]}"
        )
    h, w = sizes.pop()
    images = np.empty((len(items), h, w, 3), dtype=np.uint8)
    for i, item in enumerate(items):
        images[i] = _load_rgb(item)
        if progress and (i + 1) % 1000 == 0:
            progress(i + 1, len(items))
    labels = dataset_labels(dataset)
    pos = {item_id: i for i, item_id in enumerate(labels.item_ids.tolist())}
    cl_labels: list[list[int]] = [[] for _ in items]
    votes = (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind="complementary")
        .order_by("submitted_at", "id")
        .values_list("item_id", "answer")
    )
    for item_id, answer in votes.iterator(chunk_size=5000):
        cl_labels[pos[item_id]].append(int(answer))
    payload = {
        "names": list(dataset.class_names),
        "images": images,
        "ord_labels": [int(x) for x in labels.export],
        "cl_labels": cl_labels,
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=4)

    _atomic_write(output, write)
    if progress:
        progress(len(items), len(items))
    return output


def export_label_errors(dataset: Dataset, output: Path, *, float32: bool = False) -> Path:
    """A folder in the label-errors release layout.

    ``original_labels.npy`` and ``aggregated_labels.npy`` are uint16 (N,) with 65535 where an
    item has no label; ``pred_probs.npy`` is float16 (N, K) (float32 on request): the stored
    aggregation probabilities, else one-hot of the exported label, else uniform.
    """
    labels = dataset_labels(dataset)
    n, k = len(labels.item_ids), dataset.num_classes
    if n == 0:
        raise ExportError(f"dataset {dataset.name} has no items")
    probs = labels.probs.copy()
    missing = np.isnan(probs).any(axis=1)
    exported = labels.export
    onehot = missing & (exported >= 0)
    probs[missing] = 1.0 / k
    probs[onehot] = 0.0
    probs[np.flatnonzero(onehot), exported[onehot]] = 1.0

    def u16(a: np.ndarray) -> np.ndarray:
        return np.where(a >= 0, a, UINT16_MISSING).astype(np.uint16)

    names = dataset.class_names
    idx_of = {item_id: i for i, item_id in enumerate(labels.item_ids.tolist())}
    per_item: dict[int, Counter] = {}
    guessed: dict[int, Counter] = {}
    for item_id, answer, sugg in (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind="review")
        .values_list("item_id", "answer", "suggested_label")
        .iterator(chunk_size=5000)
    ):
        per_item.setdefault(item_id, Counter())[REVIEW_KEYS.get(answer, "neither")] += 1
        guessed.setdefault(item_id, Counter())[sugg] += 1
    records = []
    for item_id in sorted(per_item, key=idx_of.__getitem__):
        i = idx_of[item_id]
        g = int(labels.given[i])
        s = guessed[item_id].most_common(1)[0][0]
        counts = {
            key: per_item[item_id].get(key, 0) for key in ("given", "guessed", "both", "neither")
        }
        records.append(
            {
                "id": i,
                # The release links its own image host; ours are served to staff only.
                "url": "",
                "given_original_label": g,
                "given_original_label_name": names[g] if g >= 0 else None,
                "our_guessed_label": s,
                "our_guessed_label_name": names[s] if s is not None and 0 <= s < k else None,
                "mturk": counts,
            }
        )

    output.mkdir(parents=True, exist_ok=True)
    for fname, arr in (
        ("original_labels.npy", u16(labels.given)),
        ("aggregated_labels.npy", u16(exported)),
        ("pred_probs.npy", probs.astype(np.float32 if float32 else np.float16)),
    ):
        _atomic_write(output / fname, lambda tmp, arr=arr: _save_npy(tmp, arr))
    _atomic_write(output / "mturk.json", lambda tmp: tmp.write_text(json.dumps(records, indent=2)))
    return output


VOTE_COLUMNS = [
    "task", "worker", "label", "kind", "candidates", "shown_label", "suggested_label",
    "assignment", "source", "is_gold", "duration_ms", "created_at", "submitted_at",
]  # fmt: skip


def export_votes_csv(dataset: Dataset, output: Path) -> Path:
    """One row per vote in crowd-kit's long format (task, worker, label) plus context columns."""
    qs = (
        Vote.objects.filter(item__dataset=dataset)
        .order_by("id")
        .values_list(
            "item__index",
            "worker__id_hash",
            "answer",
            "kind",
            "candidates",
            "shown_label",
            "suggested_label",
            "assignment__provider_assignment_id",
            "source",
            "is_gold",
            "duration_ms",
            "created_at",
            "submitted_at",
        )  # fmt: skip
    )

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(VOTE_COLUMNS)
            for row in qs.iterator(chunk_size=5000):
                row = list(row)
                row[4] = "" if row[4] is None else " ".join(str(c) for c in row[4])
                row[11] = row[11].isoformat() if row[11] else ""
                row[12] = row[12].isoformat() if row[12] else ""
                w.writerow(["" if v is None else v for v in row])

    _atomic_write(output, write)
    return output


def export_worker_ids(dataset: Dataset, output: Path, *, hash: str = "hmac") -> Path:
    """``No,WorkerId`` rows like CLImage's worker_ids files, in order of first vote."""
    if hash not in ("hmac", "sha1"):
        raise ExportError(f"--hash must be hmac or sha1, not {hash!r}")
    worker_ids = list(
        dict.fromkeys(
            Vote.objects.filter(item__dataset=dataset, source=Vote.Source.CROWD)
            .order_by("id")
            .values_list("worker_id", flat=True)
        )
    )
    workers = Worker.objects.in_bulk(worker_ids)
    values = []
    for wid in worker_ids:
        w = workers[wid]
        if hash == "sha1":
            if not w.id_sha1:
                raise ExportError(
                    "SHA-1 worker ids were not collected for this dataset: they can only be "
                    "computed while the raw id is at hand; set WORKER_ID_KEEP_SHA1=true before "
                    "collecting votes"
                )
            values.append(w.id_sha1)
        else:
            values.append(w.id_hash)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["No", "WorkerId"])
            for i, v in enumerate(values, start=1):
                w.writerow([i, v])

    _atomic_write(output, write)
    return output


def dataset_export(
    dataset: Dataset, fmt: str, output: Path, *, progress: Progress | None = None, **options
) -> Path:
    """Write ``dataset`` in format ``fmt`` to ``output``; the one door for command, admin, API."""
    output = Path(output)
    if fmt == "climage":
        return export_climage(dataset, output, progress=progress)
    if fmt == "label-errors":
        return export_label_errors(dataset, output, **options)
    if fmt == "votes-csv":
        return export_votes_csv(dataset, output)
    if fmt == "worker-ids":
        return export_worker_ids(dataset, output, **options)
    raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
