"""A batch's results from its page: a votes CSV (a row per vote that counts) and an items CSV
(a row per item with its labels and the crowd's label and confidence), staff only, workers
only as keyed hashes."""

import csv
import io

import pytest

from annotation.aggregation_services import dataset_aggregate
from annotation.worker_ids import worker_id_hash
from hits.services import hit_batch_launch, market_accept
from hits.submissions import assignment_submit

pytestmark = pytest.mark.django_db

WORKERS = ("results-worker-1", "results-worker-2", "results-worker-3")


@pytest.fixture
def done_batch(make_dataset, make_batch, django_capture_on_commit_callbacks):
    batch = make_batch(
        make_dataset(n=20, k=4),
        name="Shirts, round 1",
        provider="market",
        environment="market",
        items_per_hit=10,
        assignments_per_item=3,
    )
    with django_capture_on_commit_callbacks(execute=True):
        hit_batch_launch(batch)
    for hit in batch.hits.order_by("number"):
        for n, raw in enumerate(WORKERS):
            a = market_accept(hit, raw)
            # Two workers say "correct", the third "wrong": the crowd says correct, 2 of 3.
            answer = 0 if n < 2 else 2
            assignment_submit(a, [{"item": e["item"], "answer": answer} for e in hit.items])
    dataset_aggregate(batch.dataset, kind="verify")
    batch.refresh_from_db()
    return batch


def download(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, response
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="shirts-round-1-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_batch_page_offers_both_downloads(admin_client, done_batch):
    page = admin_client.get(f"/admin/hits/hitbatch/{done_batch.pk}/change/").content.decode()
    assert f'href="/hits/batches/{done_batch.pk}/results-votes.csv" id="results-votes"' in page
    assert f'href="/hits/batches/{done_batch.pk}/results-items.csv" id="results-items"' in page

    votes = download(admin_client, f"/hits/batches/{done_batch.pk}/results-votes.csv")
    assert len(votes) == 20 * 3
    assert {v["worker"] for v in votes} == {worker_id_hash(w) for w in WORKERS}
    assert {v["label"] for v in votes} == {"0", "2"}

    items = download(admin_client, f"/hits/batches/{done_batch.pk}/results-items.csv")
    assert len(items) == 20 and [int(r["task"]) for r in items] == list(range(20))
    for row in items:
        assert row["votes"] == "3"
        # Verified correct by the crowd: its label is the label shown, with 2-of-3 confidence.
        assert row["crowd_label"] == row["label"] and row["crowd_class"] == row["label_class"]
        assert 0.5 < float(row["crowd_confidence"]) < 1.0
        assert row["method"].startswith("verify_")
    everything = str(votes) + str(items)
    assert not any(w in everything for w in WORKERS), "never a raw worker id"


def test_only_staff_may_download_and_only_the_two_kinds(client, admin_client, done_batch):
    url = f"/hits/batches/{done_batch.pk}/results-votes.csv"
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert admin_client.get(f"/hits/batches/{done_batch.pk}/results-secrets.csv").status_code == 404
    assert admin_client.get("/hits/batches/999999/results-votes.csv").status_code == 404
