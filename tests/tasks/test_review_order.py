"""Review pages show the given and the suggested label in a per-assignment order, recorded with
the vote; answers keep their meaning and aggregation reports the pull of the first position."""

import json
import re

import pytest
from django.test import Client

from annotation.aggregation_services import dataset_aggregate
from annotation.models import AggregatedLabel, Vote
from annotation.worker_ids import worker_id_hash
from hits.models import Assignment

pytestmark = pytest.mark.django_db
SANDBOX = "https://workersandbox.mturk.com"
GIVEN, SUGGESTED = 0, 1


def page_data(response) -> dict:
    m = re.search(
        rb'<script id="task-data" type="application/json">(.*?)</script>', response.content
    )
    return json.loads(m.group(1))


def shown(response) -> dict[int, list[int]]:
    """{item id: the radio values of its problem, in page order}."""
    html = response.content.decode()
    out = {}
    for part in html.split('<section class="problem"')[1:]:
        item = int(re.search(r'data-item="(\d+)"', part).group(1))
        out[item] = [int(v) for v in re.findall(r'<input type="radio"[^>]*value="(\d+)"', part)]
    return out


def accept(hit, worker: str):
    """A fresh browser session takes the HIT; returns (client, assignment, working page)."""
    client = Client()
    client.post("/market/me/", {"worker_id": worker})
    taken = client.post(f"/market/hits/{hit.pk}/accept/")
    assert taken.status_code == 302, taken.content[:300]
    a = Assignment.objects.get(hit=hit, worker__id_hash=worker_id_hash(worker))
    return client, a, open_page(client, hit, a, worker)


def open_page(client, hit, assignment, worker):
    params = {
        "assignmentId": assignment.provider_assignment_id,
        "hitId": hit.provider_hit_id,
        "workerId": worker,
        "turkSubmitTo": SANDBOX,
    }
    resp = client.get(f"/task/{hit.pk}/", params)
    assert resp.status_code == 200, resp.content[:300]
    return resp


def submit_first_shown(client, hit, page) -> dict[int, int]:
    """Click the label shown first on every problem; returns {item: answer stored}."""
    answers = [
        {"item": item, "answer": values[0], "duration_ms": 800}
        for item, values in shown(page).items()
    ]
    resp = client.post(
        f"/task/{hit.pk}/submit/",
        {"token": page_data(page)["token"], "answers": answers},
        content_type="application/json",
    )
    assert resp.status_code == 200 and resp.json()["ok"] is True, resp.content[:300]
    return {a["item"]: a["answer"] for a in answers}


def test_two_assignments_see_different_orders_and_a_reload_keeps_each(shapes, td):
    hit = td.make_hit(shapes, "review")
    c1, a1, first = accept(hit, "WORKER-ORDER-1")
    c2, a2, second = accept(hit, "WORKER-ORDER-2")
    one, two = shown(first), shown(second)

    assert set(one) == set(two) == {e["item"] for e in hit.items}
    for values in [*one.values(), *two.values()]:
        assert sorted(values[:2]) == [GIVEN, SUGGESTED] and values[2:] == [2, 3]
    assert any(one[i] != two[i] for i in one), "the two workers saw the same order everywhere"
    firsts = {v[0] for v in [*one.values(), *two.values()]}
    assert firsts == {GIVEN, SUGGESTED}, "each order appears somewhere"
    assert shown(open_page(c1, hit, a1, "WORKER-ORDER-1")) == one
    assert shown(open_page(c2, hit, a2, "WORKER-ORDER-2")) == two
    hit_id = {"hitId": hit.provider_hit_id}
    preview = Client().get(
        f"/task/{hit.pk}/", {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", **hit_id}
    )
    assert len(shown(preview)) == len(hit.items)
    assert shown(preview) == shown(Client().get(f"/task/{hit.pk}/", hit_id))


def test_question_and_keys_follow_the_order_shown(shapes, td):
    hit = td.make_hit(shapes, "review")
    _, _, page = accept(hit, "WORKER-ORDER-3")
    html = page.content.decode()
    names = shapes.class_names
    order = shown(page)
    for entry in hit.items:
        part = html.split(f'data-item="{entry["item"]}"', 1)[1].split("</section>", 1)[0]
        given, suggested = names[entry["given"]], names[entry["suggested"]]
        if order[entry["item"]][0] == SUGGESTED:
            question = f'Suggested label <strong class="label alt">{suggested}</strong>, given'
            first_name = suggested
        else:
            question = f'Given label <strong class="label">{given}</strong>, suggested'
            first_name = given
        # The first choice, the one key 1 picks, names the label shown first.
        first_choice = part.split('<label class="choice', 2)[1]
        assert question in part
        assert f'<span class="txt">{first_name}</span>' in first_choice
        assert "<kbd>1</kbd>" in first_choice


def test_clicking_the_suggested_label_shown_first_stores_1_and_records_the_order(shapes, td):
    hit = td.make_hit(shapes, "review")
    client, assignment, page = accept(hit, "WORKER-ORDER-4")
    stored = submit_first_shown(client, hit, page)

    votes = {v.item_id: v for v in Vote.objects.filter(assignment=assignment)}
    assert set(votes) == set(stored)
    assert {v.answer for v in votes.values()} == {GIVEN, SUGGESTED}
    for entry in hit.items:
        v = votes[entry["item"]]
        pair = [entry["given"], entry["suggested"]]
        assert (v.shown_label, v.suggested_label) == tuple(pair)  # canonical, whatever the order
        if v.answer == SUGGESTED:  # the suggested label was the one shown first
            assert v.candidates == pair[::-1]
        else:
            assert v.candidates == pair
    gold = [votes[g] for g in hit.gold_items]
    assert gold and all(v.is_gold and len(v.candidates) == 2 for v in gold)


def test_aggregation_reads_answers_whatever_the_order_and_reports_the_first_share(shapes, td):
    hit = td.make_hit(shapes, "review")
    for n in range(5):
        client, _, page = accept(hit, f"WORKER-AGG-{n}")
        submit_first_shown(client, hit, page)
    votes = list(Vote.objects.filter(kind="review"))
    answered = sum(v.answer in (GIVEN, SUGGESTED) for v in votes)
    given_first = sum(v.candidates[0] == v.shown_label for v in votes)

    ordered = dataset_aggregate(shapes, kind="review", methods=["majority"])
    with_order = dict(
        AggregatedLabel.objects.filter(method="majority").values_list("item_id", "label")
    )
    (note,) = [n for n in ordered.notes if n.startswith("review order")]
    assert f"of {answered} votes" in note
    assert f"{answered} (100.0%) chose the label shown first" in note
    assert f"shown first in {given_first})" in note

    # The same answers without any recorded order: the same labels, and no position note.
    Vote.objects.filter(kind="review").update(candidates=None)
    canonical = dataset_aggregate(shapes, kind="review", methods=["majority"])
    assert not [n for n in canonical.notes if n.startswith("review order")]
    assert (
        dict(AggregatedLabel.objects.filter(method="majority").values_list("item_id", "label"))
        == with_order
    )
    # ...and those labels are the canonical meaning of each majority answer.
    for entry in hit.items:
        item_votes = [v for v in votes if v.item_id == entry["item"]]
        picks = [v.shown_label if v.answer == GIVEN else v.suggested_label for v in item_votes]
        top = max(set(picks), key=picks.count)
        if picks.count(top) > len(picks) / 2:
            assert with_order[entry["item"]] == top
