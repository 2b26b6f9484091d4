"""The label-errors release layout out and back in, against the published MNIST release."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotation import label_errors
from annotation.exceptions import DatasetImportError, ExportError
from annotation.label_errors import (
    check_probabilities,
    label_errors_export,
    label_errors_import,
    release_paths,
)
from annotation.models import Dataset, Item, Vote, Worker
from annotation.services import worker_get_or_create

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "label-errors"
ARRAYS = FIXTURES / "arrays"
N = 1000  # a slice of MNIST's 10,000 test items: 15 of its reviewed examples fall inside


def mnist(name: str) -> np.ndarray:
    return np.load(ARRAYS / f"mnist_test_set_{name}.npy")


def mnist_mturk() -> list[dict]:
    return json.loads((FIXTURES / "mturk" / "mnist_mturk.json").read_text())


def make_dataset(n=N, *, labels=None, name="mnist-test", k=10) -> Dataset:
    """n items without stored image files (the release carries none; nothing here opens them)."""
    ds = Dataset.objects.create(name=name, class_names=[str(c) for c in range(k)])
    Item.objects.bulk_create(
        Item(
            dataset=ds,
            index=i,
            name=f"{i:05d}.png",
            image=f"datasets/none/{i:05d}.png",
            width=28,
            height=28,
            given_label=None if labels is None else int(labels[i]),
            label=None if labels is None else int(labels[i]),
        )
        for i in range(n)
    )
    return ds


def write_release(root: Path, n=N, *, mturk=True) -> Path:
    """The published MNIST release cut to its first n rows (and the reviews inside them)."""
    paths = release_paths(root, "mnist_test_set")
    for key, arr in (
        ("labels", mnist("original_labels")[:n]),
        ("probs", mnist("pyx")[:n]),
        ("argmax", mnist("pyx_argmax_predicted_labels")[:n]),
    ):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
        np.save(paths[key], arr)
    if mturk:
        paths["mturk"].parent.mkdir(parents=True, exist_ok=True)
        rows = [r for r in mnist_mturk() if r["id"] < n]
        paths["mturk"].write_text(json.dumps(rows))
    return root


def state():
    return Item.objects.filter(given_label__isnull=False).count(), Vote.objects.count()


def test_full_size_release_arrays_pass_the_checks():
    labels, probs = mnist("original_labels"), mnist("pyx")
    assert labels.dtype == np.uint16 and labels.shape == (10_000,)
    checked = check_probabilities(probs, 10_000, 10, "mnist pyx")
    assert checked.shape == (10_000, 10)
    assert (checked.argmax(axis=1) == mnist("pyx_argmax_predicted_labels")).all()
    rows = label_errors._parse_mturk(FIXTURES / "mturk" / "mnist_mturk.json", labels, 10)
    assert len(rows) == 100
    assert sum(sum(c.values()) for _, _, c in rows) == sum(
        sum(r["mturk"].values()) for r in mnist_mturk()
    )


def test_export_writes_the_release_layout_loadable_with_plain_numpy(tmp_path):
    ds = make_dataset(labels=mnist("original_labels"))
    pyx = tmp_path / "pyx.npy"
    np.save(pyx, mnist("pyx")[:N])
    out = label_errors_export(ds, tmp_path / "release", prefix="mnist_test_set", pred_probs=pyx)

    code = (
        "import sys,numpy as np;r=sys.argv[1];"
        "a=np.load(r+'/original_test_labels/mnist_test_set_original_labels.npy');"
        "p=np.load(r+'/cross_validated_predicted_probabilities/mnist_test_set_pyx.npy');"
        "m=np.load(r+'/cross_validated_predicted_labels/"
        "mnist_test_set_pyx_argmax_predicted_labels.npy');"
        "print(a.dtype,a.shape,p.dtype,p.shape,m.dtype,m.shape)"
    )
    shown = subprocess.run(
        [sys.executable, "-I", "-c", code, str(out)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert shown == ["uint16", "(1000,)", "float64", "(1000,", "10)", "uint16", "(1000,)"]
    paths = release_paths(out, "mnist_test_set")
    assert (np.load(paths["labels"]) == mnist("original_labels")[:N]).all()
    np.testing.assert_array_equal(np.load(paths["probs"]), mnist("pyx")[:N])
    assert (np.load(paths["argmax"]) == mnist("pyx_argmax_predicted_labels")[:N]).all()
    assert not paths["mturk"].exists()  # no review votes, no mturk file


def test_release_imports_onto_its_test_set_and_exports_back_the_same(tmp_path):
    ds = make_dataset()  # the test set's images came without labels
    release = write_release(tmp_path / "in")
    result = label_errors_import(release, name=ds.name)

    expected = [r for r in mnist_mturk() if r["id"] < N]
    total = sum(sum(r["mturk"].values()) for r in expected)
    assert result.labels_set == N and result.reviewed_items == 15 and result.votes == total
    given = list(ds.items.order_by("index").values_list("given_label", flat=True))
    assert given == mnist("original_labels")[:N].tolist()
    votes = Vote.objects.filter(item__dataset=ds)
    assert votes.count() == total
    assert set(votes.values_list("source", "kind")) == {("imported", "review")}
    assert set(votes.values_list("worker__provider", flat=True)) == {"imported"}
    # No worker answers twice about one example.
    per = votes.values_list("item_id", "worker_id")
    assert len(set(per)) == len(per)
    # A second import of the same release is refused and writes nothing.
    before = state()
    with pytest.raises(DatasetImportError, match="already imported"):
        label_errors_import(release, name=ds.name)
    assert state() == before

    # Probabilities from the release's own file: what comes out is what went in.
    out = label_errors_export(
        ds, tmp_path / "out", prefix="mnist_test_set", pred_probs=result.probs_path
    )
    back = json.loads(release_paths(out, "mnist_test_set")["mturk"].read_text())
    assert [r["id"] for r in back] == [r["id"] for r in expected]
    for mine, theirs in zip(back, expected, strict=True):
        assert mine["given_original_label"] == theirs["given_original_label"]
        assert mine["given_original_label_name"] == theirs["given_original_label_name"]
        assert mine["our_guessed_label"] == theirs["our_guessed_label"]
        assert mine["our_guessed_label_name"] == theirs["our_guessed_label_name"]
        assert mine["mturk"] == {"both": 0, **theirs["mturk"]}
    for key in ("labels", "probs", "argmax"):
        a, b = (
            np.load(release_paths(out, "mnist_test_set")[key]),
            np.load(release_paths(release, "mnist_test_set")[key]),
        )
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()


def test_export_of_review_votes_uses_the_release_keys(tmp_path):
    ds = make_dataset(20, labels=[i % 5 for i in range(20)], k=5)
    item = ds.items.get(index=3)
    for i, answer in enumerate([1, 1, 1, 0, 3, 2]):
        Vote.objects.create(
            item=item,
            worker=worker_get_or_create("market", f"W{i}"),
            kind="review",
            answer=answer,
            shown_label=3,
            suggested_label=4,
        )
    probs = np.full((20, 5), 0.2)
    out = label_errors_export(ds, tmp_path / "le", prefix="toy", pred_probs=probs)
    rows = json.loads((out / "mturk" / "toy_mturk.json").read_text())
    assert rows == [
        {
            "id": 3,
            "url": "",
            "given_original_label": 3,
            "given_original_label_name": "3",
            "our_guessed_label": 4,
            "our_guessed_label_name": "4",
            "mturk": {"given": 1, "guessed": 3, "neither": 1, "both": 1},
        }
    ]


@pytest.mark.parametrize(
    "probs, message",
    [
        (np.full((19, 5), 0.2), r"shape \(N, K\) = \(20, 5\)"),
        (np.full((20, 5), np.nan), "row 0 holds NaN"),
        (np.full((20, 5), 0.3), "rows do not sum to 1"),
        (np.full((20, 5), 1, dtype=np.int64), "must be floats"),
    ],
)
def test_export_refuses_bad_probabilities_and_writes_nothing(tmp_path, probs, message):
    ds = make_dataset(20, labels=[i % 5 for i in range(20)], k=5)
    with pytest.raises(ExportError, match=message):
        label_errors_export(ds, tmp_path / "le", prefix="toy", pred_probs=probs)
    assert not (tmp_path / "le").exists()


def test_export_without_probabilities_says_to_pass_them(tmp_path, monkeypatch):
    monkeypatch.setattr(label_errors, "_PROBABILITIES_SOURCES", [])
    ds = make_dataset(20, labels=[i % 5 for i in range(20)], k=5)
    with pytest.raises(ExportError, match="pass --pred-probs"):
        label_errors_export(ds, tmp_path / "le", prefix="toy")
    ds2 = make_dataset(3, name="unlabelled", k=5)
    with pytest.raises(ExportError, match="3 items have no given label"):
        label_errors_export(ds2, tmp_path / "le", prefix="toy", pred_probs=np.full((3, 5), 0.2))
    with pytest.raises(ExportError, match="prefix"):
        label_errors_export(ds, tmp_path / "le", prefix="../up", pred_probs=np.full((20, 5), 0.2))
    assert not (tmp_path / "le").exists()


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda p: np.save(p["labels"], mnist("original_labels")[:10]), r"shape \(1000,\)"),
        (lambda p: np.save(p["labels"], np.full(N, 12, np.uint16)), "outside 0..9"),
        (lambda p: p["labels"].write_bytes(b"not an array"), "not a readable .npy"),
        (lambda p: np.save(p["probs"], mnist("pyx")[:N] * 2), "rows do not sum to 1"),
        (lambda p: np.save(p["argmax"], mnist("original_labels")[:5]), "predicted_labels"),
        (lambda p: p["mturk"].write_text("{"), "not valid JSON"),
        (
            lambda p: p["mturk"].write_text(json.dumps([{**mnist_mturk()[0], "id": 0}])),
            "differs from original_labels",
        ),
        (
            lambda p: p["mturk"].write_text(
                json.dumps([{**mnist_mturk()[0], "mturk": {"given": 2, "neutral": 3}}])
            ),
            "'neutral'",
        ),
        (
            lambda p: p["mturk"].write_text(json.dumps([{**mnist_mturk()[0], "id": 10_000}])),
            "id must be an integer in 0..999",
        ),
    ],
)
def test_malformed_release_is_refused_naming_file_and_problem(tmp_path, spoil, message):
    ds = make_dataset()
    release = write_release(tmp_path / "in")
    paths = release_paths(release, "mnist_test_set")
    spoil(paths)
    before = state(), Worker.objects.count()
    with pytest.raises(DatasetImportError, match=message) as err:
        label_errors_import(release, name=ds.name)
    assert str(release) in str(err.value)
    assert (state(), Worker.objects.count()) == before


def test_import_refuses_another_test_set_or_a_missing_dataset(tmp_path):
    release = write_release(tmp_path / "in")
    with pytest.raises(DatasetImportError, match="import the test set's images first"):
        label_errors_import(release, name="nope")
    ds = make_dataset(labels=(mnist("original_labels")[:N] + 1) % 10)
    before = state()
    with pytest.raises(DatasetImportError, match="1000 labels differ"):
        label_errors_import(release, name=ds.name)
    with pytest.raises(DatasetImportError, match="no \\*_original_labels.npy"):
        label_errors_import(tmp_path, name=ds.name)
    small = make_dataset(10, name="ten")
    with pytest.raises(DatasetImportError, match=r"shape \(10,\)"):
        label_errors_import(release, name=small.name)
    assert state() == before


def test_export_takes_the_latest_finished_runs_probabilities(tmp_path):
    from curation.models import CurationRun

    ds = make_dataset(20, labels=[i % 5 for i in range(20)], k=5)
    rng = np.random.default_rng(0)
    older, newer = (rng.dirichlet(np.ones(5), size=20) for _ in range(2))
    for i, (arr, status) in enumerate([(older, "done"), (newer, "done"), (older, "failed")]):
        path = tmp_path / f"probs{i}.npy"
        np.save(path, arr)
        CurationRun.objects.create(
            dataset=ds, feature_source="pred_probs", feature_path=str(path), status=status
        )
    said = []
    out = label_errors_export(ds, tmp_path / "le", prefix="toy", progress=said.append)
    np.testing.assert_allclose(np.load(release_paths(out, "toy")["probs"]), newer)
    assert any("curation run" in line for line in said)


def test_export_without_any_run_cross_validates_the_builtin_network(tmp_path, rng):
    import io

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    labels = [i % 3 for i in range(12)]
    ds = make_dataset(12, labels=labels, name="cv", k=3)
    for item in ds.items.all():
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
        item.image.name = default_storage.save(item.image.name, ContentFile(buf.getvalue()))
        item.save(update_fields=["image"])
    said = []
    out = label_errors_export(ds, tmp_path / "le", prefix="cv", progress=said.append)
    paths = release_paths(out, "cv")
    probs = np.load(paths["probs"])
    assert probs.dtype == np.float64 and probs.shape == (12, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    assert (np.load(paths["argmax"]) == probs.argmax(axis=1)).all()
    assert np.load(paths["labels"]).tolist() == labels
    assert any("cross-validation" in line for line in said)


def test_the_commands_take_a_release_in_and_write_it_out(tmp_path):
    """import_dataset DIR --format label-errors, then export_dataset --format label-errors."""
    from django.core.management import call_command

    ds = make_dataset()
    release = write_release(tmp_path / "release")
    call_command("import_dataset", str(release), "--format", "label-errors", "--name", ds.name)
    assert Vote.objects.filter(item__dataset=ds, kind="review").exists()
    out = tmp_path / "out"
    call_command(
        "export_dataset", ds.name, "--format", "label-errors", "--output", str(out),
        "--prefix", "mnist_test_set",
        "--pred-probs", str(release_paths(release, "mnist_test_set")["probs"]),
    )  # fmt: skip
    for key in ("labels", "probs", "argmax"):
        a = np.load(release_paths(out, "mnist_test_set")[key])
        b = np.load(release_paths(release, "mnist_test_set")[key])
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    assert release_paths(out, "mnist_test_set")["mturk"].name == "mnist_mturk.json"
