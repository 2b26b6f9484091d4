"""The task pages as MTurk loads them: preview, working page, headers, privacy, images."""

import json
import re

import pytest
from django.test import Client

from annotation.worker_ids import worker_id_hash
from hits.models import Assignment

pytestmark = pytest.mark.django_db
SANDBOX = "https://workersandbox.mturk.com"
RAW_WORKER = "A1B2C3RAWWORKER"


def page_data(response) -> dict:
    m = re.search(
        rb'<script id="task-data" type="application/json">(.*?)</script>', response.content
    )
    return json.loads(m.group(1))


def accepted(client, hit, worker: str = RAW_WORKER) -> Assignment:
    """The worker's assignment on the HIT, taken (once) through the marketplace's accept: the
    only way a marketplace assignment comes to be."""
    mine = Assignment.objects.filter(hit=hit, worker__id_hash=worker_id_hash(worker)).first()
    if mine is not None:
        return mine
    client.post("/market/me/", {"worker_id": worker})
    resp = client.post(f"/market/hits/{hit.pk}/accept/")
    assert resp.status_code == 302 and "/task/" in resp["Location"], resp.content[:300]
    return Assignment.objects.get(hit=hit, worker__id_hash=worker_id_hash(worker))


def working(client, hit, *, worker: str = RAW_WORKER, **extra):
    """The working page of the worker's accepted assignment, opened with MTurk's parameters
    (``extra`` overrides them)."""
    a = accepted(client, hit, worker)
    params = {
        "assignmentId": a.provider_assignment_id,
        "hitId": hit.provider_hit_id,
        "workerId": worker,
        "turkSubmitTo": SANDBOX,
        **extra,
    }
    return client.get(f"/task/{hit.pk}/", params)


def opened(client, hit, **params):
    """The task page opened with exactly these parameters (no accept first)."""
    return client.get(f"/task/{hit.pk}/", params)


@pytest.mark.parametrize("kind", ["complementary", "verify", "select", "review"])
def test_preview_shows_the_hit_with_answers_disabled(client, shapes, td, kind):
    hit = td.make_hit(shapes, kind)
    for query in ("assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&", ""):
        resp = client.get(f"/task/{hit.pk}/?{query}hitId={hit.provider_hit_id}")
        assert resp.status_code == 200
        html = resp.content.decode()
        assert "Accept the HIT to begin" in html
        assert html.count("/i/") >= 10  # the HIT's images are visible
        fieldsets = re.findall(r"<fieldset[^>]*>", html)
        assert fieldsets and all("disabled" in f for f in fieldsets)
        data = page_data(resp)
        assert data["preview"] is True and data["token"] is None
    assert not Assignment.objects.exists()


@pytest.mark.parametrize("kind", ["complementary", "verify", "select", "review"])
def test_working_page_carries_a_token_and_never_the_raw_worker_id(client, shapes, td, kind):
    hit = td.make_hit(shapes, kind)
    resp = working(client, hit)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert RAW_WORKER not in html and RAW_WORKER.lower() not in html.lower()
    data = page_data(resp)
    a = Assignment.objects.get()
    assert data["token"] and data["preview"] is False
    assert data["externalSubmit"] == f"{SANDBOX}/mturk/externalSubmit"
    assert data["assignmentId"] == a.provider_assignment_id
    assert not re.findall(r"<fieldset[^>]*disabled", html)
    assert "Keyboard" in html and "<kbd>" in html
    assert '<script src="/static/tasks/task.js"' in html
    # every asset comes from this site
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#")), url
    assert a.status == "Accepted"
    assert RAW_WORKER not in a.worker.id_hash


def test_task_pages_may_be_framed_by_mturk_and_configured_origins_only(
    client, shapes, td, settings
):
    settings.TASK_FRAME_ANCESTORS = ["https://lab.example.org"]
    hit = td.make_hit(shapes, "verify")
    for resp in (working(client, hit), client.get(f"/task/{hit.pk}/?hitId=PHIT-1")):
        assert "X-Frame-Options" not in resp.headers
        csp = resp.headers["Content-Security-Policy"]
        ancestors = re.search(r"frame-ancestors ([^;]+)", csp).group(1).split()
        assert ancestors == [
            "'self'",
            "https://www.mturk.com",
            "https://worker.mturk.com",
            "https://workersandbox.mturk.com",
            "https://lab.example.org",
        ]
        assert "script-src 'self'" in csp and "img-src 'self'" in csp
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert not resp.cookies  # nothing relies on cookies inside a third-party frame
    assert client.get("/").headers["X-Frame-Options"] == "DENY"


def test_hit_id_must_match_the_provider_hit(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    link = {"assignmentId": "ASSIGN-9", "workerId": RAW_WORKER, "turkSubmitTo": SANDBOX}
    assert opened(client, hit, hitId="SOMEONE-ELSES", **link).status_code == 400
    assert client.get(f"/task/{hit.pk}/").status_code == 400
    assert client.get("/task/99999/").status_code == 404
    assert not Assignment.objects.exists()


def test_submit_target_must_be_mturk_this_site_or_an_allowed_origin(client, shapes, td, settings):
    hit = td.make_hit(shapes, "verify")
    for bad in ("https://evil.example.com", "javascript:alert(1)", "ftp://www.mturk.com"):
        assert working(client, hit, turkSubmitTo=bad).status_code == 400
    settings.TASK_FRAME_ANCESTORS = ["http://127.0.0.1:9999"]
    resp = working(client, hit, turkSubmitTo="http://127.0.0.1:9999")
    assert page_data(resp)["externalSubmit"] == "http://127.0.0.1:9999/mturk/externalSubmit"
    resp = working(client, hit, turkSubmitTo="http://testserver/market")
    assert page_data(resp)["externalSubmit"] == "http://testserver/market/mturk/externalSubmit"


def test_working_page_needs_a_worker_id(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    link = {"assignmentId": "ASSIGN-9", "hitId": hit.provider_hit_id, "turkSubmitTo": SANDBOX}
    assert opened(client, hit, workerId="", **link).status_code == 400
    assert opened(client, hit, **link).status_code == 400
    assert not Assignment.objects.exists()


def test_reload_after_submitting_shows_already_submitted(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    data = page_data(working(client, hit))
    a = Assignment.objects.get()
    answers = td.valid_answers(hit, a)
    client.post(
        f"/task/{hit.pk}/submit/",
        {"token": data["token"], "answers": answers},
        content_type="application/json",
    )
    resp = working(client, hit)
    assert resp.status_code == 200 and b"Already submitted" in resp.content
    done = page_data(resp)
    assert done["mode"] == "done" and done["answers"] == answers
    assert "X-Frame-Options" not in resp.headers


def test_complementary_candidates_survive_a_reload_and_differ_between_assignments(
    client, shapes, td
):
    hit = td.make_hit(shapes, "complementary")

    def shown(resp):
        html = resp.content.decode()
        return re.findall(r'name="item_(\d+)" value="(\d+)"', html)

    first = shown(working(client, hit))
    assert shown(working(client, hit)) == first
    per_item = {}
    for item, value in first:
        per_item.setdefault(item, []).append(int(value))
    assert len(per_item) == 10 and all(len(set(v)) == 4 for v in per_item.values())
    other = shown(working(Client(), hit, worker="ANOTHER"))
    assert other != first


def test_gold_problems_look_like_any_other(client, shapes, td):
    hit = td.make_hit(shapes, "verify")
    html = working(client, hit).content.decode()
    sections = re.findall(r'<section class="problem"[^>]*>\s*<div class="pic"><img ([^>]*)>', html)
    assert len(sections) == 20
    shapes_of = {re.sub(r"\d+", "N", re.sub(r"/i/[^\"]+", "URL", s)) for s in sections}
    assert len(shapes_of) == 1  # same markup, same URL pattern: nothing marks gold
    assert "gold" not in html.lower()


def test_images_are_renditions_with_long_cache_headers(client, shapes, td):
    hit = td.make_hit(shapes, "complementary")
    html = working(client, hit).content.decode()
    urls = re.findall(r'<img src="([^"]+)" width="200" height="200"', html)
    assert len(urls) == 10
    assert all(re.fullmatch(r"/i/\d+-200-[0-9a-f]{16}\.png", u) for u in urls)
    assert "/media/" not in html
    resp = client.get(urls[0])
    assert resp.status_code == 200 and resp["Content-Type"] == "image/png"
    assert "immutable" in resp["Cache-Control"] and "max-age=31536000" in resp["Cache-Control"]


def test_select_page_shows_attributes_and_examples(client, shapes, td):
    hit = td.make_hit(shapes, "select", params={"min_select": 3}, gold_rate=0.05)
    html = working(client, hit).content.decode()
    assert html.count('class="task"') == 10
    assert "Color: <b>Navy</b>" in html and "Style: <b>filled</b>" in html
    assert "Matches" in html and "Does not match" in html
    assert "at least 3" in html


def test_raw_worker_id_reaches_no_log_and_no_row(client, shapes, td, caplog):
    import io
    import logging

    from django.core.management import call_command

    caplog.set_level(logging.DEBUG)
    hit = td.make_hit(shapes, "verify")
    data = page_data(working(client, hit))
    working(client, hit, workerId="SOMEONE-ELSE-RAW")  # refused: another worker
    a = Assignment.objects.get()
    client.post(
        f"/task/{hit.pk}/submit/",
        {"token": data["token"], "answers": td.valid_answers(hit, a)},
        content_type="application/json",
    )
    dump = io.StringIO()
    call_command("dumpdata", "annotation", "hits", stdout=dump)
    for text in (caplog.text, dump.getvalue()):
        assert RAW_WORKER not in text and "SOMEONE-ELSE-RAW" not in text
    assert a.votes.count() == 20


HOSTILE = "Circle <img src=x onerror=\"alert(1)\"> & 'co'"


@pytest.mark.parametrize("kind", ["complementary", "verify", "review", "label"])
def test_class_names_with_markup_show_as_text(client, shapes, td, kind):
    """The problems are written in Python, not by the template engine: a class name holding
    markup must still reach the worker as text, in the question, the choices and the examples."""
    names = list(shapes.class_names)
    names[0] = HOSTILE
    shapes.class_names = names
    shapes.save(update_fields=["class_names"])
    hit = td.make_hit(shapes, kind, gold_rate=0)
    html = working(client, hit).content.decode()
    assert "<img src=x" not in html and 'onerror="alert' not in html
    problems = re.findall(r'<section class="problem".*?</section>', html, re.S)
    assert len(problems) == len(hit.items)
    shown = "Circle &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#x27;co&#x27;"
    assert any(shown in p for p in problems)
