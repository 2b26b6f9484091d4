"""Aggregation rules and models: hand-built cases plus seeded synthetic crowds. No database."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.aggregation import (
    STATUS_AMBIGUOUS,
    STATUS_CLEAN,
    STATUS_NOISY,
    STATUS_NONE,
    VoteTable,
    complementary_log_likelihood,
    complementary_posterior,
    consensus,
    dawid_skene,
    elimination,
    estimate_complementary_transition,
    gold_weighted_majority,
    mace,
    majority_vote,
    one_coin,
    select_share,
    verify_summary,
    worker_quality,
)


def table(rows: list[tuple[int, int, int]], num_items: int | None = None) -> VoteTable:
    """Votes from (item, worker, label) triples."""
    item, worker, label = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return VoteTable.from_arrays(item, worker, label, num_items=num_items)


def spammer_crowd(seed: int = 0, n_items: int = 600, k: int = 4):
    """Four good workers (85% accurate) and two who always answer 0; three votes per item."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = np.array([0.85, 0.85, 0.85, 0.85, 0.0, 0.0])
    workers = np.argsort(rng.random((n_items, acc.size)), axis=1)[:, :3]
    item = np.repeat(np.arange(n_items), 3)
    worker = workers.ravel()
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    label = np.where(rng.random(item.size) < acc[worker], truth[item], wrong)
    label[worker >= 4] = 0
    return VoteTable.from_arrays(item, worker, label), truth


def planted_crowd(seed: int, n_items: int = 2000, m: int = 20, k: int = 3, per_item: int = 10):
    """Each worker has a planted (asymmetric) confusion matrix; ``per_item`` distinct workers."""
    rng = np.random.default_rng(seed)
    conf = np.empty((m, k, k))
    for w in range(m):
        for y in range(k):
            acc = rng.uniform(0.55, 0.9)
            off = rng.dirichlet(np.full(k - 1, 0.7)) * (1 - acc)
            conf[w, y] = np.insert(off, y, acc)
    truth = rng.integers(0, k, n_items)
    workers = np.argsort(rng.random((n_items, m)), axis=1)[:, :per_item]
    item = np.repeat(np.arange(n_items), per_item)
    worker = workers.ravel()
    cdf = np.cumsum(conf[worker, truth[item]], axis=1)
    label = (rng.random(item.size)[:, None] > cdf).sum(axis=1)
    votes = VoteTable.from_arrays(item, worker, label, num_items=n_items, num_workers=m)
    return votes, truth, conf


EM_METHODS = [dawid_skene, one_coin, mace]
ALL_METHODS = [majority_vote, *EM_METHODS]


# --------------------------------------------------------------------------- VoteTable


def test_vote_table_infers_sizes_and_keeps_explicit_ones() -> None:
    v = VoteTable.from_arrays([0, 2], [1, 0], [3, 3])
    assert (v.num_items, v.num_workers, v.num_votes) == (3, 2, 2)
    v = VoteTable.from_arrays([0, 2], [1, 0], [3, 3], num_items=10, num_workers=5)
    assert (v.num_items, v.num_workers) == (10, 5)
    assert v.item.dtype == np.int64


@pytest.mark.parametrize(
    ("arrays", "kwargs", "match"),
    [
        (([0, 1], [0], [0, 1]), {}, "worker: length 1"),
        (([0, -1], [0, 0], [0, 1]), {}, "item: negative value -1"),
        (([0, 1], [0, 0], [0.5, 1.0]), {}, "label: expected an integer array"),
        (([0, 5], [0, 0], [0, 1]), {"num_items": 3}, "item: index 5 out of range for num_items=3"),
    ],
)
def test_vote_table_refuses_bad_arrays(arrays, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        VoteTable.from_arrays(*arrays, **kwargs)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("method", ALL_METHODS)
def test_empty_table_is_refused(method) -> None:
    empty = VoteTable.from_arrays([], [], [], num_items=4)
    with pytest.raises(ValueError, match="votes: empty vote table"):
        method(empty, num_classes=3)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_label_out_of_range_names_the_parameter(method) -> None:
    votes = table([(0, 0, 1), (1, 1, 7)])
    with pytest.raises(ValueError, match=r"votes\.label: label 7 out of range 0\.\.2"):
        method(votes, num_classes=3)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_fewer_than_two_classes_is_refused(method) -> None:
    votes = table([(0, 0, 0)])
    with pytest.raises(
        ValueError, match="num_classes: need at least 2 classes to aggregate, got 1"
    ):
        method(votes, num_classes=1)


def test_bad_options_are_refused() -> None:
    votes = table([(0, 0, 0), (0, 1, 1)])
    with pytest.raises(ValueError, match="tie: expected"):
        majority_vote(votes, num_classes=2, tie="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prior: expected"):
        dawid_skene(votes, num_classes=2, prior="beta")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_iter: expected an int >= 1, got 0"):
        one_coin(votes, num_classes=2, max_iter=0)
    with pytest.raises(ValueError, match="prior_strength: expected a positive"):
        dawid_skene(votes, num_classes=2, prior_strength=-1.0)


# --------------------------------------------------------------------------- majority and consensus


def test_majority_unanimous_single_vote_and_unvoted_item() -> None:
    votes = table([(0, 0, 2), (0, 1, 2), (0, 2, 2), (1, 0, 1)], num_items=3)
    agg = majority_vote(votes, num_classes=3)
    assert agg.labels.tolist() == [2, 1, -1]
    np.testing.assert_allclose(agg.probs[0], [0, 0, 1])
    np.testing.assert_allclose(agg.probs[2], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(agg.confidence, [1.0, 1.0, 1 / 3])


def test_majority_tie_random_is_seeded_and_picks_a_tied_class() -> None:
    rows = [(i, w, lab) for i in range(200) for w, lab in ((0, 0), (1, 2), (2, 1))]
    votes = table([r for r in rows if r[1] != 2])  # every item: 0 vs 2
    first = majority_vote(votes, num_classes=3, tie="random", seed=7)
    again = majority_vote(votes, num_classes=3, tie="random", seed=7)
    other = majority_vote(votes, num_classes=3, tie="random", seed=8)
    assert np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.labels, other.labels)
    assert set(first.labels.tolist()) == {0, 2}
    np.testing.assert_allclose(first.probs[0], [0.5, 0, 0.5])


def test_majority_tie_agreement_prefers_the_reliable_worker() -> None:
    # Workers 0 and 1 agree with worker 2 on items 0-3; worker 3 always dissents there.
    rows = [(i, w, 1) for i in range(4) for w in (0, 1, 2)] + [(i, 3, 0) for i in range(4)]
    rows += [(4, 0, 2), (4, 3, 0)]  # a tie between the reliable worker 0 and worker 3
    agg = majority_vote(table(rows), num_classes=3, tie="agreement")
    assert agg.labels.tolist() == [1, 1, 1, 1, 2]
    np.testing.assert_allclose(agg.probs[4], [0.5, 0, 0.5])


def test_majority_tie_unresolved_gives_minus_one() -> None:
    votes = table([(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (1, 2, 0)])
    agg = majority_vote(votes, num_classes=2, tie="unresolved")
    assert agg.labels.tolist() == [-1, 1]


def test_consensus_k_of_n() -> None:
    votes = table(
        [(0, w, 1) for w in range(5)]  # 5 of 5
        + [(1, w, 1) for w in range(3)]
        + [(1, 3, 0), (1, 4, 2)]  # 3 of 5
        + [(2, w, 1) for w in range(2)]
        + [(2, 2, 0), (2, 3, 0), (2, 4, 2)]  # 2-2-1
        + [(3, w, 2) for w in range(3)],  # 3 votes, incomplete for n=5
        num_items=5,
    )
    three = consensus(votes, num_classes=3, k=3, n=5)
    assert three.labels.tolist() == [1, 1, -1, -1, -1]
    assert consensus(votes, num_classes=3, k=3).labels.tolist() == [1, 1, -1, 2, -1]
    assert consensus(votes, num_classes=3, k=5, n=5).labels.tolist() == [1, -1, -1, -1, -1]
    # Two classes both reaching k is no consensus.
    assert consensus(votes, num_classes=3, k=2).labels[2] == -1


def test_consensus_refuses_bad_k_n_and_overfull_items() -> None:
    votes = table([(0, w, 1) for w in range(6)])
    with pytest.raises(ValueError, match="n: item 0 has 6 votes, more than n=5"):
        consensus(votes, num_classes=2, k=3, n=5)
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        consensus(votes, num_classes=2, k=0)
    with pytest.raises(ValueError, match="n: expected an int >= k=3, got 2"):
        consensus(votes, num_classes=2, k=3, n=2)


# --------------------------------------------------------------------------- EM models


@pytest.mark.parametrize("method", EM_METHODS)
def test_em_unanimous_single_vote_and_unvoted(method) -> None:
    votes = table([(0, 0, 2), (0, 1, 2), (0, 2, 2), (1, 1, 0)], num_items=3)
    agg = method(votes, num_classes=3)
    assert agg.labels.tolist() == [2, 0, -1]
    np.testing.assert_allclose(agg.probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(agg.probs[2], [1 / 3, 1 / 3, 1 / 3])
    assert agg.confidence[0] > 0.9
    assert agg.n_iter >= 1


@pytest.mark.parametrize("method", EM_METHODS)
def test_em_downweights_a_worker_who_always_answers_zero(method) -> None:
    votes, truth = spammer_crowd()
    agg = method(votes, num_classes=4)
    mv = majority_vote(votes, num_classes=4)
    assert (agg.labels == truth).mean() > (mv.labels == truth).mean() + 0.05
    if agg.worker_confusion is not None:
        # Dawid–Skene: spammers answer 0 whatever the truth.
        np.testing.assert_allclose(agg.worker_confusion[4:, :, 0], 1.0, atol=0.1)
        assert agg.worker_confusion[:4].diagonal(axis1=1, axis2=2).min() > 0.7
    else:
        assert agg.worker_accuracy is not None
        assert agg.worker_accuracy[4:].max() < agg.worker_accuracy[:4].min() - 0.4
    if agg.worker_strategy is not None:
        assert agg.worker_strategy[4:, 0].min() > 0.9


def test_dawid_skene_recovers_planted_confusions_and_beats_majority() -> None:
    votes, truth, planted = planted_crowd(seed=0)
    agg = dawid_skene(votes, num_classes=3)
    mv = majority_vote(votes, num_classes=3)
    assert agg.converged
    assert agg.worker_confusion is not None
    # Every worker has 1,000 votes; what remains is mostly sampling noise.
    err = np.abs(agg.worker_confusion - planted)
    assert err.mean() < 0.025
    assert err.max() < 0.08
    # Against the confusion measured with the true labels, EM itself adds little error.
    oracle = np.zeros_like(planted)
    np.add.at(oracle, (votes.worker, truth[votes.item], votes.label), 1)
    oracle /= oracle.sum(axis=2, keepdims=True)
    assert np.abs(agg.worker_confusion - oracle).max() < 0.03
    assert (agg.labels == truth).mean() > (mv.labels == truth).mean()
    np.testing.assert_allclose(agg.worker_confusion.sum(axis=2), 1.0)


@pytest.mark.parametrize("prior", ["pooled", "dirichlet", "none"])
def test_dawid_skene_priors_all_work_on_planted_data(prior) -> None:
    votes, truth, _ = planted_crowd(seed=1, per_item=5)
    agg = dawid_skene(votes, num_classes=3, prior=prior)
    assert (agg.labels == truth).mean() > (
        majority_vote(votes, num_classes=3).labels == truth
    ).mean()


def test_pooled_prior_keeps_few_vote_workers_near_the_crowd() -> None:
    votes, _, _ = planted_crowd(seed=2, per_item=5)
    # One extra worker with a single vote on item 0.
    extra = VoteTable.from_arrays(
        np.append(votes.item, 0), np.append(votes.worker, 20), np.append(votes.label, 1)
    )
    pooled = dawid_skene(extra, num_classes=3, prior="pooled").worker_confusion
    none = dawid_skene(extra, num_classes=3, prior="none").worker_confusion
    assert pooled is not None and none is not None
    crowd = pooled[:20].mean(axis=0)
    assert np.abs(pooled[20] - crowd).max() < 0.3
    # Maximum likelihood puts a whole row on one answer from a single vote.
    assert np.abs(none[20] - crowd).max() > 0.3


# --------------------------------------------------------------------------- gold-weighted


def test_gold_weighted_majority_ignores_spammers() -> None:
    votes, truth = spammer_crowd(seed=3)
    gold = np.arange(100)
    agg = gold_weighted_majority(votes, num_classes=4, gold_items=gold, gold_labels=truth[gold])
    mv = majority_vote(votes, num_classes=4)
    assert agg.worker_weight is not None
    # At-chance spammers get (near) zero weight; 85% workers get log(3 * .85 / .15) ~ 2.8.
    assert agg.worker_weight[4:].max() < 0.5
    assert agg.worker_weight[:4].min() > 2.0
    assert (agg.labels == truth).mean() > (mv.labels == truth).mean() + 0.05
    np.testing.assert_allclose(agg.probs.sum(axis=1), 1.0)


def test_gold_weighted_majority_refuses_bad_gold() -> None:
    votes = table([(0, 0, 1), (1, 1, 0)])
    with pytest.raises(ValueError, match="gold_labels: length 1 differs"):
        gold_weighted_majority(votes, num_classes=2, gold_items=[0, 1], gold_labels=[1])
    with pytest.raises(ValueError, match="gold_labels: value 5 out of range"):
        gold_weighted_majority(votes, num_classes=2, gold_items=[0], gold_labels=[5])
    with pytest.raises(ValueError, match="gold_items: no vote falls on a gold item"):
        gold_weighted_majority(
            VoteTable.from_arrays([0], [0], [1], num_items=3),
            num_classes=2,
            gold_items=[2],
            gold_labels=[1],
        )


# --------------------------------------------------------------------------- complementary


def tiny_complementary():
    # K = 3, one item; vote 0 shown {0, 1} picked 1; vote 1 shown {1, 2} picked 1.
    return np.array([0, 0]), np.array([1, 1]), np.array([[0, 1], [1, 2]])


def test_complementary_uniform_posterior_by_hand() -> None:
    item, cl, cand = tiny_complementary()
    # y=0: shown in S0 (1/(2-1) = 1), not in S1 (1/2)      -> 0.5
    # y=1: picked as incorrect                               -> 0
    # y=2: not in S0 (1/2), shown in S1 (1)                  -> 0.5
    agg = complementary_posterior(item, cl, cand, num_items=1, num_classes=3)
    np.testing.assert_allclose(agg.probs[0], [0.5, 0.0, 0.5])
    prior = np.array([[0.2, 0.3, 0.5]])
    agg = complementary_posterior(item, cl, cand, num_items=1, num_classes=3, prior_probs=prior)
    np.testing.assert_allclose(agg.probs[0], [2 / 7, 0.0, 5 / 7])
    assert agg.labels.tolist() == [2]


def test_complementary_transition_posterior_by_hand() -> None:
    item, cl, cand = tiny_complementary()
    t = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5], [0.2, 0.7, 0.1]])
    like = np.array([(0.6 / 0.7) * (0.6 / 0.9), 0.0, (0.7 / 0.9) * (0.7 / 0.8)])
    ll = complementary_log_likelihood(item, cl, cand, num_items=2, num_classes=3, transition=t)
    np.testing.assert_allclose(np.exp(ll[0]), like)
    np.testing.assert_allclose(ll[1], 0.0)  # item 1 has no votes
    agg = complementary_posterior(item, cl, cand, num_items=2, num_classes=3, transition=t)
    np.testing.assert_allclose(agg.probs[0], like / like.sum())
    assert agg.labels.tolist() == [2, -1]
    np.testing.assert_allclose(agg.probs[1], 1 / 3)


def test_complementary_all_shown_uniform_and_unknown_rows() -> None:
    k = 5
    cand_unknown = np.full((1, 4), -1)
    for cand in (cand_unknown, None, np.arange(k)[None]):
        ll = complementary_log_likelihood([0], [3], cand, num_items=1, num_classes=k)
        expected = np.full(k, np.log(1 / (k - 1)))
        expected[3] = -np.inf
        np.testing.assert_allclose(ll[0], expected)


def test_complementary_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="cl_label: vote 0 picked 2, not among its candidates"):
        complementary_posterior([0], [2], [[0, 1]], num_items=1, num_classes=3)
    with pytest.raises(ValueError, match="candidates: row 0 repeats a class"):
        complementary_posterior([0], [1], [[1, 1]], num_items=1, num_classes=3)
    with pytest.raises(ValueError, match="cl_label: value 3 out of range"):
        complementary_posterior([0], [3], None, num_items=1, num_classes=3)
    with pytest.raises(ValueError, match="item: value 4 out of range"):
        complementary_posterior([4], [0], None, num_items=2, num_classes=3)
    with pytest.raises(ValueError, match="cl_label: no complementary votes"):
        complementary_posterior([], [], None, num_items=2, num_classes=3)
    with pytest.raises(ValueError, match="num_classes: need at least 2"):
        complementary_posterior([0], [0], None, num_items=1, num_classes=1)
    with pytest.raises(ValueError, match=r"prior_probs: expected shape \(1, 3\)"):
        complementary_posterior([0], [0], None, num_items=1, num_classes=3, prior_probs=[[1, 1]])


def biased_complementary(rng, n_items: int, k: int, bias, n_votes: int = 3, n_shown: int = 4):
    """Votes whose pick follows propensities ``bias`` (K, K) among 4 random candidates."""
    truth = rng.integers(0, k, n_items)
    item = np.repeat(np.arange(n_items), n_votes)
    cand = np.argsort(rng.random((item.size, k)), axis=1)[:, :n_shown]
    w = bias[truth[item][:, None], cand] * (cand != truth[item][:, None])
    w /= w.sum(axis=1, keepdims=True)
    pick = (rng.random(item.size)[:, None] > np.cumsum(w, axis=1)).sum(axis=1)
    cl = cand[np.arange(item.size), pick]
    return truth, item, cl, cand


def test_gold_transition_beats_elimination_on_biased_votes() -> None:
    rng = np.random.default_rng(5)
    k = 10
    # Workers strongly prefer to exclude the class "next" to the true one.
    bias = np.ones((k, k))
    bias[np.arange(k), (np.arange(k) + 1) % k] = 20.0
    g_truth, g_item, g_cl, g_cand = biased_complementary(rng, 1000, k, bias)
    t_est = estimate_complementary_transition(
        g_cl, g_cand, g_truth[g_item], num_classes=k, smoothing=1.0
    )
    np.testing.assert_allclose(t_est.sum(axis=1), 1.0)
    assert np.all(np.argmax(t_est, axis=1) == (np.arange(k) + 1) % k)
    truth, item, cl, cand = biased_complementary(rng, 3000, k, bias)
    elim = elimination(item, cl, num_items=3000, num_classes=k, seed=0)
    uni = complementary_posterior(item, cl, cand, num_items=3000, num_classes=k)
    est = complementary_posterior(item, cl, cand, num_items=3000, num_classes=k, transition=t_est)
    acc = {
        name: float((a.labels == truth).mean())
        for name, a in (("elim", elim), ("uniform", uni), ("est", est))
    }
    assert acc["est"] > acc["elim"] + 0.2
    assert acc["est"] > acc["uniform"]


def test_elimination_picks_a_class_not_excluded() -> None:
    item = np.array([0, 0, 1, 1])
    cl = np.array([0, 1, 2, 2])
    agg = elimination(item, cl, num_items=3, num_classes=3, seed=1)
    assert agg.labels[0] == 2
    assert agg.labels[1] in (0, 1)
    assert agg.labels[2] == -1
    np.testing.assert_allclose(agg.probs[1], [0.5, 0.5, 0.0])


def test_estimate_transition_divides_by_availability() -> None:
    # Truth 0: class 1 shown twice and picked once; class 2 shown once and picked once.
    t = estimate_complementary_transition(
        [1, 2], [[0, 1, -1], [1, 2, -1]], [0, 0], num_classes=3, smoothing=1e-9
    )
    assert t[0, 2] == pytest.approx(2 * t[0, 1], rel=1e-6)
    assert t[0, 0] < 1e-6


# --------------------------------------------------------------------------- verify and select


def test_verify_distribution_and_rules() -> None:
    answers = {
        0: [0, 0, 0],  # all correct
        1: [0, 0, 0],
        2: [0, 0, 1],  # two correct one unsure
        3: [0, 0, 2],  # two correct one wrong
        4: [2, 2, 0],  # else; wrong majority
        5: [0, 1, 2],  # else
        6: [1, 1, 0],  # else
        7: [0, 0, 0],
    }
    item = np.repeat(list(answers), 3)
    answer = np.concatenate(list(answers.values()))
    s = verify_summary(item, answer, num_items=9)
    assert s.distribution == pytest.approx(
        {
            "all_correct": 37.5,
            "two_correct_one_unsure": 12.5,
            "two_correct_one_wrong": 12.5,
            "else": 37.5,
        }
    )
    assert sum(s.distribution.values()) == pytest.approx(100.0)
    assert s.n_items_voted == 8
    c, n, a, x = STATUS_CLEAN, STATUS_NOISY, STATUS_AMBIGUOUS, STATUS_NONE
    assert s.majority_status.tolist() == [c, c, c, c, n, a, a, c, x]
    assert s.strict_status.tolist() == [c, c, a, a, n, a, a, c, x]
    assert s.status_names("strict")[:5] == ["clean", "clean", "ambiguous", "ambiguous", "noisy"]
    assert s.n_wrong[4] == 2


def test_verify_refuses_unknown_answer() -> None:
    with pytest.raises(ValueError, match="answer: value 3 out of range"):
        verify_summary([0], [3], num_items=1)


def test_select_share() -> None:
    image = np.array([0, 0, 0, 0, 1, 1, 2])
    selected = np.array([True, True, True, False, True, False, False])
    s = select_share(image, selected, num_images=4, threshold=0.5)
    np.testing.assert_allclose(s.share[:3], [0.75, 0.5, 0.0])
    assert np.isnan(s.share[3])
    assert s.n_seen.tolist() == [4, 2, 1, 0]
    assert s.n_selected.tolist() == [3, 1, 0, 0]
    assert s.clean.tolist() == [True, True, False, False]
    assert select_share(image, selected, num_images=4, threshold=0.8).clean.tolist() == [
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="threshold: expected a value in"):
        select_share(image, selected, num_images=4, threshold=2)


# --------------------------------------------------------------------------- worker quality


def test_worker_quality_flags_spammers() -> None:
    rng = np.random.default_rng(0)
    n, k = 40, 3
    truth = rng.integers(0, k, n)
    items = np.arange(n)
    # worker 0: always right, slow; worker 1: always 0, slow; worker 2: right but 0.3 s a vote;
    # worker 3: only 5 votes, all 0 (too few to flag).
    item = np.concatenate([items, items, items, items[:5]])
    worker = np.repeat([0, 1, 2, 3], [n, n, n, 5])
    label = np.concatenate([truth, np.zeros(n, int), truth, np.zeros(5, int)])
    seconds = np.concatenate([np.full(n, 6.0), np.full(n, 5.0), np.full(n, 0.3), np.full(5, 4.0)])
    votes = VoteTable.from_arrays(item, worker, label, num_workers=5)
    gold = np.arange(10)
    q = worker_quality(
        votes,
        truth,
        num_classes=k,
        gold_items=gold,
        gold_labels=truth[gold],
        durations=seconds,
        fast_floor_s=1.0,
    )
    assert q.n_votes.tolist() == [n, n, n, 5, 0]
    assert q.one_answer.tolist() == [False, True, False, False, False]
    assert q.too_fast.tolist() == [False, False, True, False, False]
    assert q.spammer.tolist() == [False, True, True, False, False]
    assert q.gold_accuracy[0] == 1.0 and q.gold_accuracy[2] == 1.0
    assert np.isnan(q.gold_accuracy[4])
    assert q.agreement[0] == 1.0
    assert q.agreement[1] == pytest.approx((truth == 0).mean())
    np.testing.assert_allclose(q.median_seconds[:4], [6.0, 5.0, 0.3, 4.0])
    assert q.confusion[1, :, 0].sum() == n
    assert q.confusion.shape == (5, k, k)
    per_worker = worker_quality(
        votes, truth, num_classes=k, durations=[6.0, 0.5, 2.0, 3.0, 9.0], durations_per="worker"
    )
    assert per_worker.too_fast.tolist() == [False, True, False, False, False]


def test_worker_quality_median_of_even_counts_and_bad_durations() -> None:
    votes = table([(0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1)])
    q = worker_quality(votes, [0, 1, 0, -1], num_classes=2, durations=[4.0, 1.0, 3.0, 2.0])
    assert q.median_seconds[0] == 2.5
    assert q.agreement[0] == 1.0
    with pytest.raises(ValueError, match=r"durations: expected shape \(4,\)"):
        worker_quality(votes, [0, 1, 0, -1], num_classes=2, durations=[1.0])
    with pytest.raises(ValueError, match="consensus_labels: expected length 4"):
        worker_quality(votes, [0, 1], num_classes=2)


def test_one_coin_estimated_class_prior_follows_imbalanced_classes() -> None:
    rng = np.random.default_rng(4)
    n, k = 3000, 3
    truth = rng.choice(k, size=n, p=[0.7, 0.2, 0.1])
    item = np.repeat(np.arange(n), 3)
    worker = rng.integers(0, 10, item.size)
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    label = np.where(rng.random(item.size) < 0.8, truth[item], wrong)
    votes = VoteTable.from_arrays(item, worker, label)
    agg = one_coin(votes, num_classes=k, class_prior="estimate")
    assert agg.class_prior is not None
    np.testing.assert_allclose(agg.class_prior, [0.7, 0.2, 0.1], atol=0.03)
    assert (agg.labels == truth).mean() >= (one_coin(votes, num_classes=k).labels == truth).mean()


def test_dawid_skene_stays_finite_with_many_votes_and_no_prior() -> None:
    # 40 votes per item and maximum-likelihood confusions: log-scores far below zero, where a
    # careless softmax under- or overflows.
    votes, truth, _ = planted_crowd(seed=6, n_items=300, m=40, per_item=40)
    agg = dawid_skene(votes, num_classes=3, prior="none")
    assert np.isfinite(agg.probs).all()
    np.testing.assert_allclose(agg.probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (agg.labels == truth).mean() > 0.99
