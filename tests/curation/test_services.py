"""Curation services on small synthetic datasets: planted flips are found, the crowd's strong
agreement suppresses a model's doubt, failures are recorded, and review votes resolve issues."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import AggregatedLabel, Item, LabelChange, Vote, Worker
from annotation.services import dataset_import_from_args
from curation.models import CurationRun, LabelIssue
from curation.selectors import run_summary
from curation.services import (
    curation_run_create,
    curation_run_enqueue,
    curation_run_execute,
    curation_run_resolve,
    curation_run_review_batch,
    curation_runs_resolve,
)
from hits.models import Assignment, Hit, HitBatch

pytestmark = pytest.mark.django_db
R = LabelIssue.Resolution
COLOURS = np.array([[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]])


def synthetic(make_climage, *, n=90, k=3, flips=(), size=8, name="syn", per_item=0, seed=0):
    """A dataset whose class shows as a colour; the labels at ``flips`` point to the next class.

    Returns (dataset, true labels (N,), features (N, 8) float32 that separate the classes)."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % k
    noise = rng.normal(0, 25, size=(n, size, size, 3))
    images = np.clip(COLOURS[true][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    labels = true.copy()
    flips = np.asarray(flips, dtype=np.int64)
    labels[flips] = (true[flips] + 1) % k
    cl = [[int(c) for c in rng.choice([j for j in range(k) if j != t], per_item)] for t in true]
    path, _ = make_climage(
        f"{name}.pkl",
        n=n,
        k=k,
        size=size,
        images=images,
        ord_labels=[int(x) for x in labels],
        cl_labels=cl,
    )
    ds = dataset_import_from_args(
        name=name, fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    centers = rng.normal(size=(k, 8)) * 6
    feats = (centers[true] + rng.normal(size=(n, 8))).astype(np.float32)
    return ds, true, feats


def flagged(run) -> dict[int, int]:
    """{item index: suggested label} of the run's issues."""
    return dict(run.issues.values_list("item__index", "suggested_label"))


FLIPS = [4, 11, 25, 40, 58, 77]


def test_planted_flips_are_found_from_a_features_file(make_climage, tmp_path):
    ds, true, feats = synthetic(make_climage, flips=FLIPS)
    np.save(tmp_path / "feats.npy", feats)
    run = curation_run_create(ds, feature_source="npy", feature_path=str(tmp_path / "feats.npy"))
    curation_run_execute(run)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.DONE, run.message
    assert run.progress == 1.0 and run.device == "cpu" and run.num_items == 90
    assert {"load_s", "detect_s", "write_s", "total_s"} <= set(run.timings)
    found = flagged(run)
    assert set(found) == set(FLIPS)
    assert all(found[i] == true[i] for i in FLIPS)
    issue = run.issues.get(item__index=4)
    assert issue.current_label == (true[4] + 1) % 3 and issue.detectors == ["knn"]
    assert issue.resolution == R.OPEN and issue.score > 0


def test_planted_flips_are_found_by_the_built_in_network_on_a_subset(make_climage):
    ds, true, _ = synthetic(make_climage, n=150, flips=FLIPS)
    run = curation_run_create(
        ds,
        items={"start": 0, "stop": 120},
        params={"epochs": 2, "size": 16, "device": "cpu"},
    )
    curation_run_execute(run)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.DONE, run.message
    assert run.num_items == 120 and "features_s" in run.timings and "images_s" in run.timings
    found = flagged(run)
    assert set(FLIPS) <= set(found), found
    assert len(found) <= 12 and all(found[i] == true[i] for i in FLIPS)


def test_pred_probs_file_and_confident_learning(make_climage, tmp_path):
    ds, true, _ = synthetic(make_climage, flips=FLIPS)
    probs = np.full((90, 3), 0.05)
    probs[np.arange(90), true] = 0.9
    np.save(tmp_path / "probs.npy", probs)
    run = curation_run_create(
        ds, feature_source="pred_probs", feature_path=str(tmp_path / "probs.npy")
    )
    assert run.detectors == ["confident_learning"]
    curation_run_execute(run)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.DONE, run.message
    assert set(flagged(run)) == set(FLIPS)


def test_a_strong_crowd_agreement_suppresses_the_models_doubt(make_climage, tmp_path):
    ds, true, feats = synthetic(make_climage, flips=FLIPS)
    np.save(tmp_path / "feats.npy", feats)
    sure, unsure, against = (ds.items.get(index=i) for i in FLIPS[:3])
    # The crowd firmly agrees with the (flipped) label of one item, weakly with another's, and
    # firmly disagrees with the label of an item the model does not doubt.
    AggregatedLabel.objects.create(
        item=sure, kind="verify", method="majority_vote", label=sure.label, confidence=0.95
    )
    AggregatedLabel.objects.create(
        item=unsure, kind="verify", method="majority_vote", label=unsure.label, confidence=0.5
    )
    clean = ds.items.get(index=1)
    AggregatedLabel.objects.create(
        item=clean, kind="complementary", method="ds", label=2, confidence=0.99
    )
    run = curation_run_create(ds, feature_source="npy", feature_path=str(tmp_path / "feats.npy"))
    curation_run_execute(run)
    run.refresh_from_db()
    found = flagged(run)
    assert FLIPS[0] not in found
    assert FLIPS[1] in found and set(FLIPS[2:]) <= set(found)
    assert found[1] == 2 and "crowd" in run.issues.get(item=clean).detectors


def test_complementary_only_items_train_with_the_complementary_loss(make_climage):
    ds, true, _ = synthetic(make_climage, n=120, per_item=3)
    # CLImage case: no given labels, only complementary votes and the crowd's aggregate of them.
    Item.objects.filter(dataset=ds).update(given_label=None, label=None)
    bad = {3: 1, 50: 0, 91: 2}
    for item in ds.items.all():
        label = bad.get(item.index, int(true[item.index]))
        AggregatedLabel.objects.create(
            item=item, kind="complementary", method="elimination", label=label, confidence=0.9
        )
    run = curation_run_create(ds, params={"epochs": 3, "size": 8, "device": "cpu"})
    curation_run_execute(run)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.DONE, run.message
    assert "complementary labels (scl_nl)" in run.message
    found = flagged(run)
    assert set(bad) <= set(found), found
    assert run.issues.get(item__index=3).current_label == 1


def test_a_failed_run_records_its_error(make_climage, tmp_path, django_capture_on_commit_callbacks):
    ds, _, _ = synthetic(make_climage)
    np.save(tmp_path / "short.npy", np.zeros((10, 4), dtype=np.float32))
    run = curation_run_create(ds, feature_source="npy", feature_path=str(tmp_path / "short.npy"))
    with django_capture_on_commit_callbacks(execute=True):
        curation_run_enqueue(run)  # runs on commit (eagerly in tests)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.FAILED
    assert "features must be 2-D with a row per dataset item" in run.message
    assert "(10, 4)" in run.message and run.finished_at is not None
    assert not run.issues.exists()

    missing = curation_run_create(ds, feature_source="npy", feature_path=str(tmp_path / "no.npy"))
    curation_run_execute(missing)
    missing.refresh_from_db()
    assert missing.status == CurationRun.Status.FAILED and "does not exist" in missing.message


def test_create_refuses_unknown_detectors_and_a_missing_path(make_climage):
    from curation.exceptions import RunInputError

    ds, _, _ = synthetic(make_climage)
    with pytest.raises(RunInputError, match="detectors"):
        curation_run_create(ds, detectors=["magic"])
    with pytest.raises(RunInputError, match="feature_path"):
        curation_run_create(ds, feature_source="npy")


# --- review batches and resolution --------------------------------------------------------


@pytest.fixture
def done_run(make_climage, tmp_path):
    ds, true, feats = synthetic(make_climage, flips=FLIPS)
    np.save(tmp_path / "feats.npy", feats)
    run = curation_run_create(ds, feature_source="npy", feature_path=str(tmp_path / "feats.npy"))
    curation_run_execute(run)
    run.refresh_from_db()
    assert run.issues.count() == len(FLIPS)
    return run, true


def cast_votes(batch: HitBatch, answers: dict[int, list[int]]) -> None:
    """Store review votes as submitted assignments would: one worker per position."""
    hit = Hit.objects.create(batch=batch, number=1, items=[], max_assignments=5)
    for w in range(max(len(a) for a in answers.values())):
        worker = Worker.objects.create(provider="market", id_hash=f"h{batch.pk}-{w}")
        a = Assignment.objects.create(
            hit=hit, provider_assignment_id=f"A{batch.pk}-{w}", worker=worker, status="Submitted"
        )
        for item_id, seq in answers.items():
            if w < len(seq):
                Vote.objects.create(
                    item_id=item_id, worker=worker, kind=batch.kind, answer=seq[w], assignment=a
                )


def test_review_batch_from_the_top_issues_then_the_rest(
    done_run, django_capture_on_commit_callbacks
):
    run, _ = done_run
    top = curation_run_review_batch(run, top_n=2)
    assert top.kind == "review" and top.curation_review.run == run and top.provider == "market"
    assert top.item_selection == "explicit" and top.items.count() == 2
    assert top.assignments_per_item == 5 and top.params == {"curation_run": run.pk}
    best = list(run.issues.order_by("-score").values_list("item_id", flat=True)[:2])
    assert set(top.items.values_list("id", flat=True)) == set(best)
    assert run.issues.filter(resolution=R.IN_REVIEW, review_batch=top).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        rest = curation_run_review_batch(run, launch=True)
    rest.refresh_from_db()
    assert rest.items.count() == 4 and rest.status == HitBatch.Status.OPEN
    assert not run.issues.filter(resolution=R.OPEN).exists()
    # Each planned review problem carries the issue's two labels.
    entry = rest.hits.first().items[0]
    issue = run.issues.get(item_id=entry["item"])
    assert (entry["given"], entry["suggested"]) == (issue.current_label, issue.suggested_label)


def test_an_all_issues_batch_selects_by_curation(done_run):
    run, _ = done_run
    batch = curation_run_review_batch(run, min_score=0.0)
    assert batch.item_selection == "curation" and not batch.items.exists()


@pytest.mark.parametrize(("rule", "corrected"), [("3of5", 2), ("5of5", 1)])
def test_resolution_k_of_five(done_run, rule, corrected):
    run, true = done_run
    run.params = {"review_rule": rule}
    run.save()
    batch = curation_run_review_batch(run)
    issues = {i.item.index: i for i in run.issues.select_related("item")}
    a, b, c, d, e, f = (issues[i].item_id for i in FLIPS)
    cast_votes(
        batch,
        {
            a: [1, 1, 1, 1, 1],  # everyone: the suggested label
            b: [1, 1, 1, 0, 2],  # 3 of 5 suggested
            c: [0, 0, 0, 1, 1],  # 3 of 5 keep the given label
            d: [3, 3, 3, 3, 1],  # neither label fits
            e: [0, 1, 2, 3, 1],  # no agreement
            f: [1, 1, 1],  # still waiting for two votes
        },
    )
    result = curation_run_resolve(run)
    assert result.corrected == corrected and result.waiting == 1
    got = {i.item.index: i for i in run.issues.select_related("item")}
    item_a = got[FLIPS[0]].item
    assert got[FLIPS[0]].resolution == R.CONFIRMED and item_a.label == true[FLIPS[0]]
    assert got[FLIPS[0]].review_counts == {"given": 0, "suggested": 5, "both": 0, "neither": 0}
    change = LabelChange.objects.get(item=item_a)
    assert change.source == f"curation:run-{run.pk}" and change.new_label == true[FLIPS[0]]
    assert "5 of 5" in change.reason
    method = "consensus_3of5" if rule == "3of5" else "consensus_5of5"
    agg = AggregatedLabel.objects.get(item=item_a, kind="review")
    assert agg.method == method and agg.label == true[FLIPS[0]] and agg.num_votes == 5
    if rule == "3of5":
        assert got[FLIPS[1]].resolution == R.CONFIRMED
        assert got[FLIPS[2]].resolution == R.KEPT and got[FLIPS[2]].item.label != true[FLIPS[2]]
        assert got[FLIPS[3]].resolution == R.ERROR
        assert got[FLIPS[3]].item.label == got[FLIPS[3]].current_label
    else:
        assert got[FLIPS[1]].resolution == R.NO_CONSENSUS
        assert got[FLIPS[1]].item.label == got[FLIPS[1]].current_label
        assert got[FLIPS[2]].resolution == R.NO_CONSENSUS
    assert got[FLIPS[4]].resolution == R.NO_CONSENSUS
    assert got[FLIPS[5]].resolution == R.IN_REVIEW
    summary = run_summary(run)
    assert summary.reviewed == (4 if rule == "3of5" else 1)
    assert summary.precision == (3 / 4 if rule == "3of5" else 1.0)

    # Idempotent: resolving again changes nothing; the late votes then resolve the last one.
    assert curation_run_resolve(run).resolved == 0
    assert LabelChange.objects.count() == corrected
    Vote.objects.bulk_create(
        Vote(item_id=f, worker=w, kind="review", answer=1)
        for w in [Worker.objects.create(provider="market", id_hash=f"late{j}") for j in range(2)]
    )
    assert curation_run_resolve(run).waiting == 1  # votes outside the batch do not count
    assert curation_runs_resolve() == {run.pk: 0}


def test_verify_batches_resolve_wrong_as_an_error(done_run):
    run, _ = done_run
    batch = curation_run_review_batch(run, kind="verify", top_n=2)
    assert batch.kind == "verify" and batch.assignments_per_item == 3
    x, y = (i.item_id for i in run.issues.filter(review_batch=batch))
    cast_votes(batch, {x: [2, 2, 0], y: [0, 0, 1]})
    result = curation_run_resolve(run)
    assert (result.errors, result.kept) == (1, 1)
    assert run.issues.get(item_id=x).resolution == R.ERROR
    assert AggregatedLabel.objects.get(item_id=y, kind="verify").method == "consensus_2of3"
