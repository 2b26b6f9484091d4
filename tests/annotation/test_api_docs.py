"""The API's documentation: Swagger UI served by this site (no CDN), behind login in
production, linked from the admin; the browsable API offers a way to log in."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_swagger_ui_is_served_from_this_site(client, settings):
    settings.API_SCHEMA_PUBLIC = True  # the demo's setting
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and "swagger-ui" in html
    assert "/api/schema/" in html, "the UI reads our own schema"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle" in a for a in assets)
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], "no CDN"


def test_in_production_the_docs_need_a_staff_login(
    client, admin_client, django_user_model, settings
):
    settings.API_SCHEMA_PUBLIC = False
    anonymous = client.get("/api/docs/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/api/docs/"
    django_user_model.objects.create_user("worker", password="pw-for-tests-1")
    client.login(username="worker", password="pw-for-tests-1")
    refused = client.get("/api/docs/")
    assert refused.status_code == 403 and "for staff only" in refused.content.decode()
    assert admin_client.get("/api/docs/").status_code == 200


def test_the_admin_links_to_the_docs_and_the_browsable_api_to_a_login(client, admin_client):
    home = admin_client.get("/admin/").content.decode()
    assert '<a href="/api/docs/" id="api-docs-link">API docs</a>' in home
    browsable = client.get("/api/", HTTP_ACCEPT="text/html")
    assert browsable.status_code in (401, 403)
    assert "/api-auth/login/?next=/api/" in browsable.content.decode()
