"""Predicted probabilities for a whole dataset, for exports that need them (the label-errors
release): the latest finished run's supplied probabilities, else a cross-validated run of the
built-in network over every item. Registered with the annotation app in CurationConfig.ready().
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from annotation.models import Dataset, Item

from .exceptions import RunInputError
from .models import CurationRun

logger = logging.getLogger(__name__)

# A cross-validated export run: small and quick, like a default run of the built-in source.
CROSS_VAL_FOLDS = 3
CROSS_VAL_EPOCHS = 2
CROSS_VAL_SIZE = 32


def _latest_run_probs(dataset: Dataset, items: list[Item], say) -> np.ndarray | None:
    """The newest finished pred_probs run whose file still has a row for every item."""
    runs = CurationRun.objects.filter(
        dataset=dataset,
        status=CurationRun.Status.DONE,
        feature_source=CurationRun.FeatureSource.PRED_PROBS,
    ).order_by("-finished_at", "-id")
    rows = [item.index for item in items]
    for run in runs:
        try:
            arr = np.load(run.feature_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            say(
                f"curation run {run.pk}: its probabilities {run.feature_path!r} cannot be read "
                f"({exc}); skipped"
            )
            continue
        if arr.ndim != 2 or arr.shape[0] <= max(rows) or arr.shape[1] != dataset.num_classes:
            say(
                f"curation run {run.pk}: its probabilities have shape {arr.shape}, not a row "
                f"per item and {dataset.num_classes} columns; skipped"
            )
            continue
        say(f"using the predicted probabilities of curation run {run.pk} ({run.feature_path})")
        return np.asarray(arr[rows], dtype=np.float64)
    return None


def _cross_validated_probs(dataset: Dataset, items: list[Item], say) -> np.ndarray | None:
    from . import engine
    from .services.inputs import _load_images

    labels = np.asarray(
        [-1 if item.given_label is None else item.given_label for item in items], np.int64
    )
    if len(items) < CROSS_VAL_FOLDS or (labels < 0).any():
        say(
            "no curation run to take probabilities from, and the dataset is too small or not "
            "fully labelled for a cross-validated one"
        )
        return None
    device = engine.pick_device("auto")
    say(
        f"no finished curation run with probabilities: training the built-in network with "
        f"{CROSS_VAL_FOLDS}-fold cross-validation on the {len(items)} given labels "
        f"({CROSS_VAL_EPOCHS} epochs, {CROSS_VAL_SIZE}px, on {device})"
    )
    try:
        images = _load_images(items, CROSS_VAL_SIZE)
    except RunInputError as exc:
        raise ValueError(str(exc)) from None
    probs = engine.cross_val_probs(
        images,
        labels,
        num_classes=dataset.num_classes,
        folds=CROSS_VAL_FOLDS,
        epochs=CROSS_VAL_EPOCHS,
        size=CROSS_VAL_SIZE,
        seed=0,
        device=device,
    )
    say("cross-validated probabilities ready")
    return np.asarray(probs, dtype=np.float64)


def dataset_probabilities(
    dataset: Dataset, progress: Callable[[str], None], *, train: bool = True
) -> np.ndarray | None:
    """(N, K) out-of-sample probabilities, row = item in index order, or None if none can be
    had; ``progress`` is told which source is used and what is being computed. With
    ``train=False`` only a finished run's probabilities are looked up (no cross-validation)."""
    items = list(Item.objects.filter(dataset=dataset).order_by("index"))
    if not items:
        return None
    found = _latest_run_probs(dataset, items, progress)
    if found is not None or not train:
        return found
    return _cross_validated_probs(dataset, items, progress)
