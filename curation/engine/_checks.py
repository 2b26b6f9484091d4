"""Input checks shared by the engine's public functions; each raises ValueError naming the input."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_labels(labels: Any, *, name: str = "labels", num_classes: int | None = None) -> np.ndarray:
    """Return labels as a 1-D int64 array, checking integrality and range 0..K-1."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(
                f"{name} must hold integers, got non-integer value(s) of dtype {arr.dtype}"
            )
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    low, high = int(out.min()), int(out.max())
    if low < 0:
        raise ValueError(f"{name} must be >= 0, got {low}")
    if num_classes is not None and high >= num_classes:
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}, got {high}")
    return out


def as_probs(pred_probs: Any, *, name: str = "pred_probs", atol: float = 1e-3) -> np.ndarray:
    """Return pred_probs as a 2-D float64 array of finite, non-negative rows summing to one."""
    arr = np.asarray(pred_probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, K), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ValueError(f"{name} needs N >= 1 rows and K >= 2 columns, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.argwhere(~finite)[0, 0])
        raise ValueError(f"{name} must be finite, got NaN or inf in row {row}")
    if out.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {float(out.min())}")
    sums = out.sum(axis=1)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} rows must sum to 1, got {float(sums[row])} in row {row}")
    return out


def check_same_length(n: int, arr: np.ndarray, *, name: str, expected_from: str) -> None:
    """Raise unless arr has n rows."""
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} must have {n} rows to match {expected_from}, got {arr.shape[0]} "
            f"(shape {arr.shape})"
        )


def check_fraction(value: float, *, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """Raise unless low <= value <= high."""
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (low <= val <= high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return val


def check_choice(value: Any, *, name: str, choices: tuple[str, ...]) -> str:
    """Raise unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def check_positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    """Raise unless value is an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
