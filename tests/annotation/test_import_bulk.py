"""The bulk import and export paths: images encoded and written by worker processes, rows and
votes inserted in batches, the export streamed in chunks. What a user sees must not change: the
same pixels, labels and votes come back, and a refused file still leaves nothing behind."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from annotation import image_files
from annotation.exceptions import DatasetImportError
from annotation.exporters import dataset_export
from annotation.models import Dataset, Item, Vote
from annotation.services import dataset_import_from_args

pytestmark = pytest.mark.django_db


@pytest.fixture
def through_workers(monkeypatch):
    """Send even a small import's images through the worker processes."""
    monkeypatch.setattr(image_files, "IMAGE_POOL_MIN_IMAGES", 1)


def test_import_through_workers_round_trips(make_climage, tmp_path, through_workers):
    path, data = make_climage("many.pkl", n=2_600, k=10, size=32, per_item=3)
    ds = dataset_import_from_args(
        name="many", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )

    assert ds.items.count() == 2_600
    assert Vote.objects.filter(item__dataset=ds).count() == 3 * 2_600
    first, last = ds.items.get(index=0), ds.items.get(index=2_599)
    assert (first.width, first.height, last.name) == (32, 32, data["names"][-1])

    out = dataset_export(ds, "climage", tmp_path / "back.pkl")
    with open(out, "rb") as fh:
        back = pickle.load(fh)
    assert back["names"] == data["names"]
    assert back["ord_labels"] == data["ord_labels"]
    assert back["cl_labels"] == data["cl_labels"]
    assert len(back["images"]) == 2_600
    assert all(np.array_equal(a, b) for a, b in zip(back["images"], data["images"], strict=True))


def test_grey_and_rgb_arrays_store_as_png_that_reads_back(tmp_path):
    rng = np.random.default_rng(5)
    for arr in (rng.integers(0, 256, (7, 5), dtype=np.uint8), rng.integers(0, 256, (4, 9, 3))):
        arr = arr.astype(np.uint8)
        stored = image_files.image_array_encode(arr, "test")
        assert stored.data.startswith(b"\x89PNG") and (stored.width, stored.height) == (
            arr.shape[1],
            arr.shape[0],
        )
        # Pillow (what every browser-side reader does) accepts the file as it is.
        image_files.image_file_check(stored.data, "test")
        path = tmp_path / "x.png"
        path.write_bytes(stored.data)
        rgb = image_files.image_rgb_read(str(path))
        want = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
        assert np.array_equal(rgb, want)


def test_refused_bulk_import_leaves_nothing(make_climage, db_state, settings, through_workers):
    path, _ = make_climage("toolarge.pkl", n=2_100, k=10, size=32, per_item=1)
    before = db_state()
    # Past the first chunk (its files written by the workers by then), an image too large.
    settings.IMPORT_MAX_IMAGE_PIXELS = 32 * 32
    data = pickle.loads(path.read_bytes())
    data["images"][1_500] = np.zeros((40, 40, 3), dtype=np.uint8)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DatasetImportError, match=r"01500\.png: image is 40x40 = 1600 pixels"):
        dataset_import_from_args(
            name="toolarge", fmt="climage", file=path, classes=path.with_suffix(".txt")
        )
    assert db_state() == before
    assert not Dataset.objects.filter(name="toolarge").exists()
    assert not Item.objects.exists()
