"""Writes for the annotation app: dataset import, workers, and the one writer of votes."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from .exceptions import DatasetImportError
from .importers import ImportRecord, ParsedDataset
from .models import Dataset, Item, Vote, Worker
from .worker_ids import worker_id_hash

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_CHUNK = 500


def _pixel_limit() -> int:
    return int(settings.IMPORT_MAX_IMAGE_PIXELS)


def _encode_array(rec: ImportRecord, source: str) -> tuple[bytes, int, int, str]:
    arr = rec.array
    assert arr is not None
    h, w = arr.shape[:2]
    if h * w > _pixel_limit():
        raise DatasetImportError(
            f"{source}: image {rec.name} is {w}x{h} = {w * h} pixels, over the limit of "
            f"{_pixel_limit()}"
        )
    mode_arr = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mode_arr)).save(buf, format="PNG")
    return buf.getvalue(), w, h, ".png"


def _read_image_file(rec: ImportRecord) -> tuple[bytes, int, int, str]:
    path = rec.path
    assert path is not None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetImportError(f"{path}: cannot read file ({exc.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > _pixel_limit():
                raise DatasetImportError(
                    f"{path}: image is {w}x{h} = {w * h} pixels, over the limit of {_pixel_limit()}"
                )
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except DatasetImportError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DatasetImportError(f"{path}: not a readable image ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetImportError(f"{path}: corrupt image ({exc})") from None
    suffix = path.suffix.lower() or ".img"
    return data, w, h, suffix


def dataset_import(
    parsed: ParsedDataset,
    *,
    name: str,
    description: str = "",
    split: str = "",
    progress: Progress | None = None,
) -> Dataset:
    """Create a dataset, its items (images stored at original resolution) and imported votes.

    All or nothing: a refused or failed import leaves no rows and no files behind.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise DatasetImportError(
            f"dataset name {name!r} must be letters, digits, '-' or '_' (it is used in URLs)"
        )
    if Dataset.objects.filter(name=name).exists():
        raise DatasetImportError(f"a dataset named {name!r} already exists")
    names_seen: set[str] = set()
    for rec in parsed.records:
        if rec.name in names_seen:
            raise DatasetImportError(f"{parsed.source}: duplicate item name {rec.name!r}")
        names_seen.add(rec.name)
    saved: list[str] = []
    total = len(parsed.records)
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name, description=description, class_names=parsed.class_names
            )
            imported_worker = None
            for start in range(0, total, _CHUNK):
                chunk = parsed.records[start : start + _CHUNK]
                items = []
                for offset, rec in enumerate(chunk):
                    index = start + offset
                    if rec.array is not None:
                        data, w, h, suffix = _encode_array(rec, parsed.source)
                    else:
                        data, w, h, suffix = _read_image_file(rec)
                    path = default_storage.save(
                        f"datasets/{dataset.pk}/{index:06d}{suffix}", ContentFile(data)
                    )
                    saved.append(path)
                    item = Item(
                        dataset=dataset,
                        index=index,
                        name=rec.name,
                        width=w,
                        height=h,
                        given_label=rec.label,
                        label=rec.label,
                        split=split,
                    )
                    item.image.name = path
                    items.append(item)
                created = Item.objects.bulk_create(items)
                votes = [
                    {"item": item, "kind": "complementary", "answer": cl, "candidates": None}
                    for item, rec in zip(created, chunk, strict=True)
                    for cl in rec.cl_labels
                ]
                if votes and imported_worker is None:
                    imported_worker = worker_get_or_create(
                        Worker.Provider.IMPORTED, f"imported:{dataset.name}"
                    )
                if votes:
                    votes_record(votes, worker=imported_worker, source=Vote.Source.IMPORTED)
                if progress:
                    progress(min(start + _CHUNK, total), total)
    except BaseException:
        for path in saved:
            default_storage.delete(path)
        raise
    logger.info("imported dataset %s: %d items", name, total)
    return dataset


def dataset_import_from_args(
    *,
    name: str,
    fmt: str,
    file: Path | None = None,
    images: Path | None = None,
    labels: Path | None = None,
    classes: Path | None = None,
    csv: Path | None = None,
    description: str = "",
    split: str = "",
    progress: Progress | None = None,
) -> Dataset:
    """Parse the named format and import it; the one door the command, admin and API use."""
    from . import importers

    file, images, labels, classes, csv = (
        None if p is None else Path(p) for p in (file, images, labels, classes, csv)
    )
    if fmt == "climage":
        if file is None:
            raise DatasetImportError("format climage needs the pickle file")
        parsed = importers.parse_climage(file)
    elif fmt == "npy":
        if images is None or classes is None:
            raise DatasetImportError("format npy needs --images X.npy and --classes classes.txt")
        parsed = importers.parse_npy(images, labels, classes)
    elif fmt == "folder":
        if csv is not None:
            parsed = importers.parse_csv(csv, classes)
        elif file is not None:
            parsed = importers.parse_folder(file)
        else:
            raise DatasetImportError("format folder needs a folder or --csv FILE")
    elif fmt == "demo":
        parsed = importers.parse_demo()
    else:
        raise DatasetImportError(f"unknown format {fmt!r}: use climage, npy, folder or demo")
    return dataset_import(
        parsed, name=name, description=description, split=split, progress=progress
    )


def votes_record(
    rows: Iterable[dict[str, Any]],
    *,
    worker: Worker | None = None,
    worker_id: int | None = None,
    source: str = Vote.Source.CROWD,
    assignment_id: int | None = None,
    submitted_at: datetime | None = None,
) -> int:
    """Write votes: the one place a Vote row is created (task submissions, sync, importers).

    ``rows`` are the vote fields per answer (``item`` or ``item_id``, ``kind``, ``answer`` and,
    by kind, ``candidates`` / ``shown_label`` / ``suggested_label`` / ``is_gold`` /
    ``duration_ms``). The caller's transaction makes them land together; the unique constraint on
    (assignment, item, kind) refuses a second copy. Returns how many were written.
    """
    wid = worker.pk if worker is not None else worker_id
    if wid is None:
        raise ValueError("votes_record needs the worker who voted")
    created = Vote.objects.bulk_create(
        (
            Vote(
                worker_id=wid,
                assignment_id=assignment_id,
                source=source,
                submitted_at=submitted_at,
                **row,
            )
            for row in rows
        ),
        batch_size=_CHUNK,
    )
    return len(created)


def worker_get_or_create(provider: str, raw_worker_id: str) -> Worker:
    """The Worker for a provider's raw id; the raw id is hashed here and goes no further."""
    from django.conf import settings as dj_settings

    from .worker_ids import worker_id_sha1

    worker, created = Worker.objects.get_or_create(
        provider=provider, id_hash=worker_id_hash(raw_worker_id)
    )
    if dj_settings.WORKER_ID_KEEP_SHA1 and not worker.id_sha1:
        worker.id_sha1 = worker_id_sha1(raw_worker_id)
        worker.save(update_fields=["id_sha1"])
    return worker
