"""Turn uploaded files (admin form, API) into paths the importers read, safely.

Uploads are copied into a staging folder (see ``staging``) whose lock marks them as in use, so a
process killed mid-import leaves nothing that the next import does not clean. Their total size
is capped by IMPORT_MAX_BYTES and a zip is unpacked within IMPORT_MAX_ARCHIVE_*.
"""

from __future__ import annotations

from pathlib import Path

from .exceptions import DatasetImportError
from .import_guard import extract_zip, import_errors, limit
from .services import dataset_import_from_args
from .staging import StagingFolder, staging_cleanup


def _save(upload, folder: Path, name: str, bytes_left: int) -> tuple[Path, int]:
    path = folder / name
    written = 0
    with open(path, "xb") as fh:
        for chunk in upload.chunks():
            written += len(chunk)
            if written > bytes_left:
                raise DatasetImportError(
                    f"{upload.name}: the uploaded files add up to more than "
                    f"{limit('IMPORT_MAX_BYTES')} bytes (IMPORT_MAX_BYTES)"
                )
            fh.write(chunk)
    return path, written


def _folder_root(dest: Path) -> Path:
    entries = [p for p in dest.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    # A zip of one top folder holding the class folders is the common case.
    if len(entries) == 1 and entries[0].is_dir() and any(c.is_dir() for c in entries[0].iterdir()):
        return entries[0]
    return dest


def dataset_import_upload(*, name: str, fmt: str, files: dict, description: str = ""):
    """Import from uploaded files: ``file`` (pickle, or zip of class folders), ``images``,
    ``labels``, ``classes``, ``csv``."""
    if fmt == "folder" and files.get("csv"):
        raise DatasetImportError("upload a zip of class folders; CSV imports run from the command")
    with import_errors("upload"):
        staging_cleanup()
        with StagingFolder() as staging:
            tmp = staging.scratch("upload")
            shown: dict[str, str] = {}
            try:
                return _import_from(
                    tmp, shown, name=name, fmt=fmt, files=files, description=description
                )
            except DatasetImportError as exc:
                # Name the uploaded files as the uploader knows them, not by server paths.
                message = str(exc)
                for path, upload_name in shown.items():
                    message = message.replace(path, upload_name)
                raise type(exc)(message.replace(f"{tmp}/", "")) from None


def _import_from(tmp: Path, shown: dict[str, str], *, name, fmt, files: dict, description: str):
    paths: dict[str, Path] = {}
    bytes_left = limit("IMPORT_MAX_BYTES")
    for key, up in files.items():
        if up:
            # Only the key names the file on disk: an uploaded name never becomes a path.
            paths[key], size = _save(up, tmp, f"{key}{Path(up.name).suffix[:16]}", bytes_left)
            shown[str(paths[key])] = Path(up.name).name
            bytes_left -= size
    file = paths.get("file")
    if fmt == "folder" and file is not None:
        extract_zip(file, tmp / "folder", source=shown[str(file)])
        file.unlink()  # the unpacked copy is what is read from here on
        file = _folder_root(tmp / "folder")
    return dataset_import_from_args(
        name=name,
        fmt=fmt,
        file=file,
        images=paths.get("images"),
        labels=paths.get("labels"),
        classes=paths.get("classes"),
        description=description,
    )
