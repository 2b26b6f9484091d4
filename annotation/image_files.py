"""What an imported image is stored as: a PNG, JPEG, WebP or GIF, named by what it really is.

An uploaded file is trusted for nothing, its name least of all: Pillow identifies the format from
the content, only the four web image formats are kept, the file is saved under that format's
suffix (so any server sends it with that image type), and bytes appended after the image's end
(where a polyglot keeps its HTML or script) are cut off. Arrays are encoded as PNG.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from .exceptions import DatasetImportError

# Pillow's format name -> the suffix the stored file gets.
STORED_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    width: int
    height: int
    suffix: str


def _pixel_limit() -> int:
    return int(settings.IMPORT_MAX_IMAGE_PIXELS)


def _check_pixels(source: str, w: int, h: int) -> None:
    if w * h > _pixel_limit():
        raise DatasetImportError(
            f"{source}: image is {w}x{h} = {w * h} pixels, over the limit of {_pixel_limit()} "
            "(IMPORT_MAX_IMAGE_PIXELS)"
        )


def image_array_encode(arr: np.ndarray, source: str) -> StoredImage:
    """A uint8 H x W (x 1 or 3) array as PNG bytes."""
    h, w = arr.shape[:2]
    _check_pixels(source, w, h)
    mode_arr = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mode_arr)).save(buf, format="PNG")
    return StoredImage(buf.getvalue(), w, h, ".png")


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
            _check_pixels(source, w, h)
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
