"""Built-in feature path: a small CNN trained briefly on the items' own images.

Training stops in the early-learning regime (1-2 epochs), before the network memorises wrong
labels, so its penultimate features and softmax outputs still reflect the clean majority.
Complementary labels ("this image is NOT class j", as CLImage collected) train the same network
with a complementary-label loss instead of cross-entropy:

- "scl_nl": -log(1 - p_cl), the negative-learning surrogate of Chou et al., "Unbiased Risk
  Estimators Can Mislead: A Case Study of Learning with Complementary Labels" (ICML 2020);
- "forward": forward correction, -log((p @ T)[cl]) with T[i][j] = P(cl = j | true = i),
  Yu et al., "Learning with Biased Complementary Labels" (ECCV 2018); uniform T by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from curation.engine._checks import as_labels, check_choice, check_positive_int
from curation.engine.knn import DevicePreference, pick_device

Loss = Literal["cross_entropy", "scl_nl", "forward"]
ComplementaryLabels = Sequence[Sequence[int]] | tuple[np.ndarray, np.ndarray]

_LOSSES = ("cross_entropy", "scl_nl", "forward")
_STATS_SAMPLE = 10_000


class SmallConvNet(nn.Module):
    """A four-convolution network for small images; penultimate features of size feature_dim.

    Input: (B, C, H, W) float in [0, 1]; the network normalises with its own per-channel
    pixel_mean / pixel_std buffers (set from the training images) and is size-agnostic thanks
    to global average pooling.
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self, num_classes: int, *, in_channels: int = 3, width: int = 32, feature_dim: int = 128
    ) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(4 * width, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)
        self.register_buffer("pixel_mean", torch.zeros(in_channels))
        self.register_buffer("pixel_std", torch.ones(in_channels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim) for images (B, C, H, W) in [0, 1]."""
        mean = self.pixel_mean.view(1, -1, 1, 1)
        std = self.pixel_std.view(1, -1, 1, 1)
        return self.embed(self.body((x - mean) / std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) for images (B, C, H, W) in [0, 1]."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class TrainedFeatures:
    """Outputs of the built-in feature path.

    Attributes:
        features: (N, feature_dim) float32 penultimate-layer features.
        probs: (N, K) float32 softmax outputs (in-sample: the network saw these items).
        epoch_losses: (epochs,) float64 mean training loss of each epoch.
        model: the trained SmallConvNet, in eval mode, on the CPU.
    """

    features: np.ndarray
    probs: np.ndarray
    epoch_losses: np.ndarray
    model: SmallConvNet


def check_images(images: np.ndarray, *, name: str = "images") -> np.ndarray:
    """Validate a uint8 image array and return it as (N, H, W, C).

    Args:
        images: (N, H, W, C) or (N, H, W) uint8.
        name: parameter name used in error messages.

    Raises:
        ValueError: if the dtype is not uint8 or the shape is not 3-D / 4-D with N >= 1.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[0] == 0 or min(arr.shape[1:]) == 0:
        raise ValueError(f"{name} must be (N, H, W, C) or (N, H, W) with N >= 1, got {arr.shape}")
    if arr.shape[3] > 4:
        raise ValueError(f"{name} must be channels-last with C <= 4, got shape {arr.shape}")
    return arr


def images_to_tensor(batch: np.ndarray, *, size: int | None, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, C) to float (B, C, size, size) in [0, 1] on device, resized bilinearly."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if size is not None and (x.shape[2] != size or x.shape[3] != size):
        shrinking = x.shape[2] > size or x.shape[3] > size
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
        )
    return x


def complementary_matrix(
    complementary: ComplementaryLabels, *, num_items: int, num_classes: int
) -> np.ndarray:
    """Count complementary labels per item.

    Args:
        complementary: either a list (N entries) of lists of class ids, one per collected
            complementary label (CLImage's cl_labels), or a pair (items (V,), labels (V,)) of
            int arrays, one row per vote.
        num_items: N.
        num_classes: K.

    Returns:
        (N, K) float32, entry [n, j] = how often item n was marked "not j".

    Raises:
        ValueError: on a wrong length, a class outside 0..K-1 or an item outside 0..N-1.
    """
    counts = np.zeros((num_items, num_classes), dtype=np.float32)
    if (
        isinstance(complementary, tuple)
        and len(complementary) == 2
        and all(isinstance(part, np.ndarray) for part in complementary)
    ):
        items = as_labels(complementary[0], name="complementary[0] (items)")
        cls = as_labels(complementary[1], name="complementary[1] (labels)", num_classes=num_classes)
        if items.shape != cls.shape:
            raise ValueError(
                f"complementary item and label arrays must match, got {items.shape} and {cls.shape}"
            )
        if int(items.max()) >= num_items:
            raise ValueError(
                f"complementary items must lie in 0..{num_items - 1}, got {items.max()}"
            )
        np.add.at(counts, (items, cls), 1.0)
        return counts
    if len(complementary) != num_items:
        raise ValueError(
            f"complementary must have one entry per item ({num_items}), got {len(complementary)}"
        )
    for item, entry in enumerate(complementary):
        for cls_id in entry:
            if not 0 <= int(cls_id) < num_classes:
                raise ValueError(
                    f"complementary[{item}] must hold classes in 0..{num_classes - 1}, got {cls_id}"
                )
            counts[item, int(cls_id)] += 1.0
    return counts


def uniform_transition(num_classes: int) -> np.ndarray:
    """T[i][j] = P(cl = j | true = i) when the complementary label is uniform over the others."""
    t = np.full((num_classes, num_classes), 1.0 / (num_classes - 1))
    np.fill_diagonal(t, 0.0)
    return t


def _loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str,
    transition: torch.Tensor | None,
) -> torch.Tensor:
    logits = logits.float()
    if loss == "cross_entropy":
        return F.cross_entropy(logits, targets)
    weights = targets / targets.sum(dim=1, keepdim=True).clamp_min(1.0)
    if loss == "scl_nl":
        probs = logits.softmax(dim=1)
        per_class = -torch.log1p(-probs.clamp(max=1.0 - 1e-6))
    else:
        if transition is None:
            raise ValueError("transition must be given when loss is 'forward', got None")
        per_class = -torch.log((logits.softmax(dim=1) @ transition).clamp_min(1e-12))
    return (weights * per_class).sum(dim=1).mean()


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[np.ndarray]:
    """Row indices per batch: shuffled by generator, or in order when it is None."""
    order = np.arange(n) if generator is None else torch.randperm(n, generator=generator).numpy()
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _pixel_stats(images: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    pick = rng.choice(images.shape[0], size=min(images.shape[0], _STATS_SAMPLE), replace=False)
    sample = images[np.sort(pick)].astype(np.float64) / 255.0
    mean = sample.mean(axis=(0, 1, 2))
    std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-3)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def _prepare_targets(
    n: int,
    labels: np.ndarray | None,
    complementary: ComplementaryLabels | None,
    loss: str,
    num_classes: int | None,
    transition: np.ndarray | None,
) -> tuple[np.ndarray, int, torch.Tensor | None]:
    """Targets per item: (N,) int64 for cross-entropy, (N, K) counts for complementary losses."""
    check_choice(loss, name="loss", choices=_LOSSES)
    if loss == "cross_entropy":
        if labels is None:
            raise ValueError("labels must be given when loss is 'cross_entropy', got None")
        given = as_labels(labels)
        if given.size != n:
            raise ValueError(f"labels must have {n} entries to match images, got {given.size}")
        k = num_classes if num_classes is not None else max(2, int(given.max()) + 1)
        if int(given.max()) >= k:
            raise ValueError(f"labels must lie in 0..{k - 1}, got {int(given.max())}")
        return given, k, None
    if complementary is None:
        raise ValueError(f"complementary must be given when loss is {loss!r}, got None")
    if num_classes is None:
        raise ValueError(f"num_classes must be given when loss is {loss!r}, got None")
    k = check_positive_int(num_classes, name="num_classes", minimum=2)
    counts = complementary_matrix(complementary, num_items=n, num_classes=k)
    trans = None
    if loss == "forward":
        t = uniform_transition(k) if transition is None else np.asarray(transition, np.float64)
        if t.shape != (k, k) or not np.all(np.isfinite(t)) or t.min() < 0:
            raise ValueError(f"transition must be a ({k}, {k}) non-negative matrix, got {t.shape}")
        if not np.allclose(t.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError(f"transition rows must sum to 1, got sums {t.sum(axis=1).round(4)}")
        trans = torch.tensor(t, dtype=torch.float32)
    return counts, k, trans


def train_small_convnet(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    complementary: ComplementaryLabels | None = None,
    loss: Loss = "cross_entropy",
    transition: np.ndarray | None = None,
    num_classes: int | None = None,
    epochs: int = 2,
    batch_size: int | None = None,
    lr: float = 3e-3,
    size: int = 32,
    width: int = 32,
    feature_dim: int = 128,
    seed: int = 0,
    device: DevicePreference | str | torch.device = "auto",
) -> tuple[SmallConvNet, np.ndarray]:
    """Train a SmallConvNet on the items' images for a few epochs.

    Args:
        images: (N, H, W, C) or (N, H, W) uint8; resized on the fly to size x size.
        labels: (N,) int given labels; used by loss "cross_entropy".
        complementary: complementary labels, see complementary_matrix; used by "scl_nl" and
            "forward".
        loss: "cross_entropy", "scl_nl" or "forward".
        transition: (K, K) float, rows sum to 1, T[i][j] = P(cl = j | true = i) for "forward";
            uniform over the other classes when None.
        num_classes: K; required for the complementary losses, else max(labels) + 1.
        epochs: passes over the data; 1-2 stays in the early-learning regime.
        batch_size: None picks N // 64 clipped to 16..64 on CPU, 16..512 on CUDA.
        lr: peak learning rate of Adam with a one-cycle schedule.
        size: side of the square input the images are resized to.
        width: channels of the first convolution.
        feature_dim: size of the penultimate features.
        seed: seeds weights and shuffling; CPU runs are deterministic for a given seed.
        device: see pick_device; CUDA trains under autocast.

    Returns:
        The model (eval mode, on the CPU) and (epochs,) float64 mean loss per epoch.

    Raises:
        ValueError: on invalid images, labels, complementary labels or options.
    """
    imgs = check_images(images)
    n = imgs.shape[0]
    epochs = check_positive_int(epochs, name="epochs")
    size = check_positive_int(size, name="size")
    targets, k, trans = _prepare_targets(n, labels, complementary, loss, num_classes, transition)
    dev = pick_device(device)
    if batch_size is None:
        # Small sets still get about 64 steps per epoch, so 1-2 epochs learn the easy patterns.
        batch_size = min(512 if dev.type == "cuda" else 64, max(16, n // 64))
    batch_size = check_positive_int(batch_size, name="batch_size")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")

    torch.manual_seed(seed)
    model = SmallConvNet(k, in_channels=imgs.shape[3], width=width, feature_dim=feature_dim)
    mean, std = _pixel_stats(imgs, seed)
    model.pixel_mean.copy_(mean)
    model.pixel_std.copy_(std)
    model.to(dev)
    trans_dev = trans.to(dev) if trans is not None else None
    steps_per_epoch = max(1, sum(1 for rows in _batches(n, batch_size, None) if len(rows) > 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.25
    )
    use_scaler = dev.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    generator = torch.Generator().manual_seed(seed)
    target_tensor = torch.from_numpy(targets)
    losses = np.zeros(epochs)
    model.train()
    for epoch in range(epochs):
        total, seen = 0.0, 0
        for rows in _batches(n, batch_size, generator):
            if len(rows) < 2:  # BatchNorm needs two items
                continue
            x = images_to_tensor(imgs[np.sort(rows)], size=size, device=dev)
            y = target_tensor[np.sort(rows)].to(dev)
            with _autocast(dev):
                logits = model(x)
            batch_loss = _loss(logits, y, loss=loss, transition=trans_dev)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(batch_loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if schedule.last_epoch + 1 < schedule.total_steps:
                schedule.step()
            total += float(batch_loss.detach()) * len(rows)
            seen += len(rows)
        losses[epoch] = total / max(seen, 1)
    model.eval()
    return model.cpu(), losses


def embed_images(
    model: SmallConvNet,
    images: np.ndarray,
    *,
    size: int = 32,
    batch_size: int | None = None,
    device: DevicePreference | str | torch.device = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features and softmax outputs of a SmallConvNet for every image.

    Args:
        model: a trained SmallConvNet.
        images: (N, H, W, C) or (N, H, W) uint8.
        size: input side the images are resized to (as in training).
        batch_size: None picks 1024 on CUDA, 256 on CPU.
        device: see pick_device.

    Returns:
        features (N, feature_dim) float32 and probs (N, K) float32.
    """
    imgs = check_images(images)
    dev = pick_device(device)
    batch_size = batch_size or (1024 if dev.type == "cuda" else 256)
    model = model.to(dev).eval()
    feats, probs = [], []
    with torch.inference_mode():
        for rows in _batches(imgs.shape[0], batch_size, None):
            x = images_to_tensor(imgs[rows], size=size, device=dev)
            with _autocast(dev):
                f = model.features(x)
                logits = model.head(f)
            feats.append(f.float().cpu().numpy())
            probs.append(logits.float().softmax(dim=1).cpu().numpy())
    model.cpu()
    return np.concatenate(feats).astype(np.float32), np.concatenate(probs).astype(np.float32)


def early_learning_features(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    complementary: ComplementaryLabels | None = None,
    loss: Loss = "cross_entropy",
    transition: np.ndarray | None = None,
    num_classes: int | None = None,
    epochs: int = 2,
    batch_size: int | None = None,
    lr: float = 3e-3,
    size: int = 32,
    seed: int = 0,
    device: DevicePreference | str | torch.device = "auto",
) -> TrainedFeatures:
    """Train a SmallConvNet briefly on all items and embed them (see train_small_convnet).

    Returns:
        TrainedFeatures with (N, 128) features, (N, K) in-sample softmax outputs, and losses.
    """
    model, losses = train_small_convnet(
        images,
        labels,
        complementary=complementary,
        loss=loss,
        transition=transition,
        num_classes=num_classes,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        size=size,
        seed=seed,
        device=device,
    )
    feats, probs = embed_images(model, images, size=size, device=device)
    return TrainedFeatures(features=feats, probs=probs, epoch_losses=losses, model=model)


def _fold_ids(n: int, folds: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
    """Fold of each item: shuffled, then dealt round-robin within each class (stratified)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if labels is not None:
        order = order[np.argsort(labels[order], kind="stable")]
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % folds
    return fold


def cross_val_probs(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    complementary: ComplementaryLabels | None = None,
    loss: Loss = "cross_entropy",
    transition: np.ndarray | None = None,
    num_classes: int | None = None,
    folds: int = 5,
    epochs: int = 2,
    size: int = 32,
    seed: int = 0,
    device: DevicePreference | str | torch.device = "auto",
) -> np.ndarray:
    """Out-of-sample softmax probabilities by K-fold cross-validation of a SmallConvNet.

    Each item's probabilities come from a network that never saw it, as confident learning
    needs. Folds are stratified by the given label when labels are given.

    Args:
        images: (N, H, W, C) or (N, H, W) uint8.
        labels: (N,) int given labels (for cross_entropy, and for stratifying).
        complementary, loss, transition, num_classes, epochs, size, seed, device: as for
            train_small_convnet.
        folds: number of folds, 2..N.

    Returns:
        (N, K) float32 probabilities, rows sum to 1.

    Raises:
        ValueError: on invalid inputs or folds outside 2..N.
    """
    imgs = check_images(images)
    n = imgs.shape[0]
    folds = check_positive_int(folds, name="folds", minimum=2)
    if folds > n:
        raise ValueError(f"folds must be at most N={n}, got {folds}")
    targets, k, _ = _prepare_targets(n, labels, complementary, loss, num_classes, transition)
    strat = targets if loss == "cross_entropy" else None
    fold = _fold_ids(n, folds, strat, seed)
    out = np.zeros((n, k), dtype=np.float32)
    for f in range(folds):
        train = np.flatnonzero(fold != f)
        held = np.flatnonzero(fold == f)
        sub_comp: ComplementaryLabels | None = None
        if loss != "cross_entropy":
            # Re-express the training fold's counts as one (item, class) row per vote.
            counts = targets[train].astype(np.int64)
            sub_comp = (
                np.repeat(np.repeat(np.arange(train.size), k), counts.ravel()),
                np.repeat(np.tile(np.arange(k), train.size), counts.ravel()),
            )
        model, _ = train_small_convnet(
            imgs[train],
            targets[train] if loss == "cross_entropy" else None,
            complementary=sub_comp,
            loss=loss,
            transition=transition,
            num_classes=k,
            epochs=epochs,
            size=size,
            seed=seed + f,
            device=device,
        )
        _, probs = embed_images(model, imgs[held], size=size, device=device)
        out[held] = probs
    return out
