"""The per-dataset dashboard: vote distribution, confusion, worker plots and sortable table."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.aggregation_services import dataset_aggregate
from annotation.models import Dataset, Item, Vote, Worker
from hits.models import Assignment, Hit, HitBatch

pytestmark = pytest.mark.django_db

C, U, W = 0, 1, 2
HASHES = [ch * 64 for ch in "abcd"]


@pytest.fixture
def verify_crowd():
    """4 items x 3 verify votes over 2 HITs; one pattern of the distribution per item."""
    ds = Dataset.objects.create(name="dash", class_names=["cat", "dog", "emu"])
    items = [
        Item.objects.create(
            dataset=ds,
            index=i,
            name=f"{i}.png",
            image=f"x/{i}.png",
            width=8,
            height=8,
            given_label=i % 3,
            label=i % 3,
        )  # fmt: skip
        for i in range(4)
    ]
    ws = [Worker.objects.create(provider="mturk", id_hash=h) for h in HASHES]
    batch = HitBatch.objects.create(name="b", dataset=ds, kind="verify")
    hits = [
        Hit.objects.create(
            batch=batch, number=n, items=[items[2 * n].pk, items[2 * n + 1].pk], max_assignments=3
        )  # fmt: skip
        for n in range(2)
    ]
    t0 = timezone.now()
    plan = {  # hit -> [(worker, seconds on the HIT, answers on its two items)]
        0: [(0, 60, (C, C)), (1, 120, (C, C)), (2, 180, (C, U))],
        1: [(0, 30, (C, W)), (1, 90, (C, W)), (3, 150, (W, C))],
    }
    for n, entries in plan.items():
        for w, secs, answers in entries:
            a = Assignment.objects.create(
                hit=hits[n], provider_assignment_id=f"A{n}{w}", worker=ws[w],
                accepted_at=t0, submitted_at=t0 + timedelta(seconds=secs),
            )  # fmt: skip
            for item, answer in zip(items[2 * n : 2 * n + 2], answers, strict=True):
                Vote.objects.create(item=item, worker=ws[w], kind="verify", answer=answer,
                                    shown_label=item.given_label, assignment=a)  # fmt: skip
    return ds


def url(ds, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("admin:annotation_dataset_dashboard", args=[ds.pk]) + (
        f"?{query}" if query else ""
    )


def test_dashboard_shows_distribution_confusion_and_worker_plots(admin_client, verify_crowd):
    ds = verify_crowd
    dataset_aggregate(ds, kind="verify")
    response = admin_client.get(url(ds, method="verify_majority"))
    assert response.status_code == 200
    dash = response.context["dash"]
    assert dict(dash.distribution) == {
        "all correct": 25.0,
        "two correct, one unsure": 25.0,
        "two correct, one wrong": 25.0,
        "else": 25.0,
    }
    assert dash.status_counts == [("clean", 3, 1), ("noisy", 1, 1), ("ambiguous", 0, 2)]
    # given (rows) vs aggregated (columns, last = unresolved)
    assert dash.confusion == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert sorted(dash.hits_per_worker) == [1, 1, 2, 2]
    assert dash.seconds_per_hit == [30.0, 60.0, 90.0, 120.0, 150.0, 180.0]
    html = response.content.decode()
    assert html.count("25.00%") == 4
    assert "<svg" in html and "cdn" not in html.lower()
    hit_bars = re.findall(r'data-count="(\d+)" data-span="([^"]+)"', html)[:2]
    assert hit_bars == [("2", "1"), ("2", "2")]  # two workers did 1 HIT, two did 2
    for h in HASHES:
        assert h[:10] in html and h not in html  # hash prefix only


def test_worker_table_sorts_by_quality(admin_client, verify_crowd):
    ds = verify_crowd
    by_agreement = admin_client.get(url(ds, sort="agreement", order="desc")).context["dash"]
    rows = [(w.worker[0], w.agreement) for w in by_agreement.workers]
    assert rows == [("a", 1.0), ("b", 1.0), ("c", 0.5), ("d", 0.0)]
    ascending = admin_client.get(url(ds, sort="agreement", order="asc")).context["dash"]
    assert [w.worker[0] for w in ascending.workers] == ["d", "c", "a", "b"]
    by_time = admin_client.get(url(ds, sort="median_seconds", order="asc")).context["dash"]
    # per-vote seconds = HIT time / 2 votes: a 15/30 -> 22.5, b 60/45 -> 52.5, c 90, d 75
    assert [(w.worker[0], w.median_seconds) for w in by_time.workers] == [
        ("a", 22.5), ("b", 52.5), ("d", 75.0), ("c", 90.0),
    ]  # fmt: skip
    assert [w.hits for w in by_time.workers] == [2, 2, 1, 1]


def test_dashboard_is_linked_from_the_dataset_page_and_handles_no_votes(admin_client):
    ds = Dataset.objects.create(name="empty", class_names=["a", "b"])
    page = admin_client.get(reverse("admin:annotation_dataset_change", args=[ds.pk]))
    assert url(ds) in page.content.decode()
    response = admin_client.get(url(ds))
    assert response.status_code == 200
    assert "no votes yet" in response.content.decode()


def test_aggregate_action_queues_a_run_per_kind(admin_client, verify_crowd):
    ds = verify_crowd
    response = admin_client.post(
        reverse("admin:annotation_dataset_changelist"),
        {"action": "aggregate_votes", "_selected_action": [ds.pk]},
        follow=True,
    )
    assert response.status_code == 200
    run = ds.aggregation_runs.get()
    assert run.kind == "verify" and run.methods == ["verify_majority", "verify_strict"]
