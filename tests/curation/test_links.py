"""Curation keeps the link between a run and the batches reviewing it; hits and the review task
reach curation only through the hooks it registers when it loads."""

from __future__ import annotations

import pytest

from curation.models import LabelIssue, ReviewBatch
from hits.models import HitBatch
from hits.planning import batch_items, hit_plan

pytestmark = pytest.mark.django_db
R = LabelIssue.Resolution


def test_a_batch_drafted_by_hand_selects_the_open_issues_of_its_linked_run(admin_client, run):
    batch = HitBatch.objects.create(
        name="by hand",
        dataset=run.dataset,
        kind="review",
        item_selection="curation",
        params={"curation_run": run.pk},
    )
    with pytest.raises(ValueError, match="needs a curation run"):
        batch_items(batch)

    ReviewBatch.objects.create(run=run, batch=batch)
    assert list(batch_items(batch).values_list("index", flat=True)) == [2, 5]
    assert run.review_batches.get().batch == batch and batch.curation_review.run == run
    # The review task takes each item's two labels from the run's issues.
    entries = {e["item"]: e for hit in hit_plan(batch) for e in hit.items}
    for issue in run.issues.filter(resolution=R.OPEN):
        entry = entries[issue.item_id]
        assert (entry["given"], entry["suggested"]) == (issue.current_label, issue.suggested_label)

    page = admin_client.get(f"/admin/curation/curationrun/{run.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/hits/hitbatch/{batch.pk}/change/" in page.content.decode()
    assert admin_client.get(f"/admin/hits/hitbatch/{batch.pk}/change/").status_code == 200


def test_deleting_a_run_keeps_its_batches_and_unlinks_them(run):
    batch = HitBatch.objects.create(name="b", dataset=run.dataset, kind="review")
    ReviewBatch.objects.create(run=run, batch=batch)
    run.delete()
    assert HitBatch.objects.filter(pk=batch.pk).exists() and not ReviewBatch.objects.exists()
