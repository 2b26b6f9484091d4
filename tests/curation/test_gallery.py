"""The researcher's gallery of flagged items, the review-batch API and the admin pages."""

from __future__ import annotations

import re

import pytest

from curation.models import LabelIssue
from hits.models import HitBatch

pytestmark = pytest.mark.django_db
R = LabelIssue.Resolution


def card_indices(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-index="(\d+)"', html)]


def test_gallery_shows_images_labels_scores_and_sorts(admin_client, run):
    url = f"/curation/runs/{run.pk}/"
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert card_indices(html) == [5, 7, 2, 9]  # score, highest first
    assert html.count('<img src="/i/') == 4
    assert "current: class3" in html and "suggested: class1" in html and "0.950" in html
    assert "Precision: 1 / 2 = 0.500" in html
    assert card_indices(admin_client.get(url, {"sort": "index"}).content.decode()) == [2, 5, 7, 9]
    by_label = admin_client.get(url, {"sort": "label"}).content.decode()
    assert card_indices(by_label) == [2, 7, 9, 5]
    assert card_indices(admin_client.get(url, {"sort": "-score"}).content.decode()) == [9, 2, 7, 5]
    only_open = admin_client.get(url, {"resolution": "open"}).content.decode()
    assert card_indices(only_open) == [5, 2]
    # Renditions behind the gallery's image URLs are served.
    img = re.search(r'<img src="(/i/[^"]+)"', html).group(1)
    assert admin_client.get(img)["Content-Type"] == "image/png"


def test_gallery_is_for_staff_only(client, run):
    page = client.get(f"/curation/runs/{run.pk}/")
    assert page.status_code == 302 and "/admin/login/" in page["Location"]


def test_api_creates_a_review_batch_from_the_top_issues(admin_client_token, run):
    url = f"/api/curation/runs/{run.pk}/review-batch/"
    resp = admin_client_token.post(url, {"selection": "top", "top_n": 1}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    batch = HitBatch.objects.get(pk=body["batch"])
    assert batch.kind == "review" and batch.curation_review.run_id == run.pk
    assert batch.provider == "market" and batch.environment == "market"
    assert body["issues"] == 1 and body["market_url"] == f"/market/b/{batch.uid}/"
    assert list(batch.items.values_list("index", flat=True)) == [5]
    assert LabelIssue.objects.get(item__index=5).resolution == R.IN_REVIEW

    rest = admin_client_token.post(url, {"selection": "all"}, format="json")
    assert rest.status_code == 201 and rest.json()["issues"] == 1
    nothing = admin_client_token.post(url, {}, format="json")
    assert nothing.status_code == 400 and "no open issues" in nothing.json()["detail"]
    bad = admin_client_token.post(url, {"selection": "top"}, format="json")
    assert bad.status_code == 400 and "top_n" in bad.json()


def test_api_needs_staff(client, run):
    resp = client.post(f"/api/curation/runs/{run.pk}/review-batch/", {})
    assert resp.status_code in (401, 403)
    assert not HitBatch.objects.exists()


def test_admin_lists_runs_and_issues_and_sends_to_review(admin_client, run):
    runs = admin_client.get("/admin/curation/curationrun/")
    assert runs.status_code == 200 and "100%" in runs.content.decode()
    detail = admin_client.get(f"/admin/curation/curationrun/{run.pk}/change/").content.decode()
    assert f"/curation/runs/{run.pk}/" in detail and "confirmed: 1" in detail
    issues = admin_client.get("/admin/curation/labelissue/").content.decode()
    assert issues.count('<img src="/i/') == 4 and "class3" in issues

    action = {"action": "send_to_review", "_selected_action": [run.pk]}
    form = admin_client.post("/admin/curation/curationrun/", action)
    assert form.status_code == 200 and "Create the batch" in form.content.decode()
    done = admin_client.post(
        "/admin/curation/curationrun/",
        {
            **action,
            "apply": "1",
            "selection": "above",
            "min_score": "0.3",
            "kind": "review",
            "provider": "market",
        },
    )
    assert done.status_code == 302, done.content.decode()[:500]
    batch = HitBatch.objects.get()
    assert batch.item_selection == "curation"  # every open issue went
    in_review = run.issues.filter(review_batch=batch, resolution=R.IN_REVIEW)
    assert sorted(in_review.values_list("item__index", flat=True)) == [2, 5]
    assert batch.status == HitBatch.Status.DRAFT

    resolved = admin_client.post(
        "/admin/curation/curationrun/",
        {"action": "resolve_from_review_votes", "_selected_action": [run.pk]},
        follow=True,
    )
    assert "0 corrected" in resolved.content.decode() and "2 waiting" in resolved.content.decode()
