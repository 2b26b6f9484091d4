"""Crowd + model: votes combined with a classifier's out-of-sample probabilities."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.aggregation import VoteTable, aggregate_by_name, majority_vote, one_coin
from annotation.aggregation.crowd_model import crowd_model
from annotation.models import AggregatedLabel, Dataset, Item, Vote, Worker

K = 4


def crowd(n=600, votes=(1, 2), seed=0, model_acc=0.85):
    """Truth, a model that is right on ``model_acc`` of the items (with confidence to match),
    and votes from 12 workers: 8 good (0.8), 2 weak (0.5), 2 that always answer class 0."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, n)
    right = rng.random(n) < model_acc
    guess = np.where(right, truth, (truth + rng.integers(1, K, n)) % K)
    probs = rng.dirichlet(np.ones(K), n) * 0.3
    probs[np.arange(n), guess] += 0.7
    acc = np.array([0.8] * 8 + [0.5] * 2 + [0.0] * 2)

    def answer(i, w):
        if w >= 10:
            return 0
        if rng.random() < acc[w]:
            return truth[i]
        return (truth[i] + rng.integers(1, K)) % K

    return truth, probs, vote_table(rng, n, 12, votes, answer)


def vote_table(rng, n, m, votes, answer):
    """Each of n items voted by votes[0]..votes[1] distinct workers of m, ``answer(i, w)``."""
    item, worker, label = [], [], []
    for i in range(n):
        for w in rng.choice(m, size=rng.integers(votes[0], votes[1] + 1), replace=False):
            item.append(i)
            worker.append(w)
            label.append(answer(i, w))
    return VoteTable.from_arrays(item, worker, label, num_items=n, num_workers=m)


def accuracy(labels, truth):
    return float((labels == truth).mean())


def test_crowd_and_model_together_beat_each_alone():
    truth, probs, table = crowd(votes=(2, 3))
    out = crowd_model(table, probs, num_classes=K)
    ours = accuracy(out.labels, truth)
    assert ours > accuracy(probs.argmax(axis=1), truth) + 0.03
    assert ours > accuracy(majority_vote(table, num_classes=K).labels, truth) + 0.05
    assert out.method == "crowd_model"
    assert np.allclose(out.probs.sum(axis=1), 1.0)
    assert np.array_equal(out.confidence, out.probs.max(axis=1))
    # The confidence means what it says: items held at >= 0.9 are right about that often.
    sure = out.confidence >= 0.9
    assert sure.sum() > 100
    assert accuracy(out.labels[sure], truth[sure]) >= 0.85
    # Worker quality: good workers above weak ones above the ones who always say 0.
    q = out.worker_accuracy
    assert q[:8].min() > q[8:10].max() > q[10:].max()


def test_a_useless_model_does_not_drag_the_labels_down():
    truth, probs, table = crowd(votes=(2, 3), seed=1)
    shuffled = probs[np.random.default_rng(5).permutation(len(probs))]
    ours = accuracy(crowd_model(table, shuffled, num_classes=K).labels, truth)
    crowd_only = accuracy(one_coin(table, num_classes=K).labels, truth)
    assert ours >= crowd_only - 0.01
    assert ours > accuracy(majority_vote(table, num_classes=K).labels, truth)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_workers_who_always_give_one_class_do_not_take_over_without_a_model(seed):
    # One or two votes per item, a useless model, two workers who always answer class 0: the
    # labels must not slide to "everything is class 0" (where those two look perfect).
    truth, probs, table = crowd(votes=(1, 2), seed=seed)
    shuffled = probs[np.random.default_rng(seed + 10).permutation(len(probs))]
    out = crowd_model(table, shuffled, num_classes=K)
    assert (
        accuracy(out.labels, truth) >= accuracy(one_coin(table, num_classes=K).labels, truth) - 0.01
    )
    assert np.allclose(out.class_prior.sum(), 1.0)
    assert out.class_prior.max() < 0.35  # the true classes are balanced
    assert out.worker_accuracy[10:].max() < out.worker_accuracy[:8].min()


def test_a_confidently_wrong_model_is_outvoted():
    truth, probs, table = crowd(votes=(2, 3), seed=2)
    bad = np.full_like(probs, 0.01 / (K - 1))
    wrong = (truth + 1) % K
    liar = np.random.default_rng(3).random(len(truth)) < 0.4
    bad[np.arange(len(truth)), np.where(liar, wrong, probs.argmax(axis=1))] = 0.99
    ours = accuracy(crowd_model(table, bad, num_classes=K).labels, truth)
    assert ours > accuracy(bad.argmax(axis=1), truth) + 0.1
    assert ours >= accuracy(one_coin(table, num_classes=K).labels, truth) - 0.01


def lookalike_crowd(n=1500, k=8, seed=0, share=0.7):
    """Truth, a useless model (random probabilities) and votes from 20 workers: 10 good (0.8),
    8 weak (0.45), 2 who click at random. ``share`` of each honest mistake names the item's
    one look-alike class, so wrong votes on an item tend to agree."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    look = (truth + rng.integers(1, k, n)) % k
    acc = np.array([0.8] * 10 + [0.45] * 8)

    def answer(i, w):
        if w >= 18:
            return rng.integers(0, k)
        if rng.random() < acc[w]:
            return truth[i]
        if rng.random() < share:
            return look[i]
        return (truth[i] + rng.integers(1, k)) % k

    table = vote_table(rng, n, 20, (1, 3), answer)
    return truth, rng.dirichlet(np.ones(k), n), table


def test_wrong_votes_that_agree_on_a_look_alike_do_not_inflate_the_confidence():
    # Two wrong votes that agree are common when mistakes crowd on one look-alike class; a
    # model of independent slips (one-coin) takes each such pair for near-certainty.
    truth, probs, table = lookalike_crowd()
    out = crowd_model(table, probs, num_classes=8)
    coin = one_coin(table, num_classes=8)
    ours = accuracy(out.labels, truth)
    assert ours >= accuracy(coin.labels, truth) - 0.005
    ours_gap = abs(out.confidence.mean() - ours)
    coin_gap = abs(coin.confidence.mean() - accuracy(coin.labels, truth))
    assert ours_gap < 0.03
    assert ours_gap < coin_gap - 0.02
    # The random clickers rank last.
    assert out.worker_accuracy[18:].max() < out.worker_accuracy[:18].min()


def test_the_likelihood_sums_over_each_items_look_alike():
    # The closed forms (only voted classes summed, the rest as one remainder) against
    # enumerating every (class, look-alike) pair on a small table.
    from annotation.aggregation.crowd_model import _Votes

    rng = np.random.default_rng(0)
    k = 5
    row = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5, 5])
    worker = np.array([0, 1, 2, 0, 3, 1, 0, 1, 2, 3, 2, 1, 3])
    label = rng.integers(0, k, row.size)
    label[7] = label[6]  # two votes on one class
    p = rng.dirichlet(np.ones(k), 6)
    acc, lam, gamma = rng.uniform(0.3, 0.9, 4), np.array([0.2, 0.7, 1.0, 0.4]), 1.7
    vt = _Votes.build(row, worker, label, np.log(p))
    look = vt.lookalike(gamma)
    part, grow, shift = vt.mistake_part(look, lam)
    evidence = vt.accuracy_part(acc, lam) + part
    q = np.exp(evidence - evidence.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    share = vt.look_share(q, look[0], lam, part, grow, shift)
    for i in range(6):
        joint = np.zeros((k, k))  # P(votes, class c, look-alike d) under a flat prior
        for c in range(k):
            f = p[i] ** gamma
            f[c] = 0.0
            f /= f.sum()
            for d in range(k):
                joint[c, d] = f[d]
                for v in np.flatnonzero(row == i):
                    a, slip = acc[worker[v]], lam[worker[v]] / (k - 1)
                    if label[v] == c:
                        joint[c, d] *= a
                    else:
                        joint[c, d] *= (1 - a) * (slip + (1 - lam[worker[v]]) * (label[v] == d))
        assert np.allclose(np.log(joint.sum(axis=1)), evidence[i])
        joint /= joint.sum()
        for v in np.flatnonzero(row == i):
            lv, m = label[v], worker[v]
            named = joint[:, lv].sum() - joint[lv, lv]  # class != label, look-alike == label
            not_slip = (1 - lam[m]) / (lam[m] / (k - 1) + 1 - lam[m])
            assert np.isclose(share[v], named * not_slip)


def test_items_without_votes_keep_the_model_prior_and_no_label():
    truth, probs, table = crowd(n=200)
    padded = VoteTable.from_arrays(table.item, table.worker, table.label, num_items=203)
    extra = np.vstack([probs, np.eye(K)[[1, 2, 3]] * 0.9 + 0.1 / K])
    out = crowd_model(padded, extra, num_classes=K)
    assert out.labels[200:].tolist() == [-1, -1, -1]
    assert out.probs[200:].argmax(axis=1).tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (np.full((5, K), 0.25), r"pred_probs: expected shape \(N, K\) = \(3, 4\)"),
        (np.array([[np.nan, 1, 0, 0]] * 3), "pred_probs: row 0 holds NaN"),
        (np.array([[-0.5, 1.5, 0, 0]] * 3), "pred_probs: row 0 is negative"),
        (np.zeros((3, K)), "pred_probs: row 0 is all 0"),
    ],
)
def test_bad_probabilities_are_refused(probs, message):
    table = VoteTable.from_arrays([0, 1, 2], [0, 0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match=message):
        crowd_model(table, probs, num_classes=K)
    with pytest.raises(ValueError, match="crowd_model needs pred_probs"):
        aggregate_by_name(table, "crowd_model", num_classes=K)


# --------------------------------------------------------------------------- the command


def write_crowd(tmp_path, n=300):
    truth, probs, table = crowd(n=n)
    lines = ["task,worker,label"] + [
        f"{i},w{w},{lb}"
        for i, w, lb in zip(table.item.tolist(), table.worker.tolist(), table.label.tolist(),
                            strict=True)
    ]  # fmt: skip
    votes = tmp_path / "votes.csv"
    votes.write_text("\n".join(lines) + "\n")
    pp = tmp_path / "probs.npy"
    np.save(pp, probs)
    return truth, votes, pp


def test_command_pred_probs_uses_rows_and_defaults_to_crowd_model(tmp_path):
    truth, votes, pp = write_crowd(tmp_path)
    # one more row than voted items: the output has a row per array row
    probs = np.load(pp)
    np.save(pp, np.vstack([probs, np.full((1, K), 1 / K)]))
    out = tmp_path / "labels.npz"
    stdout = io.StringIO()
    call_command("aggregate_votes", "--input", votes, "--num-classes", str(K), "--pred-probs", pp,
                 "--output", out, stdout=stdout)  # fmt: skip
    assert stdout.getvalue().startswith("crowd_model: 301 tasks")
    data = np.load(out)
    assert data["tasks"].tolist() == [str(i) for i in range(301)]
    assert data["labels"][300] == -1
    assert accuracy(data["labels"][:300], truth) > accuracy(probs.argmax(axis=1), truth)


@pytest.mark.parametrize(
    ("votes", "array", "args", "message"),
    [
        ("task,worker,label\n0,a,1\nx,b,2\n", None, [], r"task 'x' is not a row of .*probs\.npy"),
        ("task,worker,label\n0,a,1\n7,b,2\n", None, [], r"task '7' .* an integer 0\.\.2"),
        (None, np.full((3, 3), 1 / 3), [], r"3 columns, but --num-classes is 4 \(K differs\)"),
        (None, np.full(3, 0.25), [], r"expected an N x K array, got shape \(3,\)"),
        (None, np.full((3, K), np.nan), [], "row 0 holds NaN or infinity"),
        (None, np.full((3, K), 0.5), [], "3 rows do not sum to 1"),
        (None, np.full((3, K), 1), [], "must be floats"),
        (None, None, ["--method", "majority"], "--pred-probs is used by crowd_model only"),
    ],
)
def test_command_refuses_bad_pred_probs(tmp_path, votes, array, args, message):
    src = tmp_path / "votes.csv"
    src.write_text(votes or "task,worker,label\n0,a,1\n2,b,2\n")
    pp = tmp_path / "probs.npy"
    np.save(pp, np.full((3, K), 1 / K) if array is None else array)
    out = tmp_path / "out.csv"
    with pytest.raises(CommandError, match=message):
        call_command("aggregate_votes", "--input", src, "--num-classes", str(K), "--pred-probs",
                     pp, "--output", out, *args)  # fmt: skip
    assert not out.exists()


def test_command_refuses_unreadable_pred_probs_and_crowd_model_without_them(tmp_path):
    src = tmp_path / "votes.csv"
    src.write_text("task,worker,label\n0,a,1\n")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not an array")
    with pytest.raises(CommandError, match="cannot read as a .npy array"):
        call_command("aggregate_votes", "--input", src, "--num-classes", "4", "--pred-probs",
                     junk, "--output", tmp_path / "o.csv")  # fmt: skip
    archive = tmp_path / "two.npz"
    np.savez(archive, a=np.full((1, 4), 0.25), b=np.full((1, 4), 0.25))
    with pytest.raises(CommandError, match="expected one N x K .npy array, not an archive"):
        call_command("aggregate_votes", "--input", src, "--num-classes", "4", "--pred-probs",
                     archive, "--output", tmp_path / "o.csv")  # fmt: skip
    with pytest.raises(CommandError, match="--method crowd_model needs --pred-probs"):
        call_command("aggregate_votes", "--input", src, "--num-classes", "4", "--method",
                     "crowd_model", "--output", tmp_path / "o.csv")  # fmt: skip


@pytest.mark.django_db
def test_dataset_crowd_model_uses_the_latest_curation_run(tmp_path):
    from curation.models import CurationRun

    truth, probs, table = crowd(n=120)
    ds = Dataset.objects.create(name="cm", class_names=["a", "b", "c", "d"])
    items = Item.objects.bulk_create(
        Item(dataset=ds, index=i, name=f"{i}.png", image=f"x/{i}.png", width=8, height=8,
             given_label=0)
        for i in range(120)
    )  # fmt: skip
    workers = [Worker.objects.create(provider="imported", id_hash=f"{j:064x}") for j in range(12)]
    Vote.objects.bulk_create(
        Vote(item=items[i], worker=workers[w], kind="label", answer=lb, source="imported")
        for i, w, lb in zip(table.item.tolist(), table.worker.tolist(), table.label.tolist(),
                            strict=True)
    )  # fmt: skip
    args = ["--dataset", "cm", "--kind", "label", "--method", "crowd_model"]
    with pytest.raises(CommandError, match="crowd_model: no finished curation run has out-of"):
        call_command("aggregate_votes", *args)
    assert not AggregatedLabel.objects.exists()

    path = tmp_path / "probs.npy"
    np.save(path, probs)
    run = CurationRun.objects.create(
        dataset=ds, feature_source="pred_probs", feature_path=str(path), status="done"
    )
    stdout = io.StringIO()
    call_command("aggregate_votes", *args, stdout=stdout)
    assert f"curation run {run.pk}" in stdout.getvalue()
    rows = dict(
        AggregatedLabel.objects.filter(method="crowd_model").values_list("item__index", "label")
    )
    labels = np.array([rows[i] for i in range(120)])
    assert accuracy(labels, truth) > accuracy(probs.argmax(axis=1), truth)
    with pytest.raises(CommandError, match="--pred-probs is for file mode"):
        call_command("aggregate_votes", *args, "--pred-probs", str(path))
