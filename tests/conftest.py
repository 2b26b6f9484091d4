import pickle
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test writes images and renditions under its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fresh_task_pages():
    """Task pages are kept per process by HIT id, and ids repeat across tests' databases."""
    from hits import page_cache

    page_cache.clear()
    yield
    page_cache.clear()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def admin_client_token(db, django_user_model):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = django_user_model.objects.create_superuser("root", "root@localhost", "pw-for-tests-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def make_climage(tmp_path, rng):
    """Write a pickle laid out as a CLImage release and return (path, the dict written).

    As in the release: ``names`` are the images' file names, ``images`` a list of H x W x 3
    uint8 arrays. The class names, which a release does not carry, go to ``path`` with the
    suffix ``.txt`` (one per line), to pass as ``classes=``.
    """

    def make(name="clcifar-small.pkl", *, n=100, k=10, size=32, per_item=3, **overrides):
        data = {
            "names": [f"{i:05d}.png" for i in range(n)],
            "images": list(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)),
            "ord_labels": [int(x) for x in rng.integers(0, k, n)],
            "cl_labels": [[int(x) for x in rng.integers(0, k, per_item)] for _ in range(n)],
        }
        data.update(overrides)
        path = tmp_path / name
        with open(path, "wb") as fh:
            pickle.dump(data, fh)
        path.with_suffix(".txt").write_text("".join(f"class{i}\n" for i in range(k)))
        return path, data

    return make


@pytest.fixture
def db_state(media_root):
    """What a refused import must leave untouched: row counts and stored files."""

    from annotation.models import Dataset, Item, Vote

    def state() -> tuple:
        root = Path(media_root)
        files = sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []
        return Dataset.objects.count(), Item.objects.count(), Vote.objects.count(), files

    return state


@pytest.fixture
def image_folder(tmp_path, rng):
    """An ImageFolder tree: 3 classes x 4 PNG images of 16x16."""
    from PIL import Image

    root = tmp_path / "folder"
    for c in ("cat", "dog", "emu"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            arr = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{c}{i}.png")
    return root
