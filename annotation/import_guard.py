"""Limits on what an import may read, unpack and create, and the checks that apply them.

Every refusal is a DatasetImportError naming the input and the setting that bounds it, so an
operator with a genuinely large dataset knows which one to raise.
"""

from __future__ import annotations

import logging
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings

from .exceptions import DatasetImportError

logger = logging.getLogger(__name__)

_COPY_CHUNK = 1024 * 1024
# Every central-directory record of a zip starts with this; counting them bounds what
# zipfile.ZipFile would parse into memory before any member is looked at.
_ZIP_CENTRAL_RECORD = b"PK\x01\x02"


def limit(name: str) -> int:
    """The import limit ``name`` (an ``IMPORT_MAX_*`` setting) as an int."""
    return int(getattr(settings, name))


# Python objects are charged this many bytes of IMPORT_MAX_BYTES each: about what the largest
# object one pickle opcode can build (an empty dict or list) takes in memory.
OBJECT_BYTES = 64


def object_limit() -> int:
    """How many Python objects a dataset pickle may build (one per OBJECT_BYTES bytes of
    IMPORT_MAX_BYTES): several per item, far below what would exhaust memory."""
    return max(limit("IMPORT_MAX_BYTES") // OBJECT_BYTES, 100_000)


def check_bytes(source: str, size: int, what: str = "is") -> None:
    """Refuse ``size`` bytes past IMPORT_MAX_BYTES."""
    cap = limit("IMPORT_MAX_BYTES")
    if size > cap:
        raise DatasetImportError(
            f"{source}: {what} {size} bytes, over the limit of {cap} bytes (IMPORT_MAX_BYTES)"
        )


def check_items(source: str, count: int) -> None:
    """Refuse more than IMPORT_MAX_ITEMS items."""
    cap = limit("IMPORT_MAX_ITEMS")
    if count > cap:
        raise DatasetImportError(
            f"{source}: {count} items, over the limit of {cap} items (IMPORT_MAX_ITEMS)"
        )


def check_file_size(path: Path) -> int:
    """The size of the file at ``path``, refused past IMPORT_MAX_BYTES."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetImportError(f"{path}: cannot read file ({exc.strerror})") from None
    check_bytes(str(path), size)
    return size


def path_inside(base: Path, path: Path, source: str, shown: str) -> Path:
    """``path`` resolved (symlinks followed), refused when it lies outside ``base``."""
    try:
        resolved = path.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise DatasetImportError(f"{source}: cannot resolve {shown!r} ({exc})") from None
    if not resolved.is_relative_to(base.resolve()):
        raise DatasetImportError(
            f"{source}: {shown!r} points outside the import folder {str(base)!r} "
            f"(to {str(resolved)!r}); only files inside it are imported"
        )
    return resolved


@contextmanager
def import_errors(source: str) -> Iterator[None]:
    """Turn every failure inside into a DatasetImportError that says what went wrong."""
    try:
        yield
    except DatasetImportError:
        raise
    except MemoryError:
        raise DatasetImportError(
            f"{source}: ran out of memory while importing; the input is too large for this "
            "machine (lower IMPORT_MAX_BYTES / IMPORT_MAX_ITEMS to refuse such files up front)"
        ) from None
    except RecursionError:
        raise DatasetImportError(f"{source}: the data is nested too deeply to import") from None
    except Exception as exc:
        logger.exception("import of %s failed", source)
        raise DatasetImportError(
            f"{source}: import failed ({type(exc).__name__}: {exc})"[:1000]
        ) from None


def _zip_record_count(path: Path) -> int:
    """An upper bound on the members of the zip at ``path``: its central-directory signatures."""
    count, tail = 0, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            buf = tail + chunk
            count += buf.count(_ZIP_CENTRAL_RECORD)
            # 3 bytes carried over: a signature split across two reads is counted once.
            tail = buf[-3:]
    return count


def _member_target(dest: Path, info: zipfile.ZipInfo, source: str) -> Path:
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise DatasetImportError(
            f"{source}: member {name!r} points outside the import folder; refused"
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DatasetImportError(
            f"{source}: member {name!r} is a symbolic link; links are not imported"
        )
    target = dest / pure
    path_inside(dest, target, source, name)
    return target


def extract_zip(path: Path, dest: Path, *, source: str | None = None) -> None:
    """Unpack the zip at ``path`` into ``dest``, refusing bombs, links and escaping names.

    The declared sizes are checked before anything is written and the actual bytes while
    writing, against IMPORT_MAX_ARCHIVE_BYTES and IMPORT_MAX_ARCHIVE_MEMBERS.
    """
    source = source or path.name
    check_file_size(path)
    max_members = limit("IMPORT_MAX_ARCHIVE_MEMBERS")
    max_bytes = limit("IMPORT_MAX_ARCHIVE_BYTES")
    records = _zip_record_count(path)
    if records > max_members:
        raise DatasetImportError(
            f"{source}: the archive has {records} members, over the limit of {max_members} "
            "(IMPORT_MAX_ARCHIVE_MEMBERS)"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise DatasetImportError(
                    f"{source}: the archive has {len(infos)} members, over the limit of "
                    f"{max_members} (IMPORT_MAX_ARCHIVE_MEMBERS)"
                )
            declared = sum(i.file_size for i in infos)
            if declared > max_bytes:
                raise DatasetImportError(
                    f"{source}: the archive unpacks to {declared} bytes, over the limit of "
                    f"{max_bytes} bytes (IMPORT_MAX_ARCHIVE_BYTES)"
                )
            targets = [(info, _member_target(dest, info, source)) for info in infos]
            seen: set[Path] = set()
            written = 0
            dest.mkdir(parents=True, exist_ok=True)
            for info, target in targets:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target in seen:
                    raise DatasetImportError(f"{source}: member {info.filename!r} appears twice")
                seen.add(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                written = _copy_member(zf, info, target, written, max_bytes, source)
    except zipfile.BadZipFile as exc:
        raise DatasetImportError(f"{source}: not a zip archive ({exc})") from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise DatasetImportError(f"{source}: cannot unpack the archive ({exc})") from None


def _copy_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: int, cap: int, source: str
) -> int:
    member = 0
    try:
        with zf.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(_COPY_CHUNK):
                member += len(chunk)
                written += len(chunk)
                # zipfile stops at the declared size; checking again keeps the cap regardless.
                if member > info.file_size or written > cap:
                    raise DatasetImportError(
                        f"{source}: member {info.filename!r} unpacks past its declared size or "
                        f"the archive past {cap} bytes (IMPORT_MAX_ARCHIVE_BYTES); refused as a "
                        "zip bomb"
                    )
                out.write(chunk)
    except zipfile.BadZipFile as exc:
        # A member whose data runs past its declared size fails its CRC here.
        raise DatasetImportError(
            f"{source}: member {info.filename!r} is corrupt or unpacks to more than its declared "
            f"{info.file_size} bytes ({exc}); refused"
        ) from None
    return written
