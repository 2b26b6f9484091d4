"""The main command's promise, in a real browser: the printed credentials log in to /admin/ and the
demo dataset shows with its images."""

import io
import os
import re

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def test_admin_login_with_printed_credentials_shows_demo_images(live_server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are not async.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    user, password = re.search(r"superuser: (\S+)\s+password: (\S+)", out.getvalue()).groups()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", user)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.get_by_role("link", name="Datasets", exact=True).first.click()
        page.click("text=digits-demo")
        images = page.locator("img[src^='/i/']")
        expect(images).to_have_count(24)
        images.last.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => [...document.querySelectorAll(\"img[src^='/i/']\")].every(i => i.complete)"
        )
        widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(w == 64 for w in widths), widths
        assert "items: 1797" in page.content()
        os.makedirs("test-artifacts/screenshots", exist_ok=True)
        page.screenshot(path="test-artifacts/screenshots/admin-demo-dataset.png", full_page=True)
        browser.close()
