"""Readers for an unlabeled pool: images without labels (a flat folder, an N x H x W x 3 .npy, or
a CSV of paths) with optional per-image metadata (timestamp, bucket, free text), so a pool can be
split by a metadata field (e.g. the upload year) and curated bucket by bucket.

The class names of a pool are the classes to look for in it; no item has a label yet. Each
reader returns a ParsedDataset or raises DatasetImportError naming the file and the problem.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from .exceptions import DatasetImportError
from .import_guard import check_file_size, check_items, import_errors, path_inside
from .importers import (
    ImportRecord,
    ParsedDataset,
    _check_image_array,
    _image_files,
    _load_npy,
    class_names_resolve,
)
from .models import Dataset
from .services import Progress, dataset_import

POOL_SOURCES = ("folder", "npy", "csv")
# Metadata columns a pool CSV may carry; ``year`` is derived from ``timestamp``.
METADATA_FIELDS = ("timestamp", "bucket", "text")
BUCKET_FIELDS = ("bucket", "year")
MAX_BUCKET_LENGTH = 100
MAX_TEXT_LENGTH = 2000


def _metadata(row: dict[str, str], where: str) -> dict[str, str]:
    """The checked metadata of one image: ISO timestamp (and its year), bucket, text."""
    out: dict[str, str] = {}
    stamp = (row.get("timestamp") or "").strip()
    if stamp:
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            raise DatasetImportError(
                f"{where}: timestamp {stamp[:40]!r} is not an ISO date (e.g. 2012-05-31 or "
                "2012-05-31T08:00:00)"
            ) from None
        out["timestamp"] = when.isoformat()
        out["year"] = str(when.year)
    bucket = (row.get("bucket") or "").strip()
    if bucket:
        if len(bucket) > MAX_BUCKET_LENGTH:
            raise DatasetImportError(f"{where}: bucket longer than {MAX_BUCKET_LENGTH} characters")
        out["bucket"] = bucket
    text = (row.get("text") or "").strip()
    if text:
        if len(text) > MAX_TEXT_LENGTH:
            raise DatasetImportError(f"{where}: text longer than {MAX_TEXT_LENGTH} characters")
        out["text"] = text
    return out


def _read_csv(path: Path, key: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV whose header names ``key`` and metadata columns only."""
    source = str(path)
    check_file_size(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            if key not in header:
                raise DatasetImportError(
                    f"{source}: the header must name a {key!r} column, got {header[:6]}"
                )
            unknown = sorted(set(header) - {key, *METADATA_FIELDS})
            if unknown:
                raise DatasetImportError(
                    f"{source}: unknown columns {unknown}; allowed: {key}, "
                    f"{', '.join(METADATA_FIELDS)}"
                )
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise DatasetImportError(
                        f"{source}: line {reader.line_num} has {len(header)} columns expected"
                    )
                rows.append((reader.line_num, row))
                check_items(source, len(rows))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetImportError(f"{source}: cannot read CSV ({exc})") from None
    if not rows:
        raise DatasetImportError(f"{source}: no rows")
    return rows


def _attach_metadata(records: list[ImportRecord], path: Path) -> None:
    """Give each record the metadata of its ``name`` row; names must all be known."""
    by_name = {rec.name: rec for rec in records}
    seen: set[str] = set()
    for lineno, row in _read_csv(path, "name"):
        name = row["name"].strip()
        where = f"{path}: line {lineno}"
        if name not in by_name:
            raise DatasetImportError(f"{where}: no image named {name!r} in the pool")
        if name in seen:
            raise DatasetImportError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        by_name[name].metadata = _metadata(row, where)


def _folder_records(root: Path) -> list[ImportRecord]:
    if not root.is_dir():
        raise DatasetImportError(f"{root}: not a folder")
    records = [ImportRecord(name=name, path=real) for name, real in _image_files(root, root)]
    check_items(str(root), len(records))
    return records


def _csv_records(path: Path) -> list[ImportRecord]:
    base = path.parent
    records, seen = [], set()
    for lineno, row in _read_csv(path, "path"):
        where = f"{path}: line {lineno}"
        rel = row["path"].strip()
        if not rel:
            raise DatasetImportError(f"{where}: empty path")
        if rel in seen:
            raise DatasetImportError(f"{where}: duplicate path {rel!r}")
        seen.add(rel)
        real = path_inside(base, base / rel, where, rel)
        if not real.is_file():
            raise DatasetImportError(f"{where}: image file {rel!r} not found")
        records.append(ImportRecord(name=rel, path=real, metadata=_metadata(row, where)))
    return records


def parse_pool(
    source: str,
    path: Path,
    classes: Path | str | list[str],
    *,
    metadata: Path | None = None,
) -> ParsedDataset:
    """An unlabeled pool from ``path``: a flat image folder, an images .npy, or a CSV with a
    ``path`` column (and optional timestamp / bucket / text columns).

    ``classes`` names the classes to look for. ``metadata`` (folder and npy only) is a CSV with
    a ``name`` column (file name, or ``000000.png``... for npy rows) and metadata columns.
    """
    if source not in POOL_SOURCES:
        raise DatasetImportError(f"pool source must be one of {', '.join(POOL_SOURCES)}")
    path = Path(path)
    names = class_names_resolve(classes)
    if source == "csv":
        if metadata is not None:
            raise DatasetImportError("a CSV pool carries its metadata in its own columns")
        records = _csv_records(path)
    elif source == "npy":
        images = _check_image_array(_load_npy(path), str(path))
        check_items(str(path), images.shape[0])
        records = [
            ImportRecord(name=f"{i:06d}.png", array=images[i]) for i in range(images.shape[0])
        ]
    else:
        records = _folder_records(path)
    if not records:
        raise DatasetImportError(f"{path}: the pool holds no images")
    if metadata is not None:
        _attach_metadata(records, Path(metadata))
    return ParsedDataset(names, records, str(path))


def pool_import(
    *,
    name: str,
    source: str,
    path: Path,
    classes: Path | str | list[str],
    metadata: Path | None = None,
    description: str = "",
    progress: Progress | None = None,
) -> Dataset:
    """Parse and import an unlabeled pool, all or nothing (see ``dataset_import``)."""
    with import_errors(str(path)):
        parsed = parse_pool(source, path, classes, metadata=metadata)
        return dataset_import(parsed, name=name, description=description, progress=progress)


def pool_buckets(dataset: Dataset, field: str = "bucket") -> dict[str, int]:
    """Items per value of a metadata field (``bucket`` or ``year``); "" = items without one."""
    if field not in BUCKET_FIELDS:
        raise DatasetImportError(f"bucket field must be one of {', '.join(BUCKET_FIELDS)}")
    counts: dict[str, int] = {}
    for meta in dataset.items.values_list("metadata", flat=True):
        key = str((meta or {}).get(field, ""))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
