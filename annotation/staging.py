"""Where an import keeps its files until it commits: a locked folder under MEDIA_ROOT.

An import writes every image into its own folder under ``MEDIA_ROOT/.import-staging/`` and moves
them to their final names only once all of them are written, just before its database
transaction commits; any failure removes what it wrote, moved files and new folders included.
The folder is locked (``flock``) for as long as its process lives, and it lists the final names
before moving anything, so a folder left by a killed import is recognised (its lock is free) and
cleaned by the next import or ``import_dataset --clean-staging``: moved files no row refers to are
deleted, then the folder itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

STAGING_DIR = ".import-staging"
_LOCK = ".lock"
_JOURNAL = "journal.jsonl"
# A folder without a lock file younger than this may still be being set up.
_SETUP_GRACE_S = 60.0
# Without flock, a folder is taken for abandoned only after this long.
_NO_LOCK_AGE_S = 24 * 3600.0


def _media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _makedirs(path: Path, created: list[Path]) -> None:
    """mkdir -p that records each folder it made, so a rollback can take them away again."""
    for attempt in range(3):
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                try:
                    d.mkdir()
                except FileExistsError:
                    continue
                created.append(d)
            return
        except FileNotFoundError:  # a parent was removed meanwhile by another import's cleanup
            if attempt == 2:
                raise


def _remove_empty(dirs: list[Path]) -> None:
    for d in sorted(set(dirs), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (another import's, say): leave it
            d.rmdir()


def _lock(path: Path) -> IO[str] | None:
    """An exclusive lock on ``path``, or None when another live process holds it."""
    fh = open(path, "a")  # noqa: SIM115 - held open for the lock's lifetime
    if fcntl is None:
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


class StagingFolder:
    """One import's private folder under ``MEDIA_ROOT/.import-staging``, locked while open.

    Files added with ``add`` go to their final names on ``publish``; ``keep`` marks the import
    committed. On ``close`` without ``keep``, everything written is removed: staged and moved
    files and every folder this import created.
    """

    def __init__(self) -> None:
        self.created: list[Path] = []
        self.path: Path | None = None
        self._lockfile: IO[str] | None = None
        self._staged: list[tuple[Path, str]] = []
        self._moved: list[Path] = []
        self._kept = False

    def __enter__(self) -> StagingFolder:
        root = _media_root() / STAGING_DIR
        for attempt in range(5):
            _makedirs(root, self.created)
            try:
                self.path = root / f"import-{secrets.token_hex(16)}"
                self.path.mkdir(mode=0o700)
                break
            except FileNotFoundError:  # another import removed the empty root meanwhile
                if attempt == 4:
                    raise
        assert self.path is not None
        self._lockfile = _lock(self.path / _LOCK)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def scratch(self, name: str) -> Path:
        """A sub-folder for unpacking uploads; removed with the staging folder."""
        assert self.path is not None
        d = self.path / name
        d.mkdir(exist_ok=True)
        return d

    def reserve(self, final_name: str) -> Path:
        """A new path in the folder for a file that becomes ``MEDIA_ROOT/final_name`` on
        ``publish``; the caller (or a worker process) creates the file before then."""
        assert self.path is not None
        files = self.path / "files"
        if not self._staged:
            files.mkdir(exist_ok=True)
        staged = files / str(len(self._staged))
        self._staged.append((staged, final_name))
        return staged

    def add(self, final_name: str, data: bytes) -> None:
        """Write ``data`` now; it becomes ``MEDIA_ROOT/final_name`` on ``publish``."""
        with open(self.reserve(final_name), "xb") as fh:
            fh.write(data)

    def publish(self) -> None:
        """Move every added file to its final name (listed in the journal first)."""
        assert self.path is not None
        with open(self.path / _JOURNAL, "w") as fh:
            for _, name in self._staged:
                fh.write(json.dumps(name) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        root = _media_root()
        folders: set[Path] = set()
        for staged, name in self._staged:
            target = root / name
            if target.parent not in folders:
                _makedirs(target.parent, self.created)
                folders.add(target.parent)
            if target.exists():  # never replace a file some row may point at
                raise FileExistsError(f"{name} already exists")
            os.replace(staged, target)
            self._moved.append(target)

    def keep(self) -> None:
        """The import committed: published files stay where they are."""
        self._kept = True

    def close(self) -> None:
        if not self._kept:
            for target in self._moved:
                target.unlink(missing_ok=True)
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None
        _remove_empty([*self.created, *(t.parent for t in self._moved)])


def _abandoned(folder: Path) -> IO[str] | None:
    """The lock of a folder whose import is gone, or None when it may still be running."""
    lock = folder / _LOCK
    if not lock.exists():
        age = time.time() - folder.stat().st_mtime
        return open(lock, "a") if age > _SETUP_GRACE_S else None  # noqa: SIM115
    if fcntl is None and time.time() - lock.stat().st_mtime < _NO_LOCK_AGE_S:
        return None
    return _lock(lock)


def _unreferenced(names: list[str]) -> list[str]:
    from .models import Item

    used: set[str] = set()
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        used.update(Item.objects.filter(image__in=chunk).values_list("image", flat=True))
    return [n for n in names if n not in used]


def staging_cleanup() -> int:
    """Remove what killed imports left behind; returns how many staging folders it removed."""
    root = _media_root() / STAGING_DIR
    if not root.is_dir():
        return 0
    media = _media_root().resolve()
    removed = 0
    for folder in sorted(root.iterdir()):
        try:
            if not folder.is_dir() or folder.is_symlink():
                continue
            lock = _abandoned(folder)
        except FileNotFoundError:  # its import finished meanwhile
            continue
        if lock is None:
            continue
        try:
            names: list[str] = []
            journal = folder / _JOURNAL
            if journal.exists():
                names = [json.loads(line) for line in journal.read_text().splitlines() if line]
            parents: list[Path] = []
            for name in _unreferenced(names):
                target = (media / name).resolve()
                if target.is_relative_to(media) and STAGING_DIR not in target.parts:
                    target.unlink(missing_ok=True)
                    parents.extend(p for p in target.parents if p.is_relative_to(media))
            shutil.rmtree(folder, ignore_errors=True)
            _remove_empty([p for p in parents if p != media])
            removed += 1
            logger.warning("removed the staging folder %s of an import that did not finish", folder)
        finally:
            lock.close()
    _remove_empty([root])
    return removed
