"""Pluggable feature sources: a saved array, or a local torch model run over the images.

The built-in source (a SmallConvNet trained on the items) lives in training.py.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curation.engine.knn import DevicePreference, pick_device
from curation.engine.training import check_images, images_to_tensor


def _existing_file(path: str | Path) -> Path:
    """Return path as a Path, raising ValueError unless it names an existing file."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"path {str(file)!r} does not exist or is not a file")
    return file


def load_features_npy(
    path: str | Path, *, num_items: int | None = None, mmap: bool = False
) -> np.ndarray:
    """Load an (N, D) feature matrix saved with numpy.save.

    Args:
        path: the .npy file.
        num_items: expected N; checked when given.
        mmap: memory-map instead of reading (for matrices larger than memory).

    Returns:
        (N, D) float array (float32 unless mmap keeps the stored float dtype).

    Raises:
        ValueError: if the file is missing or unreadable, is not a 2-D numeric array, has a
            NaN or inf, or has the wrong N.
    """
    file = _existing_file(path)
    try:
        arr = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"path {str(file)!r} is not a readable .npy array: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"features in {str(file)!r} must be 2-D (N, D), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"features in {str(file)!r} must be numeric, got dtype {arr.dtype}")
    if num_items is not None and arr.shape[0] != num_items:
        raise ValueError(
            f"features in {str(file)!r} must have num_items={num_items} rows, got {arr.shape[0]}"
        )
    if not mmap:
        arr = arr.astype(np.float32, copy=False)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"features in {str(file)!r} must be finite, got NaN or inf")
    return arr


def _preprocess(
    images: np.ndarray | torch.Tensor,
    rows: np.ndarray,
    *,
    size: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device,
) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[torch.from_numpy(rows)].to(device)
    x = images_to_tensor(images[rows], size=size, device=device)
    if mean is not None:
        x = x - torch.tensor(mean, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    if std is not None:
        x = x / torch.tensor(std, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    return x


def _check_model_images(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    if isinstance(images, torch.Tensor):
        if images.ndim < 2 or images.shape[0] == 0:
            raise ValueError(f"images tensor must be (N, ...) with N >= 1, got {images.shape}")
        return images
    return check_images(images)


def _run_model(
    call: Any,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int,
    size: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    device: torch.device,
    capture: list[torch.Tensor] | None = None,
) -> np.ndarray:
    n = int(images.shape[0])
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(n, start + batch_size))
            x = _preprocess(images, rows, size=size, mean=mean, std=std, device=device)
            ctx = (
                torch.autocast("cuda", dtype=torch.bfloat16)
                if device.type == "cuda"
                else torch.autocast("cpu", enabled=False)
            )
            with ctx:
                y = call(x)
            if capture is not None:
                y = capture[-1]
                capture.clear()
            if isinstance(y, (tuple, list)):
                y = y[0]
            out.append(y.float().flatten(1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def features_from_torchscript(
    path: str | Path,
    images: np.ndarray | torch.Tensor,
    *,
    method: str = "forward",
    batch_size: int = 256,
    size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    device: DevicePreference | str | torch.device = "auto",
) -> np.ndarray:
    """Run a saved TorchScript model over the images and return its outputs as features.

    Args:
        path: file written by torch.jit.save.
        images: (N, H, W, C) or (N, H, W) uint8, converted to float (N, C, H, W) in [0, 1],
            resized to size x size when size is given and normalised by mean / std; or a float
            tensor (N, ...) already in the model's input form, passed through as is.
        method: the scripted method to call, e.g. an exported "features" for the penultimate
            layer; "forward" gives the model's output.
        batch_size: images per forward pass; no gradients are kept.
        size: side to resize images to; None keeps their size.
        mean, std: per-channel normalisation applied after scaling to [0, 1].
        device: see pick_device; CUDA runs under autocast.

    Returns:
        (N, F) float32, the method's output flattened per item.

    Raises:
        ValueError: if the file is missing or not TorchScript, the method does not exist, or the
            images are invalid.
    """
    file = _existing_file(path)
    imgs = _check_model_images(images)
    dev = pick_device(device)
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated upstream, yet it is how many lab models are shipped.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(file), map_location=dev)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"path {str(file)!r} is not a TorchScript model: {exc}") from None
    model.eval()
    call = getattr(model, method, None)
    if call is None:
        raise ValueError(f"method {method!r} is not a method of the model in {str(file)!r}")
    return _run_model(call, imgs, batch_size=batch_size, size=size, mean=mean, std=std, device=dev)


def _import_class(module_path: str) -> type[torch.nn.Module]:
    module_name, sep, class_name = module_path.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"module_path must look like 'pkg.mod:ClassName', got {module_path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"module_path {module_path!r} cannot be imported: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"module_path {module_path!r} does not name a torch.nn.Module class")
    return cls


def features_from_state_dict(
    path: str | Path,
    module_path: str,
    images: np.ndarray | torch.Tensor,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    layer: str | None = None,
    layer_input: bool = False,
    batch_size: int = 256,
    size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    device: DevicePreference | str | torch.device = "auto",
) -> np.ndarray:
    """Build a model class, load a saved state dict, and return its features for the images.

    Args:
        path: file written by torch.save(model.state_dict()) (a dict holding "state_dict" is
            accepted too); loaded with weights_only=True, so no code in it runs.
        module_path: "pkg.mod:ClassName" of a torch.nn.Module subclass.
        images: as for features_from_torchscript.
        model_kwargs: keyword arguments for the class.
        layer: dotted name of a submodule whose output (or input, with layer_input) is taken,
            e.g. layer="fc", layer_input=True for a ResNet's penultimate features; None takes the
            model's output.
        layer_input: take the submodule's first input instead of its output.
        batch_size, size, mean, std, device: as for features_from_torchscript.

    Returns:
        (N, F) float32 features.

    Raises:
        ValueError: if the file, class, state dict or layer does not fit, or images are invalid.
    """
    file = _existing_file(path)
    imgs = _check_model_images(images)
    cls = _import_class(module_path)
    try:
        model = cls(**dict(model_kwargs or {}))
    except TypeError as exc:
        raise ValueError(f"model_kwargs do not fit {module_path!r}: {exc}") from None
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ValueError(f"path {str(file)!r} is not a loadable state dict: {exc}") from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"path {str(file)!r} does not hold a state dict, got {type(state)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"state dict in {str(file)!r} does not fit {module_path!r}: {exc}"
        ) from None
    dev = pick_device(device)
    model.to(dev).eval()
    capture: list[torch.Tensor] | None = None
    if layer is not None:
        try:
            sub = model.get_submodule(layer)
        except AttributeError:
            raise ValueError(f"layer {layer!r} is not a submodule of {module_path!r}") from None
        capture = []

        def hook(_mod: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
            capture.append(inputs[0] if layer_input else output)  # type: ignore[union-attr]

        sub.register_forward_hook(hook)
    return _run_model(
        model,
        imgs,
        batch_size=batch_size,
        size=size,
        mean=mean,
        std=std,
        device=dev,
        capture=capture,
    )
