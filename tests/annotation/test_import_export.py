"""Datasets in and labels out, in the formats of the published releases."""

import hashlib
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.exceptions import DatasetImportError
from annotation.exporters import dataset_export
from annotation.models import Dataset, Item, Vote
from annotation.services import dataset_import_from_args, worker_get_or_create

pytestmark = pytest.mark.django_db


def load_in_fresh_python(path):
    """Load a pickle the way a dataset user would: plain pickle.load, only numpy around."""
    code = (
        "import pickle,sys,numpy as np;d=pickle.load(open(sys.argv[1],'rb'));"
        "np.save(sys.argv[2], d['images']);"
        "import json;print(json.dumps({k: d[k] for k in ('names','ord_labels','cl_labels')}))"
    )
    npy = str(path) + ".images.npy"
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(path), npy],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout), np.load(npy)


def test_climage_round_trip_is_exact(make_climage, tmp_path):
    path, data = make_climage(n=100, k=10, size=32, per_item=3)
    call_command(
        "import_dataset",
        str(path),
        name="clc",
        fmt="climage",
        classes=str(path.with_suffix(".txt")),
        stdout=open("/dev/null", "w"),
    )
    ds = Dataset.objects.get(name="clc")
    assert ds.items.count() == 100
    assert ds.class_names == [f"class{i}" for i in range(10)]
    assert (
        Vote.objects.filter(item__dataset=ds, kind="complementary", candidates__isnull=True).count()
        == 300
    )

    out = tmp_path / "out.pkl"
    call_command(
        "export_dataset", "clc", fmt="climage", output=str(out), stdout=open("/dev/null", "w")
    )
    meta, images = load_in_fresh_python(out)
    assert meta["names"] == data["names"]
    assert images.dtype == np.uint8 and images.shape == (100, 32, 32, 3)
    assert images.tobytes() == np.stack(data["images"]).tobytes()
    assert meta["ord_labels"] == data["ord_labels"]
    assert meta["cl_labels"] == data["cl_labels"]


def test_label_errors_export_writes_the_release_layout(make_climage, tmp_path):
    """export_dataset N --format label-errors --output DIR --prefix P: the three arrays in their
    folders with the release's dtypes and shapes, and the review votes in P's mturk.json."""
    path, data = make_climage(n=20, k=5, size=8)
    ds = dataset_import_from_args(
        name="le", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    item = ds.items.get(index=3)
    for i, answer in enumerate([1, 1, 1, 0, 3]):
        w = worker_get_or_create("market", f"W{i}")
        Vote.objects.create(
            item=item,
            worker=w,
            kind="review",
            answer=answer,
            shown_label=item.given_label,
            suggested_label=(item.given_label + 1) % 5,
        )
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=20)
    np.save(tmp_path / "pyx.npy", probs)
    out = tmp_path / "le"
    call_command(
        "export_dataset", "le", "--format", "label-errors", "--output", str(out),
        "--prefix", "shapes", "--pred-probs", str(tmp_path / "pyx.npy"),
    )  # fmt: skip
    orig = np.load(out / "original_test_labels" / "shapes_original_labels.npy")
    pyx = np.load(out / "cross_validated_predicted_probabilities" / "shapes_pyx.npy")
    argmax = np.load(
        out / "cross_validated_predicted_labels" / "shapes_pyx_argmax_predicted_labels.npy"
    )
    assert orig.dtype == np.uint16 and orig.shape == (20,)
    assert pyx.dtype == np.float64 and pyx.shape == (20, 5)
    assert argmax.dtype == np.uint16 and argmax.shape == (20,)
    assert orig.tolist() == data["ord_labels"]
    np.testing.assert_allclose(pyx, probs)
    assert argmax.tolist() == probs.argmax(axis=1).tolist()
    rows = json.loads((out / "mturk" / "shapes_mturk.json").read_text())
    assert [(r["id"], r["mturk"]) for r in rows] == [
        (3, {"given": 1, "guessed": 3, "both": 0, "neither": 1})
    ]
    assert rows[0]["given_original_label"] == data["ord_labels"][3]
    assert rows[0]["our_guessed_label"] == (data["ord_labels"][3] + 1) % 5


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, db_state):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    class OsPayload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    before = db_state()
    for i, payload in enumerate([Payload(), OsPayload(), {"names": ["a"], "images": OsPayload()}]):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(pickle.dumps(payload))
        with pytest.raises(
            CommandError, match=r"refused to unpickle global (subprocess|posix|os)\."
        ):
            call_command("import_dataset", str(path), name=f"evil{i}", fmt="climage")
    assert not marker.exists()
    assert db_state() == before


def test_npy_import_with_and_without_labels(tmp_path, rng):
    images = rng.integers(0, 256, size=(6, 10, 12, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 0, 1, 2]))
    (tmp_path / "classes.txt").write_text("red\ngreen\nblue\n")
    ds = dataset_import_from_args(
        name="withlabels",
        fmt="npy",
        images=tmp_path / "x.npy",
        labels=tmp_path / "y.npy",
        classes=tmp_path / "classes.txt",
    )
    assert ds.class_names == ["red", "green", "blue"]
    assert list(ds.items.values_list("given_label", flat=True)) == [0, 1, 2, 0, 1, 2]
    assert {(i.width, i.height) for i in ds.items.all()} == {(12, 10)}
    ds2 = dataset_import_from_args(
        name="nolabels", fmt="npy", images=tmp_path / "x.npy", classes=tmp_path / "classes.txt"
    )
    assert set(ds2.items.values_list("given_label", flat=True)) == {None}


def test_folder_and_csv_import(image_folder, tmp_path):
    ds = dataset_import_from_args(name="folder", fmt="folder", file=image_folder)
    assert ds.class_names == ["cat", "dog", "emu"]
    assert ds.items.count() == 12
    item = ds.items.get(name="dog/dog2.png")
    assert item.given_label == 1
    # the original file is kept byte for byte
    assert item.image.read() == (image_folder / "dog" / "dog2.png").read_bytes()

    csv_path = image_folder / "labels.csv"
    csv_path.write_text("path,label\ncat/cat0.png,cat\ndog/dog1.png,dog\nemu/emu3.png,\n")
    ds2 = dataset_import_from_args(name="csv", fmt="folder", csv=csv_path)
    assert ds2.class_names == ["cat", "dog"]
    assert list(ds2.items.values_list("name", "given_label")) == [
        ("cat/cat0.png", 0),
        ("dog/dog1.png", 1),
        ("emu/emu3.png", None),
    ]


def test_demo_dataset_ships_with_a_package():
    call_command("import_dataset", demo=True, stdout=open("/dev/null", "w"))
    ds = Dataset.objects.get(name="digits-demo")
    assert ds.items.count() == 1797
    assert ds.class_names == [str(d) for d in range(10)]
    first = ds.items.get(index=0)
    assert (first.width, first.height) == (8, 8)
    assert first.given_label == 0


def test_votes_csv_and_worker_ids_exports(make_climage, tmp_path, settings):
    path, _ = make_climage(n=4, k=4, size=8, per_item=0)
    ds = dataset_import_from_args(
        name="v", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    items = list(ds.items.order_by("index"))
    settings.WORKER_ID_KEEP_SHA1 = False
    w1 = worker_get_or_create("mturk", "A1EXAMPLE")
    Vote.objects.create(
        item=items[2], worker=w1, kind="complementary", answer=1, candidates=[3, 1, 0, 2]
    )
    out = dataset_export(ds, "votes-csv", tmp_path / "votes.csv")
    lines = out.read_text().splitlines()
    assert lines[0].startswith("task,worker,label,kind,candidates")
    assert lines[1].startswith(f"2,{w1.id_hash},1,complementary,3 1 0 2,")
    ids = dataset_export(ds, "worker-ids", tmp_path / "ids.txt")
    assert ids.read_text() == f"No,WorkerId\n1,{w1.id_hash}\n"
    with pytest.raises(Exception, match="WORKER_ID_KEEP_SHA1"):
        dataset_export(ds, "worker-ids", tmp_path / "ids-sha1.txt", hash="sha1")

    settings.WORKER_ID_KEEP_SHA1 = True
    w2 = worker_get_or_create("mturk", "A2EXAMPLE")
    Vote.objects.create(
        item=items[0], worker=w2, kind="complementary", answer=0, candidates=[0, 1, 2, 3]
    )
    Vote.objects.filter(worker=w1).delete()  # collected before the switch: no SHA-1 for it
    ids = dataset_export(ds, "worker-ids", tmp_path / "ids-sha1.txt", hash="sha1")
    assert ids.read_text() == f"No,WorkerId\n1,{hashlib.sha1(b'A2EXAMPLE').hexdigest()}\n"


def test_export_of_unknown_dataset_names_it(tmp_path):
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("export_dataset", "nope", fmt="climage", output=str(tmp_path / "x.pkl"))


def test_import_refuses_an_existing_name(make_climage, db_state):
    path, _ = make_climage(n=3, k=3, size=4)
    dataset_import_from_args(
        name="same", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    before = db_state()
    with pytest.raises(DatasetImportError, match="a dataset named 'same' already exists"):
        dataset_import_from_args(
            name="same", fmt="climage", file=path, classes=path.with_suffix(".txt")
        )
    assert db_state() == before
    assert Item.objects.count() == 3


def test_export_label_precedence(make_climage, tmp_path):
    """A review verdict overrides the given label; a complementary posterior only fills gaps."""
    from annotation.models import AggregatedLabel

    path, data = make_climage(n=3, k=4, size=4, ord_labels=[0, 1, 2])
    ds = dataset_import_from_args(
        name="prec", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    a, b, c = ds.items.order_by("index")
    c.given_label = c.label = None
    c.save()
    AggregatedLabel.objects.create(
        item=a, kind="review", method="consensus_3of5", label=3, confidence=1
    )
    for item in (a, b, c):
        AggregatedLabel.objects.create(
            item=item,
            kind="complementary",
            method="posterior",
            label=1 if item != b else 3,
            confidence=0.3,
        )
    out = dataset_export(ds, "climage", tmp_path / "prec.pkl")
    with open(out, "rb") as fh:
        assert pickle.load(fh)["ord_labels"] == [3, 1, 1]


def test_items_stored_under_older_names_still_render(make_climage, client, media_root, settings):
    """Files stored before names were random keep their names and their images still show."""
    import shutil
    from pathlib import Path

    from annotation.images import rendition_url

    path, _ = make_climage(n=2, k=2, size=8)
    ds = dataset_import_from_args(
        name="old", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    item = ds.items.get(index=0)
    old_name = f"datasets/{ds.pk}/000000.png"  # the way names used to be built
    shutil.copy(Path(media_root) / item.image.name, Path(media_root) / old_name)
    Item.objects.filter(pk=item.pk).update(image=old_name)
    item.refresh_from_db()
    url = rendition_url(item, 64)
    resp = client.get(url)
    assert resp.status_code == 200 and resp["Content-Type"] == "image/png"
    assert resp["X-Content-Type-Options"] == "nosniff"
    # The URL is keyed: a new SECRET_KEY changes it, and the old key still opens it meanwhile.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-key-for-this-test-only-0123456789"
    assert rendition_url(item, 64) != url
    assert client.get(url).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(url).status_code == 404
