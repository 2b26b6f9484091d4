"""What an imported image is stored as: a PNG, JPEG, WebP or GIF, named by what it really is.

An uploaded file is trusted for nothing, its name least of all: Pillow identifies the format from
the content, only the four web image formats are kept, the file is saved under that format's
suffix (so any server sends it with that image type), and bytes appended after the image's end
(where a polyglot keeps its HTML or script) are cut off. Arrays are encoded as PNG.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from .exceptions import DatasetImportError

# Pillow's format name -> the suffix the stored file gets.
STORED_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# From this many images, imports and exports encode, decode and write them in worker processes;
# below it the workers' start-up would cost more than they save.
IMAGE_POOL_MIN_IMAGES = 4000


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    width: int
    height: int
    suffix: str


def _pixel_limit() -> int:
    return int(settings.IMPORT_MAX_IMAGE_PIXELS)


def image_size_check(source: str, w: int, h: int, max_pixels: int | None = None) -> None:
    """Refuse an image of more than ``max_pixels`` (default: IMPORT_MAX_IMAGE_PIXELS) pixels."""
    limit = _pixel_limit() if max_pixels is None else max_pixels
    if w * h > limit:
        raise DatasetImportError(
            f"{source}: image is {w}x{h} = {w * h} pixels, over the limit of {limit} "
            "(IMPORT_MAX_IMAGE_PIXELS)"
        )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(arr: np.ndarray) -> bytes:
    """PNG bytes of a uint8 H x W (grey) or H x W x 3 (RGB) array: filter 0, one IDAT.

    Written directly (a few microseconds of Python around zlib) rather than through Pillow,
    whose per-image overhead dominates for the 32x32 images of a CLImage release."""
    h, w = arr.shape[:2]
    rows = np.zeros((h, 1 + arr[0].size), dtype=np.uint8)  # column 0: filter type 0 (none)
    rows[:, 1:] = arr.reshape(h, -1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if arr.ndim == 3 else 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def image_array_encode(
    arr: np.ndarray, source: str, *, max_pixels: int | None = None
) -> StoredImage:
    """A uint8 H x W (x 1 or 3) array as PNG bytes; refused past ``max_pixels`` (default:
    IMPORT_MAX_IMAGE_PIXELS)."""
    h, w = arr.shape[:2]
    image_size_check(source, w, h, max_pixels)
    grey = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
    return StoredImage(_png(np.ascontiguousarray(grey, dtype=np.uint8)), w, h, ".png")


def image_arrays_write(
    arrays: list[np.ndarray], paths: list[str], sources: list[str], max_pixels: int
) -> list[tuple[int, int]]:
    """Encode each array as PNG and write it to the matching new file; (width, height) each.

    Runs in the import's worker processes, so it reads no setting: the pixel limit comes in."""
    sizes = []
    for arr, path, source in zip(arrays, paths, sources, strict=True):
        image = image_array_encode(arr, source, max_pixels=max_pixels)
        with open(path, "xb") as fh:
            fh.write(image.data)
        sizes.append((image.width, image.height))
    return sizes


def image_rgb_read(path: str) -> np.ndarray:
    """A stored image file as an H x W x 3 uint8 array.

    The PNGs this module writes (8-bit grey or RGB, no interlace, filter 0 on every row) are
    inflated directly; any other file is decoded by Pillow."""
    with open(path, "rb") as fh:
        data = fh.read()
    arr = _simple_png_pixels(data)
    if arr is None:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr


def image_files_read_rgb(paths: list[str]) -> list[np.ndarray]:
    """``image_rgb_read`` of each path, in order (a job for an export's worker processes)."""
    return [image_rgb_read(p) for p in paths]


def _simple_png_pixels(data: bytes) -> np.ndarray | None:
    """The pixels of a PNG laid out as ``_png`` writes it; None for any other file."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = {0: 1, 2: 3}.get(color)
    if depth != 8 or channels is None or interlace or w * h == 0:
        return None
    idat, pos = [], 8
    try:
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            kind = data[pos + 4 : pos + 8]
            if kind == b"IDAT":
                idat.append(data[pos + 8 : pos + 8 + length])
            elif kind == b"IEND":
                break
            pos += 12 + length
        raw = zlib.decompress(b"".join(idat))
    except (struct.error, zlib.error):
        return None
    stride = 1 + w * channels
    if len(raw) != h * stride:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, stride)
    if rows[:, 0].any():  # a row with a PNG filter: leave it to Pillow
        return None
    pixels = rows[:, 1:].reshape(h, w, channels) if channels == 3 else rows[:, 1:]
    return np.array(pixels)


def image_file_check(data: bytes, source: str) -> StoredImage:
    """The bytes of an image file as they will be stored; refused unless Pillow decodes them as
    a PNG, JPEG, WebP or GIF within IMPORT_MAX_IMAGE_PIXELS."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "unknown"
            if fmt not in STORED_FORMATS:
                raise DatasetImportError(
                    f"{source}: is a {fmt} image; only PNG, JPEG, WebP and GIF images are "
                    "imported (convert it first)"
                )
            w, h = im.size
            image_size_check(source, w, h)
            im.verify()
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
    except DatasetImportError:
        raise
    except UnidentifiedImageError:
        raise DatasetImportError(
            f"{source}: not a readable image (no PNG, JPEG, WebP or GIF content)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise DatasetImportError(f"{source}: not a readable image ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise DatasetImportError(f"{source}: corrupt image ({exc})") from None
    end = _image_end(data, fmt)
    return StoredImage(data[:end] if end else data, w, h, STORED_FORMATS[fmt])


def _image_end(data: bytes, fmt: str) -> int | None:
    """Where the image's own bytes end (anything after is not part of it); None if unsure."""
    try:
        return {"PNG": _png_end, "JPEG": _jpeg_end, "WEBP": _webp_end, "GIF": _gif_end}[fmt](data)
    except (IndexError, ValueError, struct.error):
        return None


def _png_end(data: bytes) -> int | None:
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos if pos <= len(data) else None
    return None


def _webp_end(data: bytes) -> int | None:
    (size,) = struct.unpack("<I", data[4:8])
    end = 8 + size + (size & 1)
    return end if end <= len(data) else None


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    while (size := data[pos]) != 0:
        pos += 1 + size
    return pos + 1


def _gif_end(data: bytes) -> int | None:
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        block = data[pos]
        if block == 0x3B:  # trailer
            return pos + 1
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _gif_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW size, sub-blocks
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _gif_sub_blocks(data, pos + 1)
        else:
            return None


def _jpeg_end(data: bytes) -> int | None:
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            return None
        while data[pos] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # end of image
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while True:
                pos = data.index(b"\xff", pos)
                nxt = data[pos + 1]
                if nxt == 0 or 0xD0 <= nxt <= 0xD7:
                    pos += 2
                    continue
                break
    return None


class _InProcess:
    """Runs each job at once, in this process (a failure raises at once): the stand-in for
    a pool on small jobs."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


@contextlib.contextmanager
def image_pool(n_images: int) -> Iterator[Any]:
    """Where an import or export encodes, decodes and writes ``n_images`` images: worker
    processes (which overlap that work with this process's database work) from
    IMAGE_POOL_MIN_IMAGES images, else this process. Either has ``submit(fn, *args)``.

    On the way out, queued jobs are cancelled and running ones waited for, so no worker still
    writes into an import's staging folder when a failed import removes it."""
    workers = min(4, os.cpu_count() or 1)
    # A daemonic process (a worker of some pool itself) may not start processes of its own.
    if n_images < IMAGE_POOL_MIN_IMAGES or workers < 2 or multiprocessing.current_process().daemon:
        yield _InProcess()
        return
    # Spawned, not forked: a fork would share this process's database connection.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
