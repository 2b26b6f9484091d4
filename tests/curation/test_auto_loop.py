"""The automatic loop on the built-in marketplace, over real HTTP: workers' votes → labels →
curation → review batch → corrected labels in the export, with no call between the stages; a
budget cap that stops it before the review batch; a retried stage that does nothing twice; and
a stop that holds."""

from __future__ import annotations

import pickle
import re
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from annotation.models import AggregatedLabel, LabelChange
from curation.models import CurationRun, LabelIssue
from curation.tasks import auto_loop_aggregate_task, auto_loop_review_task
from hits.models import Hit, HitBatch, LoopStage
from hits.services import hit_batch_launch
from tests.hits import conftest as hits_fixtures
from tests.hits.conftest import simulate_worker_submit

pytestmark = pytest.mark.django_db(transaction=True)
market = hits_fixtures.market
make_dataset = hits_fixtures.make_dataset
Stage, S = LoopStage.Stage, LoopStage.State
K = 3
# Items (by index) on which two of the three workers pick a wrong class, and who gets it right.
MISLED = {1: "cai", 7: "ann"}
WORKERS = ["ann", "ben", "cai"]
REVIEWERS = ["dee", "eli", "fay", "gus", "hal"]


@pytest.fixture
def loop_batch(make_dataset, tmp_path):
    """A 12-item classify batch on the marketplace, 2 HITs x 3 places ($0.30), with the loop on;
    its curation reads features in which each item sits near its true class."""

    def make(budget_cap: str) -> tuple[HitBatch, dict[int, int]]:
        ds = make_dataset(n=12, k=K)
        truth = dict(ds.items.values_list("index", "label"))
        rng = np.random.default_rng(0)
        features = np.eye(K)[[truth[i] for i in range(12)]] + rng.normal(0, 0.05, (12, K))
        np.save(tmp_path / "features.npy", features.astype(np.float32))
        batch = HitBatch.objects.create(
            dataset=ds,
            name="classify with the loop",
            kind="label",
            provider="market",
            environment="market",
            reward=Decimal("0.05"),
            assignments_per_item=3,
            items_per_hit=6,
            title="Which class?",
            description="Pick the class of each image.",
            auto_approval_delay_seconds=3600,
            budget_cap=Decimal(budget_cap),
            auto_loop=True,
            loop_curation={
                "feature_source": "npy",
                "feature_path": str(tmp_path / "features.npy"),
                "detectors": ["knn"],
                "params": {"knn_k": 3, "crowd_threshold": 1.0, "review_rule": "3of5"},
            },
        )
        hit_batch_launch(batch)
        batch.refresh_from_db()
        assert batch.status == HitBatch.Status.OPEN
        return batch, truth

    return make


def do_all(market, batch: HitBatch, workers: list[str], answer) -> None:
    """Each worker does every HIT of the batch on the marketplace; ``answer(worker, item)``."""
    for worker in workers:
        browser = market.browser(worker)
        for hit in Hit.objects.filter(batch=batch).order_by("number"):
            page = market.accept(browser, hit)
            assert page.status == 200 and "/task/" in page.url, page.text[:300]
            ids = [e["item"] if isinstance(e, dict) else e for e in hit.items]
            answers = [{"item": i, "answer": answer(worker, i)} for i in ids]
            simulate_worker_submit(browser, page.url, answers)


def crowd_votes(batch: HitBatch, truth: dict[int, int]):
    index = dict(batch.dataset.items.values_list("id", "index"))

    def answer(worker: str, item_id: int) -> int:
        i = index[item_id]
        misled = i in MISLED and MISLED[i] != worker
        return (truth[i] + 1) % K if misled else truth[i]

    return answer


def stages(batch: HitBatch) -> dict[str, LoopStage]:
    return {s.stage: s for s in LoopStage.objects.filter(batch=batch)}


def admin_client(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("boss", "b@localhost", "pw-for-tests-1")
    client = Client()
    client.force_login(user)
    return client


def admin_page(batch: HitBatch, django_user_model) -> str:
    page = admin_client(django_user_model).get(f"/admin/hits/hitbatch/{batch.pk}/change/")
    assert page.status_code == 200
    return re.sub(r"\s+", " ", page.content.decode())


def exported_labels(batch: HitBatch, tmp_path) -> list[int]:
    out = tmp_path / "export.pkl"
    call_command("export_dataset", batch.dataset.name, "--format", "climage", "--output", str(out))
    with open(out, "rb") as fh:
        return pickle.load(fh)["ord_labels"]


def test_loop_runs_from_votes_to_corrected_export(market, loop_batch, tmp_path, django_user_model):
    batch, truth = loop_batch("1.00")
    do_all(market, batch, WORKERS, crowd_votes(batch, truth))

    # The last submission completed the batch: the votes became labels (two of them wrong),
    # curation flagged those two, and their review batch is open, all without a call from here.
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE
    done = stages(batch)
    assert [done[s].state for s in (Stage.AGGREGATE, Stage.CURATE, Stage.REVIEW)] == [S.DONE] * 3
    assert Stage.RESOLVE not in done
    assert done[Stage.AGGREGATE].result["resolved"] == 12
    run = CurationRun.objects.get(pk=done[Stage.CURATE].result["run"])
    flagged = dict(run.issues.values_list("item__index", "suggested_label"))
    assert flagged == {i: truth[i] for i in MISLED}
    review = done[Stage.REVIEW].launched_batch
    assert (review.provider, review.environment, review.kind) == ("market", "market", "review")
    assert review.status == HitBatch.Status.OPEN
    assert done[Stage.REVIEW].result["cost"] == "0.25"
    assert done[Stage.REVIEW].result["budget_left"] == "0.70"
    assert exported_labels(batch, tmp_path) == [
        (truth[i] + 1) % K if i in MISLED else truth[i] for i in range(12)
    ]

    # Five reviewers pick the suggested label: the review batch completes and corrects both.
    do_all(market, review, REVIEWERS, lambda worker, item_id: 1)
    resolved = stages(batch)[Stage.RESOLVE]
    assert resolved.state == S.DONE and resolved.result["corrected"] == 2
    assert set(run.issues.values_list("resolution", flat=True)) == {LabelIssue.Resolution.CONFIRMED}
    assert exported_labels(batch, tmp_path) == [truth[i] for i in range(12)]
    assert AggregatedLabel.objects.filter(kind="review", method="consensus_3of5").count() == 2

    page = admin_page(batch, django_user_model)
    for shown in (
        "Aggregate votes into labels",
        "Curation run",
        "Review batch",
        "Corrected labels",
    ):
        assert shown in page
    assert "corrected: 2" in page


def test_budget_cap_stops_the_loop_before_the_review_batch(
    market, loop_batch, django_user_model, admin_client_token
):
    batch, truth = loop_batch("0.50")
    do_all(market, batch, WORKERS, crowd_votes(batch, truth))

    done = stages(batch)
    assert done[Stage.CURATE].state == S.DONE and done[Stage.CURATE].result["flagged"] == 2
    review = done[Stage.REVIEW]
    assert review.state == S.STOPPED and review.launched_batch is None
    assert "$0.25" in review.reason and "only $0.20 of the $0.50 budget cap" in review.reason
    # Nothing was launched, and the flagged items are still open for a review by hand.
    assert HitBatch.objects.count() == 1
    run = CurationRun.objects.get(pk=done[Stage.CURATE].result["run"])
    assert set(run.issues.values_list("resolution", flat=True)) == {LabelIssue.Resolution.OPEN}
    page = admin_page(batch, django_user_model)
    assert "Stopped" in page and "only $0.20 of the $0.50 budget cap is left" in page
    # The API tells the same story.
    loop = admin_client_token.get(f"/api/hits/batches/{batch.pk}/loop/").json()
    assert [(s["stage"], s["state"]) for s in loop["stages"]] == [
        ("aggregate", "done"),
        ("curate", "done"),
        ("review", "stopped"),
    ]
    assert loop["stages"][2]["reason"] == review.reason and loop["stopped_at"] is None


def row_counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count() for m in (LabelChange, AggregatedLabel, CurationRun, HitBatch, LabelIssue)
    )


def test_a_retried_stage_does_nothing_twice(market, loop_batch):
    batch, truth = loop_batch("0.50")
    do_all(market, batch, WORKERS, crowd_votes(batch, truth))
    before = row_counts()
    first = stages(batch)[Stage.AGGREGATE].finished_at

    # A redelivered aggregation task, and a review stage started again after it stopped.
    assert auto_loop_aggregate_task.delay(batch.pk).get().startswith("skipped")
    assert auto_loop_review_task.delay(batch.pk).get().startswith("skipped")
    assert row_counts() == before
    assert stages(batch)[Stage.AGGREGATE].finished_at == first
    assert LoopStage.objects.filter(batch=batch).count() == 3

    # A stage whose worker died (still running past the lease) is taken again, once; its
    # second pass rewrites the same labels and starts no second curation run.
    LoopStage.objects.filter(batch=batch, stage=Stage.AGGREGATE).update(
        state=S.RUNNING, started_at=timezone.now() - timedelta(hours=7)
    )
    assert auto_loop_aggregate_task.delay(batch.pk).get() == S.DONE
    assert auto_loop_aggregate_task.delay(batch.pk).get().startswith("skipped")
    assert row_counts() == before


def test_a_stopped_loop_starts_nothing(market, loop_batch, django_user_model, admin_client_token):
    batch, truth = loop_batch("1.00")
    client = admin_client(django_user_model)
    resp = client.post(
        "/admin/hits/hitbatch/",
        {"action": "stop_auto_loop", "_selected_action": [batch.pk]},
        follow=True,
    )
    assert (
        resp.status_code == 200 and "Stopped the automatic loop of 1 batch" in resp.content.decode()
    )

    again = admin_client_token.post(f"/api/hits/batches/{batch.pk}/loop/stop/").json()
    assert again["stopped"] is False and again["at"]  # already stopped; the time is kept

    do_all(market, batch, WORKERS, crowd_votes(batch, truth))
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.COMPLETE and batch.loop_stopped_at is not None
    assert not LoopStage.objects.filter(batch=batch).exists()
    assert not CurationRun.objects.exists() and not AggregatedLabel.objects.exists()
    assert auto_loop_aggregate_task.delay(batch.pk).get() == "skipped: the loop was stopped"
    page = client.get(f"/admin/hits/hitbatch/{batch.pk}/change/").content.decode()
    assert "stopped" in page
