"""Swagger UI works in a real browser on a machine without internet: its files come from this
site, and it lists the API's operations from our schema."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_lists_the_api_offline(live_server, browser, settings):
    from playwright.sync_api import expect

    settings.API_SCHEMA_PUBLIC = True
    page = browser.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((live_server.url, "data:")) else outside.append(r.url),
    )
    page.goto(live_server.url + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Crowd annotation API")
    expect(page.get_by_text("/api/datasets/", exact=True).first).to_be_visible()
    assert outside == [], "every file the page loads comes from this site"
    page.close()
