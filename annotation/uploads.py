"""Turn uploaded files (admin form, API) into paths the importers read, safely."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from .exceptions import DatasetImportError
from .services import dataset_import_from_args


def _save(upload, folder: Path, name: str) -> Path:
    path = folder / name
    with open(path, "wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    return path


def _extract_zip(path: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise DatasetImportError(f"{info.filename}: path escapes the archive folder")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DatasetImportError(f"{path.name}: not a zip archive ({exc})") from None
    entries = [p for p in dest.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    # A zip of one top folder holding the class folders is the common case.
    if len(entries) == 1 and entries[0].is_dir() and any(c.is_dir() for c in entries[0].iterdir()):
        return entries[0]
    return dest


@contextmanager
def _tempdir():
    d = Path(tempfile.mkdtemp(prefix="upload-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def dataset_import_upload(*, name: str, fmt: str, files: dict, description: str = ""):
    """Import from uploaded files: ``file`` (pickle, or zip of class folders), ``images``,
    ``labels``, ``classes``, ``csv``."""
    with _tempdir() as tmp:
        paths = {
            key: _save(up, tmp, f"{key}-{Path(up.name).name}") for key, up in files.items() if up
        }
        file = paths.get("file")
        if fmt == "folder" and file is not None:
            file = _extract_zip(file, tmp / "folder")
        if fmt == "folder" and "csv" in paths:
            raise DatasetImportError(
                "upload a zip of class folders; CSV imports run from the command"
            )
        return dataset_import_from_args(
            name=name,
            fmt=fmt,
            file=file,
            images=paths.get("images"),
            labels=paths.get("labels"),
            classes=paths.get("classes"),
            description=description,
        )
