"""The retrieval engine without a database: embeddings (offline, stored and resumed, open_clip's
missing pieces), ranking with prompts, examples and negatives, and the precision bounds that
decide how far down a list to keep."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from curation.engine.embeddings import (
    OfflineBackend,
    OpenClipBackend,
    PrecomputedBackend,
    embed_pool,
)
from curation.engine.ranking import class_queries, prompts_for, rank_pool
from curation.engine.verification import (
    ClassProgress,
    VerifyPolicy,
    kept_precision,
    next_sample,
    precision_lower_bound,
    record_stretch,
)

CLOTHING = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "images" / "clothing"


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    grey = np.clip(np.rint(d.images * (255 / 16)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), d.target


def test_retrieval_offline_backend_ranks_digits_by_example_far_above_chance(digits):
    images, target = digits
    x = OfflineBackend().embed_images(list(images))
    assert x.shape == (len(images), 128) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    again = OfflineBackend().embed_images(list(images[:5]))
    assert np.array_equal(again, x[:5])  # deterministic
    examples = [x[np.flatnonzero(target == k)[:5]] for k in range(10)]
    ranking = rank_pool(x, class_queries(None, examples))
    for k in range(10):
        top = ranking.ranked(k)[:30]
        assert (target[top] == k).mean() >= 0.6, k  # chance is 0.1


def test_retrieval_offline_backend_embeds_real_clothing_photos():
    files = sorted(CLOTHING.glob("clothes*.jpg"))[:6]
    assert len(files) == 6
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    x = OfflineBackend(dim=32).embed_images(images)
    assert x.shape == (6, 32) and np.isfinite(x).all()
    t = OfflineBackend(dim=32).embed_texts(["a photo of a t-shirt.", "a photo of a T-Shirt"])
    assert t.shape == (2, 32) and np.allclose(t[0], t[1])  # case and punctuation ignored


def test_retrieval_embed_pool_stores_resumes_and_reuses(tmp_path, digits):
    images = digits[0][:50]
    calls: list[tuple[int, int]] = []

    def load(start, stop):
        calls.append((start, stop))
        if len(calls) == 3 and stop > 30:
            raise KeyboardInterrupt  # the worker dies half-way
        return list(images[start:stop])

    store = tmp_path / "emb.npy"
    with pytest.raises(KeyboardInterrupt):
        embed_pool(load, 50, OfflineBackend(), store=store, batch_size=16)
    calls.append((-1, -1))  # past the crash: the next run resumes at row 32
    seen: list[tuple[int, int]] = []
    first = embed_pool(
        load,
        50,
        OfflineBackend(),
        store=store,
        batch_size=16,
        progress=lambda d, n: seen.append((d, n)),
    )
    assert first.embedded_now == 50 - 32 and seen[-1] == (50, 50)
    assert np.allclose(first.embeddings, OfflineBackend().embed_images(list(images)), atol=1e-6)
    before = len(calls)
    second = embed_pool(load, 50, OfflineBackend(), store=store)
    assert second.embedded_now == 0 and len(calls) == before  # nothing re-embedded
    other = embed_pool(load, 50, OfflineBackend(dim=64), store=store)
    assert other.embedded_now == 50 and other.embeddings.shape == (50, 64)


def test_retrieval_prompts_negatives_and_review_margin():
    assert prompts_for("cat", ["a photo of a {}.", "art of the {}"]) == [
        "a photo of a cat.",
        "art of the cat",
    ]
    with pytest.raises(ValueError, match="must contain"):
        prompts_for("cat", ["a photo"])
    x = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    plain = rank_pool(x, queries)
    assert list(plain.ranked(0)) == [0, 1, 3] and list(plain.ranked(1)) == [2]
    neg = rank_pool(x, queries, negatives=[np.array([[0.0, 1.0, 0.0]]), None])
    assert list(neg.ranked(0)) == [0, 1, 3] and neg.scores[3, 0] < plain.scores[3, 0]
    assert neg.scores[0, 0] == plain.scores[0, 0]  # not near the negative: untouched
    close = rank_pool(np.array([[0.7, 0.0, 0.7], [1.0, 0.0, 0.1]]), queries, review_margin=0.05)
    assert list(close.review) == [True, False] and list(close.ranked(0)) == [1]
    both = class_queries(np.array([[1.0, 0.0, 0.0]]), [np.array([[0.0, 1.0, 0.0]])])
    assert np.allclose(both, [[2**-0.5, 2**-0.5, 0.0]])
    with pytest.raises(ValueError, match="neither"):
        class_queries(None, [None])


def test_retrieval_precision_bounds_match_known_values():
    # Clopper-Pearson with every sample correct: alpha ** (1 / n).
    assert precision_lower_bound(8, 8, confidence=0.9) == pytest.approx(0.1 ** (1 / 8))
    assert (
        precision_lower_bound(299, 299, confidence=0.95)
        >= 0.99
        > precision_lower_bound(298, 298, confidence=0.95)
    )
    # Wilson with every sample correct: 1 / (1 + z^2 / n).
    assert precision_lower_bound(10, 10, confidence=0.9, method="wilson") == pytest.approx(
        1 / (1 + 1.2815516**2 / 10), rel=1e-6
    )
    assert precision_lower_bound(0, 0) == 0.0
    with pytest.raises(ValueError, match="confidence"):
        precision_lower_bound(1, 2, confidence=1.0)
    with pytest.raises(ValueError, match="correct <= total"):
        precision_lower_bound(3, 2)


def test_retrieval_stretches_kept_while_bound_reaches_target_then_stop():
    policy = VerifyPolicy(target=0.7, confidence=0.9, stretch=10, sample=8)
    progress = ClassProgress()
    first = next_sample(25, progress, policy, seed=1)
    assert len(first) == 8 and first.min() >= 0 and first.max() < 10
    assert np.array_equal(first, next_sample(25, progress, policy, seed=1))  # reproducible
    assert record_stretch(25, progress, policy, [True] * 8).accepted and progress.position == 10
    second = record_stretch(25, progress, policy, [True] * 7 + [False])
    assert not second.accepted and progress.stopped == "target" and progress.position == 10
    assert len(next_sample(25, progress, policy, seed=1)) == 0
    kept = kept_precision(progress, correct_in_rejected=7)
    # 10 of the first stretch (8 verified, 2 at its bound) + 7 verified from the second.
    assert kept.kept == 17 and kept.estimate == 1.0
    assert kept.lower == pytest.approx((15 + 2 * 0.1 ** (1 / 8)) / 17)
    with pytest.raises(ValueError, match="sample <= stretch"):
        VerifyPolicy(stretch=5, sample=6)


def test_retrieval_precomputed_backend_checks_shapes():
    with pytest.raises(ValueError, match="N x D"):
        PrecomputedBackend(np.zeros((3,), np.float32))
    with pytest.raises(ValueError, match="one row per class"):
        PrecomputedBackend(np.ones((3, 4), np.float32), np.ones((2, 5), np.float32))
    b = PrecomputedBackend(np.ones((3, 4), np.float32) * 2, np.ones((2, 4), np.float32))
    assert np.allclose(np.linalg.norm(b.images, axis=1), 1.0)
    with pytest.raises(ValueError, match="cannot embed prompts"):
        b.embed_texts(["a photo of a cat."])


def test_retrieval_open_clip_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # as where it is not installed
    with pytest.raises(ImportError) as err:
        OpenClipBackend(weights=None)
    message = str(err.value)
    assert "open-clip-torch" in message and "\n" not in message
