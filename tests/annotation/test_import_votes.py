"""manage.py import_votes: crowd votes from outside (long CSV, MTurk / Turkle results,
label-errors JSON) land as imported votes of hashed workers, all or nothing, once."""

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.aggregation import DEFAULT_METHOD
from annotation.importers import ImportRecord, ParsedDataset
from annotation.models import AggregatedLabel, Dataset, Item, Vote, Worker
from annotation.services import dataset_import
from annotation.worker_ids import worker_id_hash

pytestmark = pytest.mark.django_db

CROWD = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "crowd-truth"
LABEL_ERRORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "label-errors"


def make_dataset(name: str, n: int, classes: list[str]) -> Dataset:
    """``n`` tiny 8x8 images named img-0.png..; item i has index i."""
    rng = np.random.default_rng(0)
    records = [
        ImportRecord(name=f"img-{i}.png", array=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        for i in range(n)
    ]
    return dataset_import(ParsedDataset(classes, records, "generated"), name=name)


def import_votes(path, dataset, *args):
    call_command("import_votes", str(path), "--dataset", dataset.name, *args)


def state():
    return (
        Vote.objects.count(),
        Worker.objects.count(),
        AggregatedLabel.objects.count(),
        list(Item.objects.order_by("pk").values_list("label", flat=True)),
    )


def test_dog_crowd_imports_once_and_aggregates_to_expert_accuracy(capsys, tmp_path):
    dataset = make_dataset("dogs", 807, ["breed-a", "breed-b", "breed-c", "breed-d"])
    answers = CROWD / "dog-answers.csv"
    args = ["--kind", "label", "--format", "long", "--by-index"]
    import_votes(answers, dataset, *args)
    # The published file numbers its 807 tasks 1..807: read as such, and said.
    assert "read as numbered from 1" in capsys.readouterr().out

    votes = Vote.objects.filter(item__dataset=dataset, kind="label")
    assert votes.count() == 8070
    assert set(votes.values_list("source", flat=True)) == {"imported"}
    workers = Worker.objects.filter(votes__item__dataset=dataset).distinct()
    assert workers.count() == 109
    with open(answers, newline="") as fh:
        raw_ids = {row["worker"] for row in csv.DictReader(fh)}
    stored = set(workers.values_list("id_hash", flat=True))
    assert stored == {worker_id_hash(w) for w in raw_ids}
    assert not stored & raw_ids
    assert not set(workers.values_list("id_sha1", flat=True)) & raw_ids

    before = state()
    import_votes(answers, dataset, *args)
    assert state() == before
    assert "0 label votes written" in capsys.readouterr().out

    call_command("aggregate_votes", "--dataset", dataset.name, "--kind", "label")
    # Straight out as a CLImage release: ord_labels are the aggregated class labels.
    out = tmp_path / "dogs.pkl"
    call_command("export_dataset", dataset.name, "--format", "climage", "--output", str(out))
    with open(out, "rb") as fh:
        release = pickle.load(fh)  # noqa: S301 - our own export, loaded as its README does
    with open(CROWD / "dog-truth.csv", newline="") as fh:
        published = {int(r["task"]) - 1: int(r["truth"]) for r in csv.DictReader(fh)}
    assert len(release["ord_labels"]) == 807
    assert np.mean([release["ord_labels"][i] == t for i, t in published.items()]) >= 0.84
    with open(CROWD / "dog-truth.csv", newline="") as fh:
        truth = {int(r["task"]) - 1: int(r["truth"]) for r in csv.DictReader(fh)}
    for method, floor in ((DEFAULT_METHOD, 0.84), ("majority", 0.80)):
        got = dict(
            AggregatedLabel.objects.filter(item__dataset=dataset, kind="label", method=method)
            .values_list("item__index", "label")
        )  # fmt: skip
        assert len(got) == 807
        accuracy = np.mean([got[i] == t for i, t in truth.items()])
        assert accuracy >= floor, (method, accuracy)

    # The current label (what exports write) can be set from the aggregated labels.
    call_command("aggregate_votes", "--dataset", dataset.name, "--kind", "label",
                 "--apply", DEFAULT_METHOD)  # fmt: skip
    current = dict(Item.objects.filter(dataset=dataset).values_list("index", "label"))
    assert np.mean([current[i] == t for i, t in truth.items()]) >= 0.84
    # ... and the export follows the applied labels too.
    out = tmp_path / "dogs-applied.pkl"
    call_command("export_dataset", dataset.name, "--format", "climage", "--output", str(out))
    with open(out, "rb") as fh:
        release = pickle.load(fh)  # noqa: S301 - our own export, loaded as its README does
    ord_labels = release["ord_labels"]
    assert len(ord_labels) == 807
    assert np.mean([ord_labels[i] == t for i, t in truth.items()]) >= 0.84


@pytest.fixture
def small(db):
    return make_dataset("small", 4, ["cat", "dog", "emu"])


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("task,worker,label\nimg-0.png,w1,1\nimg-1.png,w1,7\n", "line 3, column label: value '7'"),
        ("task,worker,label\nimg-0.png,w1,1\nimg-1.png,w2,owl\n", "line 3, column label"),
        ("task,worker,label\nimg-0.png,w1,1\nimg-9.png,w1,0\n", "line 3, column task: value"),
        ("task,worker\nimg-0.png,w1\n", "line 1: missing column 'label'"),
        ("task,worker,label\nimg-0.png,,1\n", "line 2, column worker: empty"),
        ("task,worker,label\nimg-0.png,w1,1,9\n", "line 2: more fields"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(tmp_path, small, text, named):
    path = write(tmp_path, "votes.csv", text)
    before = state()
    with pytest.raises(CommandError) as exc:
        import_votes(path, small, "--kind", "label", "--format", "long")
    assert named in str(exc.value)
    assert "nothing was written" in str(exc.value)
    assert state() == before


def test_class_names_by_index_and_worker_ids_never_shown(tmp_path, small):
    path = write(tmp_path, "v.csv", "task,worker,label\n0,SECRET-W1,dog\n1,SECRET-W1,2\n")
    import_votes(path, small, "--kind", "label", "--format", "long", "--by-index")
    assert sorted(Vote.objects.values_list("item__index", "answer")) == [(0, 1), (1, 2)]
    bad = write(tmp_path, "bad.csv", "task,worker,label\n0,SECRET-W2,owl\n")
    with pytest.raises(CommandError) as exc:
        import_votes(bad, small, "--kind", "label", "--format", "long", "--by-index")
    assert "SECRET" not in str(exc.value)


def test_mturk_results_of_our_pages_and_of_a_named_layout(tmp_path, small):
    items = list(Item.objects.filter(dataset=small).order_by("index"))
    answers = json.dumps([{"item": items[0].pk, "answer": 2, "duration_ms": 1500}])
    rows = [
        ["HITId", "AssignmentId", "WorkerId", "AssignmentStatus", "Answer.answers",
         f"Answer.item_{items[0].pk}"],
        ["H1", "A1", "AWORKER1", "Submitted", answers, "2"],
        ["H1", "A2", "AWORKER2", "Rejected", answers, "2"],
        ["H2", "A3", "AWORKER3", "Approved", "", "1"],
    ]  # fmt: skip
    path = tmp_path / "Batch_1_batch_results.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    import_votes(path, small, "--kind", "label", "--format", "mturk-results")
    got = sorted(Vote.objects.values_list("worker__provider", "answer", "duration_ms"))
    assert got == [("mturk", 1, None), ("mturk", 2, 1500)]
    assert Worker.objects.filter(id_hash=worker_id_hash("AWORKER1")).exists()

    layout = tmp_path / "layout.csv"
    layout.write_text(
        "HITId,WorkerId,Answer.img-1.png,Answer.img-2.png,Answer.comment\n"
        "H9,AWORKER1,cat,emu,nice\n"
    )
    import_votes(layout, small, "--kind", "complementary", "--format", "mturk-results")
    assert sorted(
        Vote.objects.filter(kind="complementary").values_list("item__name", "answer")
    ) == [("img-1.png", 0), ("img-2.png", 2)]


def test_turkle_results_use_the_username(tmp_path, small):
    path = write(
        tmp_path,
        "turkle.csv",
        "Input.image,Answer.img-3.png,Turkle.Username,WorkerId\nx.png,1,alice,7\n",
    )
    import_votes(path, small, "--kind", "label", "--format", "turkle")
    vote = Vote.objects.get()
    assert (vote.item.name, vote.answer, vote.worker.provider) == ("img-3.png", 1, "imported")
    assert vote.worker.id_hash == worker_id_hash("turkle:alice")


def test_label_errors_counts_become_review_votes(tmp_path, small):
    entries = [
        {"id": 1, "given_original_label": 0, "our_guessed_label": 2,
         "mturk": {"given": 1, "guessed": 3, "both": 0, "neither": 1}},
        {"id": 3, "given_original_label": 1, "our_guessed_label": 0,
         "mturk": {"given": 5, "guessed": 0, "neither": 0}},
    ]  # fmt: skip
    path = write(tmp_path, "cifar_mturk.json", json.dumps(entries))
    args = ["--kind", "review", "--format", "label-errors", "--by-index"]
    import_votes(path, small, *args)
    votes = Vote.objects.filter(kind="review")
    assert votes.count() == 10
    assert votes.values("worker").distinct().count() == 10
    first = sorted(votes.filter(item__index=1).values_list("answer", flat=True))
    assert first == [0, 1, 1, 1, 3]
    assert set(votes.filter(item__index=1).values_list("shown_label", "suggested_label")) == {
        (0, 2)
    }
    import_votes(path, small, *args)
    assert Vote.objects.count() == 10

    bad = write(tmp_path, "bad_mturk.json", json.dumps([{**entries[0], "id": 99}]))
    with pytest.raises(CommandError, match="entry 1, field id: value 99"):
        import_votes(bad, small, *args)
    assert Vote.objects.count() == 10


def test_real_label_errors_file_reads(tmp_path):
    path = LABEL_ERRORS / "mturk" / "mnist_mturk.json"
    entries = json.loads(path.read_text())
    top = max(e["id"] for e in entries)
    dataset = make_dataset("mnist-part", top + 1, [str(d) for d in range(10)])
    import_votes(path, dataset, "--kind", "review", "--format", "label-errors", "--by-index")
    expected = sum(sum(e["mturk"].values()) for e in entries)
    assert Vote.objects.filter(item__dataset=dataset, kind="review").count() == expected
