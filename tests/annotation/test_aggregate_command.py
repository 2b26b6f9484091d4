"""manage.py aggregate_votes: crowd-kit long-format CSV in, labels out; and the votes-csv round trip."""

import csv
import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.aggregation import DEFAULT_METHOD
from annotation.aggregation_services import dataset_aggregate
from annotation.exporters import dataset_export
from annotation.models import AggregatedLabel, Dataset, Item, Vote, Worker


def write(path, text):
    path.write_text(text)
    return path


def read_out(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


VOTES = """task,worker,label
img-b,alice,1
img-b,bob,1
img-a,alice,0
img-b,carol,2
img-a,bob,0
img-a,carol,0
img-c,alice,2
"""


def test_majority_csv_keeps_original_ids_in_first_appearance_order(tmp_path):
    src = write(tmp_path / "votes.csv", VOTES)
    out = tmp_path / "labels.csv"
    call_command("aggregate_votes", "--input", src, "--num-classes", "3", "--method", "majority",
                 "--output", out)  # fmt: skip
    rows = read_out(out)
    assert [r["task"] for r in rows] == ["img-b", "img-a", "img-c"]
    assert [int(r["label"]) for r in rows] == [1, 0, 2]
    assert float(rows[0]["confidence"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("method", "extra", "expected"),
    [
        ("dawid_skene", [], [1, 0, None]),  # one vote on img-c: model decides
        ("one_coin", [], [1, 0, None]),  # one vote on img-c: model decides
        ("mace", [], [1, 0, None]),  # one vote on img-c: model decides
        ("consensus", ["--k", "3"], [-1, 0, -1]),
        ("consensus", ["--k", "2", "--n", "3"], [1, 0, -1]),
        ("strict", [], [-1, 0, 2]),
    ],
)
def test_methods_write_npz(tmp_path, method, extra, expected):
    src = write(tmp_path / "votes.csv", VOTES)
    out = tmp_path / "labels.npz"
    call_command("aggregate_votes", "--input", src, "--num-classes", "3", "--method", method,
                 "--output", out, *extra)  # fmt: skip
    data = np.load(out)
    assert data["tasks"].tolist() == ["img-b", "img-a", "img-c"]
    got = data["labels"].tolist()
    assert [g for g, e in zip(got, expected, strict=True) if e is not None] == [
        e for e in expected if e is not None
    ]
    assert data["probs"].shape == (3, 3)
    assert np.allclose(data["probs"].sum(axis=1), 1.0)


def test_gold_weighted_needs_and_uses_gold(tmp_path):
    src = write(tmp_path / "votes.csv", VOTES)
    gold = write(tmp_path / "gold.csv", "task,label\nimg-a,0\n")
    out = tmp_path / "labels.csv"
    with pytest.raises(CommandError, match="needs --gold"):
        call_command("aggregate_votes", "--input", src, "--num-classes", "3",
                     "--method", "gold_weighted", "--output", out)  # fmt: skip
    call_command("aggregate_votes", "--input", src, "--num-classes", "3",
                 "--method", "gold_weighted", "--gold", gold, "--output", out)  # fmt: skip
    assert [int(r["label"]) for r in read_out(out)][:2] == [1, 0]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("task,label\na,1\n", [], r"votes\.csv: missing column 'worker'"),
        ("task,worker,label\na,w,1\na,v,7\n", [], r"votes\.csv line 3: label 7 outside 0\.\.2"),
        ("task,worker,label\na,w,one\n", [], r"votes\.csv line 2: label 'one' is not an integer"),
        ("", [], r"votes\.csv: empty file"),
        ("task,worker,label\n", [], r"votes\.csv: no votes"),
        ("task,worker,label\na,w,1\n", ["--method", "bogus"], r"unknown method 'bogus'"),
        (
            "task,worker,label,candidates\na,w,1,0 2\n",
            ["--kind", "complementary", "--method", "complementary"],
            r"line 2: label 1 is not among its candidates",
        ),
        (
            "task,worker,label,kind\na,w,1,verify\na,v,1,review\n",
            [],
            r"line 3: votes of several kinds",
        ),
    ],
)
def test_bad_input_names_file_line_and_problem(tmp_path, text, args, message):
    src = write(tmp_path / "votes.csv", text)
    if "--method" not in args:
        args = [*args, "--method", "majority"]
    with pytest.raises(CommandError, match=message):
        call_command("aggregate_votes", "--input", src, "--num-classes", "3",
                     "--output", tmp_path / "o.csv", *args)  # fmt: skip
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.django_db
def test_votes_csv_export_round_trips(tmp_path, rng):
    k, n = 4, 30
    ds = Dataset.objects.create(name="rt", class_names=[f"c{i}" for i in range(k)])
    truth = rng.integers(0, k, n)
    Item.objects.bulk_create(
        Item(dataset=ds, index=i, name=f"i{i}.png", image=f"x/{i}.png", width=8, height=8,
             given_label=int((truth[i] + (i % 5 == 0)) % k))
        for i in range(n)
    )  # fmt: skip
    items = list(ds.items.order_by("index"))
    ws = [Worker.objects.create(provider="imported", id_hash=f"{j:064x}") for j in range(5)]
    votes = []
    for it, y in zip(items, truth.tolist(), strict=True):
        for j, w in enumerate(ws[:3]):
            cands = sorted(rng.choice([c for c in range(k) if c != y], 2, replace=False).tolist())
            cands = [*cands, y] if j else cands  # some candidate sets hide the true label
            pick = int(rng.choice([c for c in cands if c != y]))
            votes.append(Vote(item=it, worker=w, kind="complementary", answer=pick,
                              candidates=cands))  # fmt: skip
        suggested = int(y)
        given = it.given_label
        for j, w in enumerate(ws):
            # four of five say the suggested (true) label, one says given
            answer = 0 if j == 4 and given != suggested else (1 if given != suggested else 0)
            votes.append(Vote(item=it, worker=w, kind="review", answer=answer,
                              shown_label=given, suggested_label=suggested))  # fmt: skip
    Vote.objects.bulk_create(votes)
    exported = dataset_export(ds, "votes-csv", tmp_path / "votes.csv")

    dataset_aggregate(ds, kind="complementary")
    dataset_aggregate(ds, kind="review", methods=["majority"])

    out = tmp_path / "cl.npz"
    call_command("aggregate_votes", "--input", exported, "--num-classes", str(k),
                 "--kind", "complementary", "--method", "complementary", "--output", out)  # fmt: skip
    data = np.load(out)
    db = dict(
        AggregatedLabel.objects.filter(item__dataset=ds, method="complementary").values_list(
            "item__index", "label"
        )
    )
    got = dict(zip(data["tasks"].astype(int).tolist(), data["labels"].tolist(), strict=True))
    assert got == db
    assert len(got) == n

    out = tmp_path / "review.csv"
    call_command("aggregate_votes", "--input", exported, "--num-classes", str(k),
                 "--kind", "review", "--method", "majority", "--output", out)  # fmt: skip
    got = {int(r["task"]): int(r["label"]) for r in read_out(out)}
    assert got == {i: int(y) for i, y in enumerate(truth.tolist())}
    db = dict(
        AggregatedLabel.objects.filter(item__dataset=ds, method="majority").values_list(
            "item__index", "label"
        )
    )
    assert got == db


@pytest.mark.django_db
def test_dataset_mode_writes_rows_and_refuses_missing_votes(tmp_path):
    ds = Dataset.objects.create(name="dm", class_names=["a", "b"])
    it = Item.objects.create(dataset=ds, index=0, name="a.png", image="x/a.png", width=8,
                             height=8, given_label=0)  # fmt: skip
    for j in range(3):
        w = Worker.objects.create(provider="imported", id_hash=f"{j:064x}")
        Vote.objects.create(item=it, worker=w, kind="verify", answer=0, shown_label=0)
    call_command("aggregate_votes", "--dataset", "dm", "--kind", "verify")
    assert AggregatedLabel.objects.filter(item=it).count() == 2
    with pytest.raises(CommandError, match="has no review votes"):
        call_command("aggregate_votes", "--dataset", "dm", "--kind", "review")
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("aggregate_votes", "--dataset", "nope", "--kind", "review")


def test_complementary_gold_transition_needs_enough_gold_votes(tmp_path):
    # Three classes: the default needs 10 gold votes per class (30); there are 4.
    rows = ["task,worker,label,candidates"]
    for task, picks in {"g1": (1, 2), "g2": (0, 2), "u": (1, 2)}.items():
        rows += [f"{task},w{j},{p},0 1 2" for j, p in enumerate(picks)]
    src = write(tmp_path / "votes.csv", "\n".join(rows) + "\n")
    gold = write(tmp_path / "gold.csv", "task,label\ng1,0\ng2,1\n")
    base = ["--input", src, "--num-classes", "3", "--kind", "complementary",
            "--method", "complementary", "--gold", gold]  # fmt: skip
    out = io.StringIO()
    call_command("aggregate_votes", *base, "--output", tmp_path / "a.csv", stdout=out)
    assert "uniform transition: 4 votes on gold items, fewer than 30" in out.getvalue()
    out = io.StringIO()
    call_command("aggregate_votes", *base, "--min-gold-votes", "4", "--output",
                 tmp_path / "b.csv", stdout=out)  # fmt: skip
    assert "transition estimated from 4 votes on gold items" in out.getvalue()
    assert [r["task"] for r in read_out(tmp_path / "b.csv")] == ["g1", "g2", "u"]


@pytest.mark.django_db
def test_label_votes_aggregate_and_apply_to_current_labels():
    from annotation.models import LabelChange

    ds = Dataset.objects.create(name="lb", class_names=["a", "b", "c"])
    items = Item.objects.bulk_create(
        Item(dataset=ds, index=i, name=f"{i}.png", image=f"x/{i}.png", width=8, height=8,
             given_label=0, label=0)
        for i in range(3)
    )  # fmt: skip
    ws = [Worker.objects.create(provider="imported", id_hash=f"{j:064x}") for j in range(3)]
    picks = {0: [0, 0, 1], 1: [2, 2, 2], 2: [1, 2, 0]}  # item 2: a three-way tie
    Vote.objects.bulk_create(
        Vote(item=items[i], worker=w, kind="label", answer=a, source="imported")
        for i, answers in picks.items()
        for w, a in zip(ws, answers, strict=True)
    )
    with pytest.raises(CommandError, match="drop --background"):
        call_command("aggregate_votes", "--dataset", "lb", "--kind", "label", "--background",
                     "--apply", "majority")  # fmt: skip
    assert not AggregatedLabel.objects.exists()

    call_command("aggregate_votes", "--dataset", "lb", "--kind", "label", "--apply", "majority")
    assert set(AggregatedLabel.objects.values_list("method", flat=True)) == {
        DEFAULT_METHOD, "majority"
    }  # fmt: skip
    labels = dict(Item.objects.filter(dataset=ds).values_list("index", "label"))
    assert labels[0] == 0 and labels[1] == 2
    change = LabelChange.objects.get(item=items[1])
    assert (change.old_label, change.new_label, change.source) == (0, 2, "aggregation:majority")
    before = LabelChange.objects.count()
    call_command("aggregate_votes", "--dataset", "lb", "--kind", "label", "--apply", "majority")
    assert LabelChange.objects.count() == before  # nothing changes twice
    with pytest.raises(CommandError, match="no resolved label labels of method 'mace'"):
        call_command("aggregate_votes", "--dataset", "lb", "--kind", "label", "--apply", "mace")
