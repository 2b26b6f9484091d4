"""Writers for the published formats: CLImage pickle, label-errors release (label_errors.py),
votes CSV, worker ids."""

from __future__ import annotations

import csv
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from django.core.files.storage import default_storage
from django.db.models import F, QuerySet

from .exceptions import ExportError
from .image_files import image_files_read_rgb, image_pool
from .models import Dataset, Item, Vote, Worker
from .selectors import dataset_labels

Progress = Callable[[int, int], None]
EXPORT_FORMATS = ("climage", "label-errors", "votes-csv", "worker-ids")
CLIMAGE_LABELS = ("auto", "given", "aggregated")
UINT16_MISSING = np.iinfo(np.uint16).max
REVIEW_KEYS = {0: "given", 1: "guessed", 2: "both", 3: "neither"}
# Items read from the database, and images decoded by one worker job, at a time.
_EXPORT_CHUNK = 2000


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


def _media_dir() -> str:
    """The folder of local image files, which worker processes open by themselves."""
    try:
        return default_storage.path("")
    except NotImplementedError:
        raise ExportError(
            "the CLImage export reads images from local storage (MEDIA_ROOT); this site's "
            "storage has no local files"
        ) from None


def _image_path(media: str, name: str) -> str:
    """``name``'s file under ``media``; a stored name never leaves it (checked here as cheaply
    as a string test, since an export asks for one path per item)."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise ExportError(f"stored image name {name!r} is not inside the media folder")
    return os.path.join(media, name)


def _climage_labels(dataset: Dataset, mode: str) -> list[int]:
    labels = dataset_labels(dataset)
    if mode == "auto":
        chosen = labels.export
    elif mode == "given":
        chosen = labels.given
    elif mode == "aggregated":
        chosen = np.where(labels.aggregated >= 0, labels.aggregated, labels.complementary)
    else:
        raise ExportError(f"--labels must be one of {', '.join(CLIMAGE_LABELS)}, not {mode!r}")
    return [int(x) for x in chosen]


def export_climage(
    dataset: Dataset, output: Path, *, labels: str = "auto", progress: Progress | None = None
) -> Path:
    """The CLImage release layout: ``pickle.load`` gives {names (one file name per image),
    images (one H x W x 3 uint8 array per image), ord_labels, cl_labels}.

    ``labels``: ``auto`` (aggregated class label, else the current label after review
    corrections, else the given one, else the complementary posterior), ``given``, or
    ``aggregated`` (-1 where an item has none); -1 marks an item without a label.
    """
    rows = Item.objects.filter(dataset=dataset).order_by("index").values_list("pk", "name", "image")
    total = rows.count()
    if not total:
        raise ExportError(f"dataset {dataset.name} has no items")
    ord_labels = _climage_labels(dataset, labels)
    pks: list[int] = []
    names: list[str] = []
    reads: list[Future] = []
    # Streamed from the database in chunks; each chunk's files are decoded by a worker while
    # the next chunk is read.
    media = _media_dir()
    with image_pool(total) as pool:
        chunk: list[str] = []
        for pk, name, image in rows.iterator(chunk_size=_EXPORT_CHUNK):
            pks.append(pk)
            names.append(name)
            chunk.append(_image_path(media, image))
            if len(chunk) == _EXPORT_CHUNK:
                reads.append(pool.submit(image_files_read_rgb, chunk))
                chunk = []
        if chunk:
            reads.append(pool.submit(image_files_read_rgb, chunk))
        images: list[np.ndarray] = []
        for read in reads:
            images.extend(read.result())
            if progress:
                progress(len(images), total)
    pos = {pk: i for i, pk in enumerate(pks)}
    cl_labels: list[list[int]] = [[] for _ in pks]
    # Imported votes (no submission time) first, in the order they were in the release.
    votes = (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind="complementary")
        .order_by(F("submitted_at").asc(nulls_first=True), "id")
        .values_list("item_id", "answer")
    )
    for item_id, answer in votes.iterator(chunk_size=5000):
        cl_labels[pos[item_id]].append(int(answer))
    payload = {
        "names": names,
        "images": images,
        "ord_labels": ord_labels,
        "cl_labels": cl_labels,
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=4)

    _atomic_write(output, write)
    if progress:
        progress(total, total)
    return output


VOTE_COLUMNS = [
    "task", "worker", "label", "kind", "candidates", "shown_label", "suggested_label",
    "assignment", "source", "is_gold", "duration_ms", "created_at", "submitted_at",
]  # fmt: skip


VOTE_FIELDS = (
    "item__index", "worker__id_hash", "answer", "kind", "candidates", "shown_label",
    "suggested_label", "assignment__provider_assignment_id", "source", "is_gold", "duration_ms",
    "created_at", "submitted_at",
)  # fmt: skip


def vote_rows(votes: QuerySet[Vote]) -> Iterator[list]:
    """The header, then one row per vote as ``VOTE_COLUMNS`` says, read in chunks: the votes
    CSV of a dataset export and of a batch's results download."""
    yield VOTE_COLUMNS
    for row in votes.order_by("id").values_list(*VOTE_FIELDS).iterator(chunk_size=5000):
        row = list(row)
        row[4] = "" if row[4] is None else " ".join(str(c) for c in row[4])
        row[11] = row[11].isoformat() if row[11] else ""
        row[12] = row[12].isoformat() if row[12] else ""
        yield ["" if v is None else v for v in row]


def export_votes_csv(dataset: Dataset, output: Path) -> Path:
    """One row per vote in crowd-kit's long format: ``task`` (item index), ``worker`` (keyed
    hash), ``label`` (the answer) first, so crowd-kit and cleanlab read it as is; the context
    columns follow."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows(vote_rows(Vote.objects.filter(item__dataset=dataset)))

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
        return export_climage(dataset, output, progress=progress, **options)
    if fmt == "label-errors":
        from .label_errors import label_errors_export

        return label_errors_export(
            dataset,
            output,
            prefix=options.get("prefix") or dataset.name,
            pred_probs=options.get("pred_probs"),
            progress=options.get("say"),
        )
    if fmt == "votes-csv":
        return export_votes_csv(dataset, output)
    if fmt == "worker-ids":
        return export_worker_ids(dataset, output, **options)
    raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
