"""The loop closes on the demo digits: flipped labels → curation run → review batch on the
built-in marketplace → five workers review through the task pages → consensus corrects the
labels → the CLImage and label-errors exports carry the corrections."""

from __future__ import annotations

import json
import pickle
import re
from urllib.parse import urlsplit

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from annotation.models import AggregatedLabel, Dataset, LabelChange, Vote
from curation.models import CurationRun, LabelIssue
from curation.selectors import run_summary
from curation.services import curation_run_create, curation_run_enqueue
from curation.tasks import curation_runs_resolve_task
from hits.models import Hit, HitBatch

pytestmark = pytest.mark.django_db
R = LabelIssue.Resolution
SUBSET = 300
FLIPPED = [3, 19, 42, 57, 88, 101, 130, 164, 199, 215, 240, 271]


def task_data(html: str) -> dict:
    m = re.search(r'<script id="task-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, html[:300]
    return json.loads(m.group(1))


def review_answer(truth: dict[int, int], entry: dict, careless: bool) -> int:
    """An honest reviewer: given 0, suggested 1, both 2, neither 3; a careless one says both."""
    if careless:
        return 2
    true = truth[entry["item"]]
    return 1 if true == entry["suggested"] else 0 if true == entry["given"] else 3


def work_batch(batch: HitBatch, truth: dict[int, int], workers: list[str]) -> int:
    """Each worker takes HITs on the marketplace until none is left, doing each on its task page:
    the page's submit endpoint, then the marketplace's externalSubmit. Returns HITs done."""
    done = 0
    for n, wid in enumerate(workers):
        browser = Client()
        browser.post("/market/me/", {"worker_id": wid})
        while True:
            start = browser.post(f"/market/b/{batch.uid}/start/")
            if start.status_code == 404:
                break
            assert start.status_code == 302, start.content[:300]
            page = browser.get(start["Location"])
            assert page.status_code == 200, page.content[:300]
            data = task_data(page.content.decode())
            hit = Hit.objects.get(pk=int(re.search(r"/task/(\d+)/", start["Location"]).group(1)))
            answers = [
                {
                    "item": e["item"],
                    "answer": review_answer(truth, e, careless=n == len(workers) - 1),
                }
                for e in hit.items
            ]
            stored = browser.post(
                data["submitUrl"],
                {"token": data["token"], "answers": answers},
                content_type="application/json",
            )
            assert stored.status_code == 200 and stored.json()["ok"], stored.content[:300]
            fields = {"assignmentId": data["assignmentId"], "answers": json.dumps(answers)}
            final = browser.post(urlsplit(data["externalSubmit"]).path, fields)
            assert final.status_code in (200, 302), final.content[:300]
            done += 1
    return done


def test_demo_digits_loop_corrects_flipped_labels(
    tmp_path, admin_client_token, django_capture_on_commit_callbacks
):
    call_command("import_dataset", demo=True)
    ds = Dataset.objects.get(name="digits-demo")
    truth = dict(ds.items.values_list("id", "given_label"))
    for item in ds.items.filter(index__in=FLIPPED):
        item.given_label = item.label = (item.label + 1) % 10
        item.save(update_fields=["given_label", "label"])

    run = curation_run_create(
        ds,
        items={"stop": SUBSET},
        feature_source="builtin",
        detectors=["knn"],
        params={"epochs": 2, "size": 16, "device": "cpu", "review_rule": "3of5"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        curation_run_enqueue(run)
    run.refresh_from_db()
    assert run.status == CurationRun.Status.DONE, run.message
    assert run.device == "cpu" and run.num_items == SUBSET and run.timings["total_s"] > 0
    flagged = set(run.issues.values_list("item__index", flat=True))
    caught = flagged & set(FLIPPED)
    assert len(caught) >= 9, (sorted(flagged), FLIPPED)
    assert len(flagged) <= 3 * len(FLIPPED)

    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client_token.post(
            f"/api/curation/runs/{run.pk}/review-batch/",
            {"selection": "all", "launch": True},
            format="json",
        )
    assert resp.status_code == 201, resp.content
    batch = HitBatch.objects.get(pk=resp.json()["batch"])
    assert batch.status == HitBatch.Status.OPEN and batch.item_selection == "curation"
    assert batch.kind == "review" and batch.assignments_per_item == 5
    assert not run.issues.exclude(resolution=R.IN_REVIEW).exists()

    hits = batch.hits.count()
    assert work_batch(batch, truth, ["ann", "ben", "cai", "dee", "eve"]) == 5 * hits
    assert Vote.objects.filter(kind="review").count() == 5 * len(flagged)

    assert curation_runs_resolve_task.delay().get() == {str(run.pk): len(flagged)}
    issues = {i.item.index: i for i in run.issues.select_related("item")}
    for index, issue in issues.items():
        true = truth[issue.item_id]
        if index in FLIPPED and issue.suggested_label == true:
            assert issue.resolution == R.CONFIRMED and issue.item.label == true
            change = LabelChange.objects.get(item=issue.item)
            assert change.source == f"curation:run-{run.pk}" and "4 of 5" in change.reason
        elif index in FLIPPED:
            assert issue.resolution == R.ERROR and issue.item.label != true
        else:
            assert issue.resolution == R.KEPT and issue.item.label == true
    corrected = {i for i, issue in issues.items() if issue.resolution == R.CONFIRMED}
    assert len(corrected) >= 8
    assert AggregatedLabel.objects.filter(kind="review", method="consensus_3of5").count() == len(
        flagged
    )
    summary = run_summary(run)
    assert summary.precision == len(caught) / len(flagged)

    out = tmp_path / "digits.pkl"
    call_command("export_dataset", ds.name, "--format", "climage", "--output", str(out))
    with open(out, "rb") as fh:
        exported = pickle.load(fh)["ord_labels"]
    by_index = dict(ds.items.values_list("index", "id"))
    for index in FLIPPED:
        expect = truth[by_index[index]] if index in corrected else (truth[by_index[index]] + 1) % 10
        assert exported[index] == expect
    assert exported[0] == truth[by_index[0]]

    # The label-errors release keeps the original (flipped) labels and carries the reviews.
    probs = np.full((ds.items.count(), 10), 0.1)
    np.save(tmp_path / "pyx.npy", probs)
    le = tmp_path / "le"
    call_command(
        "export_dataset", ds.name, "--format", "label-errors", "--output", str(le),
        "--prefix", "digits", "--pred-probs", str(tmp_path / "pyx.npy"),
    )  # fmt: skip
    original = np.load(le / "original_test_labels" / "digits_original_labels.npy")
    assert all(original[i] == (truth[by_index[i]] + 1) % 10 for i in FLIPPED)
    rows = json.loads((le / "mturk" / "digits_mturk.json").read_text())
    assert {r["id"] for r in rows} == flagged
    assert all(sum(r["mturk"].values()) == 5 for r in rows)
