"""The built-in marketplace's worker side: arrival by link, recruiting-platform ids, invitation
codes, caps and distinct workers per item, completion codes and redirects."""

import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from annotation.models import Vote
from hits.models import Assignment, Hit, HitBatch
from hits.services import hit_batch_launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_batch(make_dataset, make_batch, django_capture_on_commit_callbacks):
    def make(n: int = 20, **fields) -> HitBatch:
        defaults = {"provider": "market", "environment": "market", "items_per_hit": 10}
        defaults.update(fields)
        batch = make_batch(make_dataset(n=n), **defaults)
        with django_capture_on_commit_callbacks(execute=True):
            hit_batch_launch(batch)
        batch.refresh_from_db()
        return batch

    return make


def task_params(response) -> tuple[int, dict]:
    assert response.status_code == 302, response.content[:300]
    url = urlsplit(response["Location"])
    m = re.fullmatch(r"/task/(\d+)/", url.path)
    assert m, response["Location"]
    return int(m.group(1)), {k: v[0] for k, v in parse_qs(url.query).items()}


def answers(hit: Hit) -> str:
    return json.dumps([{"item": e["item"], "answer": 0} for e in hit.items])


def test_participant_from_a_recruiting_platform_ends_at_its_completion_url(client, open_batch):
    batch = open_batch(
        worker_id_param="PROLIFIC_PID",
        completion_redirect_url="https://app.prolific.com/submissions/complete?cc=C0DE",
    )
    page = client.get(f"/market/b/{batch.uid}/?PROLIFIC_PID=5f1e2d3c4b5a69788796a5b4&STUDY_ID=s1")
    assert page.status_code == 200 and b"Start a task" in page.content
    hit_pk, params = task_params(client.post(f"/market/b/{batch.uid}/start/"))
    assert params["workerId"] == "5f1e2d3c4b5a69788796a5b4"
    assert params["turkSubmitTo"] == "http://testserver/market"
    hit = Hit.objects.get(pk=hit_pk)
    assert params["hitId"] == hit.provider_hit_id
    a = Assignment.objects.get(provider_assignment_id=params["assignmentId"])
    assert a.status == "Accepted" and a.hit == hit

    # The page's own submit never arrived: the marketplace stores the posted answers itself.
    done = client.post(
        "/market/mturk/externalSubmit",
        {"assignmentId": params["assignmentId"], "answers": answers(hit)},
    )
    assert done.status_code == 302
    assert done["Location"] == "https://app.prolific.com/submissions/complete?cc=C0DE"
    a.refresh_from_db()
    assert a.status == "Submitted" and Vote.objects.filter(assignment=a).count() == 10
    again = client.post(
        "/market/mturk/externalSubmit",
        {"assignmentId": params["assignmentId"], "answers": answers(hit)},
    )
    assert again.status_code == 302 and Vote.objects.filter(assignment=a).count() == 10

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert "5f1e2d3c4b5a69788796a5b4" not in dump.getvalue()


def test_completion_code_and_another_task(client, open_batch):
    batch = open_batch(completion_code="BLUE-7")
    client.post("/market/me/", {"worker_id": "student-12"})
    hit_pk, params = task_params(client.post(f"/market/b/{batch.uid}/start/"))
    done = client.post(
        "/market/mturk/externalSubmit",
        {"assignmentId": params["assignmentId"], "answers": answers(Hit.objects.get(pk=hit_pk))},
    )
    assert done.status_code == 200
    assert b'id="completion-code">BLUE-7<' in done.content and b"Do another task" in done.content
    second_pk, _ = task_params(client.post(f"/market/b/{batch.uid}/start/"))
    assert second_pk != hit_pk


def test_invitation_code_is_required(client, open_batch):
    batch = open_batch(invite_code="lab-2026")
    assert client.get(f"/market/b/{batch.uid}/").status_code == 403
    assert client.get(f"/market/b/{batch.uid}/?code=wrong").status_code == 403
    assert client.get(f"/market/b/{batch.uid}/?code=lab-2026").status_code == 200
    client.post("/market/me/", {"worker_id": "member-1"})
    assert client.post(f"/market/b/{batch.uid}/start/").status_code == 403
    task_params(client.post(f"/market/b/{batch.uid}/start/", {"code": "lab-2026"}))
    assert b"lab-2026" not in client.get("/market/").content, "invite-only batches are not listed"


def test_cap_per_worker(client, open_batch):
    batch = open_batch(max_hits_per_worker=1)
    client.post("/market/me/", {"worker_id": "capped"})
    task_params(client.post(f"/market/b/{batch.uid}/start/"))
    refused = client.post(f"/market/b/{batch.uid}/start/")
    assert refused.status_code == 404 and b"no more tasks" in refused.content


def test_a_worker_never_gets_an_item_twice_in_a_batch(client, open_batch):
    batch = open_batch()
    first = batch.hits.order_by("number").first()
    # A HIT that repeats one of the first HIT's items (as a re-planned batch could).
    Hit.objects.create(
        batch=batch,
        number=3,
        items=[first.items[0]],
        max_assignments=3,
        provider_hit_id="LREPEAT",
        status="Assignable",
        expires_at=first.expires_at,
    )
    client.post("/market/me/", {"worker_id": "careful-one"})
    taken = {task_params(client.post(f"/market/b/{batch.uid}/start/"))[0] for _ in range(2)}
    assert taken == set(batch.hits.filter(number__in=[1, 2]).values_list("pk", flat=True))
    repeat = Hit.objects.get(number=3, batch=batch)
    refused = client.post(f"/market/hits/{repeat.pk}/accept/")
    assert refused.status_code == 409 and b"already seen" in refused.content


def test_places_per_hit_and_returning_a_hit(client, open_batch, django_user_model):
    from django.test import Client

    batch = open_batch(n=10, assignments_per_item=2)
    hit = batch.hits.get()
    clients = []
    for name in ("one", "two", "three"):
        c = Client()
        c.post("/market/me/", {"worker_id": name})
        clients.append(c)
    _, first = task_params(clients[0].post(f"/market/hits/{hit.pk}/accept/"))
    task_params(clients[1].post(f"/market/hits/{hit.pk}/accept/"))
    full = clients[2].post(f"/market/hits/{hit.pk}/accept/")
    assert full.status_code == 409 and b"taken" in full.content
    clients[0].post(f"/market/assignments/{first['assignmentId']}/return/")
    assert Assignment.objects.get(provider_assignment_id=first["assignmentId"]).status == "Returned"
    task_params(clients[2].post(f"/market/hits/{hit.pk}/accept/"))


def test_identity_by_cookie_on_our_origin(client, open_batch):
    open_batch()
    assert client.post("/market/me/", {"generate": "1"}).status_code == 302
    cookie = client.cookies["market_worker"].value
    assert re.match(r"^W[0-9A-F]{16}:", cookie), "a signed value"
    bad = client.post("/market/me/", {"worker_id": "<script>"})
    assert bad.status_code == 400


def test_pages_are_self_contained_and_phone_sized(client, open_batch):
    batch = open_batch(completion_code="X")
    client.post("/market/me/", {"worker_id": "phone-user"})
    hit = batch.hits.first()
    pages = [
        client.get("/market/"),
        client.get("/market/me/"),
        client.get(f"/market/b/{batch.uid}/"),
        client.get(f"/market/hits/{hit.pk}/"),
    ]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert 'name="viewport" content="width=device-width' in html
        assert not re.search(r'(src|href)="(https?:)?//', html), "no third-party assets"


def test_unknown_or_preview_submissions_are_refused(client, open_batch):
    open_batch()
    r = client.post("/market/mturk/externalSubmit", {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"})
    assert r.status_code == 400
    r = client.post("/market/mturk/externalSubmit", {"assignmentId": "LANOPE", "answers": "[]"})
    assert r.status_code == 400


def test_a_worker_who_returned_a_hit_may_take_it_again(client, open_batch):
    batch = open_batch(n=10)
    hit = batch.hits.get()
    client.post("/market/me/", {"worker_id": "second-thoughts"})
    _, first = task_params(client.post(f"/market/hits/{hit.pk}/accept/"))
    again = client.post(f"/market/hits/{hit.pk}/accept/")
    assert again.status_code == 409 and b"already worked" in again.content
    client.post(f"/market/assignments/{first['assignmentId']}/return/")
    _, second = task_params(client.post(f"/market/hits/{hit.pk}/accept/"))
    assert second["assignmentId"] != first["assignmentId"]
    statuses = dict(Assignment.objects.values_list("provider_assignment_id", "status"))
    assert statuses == {first["assignmentId"]: "Returned", second["assignmentId"]: "Accepted"}
    page = client.get(f"/task/{hit.pk}/", second)
    assert page.status_code == 200 and b'id="task-data"' in page.content
    old = client.get(f"/task/{hit.pk}/", first)
    assert old.status_code == 410 and b"no longer active" in old.content
