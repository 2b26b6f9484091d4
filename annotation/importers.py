"""Readers for the dataset formats we accept; each returns a ParsedDataset or raises
DatasetImportError naming the file and the problem. Nothing here touches the database."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .class_presets import CLASS_PRESETS, class_preset
from .exceptions import DatasetImportError
from .import_guard import check_bytes, check_file_size, check_items, path_inside
from .safe_pickle import safe_load

# Complementary labels imported per item (CLImage has 3): each becomes a vote row.
MAX_VOTES_PER_ITEM = 1000


@dataclass
class ImportRecord:
    """One item to create: either an in-memory image array or an image file to keep as is."""

    name: str
    label: int | None = None
    array: np.ndarray | None = None
    path: Path | None = None
    cl_labels: list[int] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


@dataclass
class ParsedDataset:
    class_names: list[str]
    records: list[ImportRecord]
    source: str


def _check_class_names(names: object, source: str) -> list[str]:
    if not isinstance(names, list | tuple) or not names:
        raise DatasetImportError(
            f"{source}: class names must be a non-empty list, got {names!r:.80}"
        )
    out = []
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise DatasetImportError(f"{source}: class name {n!r} is not a non-empty string")
        out.append(n.strip())
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise DatasetImportError(f"{source}: duplicate class names {dupes}")
    return out


def _as_int_label(value: object, k: int, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DatasetImportError(f"{source}: {where} label {value!r} is not an integer")
    v = int(value)
    if not 0 <= v < k:
        raise DatasetImportError(f"{source}: {where} label {v} is out of range 0..{k - 1}")
    return v


def _check_image_array(images: np.ndarray, source: str) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise DatasetImportError(
            f"{source}: images must be a numpy array, got {type(images).__name__}"
        )
    if images.dtype != np.uint8:
        raise DatasetImportError(f"{source}: images must have dtype uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DatasetImportError(
            f"{source}: images must have shape N x H x W x 3 (or N x H x W), got {images.shape}"
        )
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DatasetImportError(f"{source}: images array is empty, shape {images.shape}")
    return images


CLIMAGE_KEYS = ("names", "images", "ord_labels", "cl_labels")
# Item.name holds a release's file name.
MAX_NAME_LENGTH = 255


def _climage_images(raw: object, source: str) -> list[np.ndarray]:
    """One H x W x 3 uint8 array per image, from a list of them or one N x H x W x 3 array."""
    if isinstance(raw, np.ndarray):
        images = _check_image_array(raw, source)
        if images.shape[-1] != 3:
            raise DatasetImportError(
                f"{source}: images must have shape N x H x W x 3, got {raw.shape}"
            )
        return list(images)
    if not isinstance(raw, list | tuple):
        raise DatasetImportError(
            f"{source}: images must be a list of H x W x 3 uint8 arrays or one N x H x W x 3 "
            f"array, got {type(raw).__name__}"
        )
    check_items(source, len(raw))
    out = []
    for i, a in enumerate(raw):
        if not isinstance(a, np.ndarray):
            raise DatasetImportError(
                f"{source}: images[{i}] is a {type(a).__name__}, not a numpy array"
            )
        if a.dtype != np.uint8:
            raise DatasetImportError(f"{source}: images[{i}] has dtype {a.dtype}, not uint8")
        if a.ndim != 3 or a.shape[-1] != 3 or 0 in a.shape:
            raise DatasetImportError(
                f"{source}: images[{i}] must have shape H x W x 3, got {a.shape}"
            )
        out.append(a)
    return out


def _climage_file_names(names: object, n: int, source: str) -> list[str]:
    if not isinstance(names, list | tuple):
        raise DatasetImportError(
            f"{source}: names must be the list of the images' file names, got "
            f"{type(names).__name__}"
        )
    if len(names) != n:
        raise DatasetImportError(
            f"{source}: names has {len(names)} entries but images has {n}; in a CLImage release "
            "names holds one file name per image (the class names come from --classes)"
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise DatasetImportError(f"{source}: names[{i}] {name!r:.80} is not a file name")
        if len(name) > MAX_NAME_LENGTH:
            raise DatasetImportError(
                f"{source}: names[{i}] is {len(name)} characters long, over {MAX_NAME_LENGTH}"
            )
        if name in seen:
            raise DatasetImportError(
                f"{source}: names[{i}] {name!r} repeats names[{seen[name]}]; file names must be "
                "unique"
            )
        seen[name] = i
    return list(names)


def _label_list(value: object, n: int, key: str, source: str) -> list | tuple | np.ndarray:
    if not isinstance(value, list | tuple | np.ndarray):
        what = "integers" if key == "ord_labels" else "lists"
        raise DatasetImportError(f"{source}: {key} must be a list of {what}")
    if len(value) != n:
        raise DatasetImportError(f"{source}: {key} has {len(value)} entries but images has {n}")
    return value


def parse_climage(path: Path, class_names: list[str] | None = None) -> ParsedDataset:
    """A CLImage release pickle: ``names`` (one file name per image), ``images`` (a list of
    H x W x 3 uint8 arrays, or one N x H x W x 3 array), ``ord_labels``, ``cl_labels``.

    The pickle does not carry the class names; ``class_names`` gives them, and without them
    the file is checked and then refused.
    """
    source = str(path)
    check_file_size(path)
    try:
        with open(path, "rb") as fh:
            data = safe_load(fh, source=source)
    except OSError as exc:
        raise DatasetImportError(f"{source}: cannot read file ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise DatasetImportError(f"{source}: expected a dict, got {type(data).__name__}")
    # A file without cl_labels (no complementary labels collected yet) is still read.
    missing = [k for k in CLIMAGE_KEYS[:3] if k not in data]
    if missing:
        raise DatasetImportError(f"{source}: missing keys {missing}")
    images = _climage_images(data["images"], source)
    n = len(images)
    if n == 0:
        raise DatasetImportError(f"{source}: images is empty")
    check_items(source, n)
    file_names = _climage_file_names(data["names"], n, source)
    ord_labels = _label_list(data["ord_labels"], n, "ord_labels", source)
    cl_labels = _label_list(data.get("cl_labels", [[]] * n), n, "cl_labels", source)
    if class_names is None:
        raise DatasetImportError(
            f"{source}: a CLImage pickle does not carry its class names (its names are the "
            f"{n} images' file names); give --classes with a text file of class names, one per "
            f"line, or one of the presets {', '.join(CLASS_PRESETS)}"
        )
    names = _check_class_names(class_names, source)
    k = len(names)
    records = []
    for i in range(n):
        label = _as_int_label(ord_labels[i], k, source, f"ord_labels[{i}]")
        cls = cl_labels[i]
        if not isinstance(cls, list | tuple | np.ndarray):
            raise DatasetImportError(f"{source}: cl_labels[{i}] is not a list")
        if len(cls) > MAX_VOTES_PER_ITEM:
            # Each becomes a vote row (and a dict while its chunk is written).
            raise DatasetImportError(
                f"{source}: cl_labels[{i}] has {len(cls)} labels; an import takes at most "
                f"{MAX_VOTES_PER_ITEM} per item"
            )
        cl = [_as_int_label(c, k, source, f"cl_labels[{i}]") for c in cls]
        records.append(ImportRecord(name=file_names[i], label=label, array=images[i], cl_labels=cl))
    return ParsedDataset(names, records, source)


def class_names_resolve(spec: Path | str | list[str]) -> list[str]:
    """Class names from a preset name (a ``str`` such as ``clcifar10``), a list, or a text file
    with one class name per line."""
    if isinstance(spec, list):
        return _check_class_names(spec, "--classes")
    if isinstance(spec, str):
        preset = class_preset(spec)
        if preset is not None:
            return preset
        if not Path(spec).exists():
            raise DatasetImportError(
                f"--classes {spec!r} is neither a file nor one of the presets "
                f"{', '.join(CLASS_PRESETS)}"
            )
    return read_class_file(Path(spec))


def read_class_file(path: Path) -> list[str]:
    source = str(path)
    check_file_size(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetImportError(f"{source}: cannot read class names ({exc})") from None
    return _check_class_names([ln for ln in lines if ln.strip()], source)


def _load_npy(path: Path) -> np.ndarray:
    """The array in a .npy file, its declared size checked against the file before loading."""
    size = check_file_size(path)
    try:
        with open(path, "rb") as fh:
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            read_header = (
                fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            )
            shape, _, dtype = read_header(fh)
            declared = math.prod(shape) * dtype.itemsize
            if dtype.hasobject:
                raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
            if declared > size - fh.tell():
                raise DatasetImportError(
                    f"{path}: the header declares {shape} {dtype} ({declared} bytes) but the "
                    f"file holds only {size - fh.tell()} bytes of data"
                )
            check_bytes(str(path), declared, "declares an array of")
        return np.load(path, allow_pickle=False)
    except DatasetImportError:
        raise
    except (OSError, ValueError, TypeError, SyntaxError) as exc:
        raise DatasetImportError(
            f"{path}: not a readable .npy array without pickles ({exc})"
        ) from None


def parse_npy(
    images_path: Path, labels_path: Path | None, classes: Path | list[str]
) -> ParsedDataset:
    names = class_names_resolve(classes)
    images = _check_image_array(_load_npy(images_path), str(images_path))
    n = images.shape[0]
    labels: list[int | None] = [None] * n
    if labels_path is not None:
        raw = _load_npy(labels_path)
        if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
            raise DatasetImportError(
                f"{labels_path}: labels must be a 1-D integer array, got {raw.dtype} {raw.shape}"
            )
        if raw.shape[0] != n:
            raise DatasetImportError(
                f"{labels_path}: {raw.shape[0]} labels but {images_path} has {n} images"
            )
        labels = [
            _as_int_label(v, len(names), str(labels_path), f"[{i}]") for i, v in enumerate(raw)
        ]
    records = [
        ImportRecord(name=f"{i:06d}.png", label=labels[i], array=images[i]) for i in range(n)
    ]
    return ParsedDataset(names, records, str(images_path))


def _image_files(root: Path, folder: Path) -> Iterator[tuple[str, Path]]:
    """(name, real path) of each file in a class folder; links must stay inside ``root``."""
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        real = path_inside(root, p, str(root), str(p.relative_to(root)))
        if real.is_dir():
            raise DatasetImportError(f"{p}: nested folders are not supported inside a class folder")
        yield p.name, real


def parse_folder(root: Path) -> ParsedDataset:
    """ImageFolder convention: one sub-folder per class, sorted by name."""
    if not root.is_dir():
        raise DatasetImportError(f"{root}: not a folder")
    entries = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
    for p in entries:
        path_inside(root, p, str(root), p.name)
    class_dirs = [p for p in entries if p.is_dir()]
    if not class_dirs:
        raise DatasetImportError(f"{root}: no class sub-folders found")
    strays = [p.name for p in entries if not p.is_dir()]
    if strays:
        raise DatasetImportError(f"{root}: files outside class folders: {strays[:5]}")
    names = [d.name for d in class_dirs]
    records = []
    for label, d in enumerate(class_dirs):
        for file_name, real in _image_files(root, d):
            records.append(ImportRecord(name=f"{d.name}/{file_name}", label=label, path=real))
            if len(records) % 10_000 == 0:  # stop early on a folder far past the limit
                check_items(str(root), len(records))
    check_items(str(root), len(records))
    if not records:
        raise DatasetImportError(f"{root}: the class folders hold no images")
    return ParsedDataset(names, records, str(root))


def parse_csv(csv_path: Path, classes: Path | list[str] | None = None) -> ParsedDataset:
    """Rows ``path,label``; paths relative to the CSV's folder; label a class name (or blank)."""
    source = str(csv_path)
    check_file_size(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetImportError(f"{source}: cannot read CSV ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise DatasetImportError(f"{source}: no rows")
    check_items(source, len(rows))
    for lineno, row in enumerate(rows, start=2):
        if len(row) != 2:
            raise DatasetImportError(f"{source}: line {lineno} has {len(row)} columns, expected 2")
    given = [r[1].strip() for r in rows]
    if classes is not None:
        names = class_names_resolve(classes)
    else:
        names = _check_class_names(sorted({g for g in given if g}), source)
    index = {n: i for i, n in enumerate(names)}
    base = csv_path.parent
    records, seen = [], set()
    for lineno, (rel, lab) in enumerate(rows, start=2):
        rel = rel.strip()
        if rel in seen:
            raise DatasetImportError(f"{source}: line {lineno}: duplicate name {rel!r}")
        seen.add(rel)
        p = path_inside(base, base / rel, f"{source}: line {lineno}", rel)
        if not p.is_file():
            raise DatasetImportError(f"{source}: line {lineno}: image file {rel!r} not found")
        lab = lab.strip()
        if lab and lab not in index:
            raise DatasetImportError(
                f"{source}: line {lineno}: label {lab!r} is not one of the class names"
            )
        records.append(ImportRecord(name=rel, label=index[lab] if lab else None, path=p))
    return ParsedDataset(names, records, source)


def parse_demo() -> ParsedDataset:
    """scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), shipped with sklearn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    names = [str(d) for d in range(10)]
    records = [
        ImportRecord(name=f"digit-{i:04d}.png", label=int(t), array=rgb[i])
        for i, t in enumerate(digits.target)
    ]
    return ParsedDataset(names, records, "sklearn digits")
