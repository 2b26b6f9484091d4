"""Writes for the annotation app: dataset import, workers, and the one writer of votes."""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from .exceptions import DatasetImportError
from .image_files import (
    StoredImage,
    image_arrays_write,
    image_file_check,
    image_pool,
    image_size_check,
)
from .import_guard import check_items, import_errors, limit
from .importers import ImportRecord, ParsedDataset
from .models import Dataset, Item, Vote, Worker, item_image_path
from .staging import StagingFolder, staging_cleanup
from .worker_ids import worker_id_hash

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_CHUNK = 1000


def _read_image_file(rec: ImportRecord, bytes_left: int) -> tuple[StoredImage, int]:
    """The checked image in ``rec.path`` and its size, refused past ``bytes_left`` bytes."""
    path = rec.path
    assert path is not None
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > bytes_left:
                raise DatasetImportError(
                    f"{path}: the image files read add up to more than "
                    f"{limit('IMPORT_MAX_BYTES')} bytes (IMPORT_MAX_BYTES)"
                )
            data = fh.read(size)
    except OSError as exc:
        raise DatasetImportError(f"{path}: cannot read file ({exc.strerror})") from None
    return image_file_check(data, str(path)), size


def dataset_import(
    parsed: ParsedDataset,
    *,
    name: str,
    description: str = "",
    split: str = "",
    progress: Progress | None = None,
) -> Dataset:
    """Create a dataset, its items (images stored at original resolution) and imported votes.

    All or nothing: a refused or failed import leaves no rows, no files and no folders behind.
    Images are written to a staging folder (``staging``) and moved to their random final names
    just before the import's transaction commits; what an import killed half-way leaves is
    removed by the next one. (Called inside a caller's transaction that later rolls back, the
    moved files stay; the command, the admin and the API call it outside any.)
    """
    with import_errors(parsed.source):
        return _dataset_import(
            parsed, name=name, description=description, split=split, progress=progress
        )


def _dataset_import(
    parsed: ParsedDataset, *, name: str, description: str, split: str, progress: Progress | None
) -> Dataset:
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise DatasetImportError(
            f"dataset name {name!r} must be letters, digits, '-' or '_' (it is used in URLs)"
        )
    if Dataset.objects.filter(name=name).exists():
        raise DatasetImportError(f"a dataset named {name!r} already exists")
    check_items(parsed.source, len(parsed.records))
    names_seen: set[str] = set()
    for rec in parsed.records:
        if rec.name in names_seen:
            raise DatasetImportError(f"{parsed.source}: duplicate item name {rec.name!r}")
        names_seen.add(rec.name)
    staging_cleanup()
    total = len(parsed.records)
    bytes_left = limit("IMPORT_MAX_BYTES")
    max_pixels = limit("IMPORT_MAX_IMAGE_PIXELS")
    n_arrays = sum(rec.array is not None for rec in parsed.records)
    with StagingFolder() as staging, image_pool(n_arrays) as writers:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name, description=description, class_names=parsed.class_names
            )
            imported_worker = None
            writes: list[Future] = []
            for start in range(0, total, _CHUNK):
                chunk = parsed.records[start : start + _CHUNK]
                items = []
                arrays: tuple[list, list, list] = ([], [], [])
                for offset, rec in enumerate(chunk):
                    item = Item(
                        dataset=dataset,
                        index=start + offset,
                        name=rec.name,
                        given_label=rec.label,
                        label=rec.label,
                        split=split,
                        metadata=rec.metadata,
                    )
                    source = f"{parsed.source}: {rec.name}"
                    if rec.array is not None:
                        # Encoded and written by the worker processes; the size is known now.
                        item.height, item.width = rec.array.shape[:2]
                        image_size_check(source, item.width, item.height, max_pixels)
                        item.image.name = item_image_path(item, "image.png")
                        for part, value in zip(
                            arrays, (rec.array, str(staging.reserve(item.image.name)), source)
                        ):
                            part.append(value)
                    else:
                        image, size = _read_image_file(rec, bytes_left)
                        bytes_left -= size
                        item.width, item.height = image.width, image.height
                        item.image.name = item_image_path(item, f"image{image.suffix}")
                        staging.add(item.image.name, image.data)
                    items.append(item)
                if arrays[0]:
                    writes.append(writers.submit(image_arrays_write, *arrays, max_pixels))
                created = Item.objects.bulk_create(items)
                votes = [
                    {"item": item, "kind": "complementary", "answer": cl, "candidates": None}
                    for item, rec in zip(created, chunk, strict=True)
                    for cl in rec.cl_labels
                ]
                if votes and imported_worker is None:
                    imported_worker = _anonymous_worker_create(dataset)
                if votes:
                    votes_record(votes, worker=imported_worker, source=Vote.Source.IMPORTED)
                if progress:
                    progress(min(start + _CHUNK, total), total)
            for write in writes:
                write.result()  # the first failed write stops the import
            staging.publish()
        staging.keep()
    logger.info("imported dataset %s: %d items", name, total)
    return dataset


def _anonymous_worker_create(dataset: Dataset) -> Worker:
    """The anonymous worker a release's imported votes are filed under.

    A release does not say who cast each vote, so its votes pool under one Worker of provider
    ``imported``, made for this release only (a fresh random id, never shared with another
    release or a re-import). Aggregation treats it as one pooled, unknown worker; worker
    reports leave it out, since it is no person whose quality could be judged.
    """
    token = f"imported:{dataset.pk}:{secrets.token_hex(16)}"
    return Worker.objects.create(provider=Worker.Provider.IMPORTED, id_hash=worker_id_hash(token))


def dataset_import_from_args(
    *,
    name: str,
    fmt: str,
    file: Path | None = None,
    images: Path | None = None,
    labels: Path | None = None,
    classes: Path | str | list[str] | None = None,
    csv: Path | None = None,
    description: str = "",
    split: str = "",
    progress: Progress | None = None,
) -> Dataset:
    """Parse the named format and import it; the one door the command, admin and API use.

    ``classes`` is a file of class names (a ``Path``), a preset name (a ``str`` such as
    ``clcifar10``) or the list itself. Every failure, a lack of memory included, comes out as
    a DatasetImportError.
    """
    file, images, labels, csv = (
        None if p is None else Path(p) for p in (file, images, labels, csv)
    )
    with import_errors(str(file or images or csv or fmt)):
        parsed = _parse(fmt, file=file, images=images, labels=labels, classes=classes, csv=csv)
        return dataset_import(
            parsed, name=name, description=description, split=split, progress=progress
        )


def _parse(
    fmt: str,
    *,
    file: Path | None,
    images: Path | None,
    labels: Path | None,
    classes: Path | str | list[str] | None,
    csv: Path | None,
) -> ParsedDataset:
    from . import importers

    if fmt == "climage":
        if file is None:
            raise DatasetImportError("format climage needs the pickle file")
        names = None if classes is None else importers.class_names_resolve(classes)
        return importers.parse_climage(file, names)
    if fmt == "npy":
        if images is None or classes is None:
            raise DatasetImportError("format npy needs --images X.npy and --classes classes.txt")
        return importers.parse_npy(images, labels, importers.class_names_resolve(classes))
    if fmt == "folder":
        if csv is not None:
            names = None if classes is None else importers.class_names_resolve(classes)
            return importers.parse_csv(csv, names)
        if file is not None:
            return importers.parse_folder(file)
        raise DatasetImportError("format folder needs a folder or --csv FILE")
    if fmt == "demo":
        return importers.parse_demo()
    raise DatasetImportError(f"unknown format {fmt!r}: use climage, npy, folder or demo")


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
    fixed = {
        "worker_id": wid,
        "assignment_id": assignment_id,
        "source": source,
        "submitted_at": submitted_at,
        "created_at": timezone.now(),
    }
    return _rows_insert(Vote, (_vote_values(row, fixed) for row in rows))


def _vote_values(row: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    values = dict(fixed)
    for key, value in row.items():
        if key == "item":
            key, value = "item_id", value.pk
        if key in fixed or key not in _insert_fields(Vote):
            raise TypeError(f"Vote has no field {key!r} to set from a vote row")
        values[key] = value
    return values


@functools.cache
def _insert_fields(model: type[models.Model]) -> dict[str, models.Field]:
    """The model's columns an insert writes (all but the auto primary key), by attname."""
    return {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}


def _plain_type(field: models.Field) -> type | None:
    if isinstance(field, models.ForeignKey) or field.get_internal_type().endswith(
        ("IntegerField", "AutoField")
    ):
        return int
    if isinstance(field, models.BooleanField):
        return bool
    if type(field) in (models.CharField, models.TextField):
        return str
    return None


def _rows_insert(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows (attname -> value; a column left out gets its field's default) as multi-row
    INSERT statements (one for a task's votes), in the caller's transaction; returns how many.

    The bulk path for votes: the ORM's bulk_create builds every value through its compiler,
    several times the cost of the insert itself at the hundreds of thousands of votes an import
    writes. Columns that need it (JSON, dates) are prepared by their field as the ORM would
    (``get_db_prep_save``); plain ones pass as Python's int / bool / str.
    """
    fields = _insert_fields(model)
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    names = list(fields)
    head = "INSERT INTO {} ({}) VALUES ".format(  # noqa: S608 - names from the model
        quote(model._meta.db_table), ", ".join(quote(fields[n].column) for n in names)
    )
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_statement = max(1, connection.ops.bulk_batch_size(list(fields.values()), [None] * _CHUNK))
    defaults = {n: f.get_default() for n, f in fields.items()}
    # Plain columns take Python's own int / bool / str (anything else, a numpy integer say, is
    # converted as the ORM would); every other column is prepared by its field.
    plain = {n: t for n, f in fields.items() if (t := _plain_type(f)) is not None}
    prepared = {n: f for n, f in fields.items() if n not in plain}
    count = 0
    with connection.cursor() as cursor:
        params: list[Any] = []
        pending = 0
        for row in rows:
            values = {**defaults, **row}
            for n, f in prepared.items():
                values[n] = f.get_db_prep_save(values[n], connection)
            for n, kind in plain.items():
                v = values[n]
                if v is not None and type(v) is not kind:
                    values[n] = kind(v)
            params.extend(values[n] for n in names)
            pending += 1
            if pending == per_statement:
                cursor.execute(head + ", ".join([one] * pending), params)
                count, params, pending = count + pending, [], 0
        if pending:
            cursor.execute(head + ", ".join([one] * pending), params)
            count += pending
    return count


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
