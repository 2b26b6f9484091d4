"""The default class-vote method: as accurate as crowd-kit's best on real crowds, robust elsewhere."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from annotation import aggregation as agg
from annotation.aggregation.auto import heldout_log_likelihood

CROWD = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "crowd-truth"
CLASSES = {"dog": 4, "face": 4, "duck": 2, "product": 2}


def readme_best(name: str) -> float:
    """The "best" column of the fixture README's crowd-kit table for ``name``."""
    for line in (CROWD / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == name and len(cells) == 7:
            return float(cells[-1])
    raise AssertionError(f"no row for {name} in the fixture README")


@pytest.mark.parametrize("name", list(CLASSES))
def test_command_without_method_matches_the_best_peer_on_real_crowds(name, tmp_path):
    out_path = tmp_path / "labels.csv"
    out = io.StringIO()
    call_command("aggregate_votes", "--input", CROWD / f"{name}-answers.csv",
                 "--num-classes", str(CLASSES[name]), "--output", out_path, stdout=out)  # fmt: skip
    assert out.getvalue().startswith(f"{agg.DEFAULT_METHOD}: ")
    with open(out_path, newline="") as fh:
        labels = {row["task"]: int(row["label"]) for row in csv.DictReader(fh)}
    with open(CROWD / f"{name}-truth.csv", newline="") as fh:
        truth = {row["task"]: int(row["truth"]) for row in csv.DictReader(fh)}
    accuracy = np.mean([labels[t] == y for t, y in truth.items() if t in labels])
    assert accuracy >= readme_best(name)


def crowd(seed, *, n, k, m, per_item, acc, confusable=False, adversarial=0.0):
    """Seeded votes: ``per_item`` distinct random workers per item. Honest workers answer right
    with their accuracy; a confusable crowd errs toward the next class, otherwise errors are
    uniform. Adversaries answer the next class 80% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    worker_acc = rng.uniform(*acc, m)
    bad = rng.random(m) < adversarial
    item = np.repeat(np.arange(n), per_item)
    worker = np.concatenate([rng.choice(m, per_item, replace=False) for _ in range(n)])
    y = truth[item]
    wrong = (y + 1) % k if confusable else (y + rng.integers(1, k, item.size)) % k
    label = np.where(rng.random(item.size) < worker_acc[worker], y, wrong)
    label = np.where(bad[worker] & (rng.random(item.size) < 0.8), (y + 1) % k, label)
    return agg.VoteTable.from_arrays(item, worker, label, num_workers=m), truth


def accuracy(method: str, votes, truth, k: int) -> float:
    return float((agg.aggregate_by_name(votes, method, num_classes=k).labels == truth).mean())


def test_held_out_likelihood_prefers_the_model_that_fits_the_crowd():
    # few workers, many votes each, errors that follow the true class: a confusion matrix pays
    dense, _ = crowd(0, n=600, k=4, m=8, per_item=4, acc=(0.5, 0.8), confusable=True)
    # many workers with a handful of votes each, uniform errors: one accuracy per worker is enough
    sparse, _ = crowd(1, n=600, k=6, m=600, per_item=3, acc=(0.4, 0.9))
    for votes, k, richer in ((dense, 4, True), (sparse, 6, False)):
        ds = heldout_log_likelihood(votes, num_classes=k, model="dawid_skene")
        oc = heldout_log_likelihood(votes, num_classes=k, model="one_coin")
        assert (ds > oc) == richer


@pytest.mark.parametrize(
    "shape",
    [
        dict(n=800, k=5, m=800, per_item=3, acc=(0.4, 0.95)),  # sparse workers
        dict(n=600, k=3, m=30, per_item=5, acc=(0.5, 0.9), adversarial=0.3),
        dict(n=600, k=50, m=60, per_item=4, acc=(0.3, 0.9)),  # many classes
    ],
)
def test_default_is_never_far_behind_the_best_of_our_other_methods(shape):
    votes, truth = crowd(2, **shape)
    k = shape["k"]
    others = {m: accuracy(m, votes, truth, k) for m in ("majority", "dawid_skene", "one_coin")}
    ours = accuracy(agg.DEFAULT_METHOD, votes, truth, k)
    assert ours >= others["majority"]
    assert ours >= max(others.values()) - 0.01, (ours, others)


def test_fast_reader_and_row_reader_agree(tmp_path):
    rows = [("a", "w1", 0), ("b", "w2", 1), ("a", "w2", 1), ("c", "w1", 2), ("b", "w1", 1)]
    plain = tmp_path / "plain.csv"
    plain.write_text("task,worker,label\n" + "".join(f"{t},{w},{y}\n" for t, w, y in rows))
    quoted = tmp_path / "quoted.csv"  # quotes and CRLF: parsed row by row
    quoted.write_text(
        'task,worker,label\r\n' + "".join(f'"{t}",{w}, {y}\r\n' for t, w, y in rows)
    )  # fmt: skip
    outputs = []
    for src in (plain, quoted):
        dest = tmp_path / f"{src.stem}-out.csv"
        call_command("aggregate_votes", "--input", src, "--num-classes", "3", "--method",
                     "majority", "--output", dest, stdout=io.StringIO())  # fmt: skip
        outputs.append(dest.read_text())
    assert outputs[0] == outputs[1]
    assert re.findall(r"^(\w),(\d)", outputs[0], flags=re.M) == [("a", "0"), ("b", "1"), ("c", "2")]


def test_complementary_votes_default_to_the_complementary_posterior(tmp_path):
    src = tmp_path / "votes.csv"
    src.write_text("task,worker,label,candidates\nx,w1,0,0 1\nx,w2,0,0 2\ny,w1,1,1 2\n")
    out = io.StringIO()
    call_command("aggregate_votes", "--input", src, "--num-classes", "3", "--kind",
                 "complementary", "--output", tmp_path / "o.csv", stdout=out)  # fmt: skip
    assert out.getvalue().startswith("complementary_uniform: 2 tasks")


def test_even_votes_go_to_the_more_frequent_class():
    # items 0-3: two reliable workers, mostly class 1; item 4: two one-vote workers disagree, so
    # the evidence is even and the larger class prior decides
    item = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    worker = np.array([0, 1, 0, 1, 0, 1, 0, 1, 2, 3])
    label = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 1])
    result = agg.aggregate_by_name(agg.VoteTable.from_arrays(item, worker, label), "auto",
                                   num_classes=2)  # fmt: skip
    assert result.labels.tolist()[:4] == [1, 1, 1, 0]
    assert result.labels[4] == 1
