"""Every malformed import is refused with a message naming the problem, and nothing is written."""

import numpy as np
import pytest
from PIL import Image

from annotation.exceptions import DatasetImportError
from annotation.services import dataset_import_from_args

pytestmark = pytest.mark.django_db


def refused(db_state, match, **kwargs):
    before = db_state()
    with pytest.raises(DatasetImportError, match=match):
        dataset_import_from_args(name=kwargs.pop("name", "bad"), **kwargs)
    assert db_state() == before


def test_shape_mismatch_labels_vs_images(make_climage, db_state, rng):
    path, _ = make_climage(n=10, ord_labels=[0] * 9)
    refused(
        db_state,
        r"clcifar-small.pkl: ord_labels has 9 entries but images has 10",
        fmt="climage",
        file=path,
    )


def test_images_not_n_h_w_3(make_climage, db_state, rng):
    path, _ = make_climage(n=4, images=rng.integers(0, 255, (4, 8, 8, 4), dtype=np.uint8))
    refused(
        db_state, r"images must have shape N x H x W x 3.*\(4, 8, 8, 4\)", fmt="climage", file=path
    )


def test_label_out_of_range(make_climage, db_state):
    path, _ = make_climage(n=3, k=3, ord_labels=[0, 1, 3])
    refused(db_state, r"ord_labels\[2\] label 3 is out of range 0..2", fmt="climage", file=path)
    path2, _ = make_climage("cl.pkl", n=3, k=3, cl_labels=[[0], [1], [-1]])
    refused(db_state, r"cl_labels\[2\] label -1 is out of range", fmt="climage", file=path2)


def test_wrong_dtypes(tmp_path, db_state, rng):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    np.save(tmp_path / "x.npy", rng.random((4, 8, 8, 3)))
    refused(
        db_state,
        r"x.npy: images must have dtype uint8, got float64",
        fmt="npy",
        images=tmp_path / "x.npy",
        classes=tmp_path / "classes.txt",
    )
    np.save(tmp_path / "x8.npy", rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8))
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0, 0.0, 1.0]))
    refused(
        db_state,
        r"y.npy: labels must be a 1-D integer array, got float64",
        fmt="npy",
        images=tmp_path / "x8.npy",
        labels=tmp_path / "y.npy",
        classes=tmp_path / "classes.txt",
    )
    np.save(tmp_path / "y5.npy", np.array([0, 1, 0]))
    refused(
        db_state,
        r"y5.npy: 3 labels but .*x8.npy has 4 images",
        fmt="npy",
        images=tmp_path / "x8.npy",
        labels=tmp_path / "y5.npy",
        classes=tmp_path / "classes.txt",
    )


def test_object_npy_is_not_unpickled(tmp_path, db_state):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    refused(
        db_state,
        r"obj.npy: not a readable .npy array without pickles",
        fmt="npy",
        images=tmp_path / "obj.npy",
        classes=tmp_path / "classes.txt",
    )


def test_corrupt_image_file(image_folder, db_state):
    good = (image_folder / "cat" / "cat0.png").read_bytes()
    (image_folder / "dog" / "broken.png").write_bytes(good[: len(good) // 2])
    refused(
        db_state, r"dog/broken.png: (corrupt|not a readable) image", fmt="folder", file=image_folder
    )


def test_non_image_file(image_folder, db_state):
    (image_folder / "emu" / "notes.txt").write_text("not a picture")
    refused(db_state, r"emu/notes.txt: not a readable image", fmt="folder", file=image_folder)


def test_image_over_the_pixel_limit(image_folder, db_state, settings, rng):
    settings.IMPORT_MAX_IMAGE_PIXELS = 100 * 100
    Image.fromarray(rng.integers(0, 255, (101, 100, 3), dtype=np.uint8)).save(
        image_folder / "cat" / "big.png"
    )
    refused(
        db_state,
        r"cat/big.png: image is 100x101 = 10100 pixels, over the limit of 10000",
        fmt="folder",
        file=image_folder,
    )


def test_duplicate_names(image_folder, db_state):
    csv_path = image_folder / "labels.csv"
    csv_path.write_text("path,label\ncat/cat0.png,cat\ndog/dog1.png,dog\ncat/cat0.png,dog\n")
    refused(
        db_state, r"labels.csv: line 4: duplicate name 'cat/cat0.png'", fmt="folder", csv=csv_path
    )
    (image_folder / "classes.txt").write_text("cat\ndog\ncat\n")
    refused(
        db_state,
        r"classes.txt: duplicate class names \['cat'\]",
        fmt="npy",
        images=image_folder / "x.npy",
        classes=image_folder / "classes.txt",
    )


def test_missing_file_and_unknown_label_in_csv(image_folder, db_state):
    csv_path = image_folder / "labels.csv"
    csv_path.write_text("path,label\ncat/none.png,cat\n")
    refused(db_state, r"line 2: image file 'cat/none.png' not found", fmt="folder", csv=csv_path)
    (image_folder / "classes.txt").write_text("cat\ndog\n")
    csv_path.write_text("path,label\ncat/cat0.png,zebra\n")
    refused(
        db_state,
        r"line 2: label 'zebra' is not one of the class names",
        fmt="folder",
        csv=csv_path,
        classes=image_folder / "classes.txt",
    )


def test_failure_late_in_a_large_import_rolls_back_files_too(make_climage, image_folder, db_state):
    # 600 good images then one bad one: the first chunk was already written when the error hits.
    for i in range(600):
        (image_folder / "cat" / f"extra{i:03d}.png").write_bytes(
            (image_folder / "cat" / "cat0.png").read_bytes()
        )
    (image_folder / "emu" / "zz-bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    refused(db_state, r"emu/zz-bad.jpg", fmt="folder", file=image_folder)


def test_not_a_pickle(tmp_path, db_state):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"this is not a pickle")
    refused(db_state, r"junk.pkl: not a readable pickle", fmt="climage", file=path)
