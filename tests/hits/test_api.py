"""The researcher's API: create, preview, launch, watch and review, staff only."""

import pytest

from hits.models import Assignment, HitBatch
from hits.services import market_accept
from hits.submissions import assignment_submit

pytestmark = pytest.mark.django_db
BASE = "/api/hits"


def test_batch_lifecycle_over_the_api(
    admin_client_token, make_dataset, django_capture_on_commit_callbacks
):
    ds = make_dataset(n=20)
    created = admin_client_token.post(
        f"{BASE}/batches/",
        {
            "name": "api batch",
            "dataset": ds.pk,
            "kind": "verify",
            "provider": "market",
            "environment": "market",
            "items_per_hit": 10,
            "reward": "0.10",
            "budget_cap": "5.00",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    preview = admin_client_token.get(f"{BASE}/batches/{pk}/preview/").json()
    assert preview["hits"] == 2 and preview["total"] == "0.60" and preview["allowed"]
    with django_capture_on_commit_callbacks(execute=True):
        launched = admin_client_token.post(f"{BASE}/batches/{pk}/launch/", {}, format="json")
    assert launched.status_code == 202
    assert HitBatch.objects.get(pk=pk).status == HitBatch.Status.OPEN
    edit = admin_client_token.patch(f"{BASE}/batches/{pk}/", {"reward": "9.99"}, format="json")
    assert edit.status_code == 400

    hit = HitBatch.objects.get(pk=pk).hits.order_by("number").first()
    a = market_accept(hit, "api-worker")
    assignment_submit(a, [{"item": e["item"], "answer": 0} for e in hit.items])
    stats = admin_client_token.get(f"{BASE}/batches/{pk}/stats/").json()
    assert (stats["votes_collected"], stats["votes_needed"]) == (10, 60)
    listed = admin_client_token.get(f"{BASE}/assignments/?batch={pk}&status=Submitted").json()
    assert [r["provider_assignment_id"] for r in listed["results"]] == [a.provider_assignment_id]
    assert "api-worker" not in str(listed)
    assert (
        admin_client_token.post(f"{BASE}/assignments/{a.pk}/reject/", {}, format="json").status_code
        == 400
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client_token.post(
            f"{BASE}/assignments/{a.pk}/bonus/", {"amount": "0.20", "reason": "nice"}, format="json"
        )
        assert r.status_code == 202
        admin_client_token.post(f"{BASE}/batches/{pk}/approve-submitted/", {}, format="json")
    a.refresh_from_db()
    assert a.status == Assignment.Status.APPROVED and a.bonuses.get().paid_at


def test_over_budget_launch_is_a_conflict(admin_client_token, make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=20), provider="market", environment="market", budget_cap="0.01"
    )
    r = admin_client_token.post(f"{BASE}/batches/{batch.pk}/launch/", {}, format="json")
    assert r.status_code == 409 and "budget cap" in r.json()["error"]
    assert not batch.hits.exists()


def test_workers_and_anonymous_users_are_kept_out(client, make_dataset, make_batch):
    make_batch(make_dataset(n=20), provider="market", environment="market")
    assert client.get(f"{BASE}/batches/").status_code in (401, 403)


def test_action_bodies_are_checked_before_anything_is_queued(
    admin_client_token, django_capture_on_commit_callbacks
):
    from annotation.models import Dataset

    ds = Dataset.objects.create(name="empty", class_names=["a", "b"])
    batch = HitBatch.objects.create(
        dataset=ds, name="b", kind="verify", provider="market", environment="market"
    )
    url = f"{BASE}/batches/{batch.pk}"
    with django_capture_on_commit_callbacks() as queued:
        soon = admin_client_token.post(f"{url}/extend/", {"seconds": "soon"}, format="json")
        huge = admin_client_token.post(f"{url}/extend/", {"seconds": 10**30}, format="json")
        notify = admin_client_token.post(f"{url}/notify/", {"subject": "hi"}, format="json")
        launch = admin_client_token.post(f"{url}/launch/", [True], format="json")
    assert soon.status_code == 400 and soon.json() == {"seconds": ["A valid integer is required."]}
    assert huge.status_code == 400 and "less than or equal to 31536000" in huge.json()["seconds"][0]
    assert notify.status_code == 400 and notify.json() == {"message": ["This field is required."]}
    assert launch.status_code == 400 and "Expected a dictionary" in str(launch.json())
    assert queued == []
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.DRAFT and not batch.hits.exists()
