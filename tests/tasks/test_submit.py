"""The submit endpoint: votes land exactly once; every refused submission stores nothing."""

import json
import re
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from annotation.models import Vote, Worker
from annotation.worker_ids import worker_id_hash
from hits.models import Assignment
from hits.submissions import assignment_submit
from hits.task_tokens import SALT

pytestmark = pytest.mark.django_db
SANDBOX = "https://workersandbox.mturk.com"


def page_data(response) -> dict:
    m = re.search(
        rb'<script id="task-data" type="application/json">(.*?)</script>', response.content
    )
    return json.loads(m.group(1))


def accept(client, hit, *, worker_id="WORKER-RAW-1"):
    """Take the HIT through the marketplace's accept (the only way a marketplace assignment
    comes to be), then open its working page; return (assignment, token)."""
    client.post("/market/me/", {"worker_id": worker_id})
    taken = client.post(f"/market/hits/{hit.pk}/accept/")
    assert taken.status_code == 302, taken.content[:300]
    a = Assignment.objects.get(hit=hit, worker__id_hash=worker_id_hash(worker_id))
    resp = client.get(
        f"/task/{hit.pk}/",
        {
            "assignmentId": a.provider_assignment_id,
            "hitId": hit.provider_hit_id,
            "workerId": worker_id,
            "turkSubmitTo": SANDBOX,
        },
    )
    assert resp.status_code == 200, resp.content[:300]
    return a, page_data(resp)["token"]


def submit(client, hit, token, answers, *, form=False):
    if form:
        return client.post(
            f"/task/{hit.pk}/submit/", {"token": token, "answers": json.dumps(answers)}
        )
    return client.post(
        f"/task/{hit.pk}/submit/",
        {"token": token, "answers": answers},
        content_type="application/json",
    )


def assert_nothing_stored(assignment):
    assignment.refresh_from_db()
    assert Vote.objects.count() == 0
    assert assignment.status == Assignment.Status.ACCEPTED
    assert assignment.submitted_at is None and assignment.raw_answer == ""


KINDS = ["complementary", "verify", "select", "review"]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_submission_stores_one_vote_per_item(client, shapes, td, kind):
    hit = td.make_hit(shapes, kind)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)

    resp = submit(client, hit, token, answers)

    assert resp.status_code == 200 and resp.json()["ok"] is True
    assert resp.json()["already_submitted"] is False
    votes = Vote.objects.filter(assignment=assignment)
    assert votes.count() == len(answers) == len(set(a["item"] for a in answers))
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED and assignment.submitted_at
    assert json.loads(assignment.raw_answer)["answers"] == answers
    by_item = {v.item_id: v for v in votes}
    for a in answers:
        v = by_item[a["item"]]
        assert (v.answer, v.kind, v.duration_ms, v.worker_id) == (
            a["answer"],
            kind,
            a["duration_ms"],
            assignment.worker_id,
        )
    assert {v.item_id for v in votes if v.is_gold} == set(hit.gold_items)
    assert hit.gold_items, "the fixture mixes gold in"


def test_complementary_votes_keep_the_candidates_shown(client, shapes, td):
    hit = td.make_hit(shapes, "complementary")
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment, pick=2)
    submit(client, hit, token, answers)
    spec = __import__("annotation.kinds", fromlist=["get"]).get("complementary")
    for v in Vote.objects.filter(assignment=assignment):
        assert v.candidates == spec.candidates_for(hit, assignment, v.item_id)
        assert len(set(v.candidates)) == 4 and v.answer == v.candidates[2]


def test_verify_and_review_votes_record_the_labels_shown(client, shapes, td):
    for kind in ("verify", "review"):
        hit = td.make_hit(shapes, kind, provider_hit_id=f"P-{kind}")
        assignment, token = accept(client, hit)
        submit(client, hit, token, td.valid_answers(hit, assignment, pick=1))
        votes = {v.item_id: v for v in Vote.objects.filter(assignment=assignment)}
        for entry in hit.items:
            v = votes[entry["item"]]
            if kind == "verify":
                assert v.shown_label == entry["label"] and v.answer == 1
            else:
                assert (v.shown_label, v.suggested_label) == (entry["given"], entry["suggested"])


def test_form_encoded_submission_is_accepted(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    resp = submit(client, hit, token, td.valid_answers(hit, assignment), form=True)
    assert resp.status_code == 200
    assert Vote.objects.filter(assignment=assignment).count() == 20


# --- refusals: status code, and nothing stored ---------------------------------------------


def test_forged_token_is_refused(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    for bad in (token[:-3] + "abc", "", "not-a-token", token.replace(":", ";", 1)):
        resp = submit(client, hit, bad, answers)
        assert resp.status_code == 403, bad
        assert resp.json()["ok"] is False
    forged = signing.dumps(
        {"a": assignment.pk, "h": hit.pk, "w": assignment.worker.id_hash, "e": 2**40},
        salt="some-other-salt",
    )
    assert submit(client, hit, forged, answers).status_code == 403
    assert_nothing_stored(assignment)


def test_token_of_another_hit_is_refused(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    other = td.make_hit(shapes, "verify", provider_hit_id="PHIT-2", number=2, batch=hit.batch)
    assignment, token = accept(client, hit)
    resp = submit(client, other, token, td.valid_answers(other, assignment))
    assert resp.status_code == 403 and resp.json()["code"] == "wrong_hit"
    assert_nothing_stored(assignment)


def test_items_not_on_the_assignments_hit_are_refused(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    on_hit = {a["item"] for a in answers}
    foreign = shapes.items.exclude(pk__in=on_hit).first().pk
    swapped = [*answers[:-1], {"item": foreign, "answer": 0}]
    extra = [*answers, {"item": foreign, "answer": 0}]
    for bad in (swapped, extra):
        resp = submit(client, hit, token, bad)
        assert resp.status_code == 400 and "not on this HIT" in resp.json()["error"]
    assert_nothing_stored(assignment)


@pytest.mark.parametrize(
    "kind,bad_value",
    [("verify", 3), ("verify", -1), ("review", 4), ("select", 2), ("complementary", None)],
)
def test_out_of_range_answer_is_refused(client, shapes, td, kind, bad_value):
    hit = td.make_hit(shapes, kind)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    if bad_value is None:  # complementary: a label that was not among the 4 shown
        spec = __import__("annotation.kinds", fromlist=["get"]).get(kind)
        shown = spec.candidates_for(hit, assignment, answers[0]["item"])
        bad_value = next(c for c in range(shapes.num_classes) if c not in shown)
    answers[0] = {**answers[0], "answer": bad_value}
    resp = submit(client, hit, token, answers)
    assert resp.status_code == 400, resp.json()
    assert_nothing_stored(assignment)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_answer_is_refused(client, shapes, td, kind):
    hit = td.make_hit(shapes, kind)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    for bad in (answers[1:], [{**answers[0], "answer": None}, *answers[1:]], [], "[]", None):
        resp = submit(client, hit, token, bad)
        assert resp.status_code == 400, bad
    assert_nothing_stored(assignment)


def test_select_needs_the_minimum_per_task(client, shapes, td):
    hit = td.make_hit(shapes, "select", params={"min_select": 4})
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    first_task = set(hit.items[0]["items"])
    picked = [a for a in answers if a["item"] in first_task and a["answer"] == 1]
    answers = [{**a, "answer": 0} if a is picked[0] else a for a in answers]
    resp = submit(client, hit, token, answers)
    assert resp.status_code == 400 and "at least 4" in resp.json()["error"]
    assert_nothing_stored(assignment)


def test_malformed_bodies_are_refused(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    url = f"/task/{hit.pk}/submit/"
    assert client.post(url, "{", content_type="application/json").status_code == 400
    assert client.post(url, "[1]", content_type="application/json").status_code == 400
    bad = [{"item": "x", "answer": 0}]
    assert submit(client, hit, token, bad).status_code == 400
    dup = td.valid_answers(hit, assignment)
    dup.append(dup[0])
    assert submit(client, hit, token, dup).status_code == 400
    assert client.get(url).status_code == 405
    assert_nothing_stored(assignment)


def test_expired_token_is_refused(client, shapes, td, monkeypatch):
    import time

    hit = td.make_hit(shapes, "verify", duration=600)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    later = time.time() + 601  # the worker's time for the assignment has run out
    monkeypatch.setattr("hits.task_tokens.time.time", lambda: later)
    resp = submit(client, hit, token, answers)
    assert resp.status_code == 403 and resp.json()["code"] == "expired"
    assert_nothing_stored(assignment)


def test_page_says_time_is_up_once_the_assignment_ran_out(client, shapes, td):
    hit = td.make_hit(shapes, "verify", duration=600)
    assignment, _ = accept(client, hit)
    Assignment.objects.filter(pk=assignment.pk).update(
        accepted_at=timezone.now() - timedelta(seconds=601)
    )
    resp = client.get(
        f"/task/{hit.pk}/",
        {
            "assignmentId": assignment.provider_assignment_id,
            "hitId": hit.provider_hit_id,
            "workerId": "WORKER-RAW-1",
        },
    )
    assert resp.status_code == 410 and b"Time is up" in resp.content
    assert b"task-data" not in resp.content


def test_replay_and_double_submit_store_votes_once(client, shapes, td):
    hit = td.make_hit(shapes, "complementary")
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    assert submit(client, hit, token, answers).status_code == 200
    first = list(Vote.objects.values_list("id", "item_id", "answer"))

    again = submit(client, hit, token, answers)  # identical replay / retry after a lost reply
    assert again.status_code == 200 and again.json()["already_submitted"] is True
    changed = td.valid_answers(hit, assignment, pick=1)
    other = submit(client, hit, token, changed)  # a second, different submission
    assert other.status_code == 409 and other.json()["already_submitted"] is True
    assert other.json()["answers"] == answers

    assert list(Vote.objects.values_list("id", "item_id", "answer")) == first
    assignment.refresh_from_db()
    assert json.loads(assignment.raw_answer)["answers"] == answers


def test_a_racing_second_submission_stores_nothing(client, shapes, td):
    """Two requests both saw the assignment open; only the first status flip wins."""
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    stale = Assignment.objects.select_related("hit__batch__dataset").get(pk=assignment.pk)
    answers = td.valid_answers(hit, assignment)
    assert submit(client, hit, token, answers).status_code == 200
    assert stale.status == Assignment.Status.ACCEPTED
    result = assignment_submit(stale, answers)
    assert result.already_submitted and result.votes_created == 0
    assert Vote.objects.count() == 20


def test_mismatched_worker_is_refused(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit, worker_id="WORKER-RAW-1")
    answers = td.valid_answers(hit, assignment)
    resp = client.get(
        f"/task/{hit.pk}/",
        {
            "assignmentId": assignment.provider_assignment_id,
            "hitId": hit.provider_hit_id,
            "workerId": "WORKER-RAW-2",
        },
    )
    assert resp.status_code == 403
    assert b"task-data" not in resp.content
    assert Worker.objects.count() == 1, "a refused link creates no worker"
    other_hash = worker_id_hash("WORKER-RAW-2")
    token_for_other = signing.dumps(
        {"a": assignment.pk, "h": hit.pk, "w": other_hash, "e": 2**40}, salt=SALT, compress=True
    )
    resp = submit(client, hit, token_for_other, answers)
    assert resp.status_code == 403 and resp.json()["code"] == "worker_mismatch"
    assert_nothing_stored(assignment)


def test_returned_assignment_takes_no_answers(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.RETURNED)
    resp = submit(client, hit, token, td.valid_answers(hit, assignment))
    assert resp.status_code == 409
    assert Vote.objects.count() == 0


def test_durations_are_kept_sane_without_costing_the_vote(client, shapes, td):
    hit = td.make_hit(shapes, "verify", duration=60)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    answers[0]["duration_ms"] = 10**12
    answers[1]["duration_ms"] = -5
    answers[2]["duration_ms"] = "soon"
    answers[3].pop("duration_ms")
    assert submit(client, hit, token, answers).status_code == 200
    got = dict(Vote.objects.values_list("item_id", "duration_ms"))
    assert got[answers[0]["item"]] == 60_000
    assert got[answers[1]["item"]] is None and got[answers[2]["item"]] is None
    assert got[answers[3]["item"]] is None and got[answers[4]["item"]] == 1200


@pytest.mark.django_db(transaction=True)  # the foreign key is checked when the submit commits
@pytest.mark.parametrize("kind", ["verify", "complementary"])
def test_an_item_deleted_after_the_page_opened_is_named_and_nothing_is_stored(
    client, shapes, td, kind
):
    """These kinds read no item rows on submit (their entries carry what they check); the
    votes' foreign key still refuses an item that is gone, with the problem named."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.models import Item

    hit = td.make_hit(shapes, kind)
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    gone = int(answers[1]["item"])
    Vote.objects.filter(item_id=gone).delete()
    Item.objects.filter(pk=gone).delete()

    with CaptureQueriesContext(connection) as queries:
        resp = submit(client, hit, token, answers)

    assert resp.status_code == 400
    assert f"problem 2: item {gone} no longer exists" in resp.json()["error"]
    assert_nothing_stored(assignment)
    # the one read of the items is the check after the foreign key refused the votes
    item_reads = [q["sql"] for q in queries if 'FROM "annotation_item"' in q["sql"]]
    assert len(item_reads) == 1


def test_a_verify_submit_reads_no_item_rows(client, shapes, td):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hit = td.make_hit(shapes, "verify")
    assignment, token = accept(client, hit)
    answers = td.valid_answers(hit, assignment)
    with CaptureQueriesContext(connection) as queries:
        resp = submit(client, hit, token, answers)
    assert resp.status_code == 200 and resp.json()["ok"] is True
    assert not [q for q in queries if 'FROM "annotation_item"' in q["sql"]]
    shown = dict(Vote.objects.filter(assignment=assignment).values_list("item_id", "shown_label"))
    assert shown == {int(e["item"]): int(e["label"]) for e in hit.items}
