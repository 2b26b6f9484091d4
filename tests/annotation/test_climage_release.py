"""A CLImage release comes in and goes out exactly as published.

In a release, ``names`` are the images' file names; the class names are not in the pickle (its
README lists them), so an import needs them from ``--classes``.
"""

import csv
import io
import pickle

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.class_presets import CLASS_PRESETS
from annotation.dashboards import dataset_dashboard
from annotation.exporters import dataset_export
from annotation.models import AggregatedLabel, Dataset, Item, Vote, Worker
from annotation.services import dataset_import_from_args, worker_get_or_create

pytestmark = pytest.mark.django_db

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def release(tmp_path):
    """120 images built as the CLImage README describes, and the class file that goes with it."""
    rng = np.random.default_rng(7)
    n = 120
    data = {
        "names": [f"{c}_s_{i:06d}.png" for i, c in enumerate(rng.choice(CIFAR10, n))],
        "images": [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)],
        "ord_labels": [int(x) for x in rng.integers(0, 10, n)],
        "cl_labels": [[int(x) for x in rng.integers(0, 10, 3)] for _ in range(n)],
    }
    path = tmp_path / "clcifar10.pkl"
    path.write_bytes(pickle.dumps(data))
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CIFAR10) + "\n")
    return path, classes, data


def run(*args, **opts):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **opts)
    return out.getvalue()


def assert_same_release(got: dict, want: dict) -> None:
    assert sorted(got) == ["cl_labels", "images", "names", "ord_labels"]
    assert got["names"] == want["names"]
    assert got["ord_labels"] == want["ord_labels"]
    assert got["cl_labels"] == want["cl_labels"]
    assert isinstance(got["images"], list) and len(got["images"]) == len(want["images"])
    for a, b in zip(got["images"], want["images"], strict=True):
        assert a.dtype == np.uint8 and a.shape == b.shape
        assert np.array_equal(a, b)


def test_a_release_without_classes_is_refused_and_nothing_is_created(release, db_state):
    path, _, _ = release
    before = db_state()
    with pytest.raises(CommandError) as err:
        run("import_dataset", str(path), name="clc", fmt="climage")
    message = str(err.value)
    assert "does not carry its class names" in message and "--classes" in message
    assert "clcifar10" in message  # the presets are named
    assert db_state() == before


@pytest.mark.parametrize("spec", ["file", "clcifar10"])
def test_a_release_imports_as_ten_classes_and_exports_identical(release, tmp_path, spec):
    path, classes, data = release
    classes_arg = str(classes) if spec == "file" else spec
    said = run("import_dataset", str(path), name="clc", fmt="climage", classes=classes_arg)
    assert "120 items, 10 classes" in said
    ds = Dataset.objects.get(name="clc")
    assert ds.class_names == CIFAR10
    assert list(ds.items.order_by("index").values_list("name", flat=True)) == data["names"]
    assert Vote.objects.filter(item__dataset=ds, kind="complementary").count() == 360

    out = tmp_path / "again.pkl"
    run("export_dataset", "clc", fmt="climage", output=str(out))
    with open(out, "rb") as fh:
        assert_same_release(pickle.load(fh), data)


def test_one_n_h_w_3_array_is_read_too(release, tmp_path):
    path, classes, data = release
    stacked = dict(data, images=np.stack(data["images"]))
    path.write_bytes(pickle.dumps(stacked))
    ds = dataset_import_from_args(name="arr", fmt="climage", file=path, classes="clcifar10")
    out = dataset_export(ds, "climage", tmp_path / "arr.pkl")
    with open(out, "rb") as fh:
        assert_same_release(pickle.load(fh), data)


def test_presets_are_the_readme_lists():
    assert CLASS_PRESETS["clcifar10"] == CIFAR10
    assert len(CLASS_PRESETS["clcifar20"]) == 20
    assert CLASS_PRESETS["clcifar20"][4] == "fruit, vegetables and mushrooms"
    assert CLASS_PRESETS["clmicroimagenet10"][9] == "alp"
    assert CLASS_PRESETS["clmicroimagenet20"][13] == "iPod"
    assert all(len(set(v)) == len(v) for v in CLASS_PRESETS.values())


def test_an_unknown_preset_or_missing_file_is_named(release, db_state):
    path, _, _ = release
    before = db_state()
    with pytest.raises(
        CommandError, match=r"'clcifar100' is neither a file nor one of the presets"
    ):
        run("import_dataset", str(path), name="x", fmt="climage", classes="clcifar100")
    assert db_state() == before


@pytest.mark.parametrize(
    "change, says",
    [
        (
            lambda d: d.update(names=CIFAR10),
            r"names has 10 entries but images has 120; in a CLImage release names holds one "
            r"file name per image",
        ),
        (lambda d: d["names"].__setitem__(5, d["names"][2]), r"names\[5\] .* repeats names\[2\]"),
        (lambda d: d["names"].__setitem__(3, 42), r"names\[3\] 42 is not a file name"),
        (
            lambda d: d["images"].__setitem__(7, np.zeros((32, 32), np.uint8)),
            r"images\[7\] must have shape H x W x 3, got \(32, 32\)",
        ),
        (
            lambda d: d["images"].__setitem__(8, np.zeros((32, 32, 3), np.float32)),
            r"images\[8\] has dtype float32, not uint8",
        ),
        (lambda d: d["ord_labels"].__setitem__(9, 10), r"ord_labels\[9\] label 10 is out of range"),
        (lambda d: d["cl_labels"].__setitem__(4, [1, "x"]), r"cl_labels\[4\] label 'x'"),
        (lambda d: d.pop("names"), r"missing keys \['names'\]"),
    ],
)
def test_a_malformed_release_is_refused_naming_the_problem(release, db_state, change, says):
    path, classes, data = release
    bad = pickle.loads(pickle.dumps(data))
    change(bad)
    path.write_bytes(pickle.dumps(bad))
    before = db_state()
    with pytest.raises(CommandError, match=says):
        run("import_dataset", str(path), name="bad", fmt="climage", classes=str(classes))
    assert db_state() == before


def test_each_release_votes_under_its_own_anonymous_worker(release, tmp_path):
    path, classes, _ = release
    a = dataset_import_from_args(name="a", fmt="climage", file=path, classes=classes)
    b = dataset_import_from_args(name="b", fmt="climage", file=path, classes=classes)
    wa = set(Vote.objects.filter(item__dataset=a).values_list("worker_id", flat=True))
    wb = set(Vote.objects.filter(item__dataset=b).values_list("worker_id", flat=True))
    assert len(wa) == len(wb) == 1 and wa != wb
    assert set(Worker.objects.filter(pk__in=wa | wb).values_list("provider", flat=True)) == {
        Worker.Provider.IMPORTED
    }
    # A real crowd worker joins in: the report lists them and not the release's pooled votes.
    crowd = worker_get_or_create("market", "W-REAL")
    item = a.items.get(index=0)
    Vote.objects.create(item=item, worker=crowd, kind="complementary", answer=1)
    dash = dataset_dashboard(a, kind="complementary")
    assert dash.num_votes == 361
    assert [row.worker for row in dash.workers] == [crowd.id_hash[: len(dash.workers[0].worker)]]
    # Worker ids exports list people, never the anonymous pool.
    ids = dataset_export(a, "worker-ids", tmp_path / "ids.txt").read_text().splitlines()
    assert ids == ["No,WorkerId", f"1,{crowd.id_hash}"]


def test_labels_option_chooses_what_ord_labels_holds(release, tmp_path):
    path, classes, data = release
    ds = dataset_import_from_args(name="lab", fmt="climage", file=path, classes=classes)
    first = ds.items.get(index=0)
    corrected = (data["ord_labels"][0] + 1) % 10
    Item.objects.filter(pk=first.pk).update(label=corrected)  # a review correction
    second = ds.items.get(index=1)
    agg = (data["ord_labels"][1] + 2) % 10
    AggregatedLabel.objects.create(
        item=second, kind="complementary", method="posterior", label=agg, confidence=0.4
    )

    def ord_labels(mode):
        run("export_dataset", "lab", fmt="climage", output=str(tmp_path / f"{mode}.pkl"),
            labels=mode)  # fmt: skip
        with open(tmp_path / f"{mode}.pkl", "rb") as fh:
            return pickle.load(fh)["ord_labels"]

    auto = ord_labels("auto")
    assert auto[0] == corrected and auto[1:] == data["ord_labels"][1:]
    assert ord_labels("given") == data["ord_labels"]
    assert ord_labels("aggregated")[:2] == [-1, agg]


def test_votes_csv_is_task_worker_label_with_hashed_workers(release, tmp_path, settings):
    path, classes, data = release
    ds = dataset_import_from_args(name="csv", fmt="climage", file=path, classes=classes)
    crowd = worker_get_or_create("mturk", "A1RAWWORKERID")
    Vote.objects.create(item=ds.items.get(index=5), worker=crowd, kind="complementary", answer=2)
    text = dataset_export(ds, "votes-csv", tmp_path / "votes.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["task", "worker", "label"]
    assert len(rows) == 1 + 361
    assert "A1RAWWORKERID" not in text
    assert rows[-1][:3] == ["5", crowd.id_hash, "2"]
    got = sorted((int(r[0]), int(r[2])) for r in rows[1:-1])
    assert got == sorted((i, c) for i, cls in enumerate(data["cl_labels"]) for c in cls)
