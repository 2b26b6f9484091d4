"""Each task kind in a real browser, framed by another origin as MTurk frames it (on the same site: the marketplace's worker cookie is SameSite=Lax):
preview, accept, answer with clicks and keys, submit to our endpoint and then to the outer
site's externalSubmit; the votes land once."""

import json
import urllib.request
from urllib.parse import urlencode

import pytest

from annotation.models import Vote
from hits.models import Assignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RAW_WORKER = "A9RAWWORKERBROWSER"


def url_for(live_server, hit, **kw):
    """The URL MTurk frames: a preview without an assignment, the working page with one."""
    params = {"assignmentId": kw.get("assignment") or "ASSIGNMENT_ID_NOT_AVAILABLE"}
    params["hitId"] = hit.provider_hit_id
    if kw.get("worker"):
        params["workerId"] = kw["worker"]
    if kw.get("submit_to"):
        params["turkSubmitTo"] = kw["submit_to"]
    return f"{live_server.url}/task/{hit.pk}/?{urlencode(params)}"


def replay(live_server, hit, token, answers) -> dict:
    req = urllib.request.Request(
        f"{live_server.url}/task/{hit.pk}/submit/",
        data=json.dumps({"token": token, "answers": answers}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def open_in_frame(browser, outer, src, cookies=()):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    if cookies:
        page.context.add_cookies(list(cookies))
    page.goto(outer.frame_url(src))
    return page, page.frame_locator("#hit")


def check_preview(browser, outer, live_server, hit):
    from playwright.sync_api import expect

    page, frame = open_in_frame(browser, outer, url_for(live_server, hit))
    expect(frame.locator(".banner")).to_contain_text("Accept the HIT to begin")
    expect(frame.locator("input").first).to_be_disabled()
    expect(frame.locator(".js-submit").first).to_be_disabled()
    expect(frame.locator("img").first).to_be_visible()
    page.close()
    assert not Assignment.objects.exists()


def check_landed_once(hit, outer_post, expected, live_server, token):
    assignment = Assignment.objects.get(hit=hit)
    assert assignment.status == Assignment.Status.SUBMITTED
    assert outer_post["assignmentId"] == [assignment.provider_assignment_id]
    posted = json.loads(outer_post["answers"][0])
    assert {a["item"]: a["answer"] for a in posted} == expected
    for item, answer in expected.items():
        assert outer_post[f"item_{item}"] == [str(answer)]
    votes = Vote.objects.filter(assignment=assignment)
    assert {v.item_id: v.answer for v in votes} == expected
    assert votes.count() == len(expected)
    assert all(v.duration_ms is not None for v in votes)
    assert {v.item_id for v in votes if v.is_gold} == set(hit.gold_items)

    again = replay(live_server, hit, token, posted)  # a second submit stores nothing new
    assert again["already_submitted"] is True
    assert Vote.objects.filter(assignment=assignment).count() == len(expected)
    return assignment, votes


CHOICE_KINDS = ["complementary", "verify", "review"]


@pytest.mark.parametrize("kind", CHOICE_KINDS)
def test_choice_kind_framed_like_mturk(
    live_server, browser, outer, screenshot, market_worker, td, kind
):
    from playwright.sync_api import expect

    ds = td.make_dataset(gold_every=3)
    hit = td.make_hit(ds, kind)
    n = len(hit.items)
    check_preview(browser, outer, live_server, hit)

    # Screenshots of a second worker's page, part answered.
    def answer_two(page):
        page.locator(".problem").nth(0).locator(".choice").nth(1).click()
        page.locator(".problem").nth(1).locator(".choice").nth(0).click()

    shot, shot_cookies = market_worker(hit, "SHOTWORKER")
    shot_url = url_for(
        live_server, hit, assignment=shot.provider_assignment_id, worker="SHOTWORKER"
    )
    widths = screenshot(shot_url, kind, prepare=answer_two, cookies=shot_cookies)
    assert widths["phone"] <= 390 and widths["desktop"] <= 1280
    screenshot(url_for(live_server, hit), f"{kind}-preview")
    shot.delete()

    mine, cookies = market_worker(hit, RAW_WORKER)
    src = url_for(
        live_server,
        hit,
        assignment=mine.provider_assignment_id,
        worker=RAW_WORKER,
        submit_to=outer.origin,
    )
    page, frame = open_in_frame(browser, outer, src, cookies)
    problems = frame.locator(".problem")
    expect(problems).to_have_count(n)
    token = json.loads(frame.locator("#task-data").text_content())["token"]
    assert RAW_WORKER not in page.frames[1].content()
    values = problems.evaluate_all(
        "ps => ps.map(p => [+p.dataset.item, [...p.querySelectorAll('input')].map(i => +i.value)])"
    )
    chosen = {}
    half = n // 2
    for i in range(half):  # clicks
        idx = i % len(values[i][1])
        problems.nth(i).locator(".choice").nth(idx).click()
        chosen[values[i][0]] = values[i][1][idx]
    expect(frame.locator(".js-submit").first).to_be_disabled()
    # keys: skip one problem with an arrow, answer the rest, then the skipped one comes back
    page.keyboard.press("ArrowDown")
    order = list(range(half + 1, n)) + [half]
    for i in order:
        idx = (i + 1) % len(values[i][1])
        page.keyboard.press(str(idx + 1))
        chosen[values[i][0]] = values[i][1][idx]
    expect(frame.locator(".js-count")).to_have_text(str(n))
    expect(frame.locator(".jump a.done")).to_have_count(n)
    submit = frame.locator(".js-submit").first
    expect(submit).to_be_enabled()
    page.keyboard.press("Enter")  # all answered: Enter submits

    posts = outer.wait_for_posts(1)
    assert len(posts) == 1
    expect(frame.locator("#thanks")).to_be_visible()
    assignment, votes = check_landed_once(hit, posts[0], chosen, live_server, token)
    if kind == "complementary":
        for item, shown in values:
            assert votes.get(item_id=item).candidates == shown  # in display order
    if kind == "verify":
        labels = {e["item"]: e["label"] for e in hit.items}
        assert all(v.shown_label == labels[v.item_id] for v in votes)
    if kind == "review":
        pairs = {e["item"]: (e["given"], e["suggested"]) for e in hit.items}
        assert all((v.shown_label, v.suggested_label) == pairs[v.item_id] for v in votes)
        for item, shown in values:  # the two labels in the order this page showed them
            assert votes.get(item_id=item).candidates == [pairs[item][a] for a in shown[:2]]

    # Reloading the accepted HIT shows the clear "already submitted" state.
    page.goto(outer.frame_url(src))
    expect(page.frame_locator("#hit").locator("h1")).to_have_text("Already submitted")
    assert Vote.objects.filter(assignment=assignment).count() == n
    page.close()


def test_select_framed_like_mturk(live_server, browser, outer, screenshot, market_worker, td):
    from playwright.sync_api import expect

    ds = td.make_dataset(gold_every=3)
    hit = td.make_hit(ds, "select", params={"min_select": 4}, gold_rate=0.1)
    check_preview(browser, outer, live_server, hit)

    def pick_some(page):
        for k in range(3):
            page.locator(".task:not([hidden]) .tile").nth(k).click()

    shot, shot_cookies = market_worker(hit, "SHOTWORKER")
    widths = screenshot(
        url_for(live_server, hit, assignment=shot.provider_assignment_id, worker="SHOTWORKER"),
        "select",
        pick_some,
        cookies=shot_cookies,
    )
    assert widths["phone"] <= 390 and widths["desktop"] <= 1280
    screenshot(url_for(live_server, hit), "select-preview")
    shot.delete()

    mine, cookies = market_worker(hit, RAW_WORKER)
    src = url_for(
        live_server,
        hit,
        assignment=mine.provider_assignment_id,
        worker=RAW_WORKER,
        submit_to=outer.origin,
    )
    page, frame = open_in_frame(browser, outer, src, cookies)
    tasks = frame.locator(".task")
    expect(tasks).to_have_count(len(hit.items))
    token = json.loads(frame.locator("#task-data").text_content())["token"]

    def visible_task():
        return frame.locator(".task:not([hidden])")

    # "Select all" and "Select none" spare a worker one click per image.
    tiles = visible_task().locator(".tile")
    visible_task().locator(".js-all").click()
    expect(visible_task().locator(".js-selected")).to_have_text(str(tiles.count()))
    expect(visible_task().locator(".js-next")).to_be_enabled()
    page.keyboard.press("n")
    expect(visible_task().locator(".js-selected")).to_have_text("0")
    page.keyboard.press("a")
    expect(visible_task().locator(".js-selected")).to_have_text(str(tiles.count()))
    visible_task().locator(".js-none").click()
    expect(visible_task().locator(".js-selected")).to_have_text("0")

    # Task 1 by clicks; Next stays disabled until 4 are selected.
    for k in range(3):
        tiles.nth(k).click()
    expect(visible_task().locator(".js-next")).to_be_disabled()
    tiles.nth(3).click()
    tiles.nth(5).click()
    tiles.nth(5).click()  # a second click unselects
    expect(visible_task().locator(".js-selected")).to_have_text("4")
    visible_task().locator(".js-next").click()
    expect(frame.locator(".js-task")).to_have_text("2")

    # The rest by keys: digits toggle images 1-10, Shift+digit 11-20, Enter moves on.
    for t in range(1, len(hit.items)):
        for key in ("1", "2", "3", "Shift+1", "0"):
            page.keyboard.press(key)
        if t == 2:
            page.keyboard.press("ArrowLeft")  # back to task 2, and forward again
            expect(frame.locator(".js-task")).to_have_text("2")
            page.keyboard.press("ArrowRight")
            expect(frame.locator(".js-task")).to_have_text("3")
        page.keyboard.press("Enter")
    posts = outer.wait_for_posts(1)
    assert len(posts) == 1
    expected = {}
    for g, group in enumerate(hit.items):
        ids = group["items"]
        picked = {0, 1, 2, 3} if g == 0 else {0, 1, 2, 9, 10}
        picked = {p for p in picked if p < len(ids)}
        for pos, item in enumerate(ids):
            expected[item] = int(pos in picked)
    _, votes = check_landed_once(hit, posts[0], expected, live_server, token)
    labels = {i: g["label"] for g in hit.items for i in g["items"]}
    assert all(v.shown_label == labels[v.item_id] for v in votes)
    page.close()


def test_a_site_not_allowed_cannot_frame_the_task(live_server, browser, outer, settings, td):
    settings.TASK_FRAME_ANCESTORS = []
    ds = td.make_dataset()
    hit = td.make_hit(ds, "verify")
    page = browser.new_page()
    page.goto(outer.frame_url(url_for(live_server, hit)))
    page.wait_for_load_state("load")
    frame = page.frames[1]
    assert frame.url.startswith("chrome-error:") or not frame.locator(".problem").count()
    page.close()
