"""Curation engine: find likely label errors from model outputs, features and crowd evidence.

Plain functions over numpy arrays and torch tensors; no Django. Importing this package imports
torch, so web code must import it only inside a curation task's body.
"""

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
from curation.engine.knn import knn_cosine, pick_device
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
