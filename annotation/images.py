"""Display renditions of item images: resized with Pillow, cached on disk, at keyed URLs.

A rendition's URL carries an HMAC (keyed with SECRET_KEY) of the item id, the size and the
stored file name: only someone shown the URL can fetch the image, a guessed one answers 404, and
a new file behind an item gets a new URL. ``rendition_url`` is the one place these URLs are built.

Tiny images (32x32 CIFAR, 8x8 digits) are enlarged with nearest-neighbour so pixels stay crisp;
larger ones are shrunk with Lanczos. Workers never receive the original file.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import os
import threading
from pathlib import Path

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import constant_time_compare
from PIL import Image

from .models import Item

DISPLAY_SIZES = (64, 128, 200, 256, 400)


def rendition_size(size: int) -> int:
    if size not in DISPLAY_SIZES:
        raise ValueError(f"size must be one of {DISPLAY_SIZES}, got {size}")
    return size


_DIGEST_SALT = "annotation.images.rendition"


@functools.lru_cache(maxsize=8)
def _digest_key(secret: str) -> bytes:
    """The HMAC key ``salted_hmac(_DIGEST_SALT, ..., algorithm="sha256")`` derives from this
    secret on every call: derived once here, since a task page signs a dozen URLs."""
    return hashlib.sha256(_DIGEST_SALT.encode() + secret.encode()).digest()


def _digest(item: Item, size: int, secret: str | None = None) -> str:
    """``salted_hmac(_DIGEST_SALT, "<id>:<size>:<file>", secret, "sha256")``, hex, 16 digits."""
    value = f"{item.pk}:{size}:{item.image.name}"
    key = _digest_key(settings.SECRET_KEY if secret is None else secret)
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


# reverse("item-image") up to its arguments, per script prefix and URLconf: a task page shows
# a dozen images, and the resolver's work per URL was a tenth of the page's CPU.
_URL_HEADS: dict[tuple[str, str | None, str], str] = {}
_URL_TAIL = "1-2-d.png"


def _url_head() -> str:
    key = (get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    head = _URL_HEADS.get(key)
    if head is None:
        url = reverse("item-image", kwargs={"item_id": 1, "size": 2, "digest": "d"})
        if not url.endswith(_URL_TAIL):
            raise RuntimeError(f"the item-image URL {url!r} no longer ends with its arguments")
        head = _URL_HEADS[key] = url[: -len(_URL_TAIL)]
    return head


def rendition_url(item: Item, size: int = 200) -> str:
    """The URL of the item's rendition at ``size``: the only way to learn its keyed digest.
    The same as ``reverse("item-image", ...)`` with the item's id, the size and the digest."""
    return f"{_url_head()}{int(item.pk)}-{int(size)}-{_digest(item, size)}.png"


def rendition_path(item: Item, size: int) -> Path:
    return (
        Path(settings.MEDIA_ROOT)
        / "renditions"
        / str(item.dataset_id)
        / f"{item.pk}-{size}-{_digest(item, size)}.png"
    )


def rendition_bytes(item: Item, size: int) -> bytes:
    """PNG of the item scaled so its longer side is ``size`` px; cached after the first call."""
    size = rendition_size(size)
    path = rendition_path(item, size)
    if path.exists():
        return path.read_bytes()
    with item.image.open("rb") as fh, Image.open(fh) as im:
        im = im.convert("RGB")
        scale = size / max(im.size)
        new = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
        out = im.resize(new, resample)
        buf = io.BytesIO()
        out.save(buf, format="PNG", optimize=True)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def is_current_digest(item: Item, size: int, digest: str) -> bool:
    """Whether ``digest`` is the item's at ``size`` (under SECRET_KEY or one of its fallbacks)."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(digest, _digest(item, size, s)) for s in secrets)
