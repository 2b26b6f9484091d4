"""Bad input to the retrieval commands and the pool importer: each is refused with a message
naming the problem, and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Dataset, Item
from curation.models import RetrievalRun
from hits.models import HitBatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool_files(tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    rng = np.random.default_rng(3)
    np.save(tmp_path / "pool.npy", rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8))
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return tmp_path


def _pool(tmp_path, **extra):
    call_command(
        "import_pool",
        str(extra.pop("path", tmp_path / "pool.npy")),
        name=extra.pop("name", "pool"),
        source=extra.pop("source", "npy"),
        classes=str(tmp_path / "classes.txt"),
        **extra,
    )


@pytest.mark.parametrize(
    "csv_text, source, message",
    [
        ("path,colour\nimgs/0.png,red\n", "csv", "unknown columns ['colour']"),
        ("path,timestamp\nimgs/0.png,last tuesday\n", "csv", "is not an ISO date"),
        ("path,bucket\nimgs/9.png,2012\n", "csv", "'imgs/9.png' not found"),
        ("path\n../../etc/passwd\n", "csv", "passwd"),
        ("file,bucket\nimgs/0.png,2012\n", "csv", "must name a 'path' column"),
        ("name,bucket\n000099.png,2012\n", "meta", "no image named '000099.png'"),
        ("name,bucket\n000001.png,2012\n000001.png,2013\n", "meta", "duplicate name"),
    ],
)
def test_retrieval_pool_import_refuses_bad_csv(pool_files, csv_text, source, message):
    (pool_files / "pool.csv").write_text(csv_text)
    kwargs = (
        {"path": pool_files / "pool.csv", "source": "csv"}
        if source == "csv"
        else {"metadata": pool_files / "pool.csv"}
    )
    with pytest.raises(CommandError, match="nothing was written") as err:
        _pool(pool_files, **kwargs)
    assert message in str(err.value)
    assert not Dataset.objects.exists() and not Item.objects.exists()


def test_retrieval_pool_import_refuses_bad_arrays_and_folders(pool_files):
    np.save(pool_files / "floats.npy", np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(CommandError, match="dtype uint8"):
        _pool(pool_files, path=pool_files / "floats.npy")
    (pool_files / "imgs" / "sub").mkdir()
    with pytest.raises(CommandError, match="nested folders"):
        _pool(pool_files, path=pool_files / "imgs", source="folder")
    with pytest.raises(CommandError, match="not a folder"):
        _pool(pool_files, path=pool_files / "missing", source="folder")
    with pytest.raises(CommandError, match="carries its metadata"):
        (pool_files / "p.csv").write_text("path\nimgs/0.png\n")
        _pool(pool_files, path=pool_files / "p.csv", source="csv", metadata=pool_files / "p.csv")
    assert not Dataset.objects.exists()


def test_retrieval_pool_import_csv_with_metadata_splits_by_bucket(pool_files):
    (pool_files / "pool.csv").write_text(
        "path,timestamp,bucket,text\n"
        "imgs/0.png,2011-03-04T10:00:00,a,a cat on a mat\n"
        "imgs/1.png,2012-01-01,b,\n"
        "imgs/2.png,,,\n"
    )
    _pool(pool_files, path=pool_files / "pool.csv", source="csv")
    items = {i.name: i for i in Item.objects.all()}
    assert items["imgs/0.png"].metadata == {
        "timestamp": "2011-03-04T10:00:00",
        "year": "2011",
        "bucket": "a",
        "text": "a cat on a mat",
    }
    assert items["imgs/2.png"].metadata == {} and items["imgs/2.png"].label is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["rank", "nope"], "no dataset named 'nope'"),
        (["rank", "pool", "--example", "cow=000001.png"], "['cow'] are not classes"),
        (["rank", "pool", "--example", "cat=nothing.png"], "no items named ['nothing.png']"),
        (["rank", "pool", "--example", "cat"], "expected CLASS=VALUE"),
        (["rank", "pool", "--sample", "20", "--stretch", "10"], "sample <= stretch"),
        (["rank", "pool", "--target-precision", "1.5"], "target must lie"),
        (["rank", "pool", "--budget", "lots"], "--budget 'lots' is not an amount"),
        (["rank", "pool", "--bucket", "1999"], "no items with bucket '1999'"),
        (["rank", "pool", "--template", "a photo"], "has no {} for the class name"),
        (["rank", "pool", "--backend", "npy"], "needs the image embeddings .npy path"),
        (["rank", "pool", "--backend", "open_clip"], "set CLIP_WEIGHTS to a local weights"),
        (["round", "77"], "no retrieval run '77'"),
        (["export", "1"], "export needs --output"),
    ],
)
def test_retrieval_command_refuses_bad_input(pool_files, args, message):
    _pool(pool_files)
    with pytest.raises(CommandError) as err:
        call_command("retrieve", *args)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not RetrievalRun.objects.exists()


def test_retrieval_npy_backend_refuses_wrong_rows(pool_files):
    _pool(pool_files)
    np.save(pool_files / "emb.npy", np.ones((5, 4), np.float32))
    with pytest.raises(CommandError, match="have 5 rows, the dataset 12 items"):
        call_command(
            "retrieve", "rank", "pool", backend="npy", embeddings=str(pool_files / "emb.npy")
        )
    assert not RetrievalRun.objects.exists()


def test_retrieval_open_clip_weights_setting_and_package_named(pool_files, settings, monkeypatch):
    _pool(pool_files)
    settings.CLIP_WEIGHTS = str(pool_files / "no-such-weights.pt")
    with pytest.raises(CommandError, match="open_clip weights file not found: set CLIP_WEIGHTS"):
        call_command("retrieve", "rank", "pool", backend="open_clip")
    weights = pool_files / "weights.pt"
    weights.write_bytes(b"not really weights")
    settings.CLIP_WEIGHTS = str(weights)
    monkeypatch.setitem(__import__("sys").modules, "open_clip", None)
    with pytest.raises(CommandError, match="needs the package open-clip-torch") as err:
        call_command("retrieve", "rank", "pool", backend="open_clip")
    assert "\n" not in str(err.value) and not RetrievalRun.objects.exists()


def test_retrieval_rounds_refused_out_of_order(pool_files, capsys):
    _pool(pool_files)
    call_command(
        "retrieve",
        "rank",
        "pool",
        example=["cat=000000.png", "dog=000001.png"],
        sample=2,
        stretch=4,
    )
    run = RetrievalRun.objects.get()
    with pytest.raises(CommandError, match="has no round out for verification"):
        call_command("retrieve", "fold", str(run.pk))
    with pytest.raises(CommandError, match="not done"):
        call_command("retrieve", "export", str(run.pk), output=pool_files / "out")
    assert not (pool_files / "out").exists()


def test_retrieval_round_past_the_budget_stops_the_run(pool_files, capsys):
    _pool(pool_files)
    call_command(
        "retrieve",
        "rank",
        "pool",
        example=["cat=000000.png", "dog=000001.png"],
        sample=2,
        stretch=4,
        budget="0.01",
    )
    run = RetrievalRun.objects.get()
    capsys.readouterr()
    call_command("retrieve", "round", str(run.pk))
    run.refresh_from_db()
    assert run.status == RetrievalRun.Status.DONE and "budget" in run.message
    assert {p["stopped"] for p in run.progress.values()} <= {"budget", "end"}
    assert not run.rounds.exists() and not HitBatch.objects.exists()
    assert not Item.objects.filter(label__isnull=False).exists()  # sampled labels undone
    assert "is done" in capsys.readouterr().out


def test_retrieval_npy_backend_ranks_by_text_rows_and_offline_reuses_store(pool_files):
    _pool(pool_files)
    emb = np.zeros((12, 4), np.float32)
    emb[:6, 0], emb[:6, 2] = 1.0, 0.1 * np.arange(6)  # items 0..5: cats, item 0 the closest
    emb[6:, 1], emb[6:, 3] = 1.0, 0.1 * np.arange(6)
    np.save(pool_files / "emb.npy", emb)
    np.save(pool_files / "text.npy", np.eye(2, 4, dtype=np.float32))
    call_command(
        "retrieve",
        "rank",
        "pool",
        backend="npy",
        embeddings=str(pool_files / "emb.npy"),
        text_embeddings=str(pool_files / "text.npy"),
        review_margin=0.0,
    )
    run = RetrievalRun.objects.get()
    cats = list(run.candidates.on_list(0).order_by("rank").values_list("item__index", flat=True))
    assert cats[:6] == [0, 1, 2, 3, 4, 5] and cats == cats[:6]

    ex = ["cat=000000.png", "dog=000006.png"]
    call_command("retrieve", "rank", "pool", example=ex)
    stores = list((pool_files / "var" / "embeddings").glob("*.npy"))
    assert len(stores) == 1
    before = stores[0].stat().st_mtime_ns
    call_command("retrieve", "rank", "pool", example=ex)
    assert stores[0].stat().st_mtime_ns == before  # the second ranking did not re-embed
    assert RetrievalRun.objects.count() == 3


def test_retrieval_rank_in_the_background(pool_files, django_capture_on_commit_callbacks):
    _pool(pool_files)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("retrieve", "rank", "pool", "--background", backend="open_clip")
        call_command("retrieve", "rank", "pool", "--background", example=["cat=000000.png"])
    failed, ranked = RetrievalRun.objects.order_by("pk")
    assert failed.status == RetrievalRun.Status.FAILED and "CLIP_WEIGHTS" in failed.message
    assert ranked.status == RetrievalRun.Status.RANKED and ranked.candidates.exists()
