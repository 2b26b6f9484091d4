"""Curation engine on seeded synthetic data, on the CPU, without a database."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from curation.engine import (
    SmallConvNet,
    combine_issues,
    complementary_matrix,
    confident_joint,
    cross_val_probs,
    early_learning_features,
    features_from_state_dict,
    features_from_torchscript,
    find_issues_confident_learning,
    find_issues_knn,
    find_issues_low_confidence,
    find_label_issues,
    knn_cosine,
    load_features_npy,
    missing_inputs,
    pick_device,
    train_small_convnet,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = next(
    (
        base / "fixtures" / "label-errors"
        for base in (REPO / "shared", REPO.parent / "shared")
        if (base / "fixtures" / "label-errors").is_dir()
    ),
    None,
)


def _clusters(n_per_class=100, k=4, dim=16, flip=0.1, seed=0):
    """Well-separated Gaussian clusters with a planted share of labels flipped."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 4.0
    true = np.repeat(np.arange(k), n_per_class)
    feats = centers[true] + rng.normal(size=(true.size, dim))
    noisy = true.copy()
    planted = rng.choice(true.size, size=int(flip * true.size), replace=False)
    noisy[planted] = (true[planted] + rng.integers(1, k, size=planted.size)) % k
    mask = np.zeros(true.size, dtype=bool)
    mask[planted] = True
    return feats.astype(np.float32), true, noisy, mask


@pytest.fixture(scope="module")
def clusters():
    feats, true, noisy, planted = _clusters()
    probs = cross_val_predict(
        LogisticRegression(max_iter=500), feats, noisy, cv=5, method="predict_proba"
    )
    return feats, true, noisy, planted, probs


def _precision_recall(flagged, planted):
    hits = int((flagged & planted).sum())
    return hits / max(int(flagged.sum()), 1), hits / int(planted.sum())


def _brute_knn(feats, k):
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(sims, idx, axis=1)


# --- kNN -----------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("block_size", [1, 7, 300])
def test_blockwise_knn_equals_brute_force(precision, block_size):
    feats = np.random.default_rng(1).normal(size=(300, 24)).astype(np.float32)
    idx, sims = knn_cosine(feats, k=5, block_size=block_size, device="cpu", precision=precision)
    want_idx, want_sims = _brute_knn(feats.astype(np.float64), 5)
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)


def test_half_precision_shortlist_falls_back_to_float32_on_near_ties():
    # Directions differing by ~1e-4 are indistinguishable in bfloat16, so the shortlist cannot
    # prove its answer and every row is recomputed in float32: still the exact neighbours.
    rng = np.random.default_rng(2)
    feats = (np.ones((200, 16)) + rng.normal(scale=1e-3, size=(200, 16))).astype(np.float32)
    idx, _ = knn_cosine(feats, k=3, device="cpu", precision="bfloat16", block_size=64)
    exact, _ = knn_cosine(feats, k=3, device="cpu", precision="float32")
    np.testing.assert_array_equal(idx, exact)


def test_knn_excludes_self_but_keeps_duplicates():
    feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    idx, sims = knn_cosine(feats, k=1, device="cpu")
    assert idx[:, 0].tolist() == [1, 0, 3, 2]
    assert sims[0, 0] == pytest.approx(1.0)


def test_pick_device_auto_matches_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"


# --- detectors on planted flips --------------------------------------------------------------


@pytest.mark.parametrize("rule", ["vote", "rank"])
def test_knn_voting_finds_planted_flips(clusters, rule):
    feats, _true, noisy, planted, _probs = clusters
    result = find_issues_knn(feats, noisy, rule=rule, seed=3, device="cpu")
    precision, recall = _precision_recall(result.flagged, planted)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    assert set(result.ranked.tolist()) == set(np.flatnonzero(result.flagged).tolist())
    assert result.noise_rates.mean() == pytest.approx(0.1, abs=0.05)


def test_knn_voting_suggests_the_true_class(clusters):
    feats, true, noisy, planted, _probs = clusters
    result = find_issues_knn(feats, noisy, device="cpu")
    hits = result.flagged & planted
    assert (result.suggested[hits] == true[hits]).mean() >= 0.9


def test_knn_voting_is_seeded(clusters):
    feats, _true, noisy, _planted, _probs = clusters
    first = find_issues_knn(feats, noisy, rounds=5, sample_fraction=0.5, seed=7, device="cpu")
    again = find_issues_knn(feats, noisy, rounds=5, sample_fraction=0.5, seed=7, device="cpu")
    np.testing.assert_array_equal(first.frequency, again.frequency)


@pytest.mark.parametrize(
    "filter_by", ["prune_by_noise_rate", "prune_by_class", "both", "cl_off_diagonal"]
)
def test_confident_learning_finds_planted_flips(clusters, filter_by):
    _feats, true, noisy, planted, probs = clusters
    result = find_issues_confident_learning(probs, noisy, filter_by=filter_by)
    precision, recall = _precision_recall(result.flagged, planted)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    hits = result.flagged & planted
    assert (result.suggested[hits] == true[hits]).all()
    # ranked is most-likely-first by the chosen score
    assert np.all(np.diff(result.score[result.ranked]) <= 0)


def test_combined_finds_planted_flips(clusters):
    feats, _true, noisy, planted, probs = clusters
    result = find_label_issues(noisy, method="combined", pred_probs=probs, features=feats)
    precision, recall = _precision_recall(result.flagged, planted)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    assert result.method == "combined"


def test_confident_joint_on_hand_built_arrays():
    probs = np.array(
        [
            [0.9, 0.1],  # given 0, confidently 0
            [0.7, 0.3],  # given 0, below t_0 = 0.6... mean of (0.9, 0.7, 0.2) = 0.6 -> 0
            [0.2, 0.8],  # given 0, confidently 1: an off-diagonal count
            [0.1, 0.9],  # given 1, confidently 1
            [0.5, 0.5],  # given 1, t_1 = 0.7 -> not confident of 1; 0.5 < t_0 = 0.6
        ]
    )
    labels = np.array([0, 0, 0, 1, 1], dtype=np.uint8)
    joint, calibrated, thresholds, guess = confident_joint(probs, labels)
    np.testing.assert_allclose(thresholds, [0.6, 0.7])
    assert joint.tolist() == [[2, 1], [0, 1]]
    assert guess.tolist() == [0, 0, 1, 1, -1]
    assert calibrated.sum() == pytest.approx(1.0)
    result = find_issues_confident_learning(probs, labels)
    assert result.ranked.tolist() == [2]
    assert result.suggested[2] == 1


def test_low_confidence_flags_the_lowest_share():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.6, 0.4]])
    result = find_issues_low_confidence(probs, np.array([0, 0, 0, 0]), fraction=0.5)
    assert result.ranked.tolist() == [2, 1]
    assert result.suggested.tolist() == [1, 1, 1, 1]


# --- crowd evidence ----------------------------------------------------------------------------


def test_crowd_agreement_suppresses_model_doubt(clusters):
    feats, true, noisy, planted, probs = clusters
    model_only = find_label_issues(noisy, method="combined", pred_probs=probs, features=feats)
    doubted = np.flatnonzero(model_only.flagged)[:5]
    crowd = np.full(noisy.size, -1)
    conf = np.zeros(noisy.size)
    crowd[doubted] = noisy[doubted]  # five workers confirmed the given label
    conf[doubted] = 0.95
    with_crowd = find_label_issues(
        noisy,
        method="combined",
        pred_probs=probs,
        features=feats,
        crowd_labels=crowd,
        crowd_confidence=conf,
    )
    assert not with_crowd.flagged[doubted].any()
    assert np.all(with_crowd.score[doubted] < model_only.score[doubted])
    others = np.setdiff1d(np.arange(noisy.size), doubted)
    np.testing.assert_array_equal(with_crowd.flagged[others], model_only.flagged[others])


def test_weak_crowd_agreement_does_not_suppress(clusters):
    feats, _true, noisy, _planted, probs = clusters
    parts = [find_issues_confident_learning(probs, noisy)]
    doubted = parts[0].ranked[:3]
    crowd = np.full(noisy.size, -1)
    crowd[doubted] = noisy[doubted]
    conf = np.full(noisy.size, 0.5)
    result = combine_issues(parts, noisy, crowd_labels=crowd, crowd_confidence=conf)
    assert result.flagged[doubted].all()


def test_crowd_disagreement_raises_score_and_flags():
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([0, 0, 1, 2])
    base = find_issues_low_confidence(probs, labels, fraction=0.0)
    crowd = np.array([-1, 2, -1, -1])
    conf = np.array([0.0, 0.9, 0.0, 0.0])
    plain = combine_issues([base], labels)
    result = combine_issues([base], labels, crowd_labels=crowd, crowd_confidence=conf)
    assert result.flagged.tolist() == [False, True, False, False]
    assert result.suggested[1] == 2
    assert result.score[1] > plain.score[1]
    assert result.ranked.tolist() == [1]


# --- features ----------------------------------------------------------------------------------


def _tiny_images(n_per_class=40, seed=0):
    """Three classes of 8x8 RGB images: a bright quadrant per class on noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    quadrants = [(slice(0, 4), slice(0, 4)), (slice(0, 4), slice(4, 8)), (slice(4, 8), slice(0, 4))]
    for cls, (rows, cols) in enumerate(quadrants):
        batch = rng.integers(0, 60, size=(n_per_class, 8, 8, 3))
        batch[:, rows, cols, :] += 180
        images.append(batch)
        labels += [cls] * n_per_class
    return np.concatenate(images).astype(np.uint8), np.array(labels)


@pytest.mark.parametrize("loss", ["scl_nl", "forward"])
def test_complementary_label_training_beats_chance(loss):
    images, true = _tiny_images()
    rng = np.random.default_rng(1)
    # one complementary label per item: a uniformly drawn wrong class
    cl = (true + rng.integers(1, 3, size=true.size)) % 3
    result = early_learning_features(
        images,
        complementary=[[c] for c in cl],
        loss=loss,
        num_classes=3,
        epochs=6,
        size=16,
        device="cpu",
    )
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    assert (result.probs.argmax(axis=1) == true).mean() > 0.6
    assert result.features.shape == (true.size, 128)


def test_complementary_votes_as_item_label_arrays():
    counts = complementary_matrix(
        (np.array([0, 0, 2]), np.array([1, 1, 0])), num_items=3, num_classes=3
    )
    assert counts.tolist() == [[0, 2, 0], [0, 0, 0], [1, 0, 0]]
    assert complementary_matrix([[1], [], [0, 2]], num_items=3, num_classes=3).sum() == 3


def test_cross_val_probs_are_out_of_sample_and_deterministic():
    images, labels = _tiny_images(n_per_class=20)
    first = cross_val_probs(images, labels, folds=3, epochs=3, size=8, seed=2, device="cpu")
    again = cross_val_probs(images, labels, folds=3, epochs=3, size=8, seed=2, device="cpu")
    assert first.shape == (60, 3)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert (first.argmax(axis=1) == labels).mean() > 0.6


def test_load_features_npy(tmp_path):
    good = tmp_path / "f.npy"
    np.save(good, np.ones((4, 3), dtype=np.float64))
    assert load_features_npy(good, num_items=4).dtype == np.float32
    with pytest.raises(ValueError, match="num_items=5"):
        load_features_npy(good, num_items=5)
    bad = tmp_path / "nan.npy"
    np.save(bad, np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        load_features_npy(bad)
    with pytest.raises(ValueError, match="missing.npy"):
        load_features_npy(tmp_path / "missing.npy")


def test_features_from_state_dict_and_torchscript(tmp_path):
    images, labels = _tiny_images(n_per_class=5)
    model, _ = train_small_convnet(images, labels, epochs=1, size=8, device="cpu")
    weights = tmp_path / "model.pt"
    torch.save(model.state_dict(), weights)
    penultimate = features_from_state_dict(
        weights,
        "curation.engine.training:SmallConvNet",
        images,
        model_kwargs={"num_classes": 3, "in_channels": 3},
        layer="head",
        layer_input=True,
        size=8,
        device="cpu",
    )
    logits = features_from_state_dict(
        weights,
        "curation.engine.training:SmallConvNet",
        images,
        model_kwargs={"num_classes": 3, "in_channels": 3},
        size=8,
        device="cpu",
    )
    assert penultimate.shape == (15, 128) and logits.shape == (15, 3)
    scripted_path = tmp_path / "model.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(model, torch.zeros(2, 3, 8, 8)).save(str(scripted_path))
    scripted = features_from_torchscript(scripted_path, images, size=8, device="cpu")
    np.testing.assert_allclose(scripted, logits, atol=1e-4)
    with pytest.raises(ValueError, match="module_path"):
        features_from_state_dict(weights, "no_colon", images)


def test_small_convnet_is_size_agnostic():
    net = SmallConvNet(5, in_channels=1)
    assert net(torch.zeros(2, 1, 20, 20)).shape == (2, 5)


# --- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: find_issues_confident_learning(np.full((3, 2), 0.5), [0, 1]), "labels"),
        (lambda: find_issues_confident_learning(np.full((2, 2), 0.5), [0, 2]), "labels"),
        (lambda: find_issues_confident_learning([[np.nan, 1.0], [0.5, 0.5]], [0, 1]), "pred_probs"),
        (lambda: find_issues_confident_learning([[0.9, 0.9], [0.5, 0.5]], [0, 1]), "pred_probs"),
        (
            lambda: find_issues_confident_learning(np.full((2, 2), 0.5), [0, 1], filter_by="x"),
            "filter_by",
        ),
        (lambda: find_issues_low_confidence(np.full((2, 2), 0.5), [0, 1], fraction=2), "fraction"),
        (lambda: knn_cosine(np.zeros((3, 2)), k=3), "k"),
        (lambda: knn_cosine(np.zeros(3), k=1), "features"),
        (lambda: knn_cosine(np.ones((5, 2)), k=1, precision="int8"), "precision"),
        (lambda: find_issues_knn(None, [0, 1, 0]), "features"),
        (lambda: find_issues_knn(np.ones((4, 2)), [0, 1, 0], k=1), "features"),
        (lambda: find_issues_knn(np.ones((4, 2)), [0, 1, 0, 1], k=1, rule="x"), "rule"),
        (lambda: find_label_issues([0, 1], method="knn"), "features"),
        (lambda: find_label_issues([0, 1], method="magic"), "method"),
        (lambda: combine_issues([], [0, 1]), "results"),
        (lambda: early_learning_features(np.zeros((2, 4, 4), np.float32), [0, 1]), "images"),
        (lambda: early_learning_features(np.zeros((2, 4, 4), np.uint8), [0, 1], loss="ce"), "loss"),
        (
            lambda: early_learning_features(np.zeros((2, 4, 4), np.uint8), loss="scl_nl"),
            "complementary",
        ),
        (
            lambda: complementary_matrix([[5]], num_items=1, num_classes=3),
            "complementary",
        ),
        (lambda: pick_device("tpu"), "prefer"),
    ],
)
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(ValueError, match=param):
        call()


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (
            "confident_learning",
            "pred_probs must be given for method 'confident_learning', got None",
        ),
        ("low_confidence", "pred_probs must be given for method 'low_confidence', got None"),
        ("knn", "features must be given for method 'knn', got None"),
        ("combined", "pred_probs or features must be given for method 'combined'"),
    ],
)
def test_find_label_issues_names_the_missing_inputs(method, message):
    with pytest.raises(ValueError) as excinfo:
        find_label_issues([0, 1], method=method)
    assert str(excinfo.value) == message


def test_missing_inputs():
    assert missing_inputs("knn", pred_probs=True, features=False) == ("features",)
    assert missing_inputs("knn", pred_probs=False, features=True) == ()
    assert missing_inputs("low_confidence", pred_probs=False, features=True) == ("pred_probs",)
    assert missing_inputs("combined", pred_probs=False, features=True) == ()
    assert missing_inputs("combined", pred_probs=False, features=False) == (
        "pred_probs",
        "features",
    )
    with pytest.raises(ValueError, match="method"):
        missing_inputs("magic", pred_probs=True, features=True)


@pytest.mark.parametrize("source", ["torchscript", "state_dict"])
def test_model_features_need_an_existing_file(tmp_path, source):
    images = np.zeros((2, 4, 4), np.uint8)
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match="missing.pt' does not exist or is not a file"):
        if source == "torchscript":
            features_from_torchscript(missing, images)
        else:
            features_from_state_dict(missing, "curation.engine.training:SmallConvNet", images)


def test_crowd_arrays_must_come_together():
    base = find_issues_low_confidence(np.full((2, 2), 0.5), [0, 1])
    with pytest.raises(ValueError, match="crowd_labels"):
        combine_issues([base], [0, 1], crowd_confidence=np.ones(2))


# --- the label-errors MNIST arrays, as published ----------------------------------------------


@pytest.mark.skipif(FIXTURES is None, reason="shared/fixtures/label-errors not present")
def test_confident_learning_on_label_errors_mnist():
    arrays = FIXTURES / "arrays"
    labels = np.load(arrays / "mnist_test_set_original_labels.npy")
    probs = np.load(arrays / "mnist_test_set_pyx.npy")
    assert labels.dtype == np.uint16 and probs.dtype == np.float64
    result = find_issues_confident_learning(probs, labels)
    mturk = json.loads((FIXTURES / "mturk" / "mnist_mturk.json").read_text())
    confirmed = np.array([row["id"] for row in mturk if row["mturk"]["given"] < 3])
    assert 0 < result.flagged.sum() <= 100
    assert result.flagged[confirmed].sum() >= 5
