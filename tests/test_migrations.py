"""An existing database migrates forward with nothing lost.

The database is taken back to the schema before the layout redesign (the run <-> review-batch
link on HitBatch, the built-in marketplace stored as ``local``, the k-of-n rule stored as
``consensus_3_of_5``), filled there with the historical models, then migrated to the newest
schema; every row and link is checked with today's models.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from annotation.models import AggregatedLabel, Dataset, Item, Vote, Worker
from curation.models import CurationRun, LabelIssue, ReviewBatch
from hits.models import Assignment, Bonus, Hit, HitBatch

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("annotation", "0003_aggregationrun"),
    ("hits", "0005_batch_sync_lease"),
    ("curation", "0002_review_loop"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _fill_old_schema(apps) -> dict:
    """Rows of every kind the redesign touches, written with the models as they were."""
    m = {name: apps.get_model(*name.split(".")) for name in (
        "annotation.Dataset", "annotation.Item", "annotation.Worker", "annotation.Vote",
        "annotation.AggregatedLabel", "hits.HitBatch", "hits.Hit", "hits.Assignment",
        "hits.Bonus", "curation.CurationRun", "curation.LabelIssue",
    )}  # fmt: skip
    ds = m["annotation.Dataset"].objects.create(name="old-ds", class_names=["cat", "dog", "owl"])
    items = [
        m["annotation.Item"].objects.create(
            dataset=ds,
            index=i,
            name=f"{i}.png",
            image=f"old/{i}.png",
            width=8,
            height=8,
            given_label=i % 3,
            label=i % 3,
        )  # fmt: skip
        for i in range(4)
    ]
    market_worker = m["annotation.Worker"].objects.create(provider="local", id_hash="a" * 64)
    turk_worker = m["annotation.Worker"].objects.create(provider="mturk", id_hash="b" * 64)
    run = m["curation.CurationRun"].objects.create(dataset=ds, status="done", num_items=4)
    review = m["hits.HitBatch"].objects.create(
        name="review of run", dataset=ds, kind="review", provider="local", environment="local",
        item_selection="curation", curation_run=run, status="open", reward=Decimal("0.10"),
    )  # fmt: skip
    turk = m["hits.HitBatch"].objects.create(
        name="verify on sandbox", dataset=ds, kind="verify", provider="mturk",
        environment="sandbox", status="open",
    )  # fmt: skip
    hit = m["hits.Hit"].objects.create(
        batch=review, number=1, items=[items[0].pk, items[1].pk], max_assignments=5,
        provider_hit_id="LOLDHIT", status="Assignable",
    )  # fmt: skip
    turk_hit = m["hits.Hit"].objects.create(
        batch=turk, number=1, items=[items[2].pk], max_assignments=3, provider_hit_id="3TURK"
    )
    now = timezone.now()
    assignment = m["hits.Assignment"].objects.create(
        hit=hit, provider_assignment_id="LAOLD", worker=market_worker, status="Submitted",
        accepted_at=now, submitted_at=now, raw_answer='{"answers": []}',
    )  # fmt: skip
    turk_assignment = m["hits.Assignment"].objects.create(
        hit=turk_hit, provider_assignment_id="3ASSIGN", worker=turk_worker, status="Approved"
    )
    m["hits.Bonus"].objects.create(
        assignment=turk_assignment, amount=Decimal("0.25"), reason="thanks", token="tok-old"
    )
    for item, answer in ((items[0], 1), (items[1], 0)):
        m["annotation.Vote"].objects.create(
            item=item, worker=market_worker, kind="review", answer=answer, shown_label=0,
            suggested_label=1, assignment=assignment, submitted_at=now,
        )  # fmt: skip
    m["annotation.Vote"].objects.create(
        item=items[2], worker=turk_worker, kind="verify", answer=0, shown_label=2,
        assignment=turk_assignment,
    )  # fmt: skip
    for item in items[:2]:
        m["curation.LabelIssue"].objects.create(
            run=run, item=item, current_label=0, suggested_label=1, score=0.9,
            resolution="in_review", review_batch=review,
        )  # fmt: skip
    m["annotation.AggregatedLabel"].objects.create(
        item=items[0], kind="review", method="consensus_3_of_5", label=1, confidence=1.0,
        num_votes=5,
    )  # fmt: skip
    m["annotation.AggregatedLabel"].objects.create(
        item=items[1], kind="review", method="majority", label=0, confidence=0.6, num_votes=5
    )
    return {
        "dataset": ds.pk, "items": [i.pk for i in items], "run": run.pk, "review": review.pk,
        "turk": turk.pk, "hit": hit.pk, "assignment": assignment.pk,
        "turk_assignment": turk_assignment.pk, "market_worker": market_worker.pk,
        "turk_worker": turk_worker.pk,
    }  # fmt: skip


def test_a_database_at_the_previous_schema_migrates_forward_with_every_row_and_link():
    old = _fill_old_schema(_migrate(BEFORE))
    _migrate(_latest())

    assert Dataset.objects.filter(pk=old["dataset"]).exists()
    assert list(Item.objects.order_by("index").values_list("pk", flat=True)) == old["items"]

    # One stored name for the built-in marketplace; MTurk rows untouched.
    review = HitBatch.objects.get(pk=old["review"])
    assert (review.provider, review.environment) == ("market", "market")
    turk = HitBatch.objects.get(pk=old["turk"])
    assert (turk.provider, turk.environment) == ("mturk", "sandbox")
    assert Worker.objects.get(pk=old["market_worker"]).provider == "market"
    assert Worker.objects.get(pk=old["turk_worker"]).provider == "mturk"

    # HITs, assignments, bonuses and votes, with their links.
    hit = Hit.objects.get(pk=old["hit"])
    assert hit.batch_id == review.pk and hit.provider_hit_id == "LOLDHIT"
    assignment = Assignment.objects.get(pk=old["assignment"])
    assert (assignment.hit_id, assignment.worker_id) == (hit.pk, old["market_worker"])
    assert assignment.status == "Submitted" and assignment.raw_answer
    assert Bonus.objects.get(token="tok-old").assignment_id == old["turk_assignment"]
    votes = Vote.objects.order_by("item__index")
    assert [(v.item_id, v.assignment_id, v.answer) for v in votes] == [
        (old["items"][0], old["assignment"], 1),
        (old["items"][1], old["assignment"], 0),
        (old["items"][2], old["turk_assignment"], 0),
    ]

    # The run <-> review-batch link now lives on the curation side.
    link = ReviewBatch.objects.get(batch_id=review.pk)
    assert link.run_id == old["run"]
    assert list(CurationRun.objects.get(pk=old["run"]).review_batches.all()) == [link]
    assert not ReviewBatch.objects.filter(batch_id=turk.pk).exists()
    issues = LabelIssue.objects.filter(run_id=old["run"]).order_by("item__index")
    assert [(i.item_id, i.review_batch_id, i.resolution) for i in issues] == [
        (old["items"][0], review.pk, "in_review"),
        (old["items"][1], review.pk, "in_review"),
    ]

    # One stored name per aggregation method.
    methods = dict(AggregatedLabel.objects.values_list("item_id", "method"))
    assert methods == {old["items"][0]: "consensus_3of5", old["items"][1]: "majority"}
