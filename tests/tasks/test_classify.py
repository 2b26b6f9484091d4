"""The classify task kind (stored as ``label``): the page offers every class with keys 1-9 and
0, a search box for many classes; a submission stores one class vote per image, gold marked;
``aggregate_votes --kind label`` turns such votes into labels."""

import json
import re

import pytest
from django.core.management import call_command

from annotation import kinds
from annotation.models import AggregatedLabel, Dataset, TaskKind, Vote
from annotation.worker_ids import worker_id_hash
from hits.models import Assignment

pytestmark = pytest.mark.django_db
SANDBOX = "https://workersandbox.mturk.com"


def page_data(response) -> dict:
    m = re.search(
        rb'<script id="task-data" type="application/json">(.*?)</script>', response.content
    )
    return json.loads(m.group(1))


def accept(client, hit, worker_id="WORKER-RAW-CLASSIFY"):
    client.post("/market/me/", {"worker_id": worker_id})
    taken = client.post(f"/market/hits/{hit.pk}/accept/")
    assert taken.status_code == 302, taken.content[:300]
    a = Assignment.objects.get(hit=hit, worker__id_hash=worker_id_hash(worker_id))
    resp = client.get(
        f"/task/{hit.pk}/",
        {"assignmentId": a.provider_assignment_id, "hitId": hit.provider_hit_id,
         "workerId": worker_id, "turkSubmitTo": SANDBOX},
    )  # fmt: skip
    assert resp.status_code == 200, resp.content[:300]
    return a, resp


def submit(client, hit, token, answers):
    return client.post(
        f"/task/{hit.pk}/submit/", {"token": token, "answers": answers},
        content_type="application/json",
    )  # fmt: skip


def test_one_stored_name_label_shown_as_classify():
    assert kinds.get("label").name == TaskKind.LABEL == "label"
    assert TaskKind.LABEL.label.startswith("Classify")
    assert kinds.get("label").default_items_per_hit == 10


def test_page_offers_every_class_with_keys_and_no_search_for_ten(client, shapes, td):
    hit = td.make_hit(shapes, "label")
    assignment, resp = accept(client, hit)
    html = resp.content.decode()
    first = re.search(r'<section class="problem".*?</section>', html, re.S).group(0)
    values = re.findall(r'type="radio" name="item_\d+" value="(\d+)"', first)
    assert values == [str(c) for c in range(10)]
    assert re.findall(r"<kbd>(\d)</kbd>", first) == list("1234567890")
    assert "Which class does this image show?" in first
    assert "class-search" not in html
    assert len(re.findall(r'<section class="problem"', html)) == len(hit.items) == 10


def test_many_classes_get_a_search_box_and_keys_for_the_first_ten(client, td):
    ds = td.make_dataset("many", n=60, k=10)
    Dataset.objects.filter(pk=ds.pk).update(class_names=[f"class {c}" for c in range(25)])
    hit = td.make_hit(Dataset.objects.get(pk=ds.pk), "label")
    _, resp = accept(client, hit)
    html = resp.content.decode()
    first = re.search(r'<section class="problem".*?</section>', html, re.S).group(0)
    assert len(re.findall(r'type="radio"', first)) == 25
    assert len(re.findall(r"<kbd>", first)) == 10
    assert 'class="class-search"' in first


def test_submission_stores_class_votes_with_gold_and_timing(client, shapes, td):
    hit = td.make_hit(shapes, "label")
    assignment, resp = accept(client, hit)
    token = page_data(resp)["token"]
    answers = [
        {"item": i, "answer": n % 10, "duration_ms": 800 + n}
        for n, i in enumerate(kinds.get("label").item_ids(hit.items))
    ]
    resp = submit(client, hit, token, answers)
    assert resp.status_code == 200 and resp.json()["ok"] is True
    votes = {v.item_id: v for v in Vote.objects.filter(assignment=assignment)}
    assert len(votes) == len(answers)
    for a in answers:
        v = votes[a["item"]]
        assert (v.kind, v.answer, v.duration_ms) == ("label", a["answer"], a["duration_ms"])
    assert hit.gold_items and {i for i, v in votes.items() if v.is_gold} == set(hit.gold_items)


@pytest.mark.parametrize("bad", [10, -1])
def test_a_class_outside_the_dataset_is_refused_and_nothing_stored(client, shapes, td, bad):
    hit = td.make_hit(shapes, "label")
    assignment, resp = accept(client, hit)
    ids = kinds.get("label").item_ids(hit.items)
    answers = [{"item": i, "answer": bad if n == 2 else 0} for n, i in enumerate(ids)]
    resp = submit(client, hit, page_data(resp)["token"], answers)
    assert resp.status_code == 400
    assert "problem 3" in resp.json()["error"]
    assert Vote.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ACCEPTED


def test_submitted_label_votes_aggregate(client, shapes, td):
    hit = td.make_hit(shapes, "label")
    ids = kinds.get("label").item_ids(hit.items)
    for w in range(3):
        _, resp = accept(client, hit, worker_id=f"W-{w}")
        answers = [{"item": i, "answer": 3 if w < 2 else 4} for i in ids]
        assert submit(client, hit, page_data(resp)["token"], answers).status_code == 200
    call_command("aggregate_votes", "--dataset", shapes.name, "--kind", "label",
                 "--method", "majority")  # fmt: skip
    rows = AggregatedLabel.objects.filter(kind="label", method="majority")
    assert rows.count() == len(ids)
    assert set(rows.values_list("label", flat=True)) == {3}
