"""Every malformed import is refused with a message naming the problem, and nothing is written."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotation import image_files
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
        classes=path.with_suffix(".txt"),
    )


def test_images_not_n_h_w_3(make_climage, db_state, rng):
    path, _ = make_climage(n=4, images=rng.integers(0, 255, (4, 8, 8, 4), dtype=np.uint8))
    refused(
        db_state, r"images must have shape N x H x W x 3.*\(4, 8, 8, 4\)", fmt="climage", file=path
    )


def test_label_out_of_range(make_climage, db_state):
    path, _ = make_climage(n=3, k=3, ord_labels=[0, 1, 3])
    refused(
        db_state,
        r"ord_labels\[2\] label 3 is out of range 0..2",
        fmt="climage",
        file=path,
        classes=path.with_suffix(".txt"),
    )
    path2, _ = make_climage("cl.pkl", n=3, k=3, cl_labels=[[0], [1], [-1]])
    refused(
        db_state,
        r"cl_labels\[2\] label -1 is out of range",
        fmt="climage",
        file=path2,
        classes=path2.with_suffix(".txt"),
    )


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


def media_tree(media_root) -> list[str]:
    root = Path(media_root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_only_web_image_formats_are_imported(image_folder, db_state, rng):
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
        image_folder / "dog" / "old.png", format="BMP"
    )
    refused(
        db_state,
        r"dog/old.png: is a BMP image; only PNG, JPEG, WebP and GIF images are imported",
        fmt="folder",
        file=image_folder,
    )


def test_images_are_stored_under_the_suffix_of_what_they_are(image_folder, media_root, rng):
    arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(image_folder / "dog" / "photo.png", format="JPEG")
    page = b"<html><script>alert(document.cookie)</script></html>"
    (image_folder / "cat" / "page.html").write_bytes(
        (image_folder / "cat" / "cat0.png").read_bytes() + page
    )
    ds = dataset_import_from_args(name="suffixes", fmt="folder", file=image_folder)
    stored = {it.name: Path(media_root) / it.image.name for it in ds.items.all()}
    assert stored["dog/photo.png"].suffix == ".jpg"
    assert stored["cat/page.html"].suffix == ".png"
    # What was appended after the image's end is not stored; the image itself is, byte for byte.
    assert stored["cat/page.html"].read_bytes() == (image_folder / "cat" / "cat0.png").read_bytes()
    # Stored names say nothing about the item: no index, no original name, no shared prefix.
    names = [p.stem for p in stored.values()]
    assert all(len(n) == 32 and "cat" not in n for n in names) and len(set(names)) == len(names)


def test_running_out_of_memory_is_a_clear_refusal(make_climage, db_state, media_root, monkeypatch):
    path, _ = make_climage(n=600, k=3, size=4)
    real = image_files._png
    calls = []

    def encode(arr):
        # The 550th image does not fit: 549 files are written by then.
        calls.append(1)
        if len(calls) == 550:
            raise MemoryError
        return real(arr)

    monkeypatch.setattr(image_files, "_png", encode)
    refused(
        db_state,
        r"clcifar-small.pkl: ran out of memory",
        fmt="climage",
        file=path,
        classes=path.with_suffix(".txt"),
    )
    assert media_tree(media_root) == []


def test_malformed_structures_are_refusals_not_crashes(make_climage, db_state, tmp_path):
    path, _ = make_climage(n=3, k=3, size=4, ord_labels=7)
    refused(db_state, r"ord_labels must be a list", fmt="climage", file=path)

    def key(name: str) -> bytes:
        return b"X" + len(name).to_bytes(4, "little") + name.encode()

    # One image whose file name is a list nested 100,000 deep: too deep even to print.
    deep = b"]" * 100_000 + b"a" * 99_999
    image = pickle.dumps([np.zeros((2, 2, 3), np.uint8)], protocol=2)[2:-1]
    path = tmp_path / "deep.pkl"
    path.write_bytes(
        b"\x80\x02}(" + key("names") + deep + key("images") + image + key("ord_labels")
        + b"]K\x00a" + key("cl_labels") + b"]]au."
    )  # fmt: skip
    refused(
        db_state, r"deep.pkl: the data is nested too deeply to import", fmt="climage", file=path
    )


def test_pickle_with_a_reference_cycle_is_refused(tmp_path, db_state):
    data: dict = {"names": ["a", "b"], "ord_labels": [0]}
    data["images"] = [data]
    path = tmp_path / "cycle.pkl"
    path.write_bytes(pickle.dumps(data))
    refused(db_state, r"cycle.pkl: the pickle holds a reference cycle", fmt="climage", file=path)


def test_npy_declaring_more_data_than_it_holds(tmp_path, db_state):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    path = tmp_path / "x.npy"
    with open(path, "wb") as fh:  # a 1 TB array by its header, 100 bytes of data
        header = {"descr": "|u1", "fortran_order": False, "shape": (22_000_000, 128, 128, 3)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 100)
    refused(
        db_state,
        r"x.npy: the header declares \(22000000, 128, 128, 3\) uint8 .* but the file holds only "
        r"100 bytes",
        fmt="npy",
        images=path,
        classes=tmp_path / "classes.txt",
    )
