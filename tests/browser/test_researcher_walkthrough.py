"""A new researcher's first study, end to end in Chromium: import a dataset in the admin, make a
select batch and read its launch preview (judgments, minutes, pay per hour, costs), launch it on
the built-in marketplace, a worker returns a HIT, takes one again and does it with "Select all",
then the dashboard and the results download. Each page's numbers are checked; the screenshots
(test-artifacts/screenshots/walkthrough-*.png) are the ones the README shows."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from PIL import Image

from annotation.models import Dataset, Vote
from hits.models import Assignment, HitBatch

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLASSES = ("circle", "square", "triangle")
PER_CLASS = 12
PASSWORD = "walkthrough-pw-1"


def class_folders_zip(path) -> None:
    """Three folders of 12 small images each, one colour per class."""
    colours = {"circle": (200, 40, 40), "square": (40, 160, 60), "triangle": (40, 60, 200)}
    with zipfile.ZipFile(path, "w") as zf:
        for name in CLASSES:
            for n in range(PER_CLASS):
                img = Image.new("RGB", (32, 32), colours[name])
                img.putpixel((n, n), (255, 255, 255))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                zf.writestr(f"{name}/{name}-{n:02d}.png", buf.getvalue())


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"walkthrough-{name}.png"), full_page=True)


def cell(page, cell_id: str) -> str:
    return page.locator(f"#{cell_id}").inner_text()


def test_a_first_study_from_import_to_results(live_server, browser, settings, tmp_path,
                                              django_user_model):  # fmt: skip
    from playwright.sync_api import expect

    settings.SITE_URL = live_server.url
    settings.MIN_HOURLY_PAY = 7.25
    django_user_model.objects.create_superuser("researcher", "r@example.org", PASSWORD)
    upload = tmp_path / "shapes.zip"
    class_folders_zip(upload)

    researcher = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = researcher.new_page()
    page.goto(live_server.url + "/admin/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#content h1")).to_contain_text("Datasets, batches, workers, curation")
    shot(page, "1-admin-home")

    # 1. Import: a zip of class folders.
    page.goto(live_server.url + "/admin/annotation/dataset/import/")
    page.fill("#id_name", "shapes")
    page.select_option("#id_format", "folder")
    page.set_input_files("#id_file", str(upload))
    shot(page, "2-import")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Imported shapes: 36 items")
    dataset = Dataset.objects.get(name="shapes")
    assert dataset.class_names == list(CLASSES) and dataset.items.count() == 36

    # 2. A select batch: 3 tasks of 12 images per HIT, one worker per image, $0.05 a HIT.
    page.goto(live_server.url + "/admin/hits/hitbatch/add/")
    page.fill("#id_name", "Shapes, first round")
    page.select_option("#id_dataset", str(dataset.pk))
    page.select_option("#id_kind", "select")
    page.select_option("#id_provider", "market")
    page.select_option("#id_environment", "market")
    expect(page.locator("label[for=id_items_per_hit]")).to_have_text("Items per HIT:")
    page.fill("#id_images_per_task", "12")
    page.fill("#id_items_per_hit", "3")
    page.fill("#id_assignments_per_item", "1")
    page.fill("#id_reward", "0.05")
    page.fill("#id_gold_rate", "0")
    page.fill("#id_completion_code", "SHAPES-DONE-7")
    page.click("input[name=_save]")
    batch = HitBatch.objects.get(name="Shapes, first round")
    assert batch.params["group_size"] == 12
    page.goto(live_server.url + f"/admin/hits/hitbatch/{batch.pk}/launch/")
    # 36 images in 3 tasks on one HIT: 36 judgments; 3 x 25 s + 30 s = 105 s -> 2 minutes;
    # $0.05 in 2 minutes is $1.50 an hour, under $7.25: $0.25 a HIT would pay it.
    assert cell(page, "effort-judgments").startswith("36 (36 per HIT: 3 tasks of up to 20 images")
    assert cell(page, "effort-minutes").startswith("about 2 minutes")
    hourly = cell(page, "effort-hourly")
    assert hourly.startswith("$1.50 at $0.05 a HIT")
    assert "below the minimum of $7.25 an hour: a reward of $0.25 a HIT pays it" in hourly
    expect(page.locator("#launch-preview")).to_contain_text("none (built-in marketplace)")
    shot(page, "3-launch-preview-underpaid")

    # The researcher raises the reward to what the preview says, and launches.
    page.goto(live_server.url + f"/admin/hits/hitbatch/{batch.pk}/change/")
    page.fill("#id_reward", "0.25")
    page.click("input[name=_continue]")
    page.goto(live_server.url + f"/admin/hits/hitbatch/{batch.pk}/launch/")
    assert cell(page, "effort-hourly") == "$7.50 at $0.25 a HIT"
    expect(page.locator("#launch-preview")).to_contain_text("$0.25")
    shot(page, "4-launch-preview")
    page.click("input[type=submit][value^='Launch 1 HITs']")
    expect(page.locator(".messagelist")).to_contain_text("Launching Shapes, first round")
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN and batch.reward == Decimal("0.25")
    link = page.locator("a[target=_blank] code").inner_text()
    assert link == f"{live_server.url}/market/b/{batch.uid}/"
    shot(page, "5-batch-open")

    # 3. A worker arrives by the link, returns the HIT, takes one again, selects all, submits.
    worker = browser.new_context(viewport={"width": 1280, "height": 900})
    worker.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    wpage = worker.new_page()
    wpage.goto(link)
    expect(wpage.locator(".meta")).to_contain_text("US$0.25 per task · 60 minutes allowed")
    wpage.fill("#worker_id", "WALKTHROUGH-WORKER-1")
    wpage.click("button[type=submit]")
    expect(wpage.locator(".task:not([hidden]) .tile")).to_have_count(PER_CLASS)
    wpage.click("a.js-return")
    expect(wpage.locator("h1")).to_have_text("Return this task?")
    wpage.click("#return-form button[type=submit]")
    expect(wpage.locator("h1")).to_contain_text("Shapes, first round")
    assert Assignment.objects.get().status == "Returned"
    wpage.click("button[type=submit]")  # "Start a task" again: the same HIT, a new assignment
    for task in range(3):
        visible = wpage.locator(".task:not([hidden])")
        visible.locator(".js-all").click()
        expect(visible.locator(".js-selected")).to_have_text(str(PER_CLASS))
        if task == 0:
            shot(wpage, "6-worker-select-all")
        visible.locator(".js-next").click()
    expect(wpage.locator("h1")).to_have_text("Thank you!")
    expect(wpage.locator("#saved")).to_have_text(
        "Your 36 answers for Shapes, first round are saved (US$0.25 for this task)."
    )
    expect(wpage.locator("#no-more")).to_be_visible()
    expect(wpage.locator("header")).to_contain_text("You are WALKTHROUGH-WORKER-1")
    wpage.click("#copy-code")
    expect(wpage.locator("#copy-code")).to_have_text("Copied")
    assert wpage.evaluate("navigator.clipboard.readText()") == "SHAPES-DONE-7"
    shot(wpage, "7-worker-thanks")
    statuses = sorted(Assignment.objects.values_list("status", flat=True))
    assert statuses == ["Returned", "Submitted"]
    assert Vote.objects.counted().filter(answer=1).count() == 36

    # 4. The dashboard counts the votes; 5. the results download has a row per image.
    page.goto(live_server.url + f"/admin/annotation/dataset/{dataset.pk}/dashboard/?kind=select")
    expect(page.locator("#vote-summary")).to_have_text("36 select votes on 36 items from 1 worker.")
    row = page.locator("table tbody tr").last
    expect(row).to_contain_text("36")  # votes; no gold was asked: no gold accuracy, not "nan"
    assert "nan" not in row.inner_text()
    # Bulk-clicked in well under a second a task: flagged, as a person reviewing would want.
    expect(row).to_contain_text("too fast")
    shot(page, "8-dashboard")
    page.goto(live_server.url + f"/admin/hits/hitbatch/{batch.pk}/change/")
    with page.expect_download() as download:
        page.click("#results-items")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert len(rows) == 36 and {r["votes"] for r in rows} == {"1"}
    assert sorted({r["label_class"] for r in rows}) == list(CLASSES)
    researcher.close()
    worker.close()
