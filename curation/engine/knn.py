"""Device choice and exact cosine k-nearest-neighbour search in blocks."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from curation.engine._checks import check_choice, check_positive_int

DevicePreference = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "float32", "float16", "bfloat16"]

# Budget for one block of similarities (queries x all items) when the device reports no free
# memory; a quarter of a GiB keeps a 2-core laptop responsive.
_CPU_BLOCK_BYTES = 256 * 2**20
_MAX_BLOCK_ROWS = 8192


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3)`` for a GPU, ``cpu`` for the CPU: what a run records."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def pick_device(prefer: DevicePreference | str | torch.device = "auto") -> torch.device:
    """Choose where the engine runs.

    Args:
        prefer: "auto" (CUDA when available, else CPU), "cpu", "cuda", a device string such as
            "cuda:1", or a torch.device.

    Returns:
        The torch.device to use.

    Raises:
        ValueError: if prefer is not understood, or names CUDA on a machine without it.
    """
    if isinstance(prefer, torch.device):
        device = prefer
    elif prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(prefer)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"prefer must be 'auto', 'cpu' or 'cuda[:n]', got {prefer!r}"
            ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"prefer asked for {prefer!r} but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"prefer must be 'auto', 'cpu' or 'cuda[:n]', got {prefer!r}")
    return device


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def auto_block_size(n_items: int, *, device: torch.device, element_bytes: int = 4) -> int:
    """Rows per block so that one block of similarities against all N items fits in memory.

    On CUDA a block may use a quarter of the free memory; on CPU at most 256 MiB or an eighth of
    the available memory, whichever is smaller. topk needs about as much again as the block.

    Args:
        n_items: N, the number of items every query row is compared with.
        device: where the block lives.
        element_bytes: bytes per similarity (4 for float32, 2 for half precision).

    Returns:
        Block rows B, between 1 and min(N, 8192).
    """
    available = _available_bytes(device)
    budget = available // 4 if device.type == "cuda" else min(_CPU_BLOCK_BYTES, available // 8)
    # The block itself plus topk's workspace.
    per_row = max(1, n_items) * (element_bytes + 8)
    return int(max(1, min(n_items, _MAX_BLOCK_ROWS, budget // per_row)))


@functools.cache
def _cpu_bfloat16_is_faster() -> bool:
    """Time a small matmul in float32 and bfloat16 once; True where bfloat16 has hardware help."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, 512, generator=gen)
    b = torch.randn(512, 4096, generator=gen)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up: first calls pick kernels
        start = time.perf_counter()
        for _ in range(3):
            x @ y
        timings[dtype] = time.perf_counter() - start
    return timings[torch.bfloat16] < 0.7 * timings[torch.float32]


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if _cpu_bfloat16_is_faster() else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
        precision
    ]


def _error_bound(dtype: torch.dtype, dim: int) -> float:
    """Upper bound on |low-precision dot - exact dot| for unit vectors.

    Rounding both inputs costs at most 2u, rounding the output at most u (u = unit roundoff:
    2^-8 for bfloat16, 2^-11 for float16), accumulating D products in float32 at most D * 2^-24;
    one more u and doubling the last term leave headroom for subnormals.
    """
    unit = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}[dtype]
    return 4 * unit + dim * 2.0**-23


@contextlib.contextmanager
def _full_precision_reductions(device: torch.device) -> Iterator[None]:
    """On CUDA, keep half-precision matmuls from reducing partial sums in half precision."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    saved = (
        matmul.allow_fp16_reduced_precision_reduction,
        matmul.allow_bf16_reduced_precision_reduction,
    )
    matmul.allow_fp16_reduced_precision_reduction = False
    matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        (
            matmul.allow_fp16_reduced_precision_reduction,
            matmul.allow_bf16_reduced_precision_reduction,
        ) = saved


def _exact_topk(
    queries: torch.Tensor, feats: torch.Tensor, rows: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k in float32 of queries (B, D) against all feats (N, D), self (rows) excluded."""
    sims = queries @ feats.T
    sims[torch.arange(rows.numel(), device=sims.device), rows] = -float("inf")
    return torch.topk(sims, k, dim=1, largest=True, sorted=True)


def knn_cosine(
    features: np.ndarray | torch.Tensor,
    *,
    k: int = 10,
    block_size: int | None = None,
    device: DevicePreference | str | torch.device = "auto",
    precision: Precision = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by cosine similarity, excluding each item itself.

    Rows are L2-normalised; each block of B query rows is multiplied with all N rows and
    reduced with torch.topk, so memory stays O(B * N) and no N x N matrix is ever held.

    With a half precision (float16 / bfloat16) the block product only shortlists candidates:
    the top max(4k, 64) by the fast product are re-scored in float32, and a row is accepted when
    its k-th exact similarity beats the shortlist's last fast similarity by more than the
    rounding-error bound, which proves no item outside the shortlist could enter the top k. Rows
    that fail the proof are recomputed in float32. The result is therefore the float32 answer
    whatever the precision; half precision only makes it faster.

    A row of zeros has similarity 0 to everything. Ties are broken by torch.topk.

    Args:
        features: (N, D) float array or tensor; N >= k + 1.
        k: neighbours per item.
        block_size: query rows per block; None chooses from free memory (auto_block_size).
        device: see pick_device.
        precision: product dtype for the shortlist. "auto" is float16 on CUDA, and on CPU
            bfloat16 where a quick timing shows hardware support, else float32.

    Returns:
        indices (N, k) int64 and similarities (N, k) float32, most similar first.

    Raises:
        ValueError: if features is not 2-D finite numeric, k >= N, or an option is invalid.
    """
    k = check_positive_int(k, name="k")
    check_choice(precision, name="precision", choices=("auto", "float32", "float16", "bfloat16"))
    if block_size is not None:
        block_size = check_positive_int(block_size, name="block_size")
    dev = pick_device(device)
    if isinstance(features, torch.Tensor):
        feats = features.detach()
    else:
        arr = np.asarray(features)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"features must be numeric, got dtype {arr.dtype}")
        feats = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if feats.ndim != 2 or feats.shape[1] == 0:
        raise ValueError(f"features must be 2-D (N, D), got shape {tuple(feats.shape)}")
    n, dim = int(feats.shape[0]), int(feats.shape[1])
    if n < k + 1:
        raise ValueError(f"k must be less than the number of items N={n}, got k={k}")
    if not torch.isfinite(feats).all():
        raise ValueError("features must be finite, got NaN or inf")

    dtype = _resolve_precision(precision, dev)
    feats = torch.nn.functional.normalize(feats.to(device=dev, dtype=torch.float32), dim=1)
    shortlist = min(n - 1, max(4 * k, 64))
    fast = feats.to(dtype) if dtype != torch.float32 and shortlist > k else None
    if block_size is None:
        element_bytes = 2 if fast is not None else 4
        block_size = auto_block_size(n, device=dev, element_bytes=element_bytes)

    out_idx = np.empty((n, k), dtype=np.int64)
    out_sim = np.empty((n, k), dtype=np.float32)
    with torch.inference_mode(), _full_precision_reductions(dev):
        for start in range(0, n, block_size):
            stop = min(n, start + block_size)
            rows = torch.arange(start, stop, device=dev)
            queries = feats[start:stop]
            if fast is None:
                top_sim, top_idx = _exact_topk(queries, feats, rows, k)
            else:
                top_sim, top_idx = _shortlist_topk(queries, feats, fast, rows, k, shortlist, dim)
            out_idx[start:stop] = top_idx.cpu().numpy()
            out_sim[start:stop] = top_sim.float().cpu().numpy()
    return out_idx, out_sim


def _shortlist_topk(
    queries: torch.Tensor,
    feats: torch.Tensor,
    fast: torch.Tensor,
    rows: torch.Tensor,
    k: int,
    shortlist: int,
    dim: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k via a half-precision shortlist, re-scored in float32 and proven complete."""
    b = rows.numel()
    local = torch.arange(b, device=queries.device)
    approx = fast[rows] @ fast.T
    approx[local, rows] = -float("inf")
    approx_sim, cand = torch.topk(approx, shortlist, dim=1, largest=True, sorted=True)
    del approx
    exact = torch.bmm(feats[cand], queries.unsqueeze(2)).squeeze(2)
    top_sim, pos = torch.topk(exact, k, dim=1, largest=True, sorted=True)
    top_idx = torch.gather(cand, 1, pos)
    proven = top_sim[:, -1] >= approx_sim[:, -1].float() + _error_bound(fast.dtype, dim)
    redo = torch.nonzero(~proven).squeeze(1)
    if redo.numel() > 0:
        redo_sim, redo_idx = _exact_topk(queries[redo], feats, rows[redo], k)
        top_sim[redo] = redo_sim
        top_idx[redo] = redo_idx
    return top_sim, top_idx
