"""Curation engine: find likely label errors from model outputs, features and crowd evidence.

Plain functions over numpy arrays and torch tensors; no Django. The public names load lazily, on
first use, from the module that defines them: work on given probabilities (confident learning,
low confidence) imports numpy only, and torch loads only with a detector or model that needs it.
Web code still imports this package only inside a curation task's body.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curation.engine.combine import combine_issues, find_label_issues, missing_inputs
    from curation.engine.confident import (
        confident_joint,
        find_issues_confident_learning,
        find_issues_low_confidence,
    )
    from curation.engine.features import (
        features_from_state_dict,
        features_from_torchscript,
        load_features_npy,
    )
    from curation.engine.issues import ConfidentLearningIssues, KnnVoteIssues, LabelIssues
    from curation.engine.knn import device_name, knn_cosine, pick_device
    from curation.engine.knn_vote import find_issues_knn
    from curation.engine.training import (
        SmallConvNet,
        TrainedFeatures,
        complementary_matrix,
        cross_val_probs,
        early_learning_features,
        embed_images,
        train_small_convnet,
    )

# Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    "combine_issues": "combine",
    "find_label_issues": "combine",
    "missing_inputs": "combine",
    "confident_joint": "confident",
    "find_issues_confident_learning": "confident",
    "find_issues_low_confidence": "confident",
    "features_from_state_dict": "features",
    "features_from_torchscript": "features",
    "load_features_npy": "features",
    "ConfidentLearningIssues": "issues",
    "KnnVoteIssues": "issues",
    "LabelIssues": "issues",
    "knn_cosine": "knn",
    "device_name": "knn",
    "pick_device": "knn",
    "find_issues_knn": "knn_vote",
    "SmallConvNet": "training",
    "TrainedFeatures": "training",
    "complementary_matrix": "training",
    "cross_val_probs": "training",
    "early_learning_features": "training",
    "embed_images": "training",
    "train_small_convnet": "training",
}

__all__ = [
    "ConfidentLearningIssues",
    "KnnVoteIssues",
    "LabelIssues",
    "SmallConvNet",
    "TrainedFeatures",
    "combine_issues",
    "complementary_matrix",
    "confident_joint",
    "cross_val_probs",
    "device_name",
    "early_learning_features",
    "embed_images",
    "features_from_state_dict",
    "features_from_torchscript",
    "find_issues_confident_learning",
    "find_issues_knn",
    "find_issues_low_confidence",
    "find_label_issues",
    "knn_cosine",
    "load_features_npy",
    "missing_inputs",
    "pick_device",
    "train_small_convnet",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
