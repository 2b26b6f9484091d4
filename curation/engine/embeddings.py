"""Image and text embeddings behind one interface, for retrieval from an unlabeled pool.

Backends: ``OpenClipBackend`` (open_clip, weights from a local file; preprocessing with PIL and
numpy, no torchvision), ``PrecomputedBackend`` (an N x D image .npy and a K x D text .npy made
elsewhere) and ``OfflineBackend`` (deterministic, no weights: image statistics and hashed words
through a fixed random projection; for tests and the demo). ``embed_pool`` embeds a pool in
batches into a store file it can resume, so a second ranking does not re-embed.

Shapes: N images, D embedding dimensions, T texts. Embeddings are float32 and L2-normalised.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

ImageLoader = Callable[[int, int], list[np.ndarray]]
Progress = Callable[[int, int], None]
# CLIP's image normalisation (the OpenAI models and most open_clip ones).
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class EmbeddingBackend(Protocol):
    """What ranking needs from a model: images and texts in one space."""

    name: str

    def key(self) -> str:
        """Names the model and its settings; stored embeddings are reused only under it."""
        ...

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(B, D) float32, L2-normalised, for B HxWx3 uint8 arrays."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(T, D) float32, L2-normalised."""
        ...


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise ValueError(f"images must be HxW or HxWx3 uint8 arrays, got {arr.dtype} {arr.shape}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got shape {arr.shape}")
    return arr


class OfflineBackend:
    """Deterministic embeddings with no weights: a grey thumbnail (standardised), gradient
    orientations and a colour histogram, through a fixed random projection; texts as hashed
    bags of words. Images of a kind land near each other, so query by example ranks well;
    texts do not land near their images (there is no model to align them)."""

    name = "offline"

    def __init__(self, *, dim: int = 128, seed: int = 0) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self.dim = dim
        self.seed = seed
        self._projection = np.random.default_rng(seed).standard_normal((160, dim)) / np.sqrt(dim)

    def key(self) -> str:
        return f"offline-d{self.dim}-s{self.seed}"

    def _features(self, image: np.ndarray) -> np.ndarray:
        rgb = _rgb(image)
        small = np.asarray(
            Image.fromarray(rgb).resize((16, 16), Image.Resampling.BILINEAR), np.float32
        )
        grey = small.mean(axis=-1)
        thumb = np.asarray(
            Image.fromarray(grey).resize((8, 8), Image.Resampling.BILINEAR), np.float32
        )
        thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-6)
        gy, gx = np.gradient(grey)
        angle = np.arctan2(gy, gx)
        strength = np.hypot(gx, gy)
        half = grey.shape[0] // 2
        orient = []
        for rows in (slice(0, half), slice(half, None)):
            for cols in (slice(0, half), slice(half, None)):
                hist, _ = np.histogram(
                    angle[rows, cols], bins=8, range=(-np.pi, np.pi), weights=strength[rows, cols]
                )
                orient.append(hist)
        orient_v = np.concatenate(orient).astype(np.float32)
        orient_v = orient_v / (orient_v.sum() + 1e-6) - 1.0 / orient_v.size
        bins = (small // 64).astype(np.int64)
        colour = np.bincount(
            (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).ravel(), minlength=64
        )
        colour_v = colour.astype(np.float32) / colour.sum() - 1.0 / 64
        return np.concatenate([thumb.ravel() / 8.0, 4.0 * orient_v, 2.0 * colour_v])

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        feats = np.stack([self._features(im) for im in images])
        return normalise(feats @ self._projection)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
                rng = np.random.default_rng(int.from_bytes(digest, "little"))
                out[row] += rng.standard_normal(self.dim).astype(np.float32)
        return normalise(out)


class PrecomputedBackend:
    """Embeddings made elsewhere: image rows (N x D, row = item index) and one text row per
    class (K x D, in class order). ``embed_images`` is not available: the rows are looked up."""

    name = "npy"

    def __init__(self, images: np.ndarray, texts: np.ndarray | None = None) -> None:
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[0] == 0 or not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be a non-empty N x D float array, got {images.shape}")
        if texts is not None:
            texts = np.asarray(texts)
            if texts.ndim != 2 or texts.shape[1] != images.shape[1]:
                raise ValueError(
                    f"texts must be K x {images.shape[1]} (one row per class), got {texts.shape}"
                )
            if not np.isfinite(texts).all():
                raise ValueError("texts hold NaN or infinite values")
        if not np.isfinite(images).all():
            raise ValueError("images hold NaN or infinite values")
        self.images = normalise(images)
        self.texts = None if texts is None else normalise(texts)

    def key(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()[:16]
        return f"npy-{digest}"

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        raise ValueError("precomputed embeddings cannot embed new images; give their rows")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise ValueError("precomputed embeddings cannot embed prompts; give a K x D text .npy")


class OpenClipBackend:
    """open_clip (package ``open-clip-torch``): a model by config name, weights from a local
    file (``weights=None`` builds it untrained, for tests). Batches run on the GPU when present.
    """

    name = "open_clip"

    def __init__(
        self, *, model: str = "ViT-B-32", weights: str | Path | None, device: str | None = None
    ) -> None:
        import torch

        try:
            import open_clip
        except Exception as exc:  # any import failure, a broken torchvision included
            raise ImportError(
                "the open_clip backend needs the package open-clip-torch "
                f"(pip install open-clip-torch); importing it failed: {exc}"
            ) from None
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"open_clip weights file {str(weights)!r} does not exist")
        self.model_name = model
        self.weights = None if weights is None else str(weights)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = open_clip.create_model(model, pretrained=self.weights, device=self.device)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        size = getattr(self.model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)

    def key(self) -> str:
        weights = Path(self.weights).name if self.weights else "untrained"
        return f"open_clip-{self.model_name}-{weights}"

    def _tensor(self, images: Sequence[np.ndarray]) -> Any:
        """Resize the short side, centre-crop, scale and normalise: CLIP's preprocessing."""
        import torch

        side = self.image_size
        batch = np.empty((len(images), side, side, 3), np.float32)
        for i, image in enumerate(images):
            im = Image.fromarray(_rgb(image))
            scale = side / min(im.size)
            w, h = max(side, round(im.size[0] * scale)), max(side, round(im.size[1] * scale))
            im = im.resize((w, h), Image.Resampling.BICUBIC)
            left, top = (w - side) // 2, (h - side) // 2
            crop = np.asarray(im.crop((left, top, left + side, top + side)), np.float32) / 255.0
            batch[i] = (crop - CLIP_MEAN) / CLIP_STD
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(self.device)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model.encode_image(self._tensor(images))
        return normalise(out.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model.encode_text(self.tokenizer(list(texts)).to(self.device))
        return normalise(out.float().cpu().numpy())


@dataclass(frozen=True)
class StoredEmbeddings:
    """A pool's embeddings: (N, D) float32 rows in item-index order, and how many were made now
    (0 when the store already held them all)."""

    embeddings: np.ndarray
    embedded_now: int


def embed_pool(
    load: ImageLoader,
    num_items: int,
    backend: EmbeddingBackend,
    *,
    store: str | Path,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> StoredEmbeddings:
    """Embed items 0..N-1 (``load(start, stop)`` returns their images) into ``store`` (.npy).

    Resumable: the store's sidecar ``.json`` records the backend key and the rows done, so an
    interrupted run continues where it stopped and a finished store is read back, not re-made.
    A store made by another backend or for another N is started again.
    """
    if num_items < 1:
        raise ValueError(f"num_items must be at least 1, got {num_items}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    store = Path(store)
    sidecar = store.with_suffix(".json")
    state: dict[str, Any] = {}
    if store.is_file() and sidecar.is_file():
        try:
            state = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            state = {}
    fresh = state.get("key") != backend.key() or state.get("n") != num_items
    done = 0 if fresh else int(state.get("rows", 0))
    if not fresh and done >= num_items:
        return StoredEmbeddings(np.load(store, mmap_mode="r"), 0)
    store.parent.mkdir(parents=True, exist_ok=True)
    out: np.memmap | None = None
    if not fresh:
        out = np.lib.format.open_memmap(store, mode="r+")
    start = done
    while start < num_items:
        stop = min(start + batch_size, num_items)
        rows = backend.embed_images(load(start, stop))
        if out is None:
            out = np.lib.format.open_memmap(
                store, mode="w+", dtype=np.float32, shape=(num_items, rows.shape[1])
            )
        out[start:stop] = rows
        out.flush()
        tmp = sidecar.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"key": backend.key(), "n": num_items, "rows": stop}))
        os.replace(tmp, sidecar)
        start = stop
        if progress:
            progress(stop, num_items)
    assert out is not None
    return StoredEmbeddings(np.asarray(out), num_items - done)
