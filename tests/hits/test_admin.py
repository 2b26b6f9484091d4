"""The admin: every hits page names its environment; the launch preview; live launches need the
permission and a confirmation; watch panels; review actions."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from hits.models import Assignment, Hit, HitBatch
from hits.services import hit_batch_launch, market_accept
from hits.submissions import assignment_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@localhost", "pw-for-tests-1")


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw-for-tests-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="hits"))
    user.user_permissions.remove(Permission.objects.get(codename="launch_live"))
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def batches(make_dataset, make_batch, django_capture_on_commit_callbacks):
    ds = make_dataset(n=20)
    local = make_batch(
        ds, name="classroom", provider="market", environment="market", items_per_hit=10
    )
    with django_capture_on_commit_callbacks(execute=True):
        hit_batch_launch(local)
    live = make_batch(ds, name="for real", environment="live", reward=Decimal("0.05"))
    sandbox = make_batch(ds, name="trial", environment="sandbox")
    return {"market": local, "live": live, "sandbox": sandbox}


def test_every_hits_admin_page_shows_its_environment(client, admin_user, batches):
    client.force_login(admin_user)
    local, live = batches["market"], batches["live"]
    hit = local.hits.first()
    a = market_accept(hit, "someone")
    pages = {
        "/admin/hits/": ["LIVE", "SANDBOX", "MARKET"],
        "/admin/hits/hitbatch/": ["LIVE", "SANDBOX", "MARKET"],
        "/admin/hits/hitbatch/?environment__exact=live": ["LIVE"],
        f"/admin/hits/hitbatch/{live.pk}/change/": ["LIVE — real workers, real money"],
        f"/admin/hits/hitbatch/{local.pk}/change/": ["MARKET — built-in marketplace"],
        f"/admin/hits/hitbatch/{live.pk}/delete/": ["LIVE — real workers, real money"],
        f"/admin/hits/hitbatch/{live.pk}/history/": ["LIVE — real workers, real money"],
        "/admin/hits/hit/": ["MARKET"],
        f"/admin/hits/hit/{hit.pk}/change/": ["MARKET — built-in marketplace"],
        "/admin/hits/assignment/": ["MARKET"],
        f"/admin/hits/assignment/{a.pk}/change/": ["MARKET — built-in marketplace"],
        "/admin/hits/bonus/": [],
    }
    for url, expected in pages.items():
        page = client.get(url)
        html = page.content.decode()
        assert page.status_code == 200, url
        assert 'class="hits-env-banner"' in html, url
        for label in expected:
            assert label in html, (url, label)
    only_live = client.get("/admin/hits/hitbatch/?environment__exact=live").content.decode()
    banner = only_live.split('class="hits-env-banner"')[1].split("</div>")[0]
    assert "LIVE" in banner and "SANDBOX" not in banner


def test_launch_preview_page_and_launch(
    client, admin_user, make_dataset, make_batch, django_capture_on_commit_callbacks
):
    batch = make_batch(
        make_dataset(n=40),
        provider="market",
        environment="market",
        items_per_hit=20,
        budget_cap=Decimal("1.00"),
    )
    client.force_login(admin_user)
    page = client.get(f"/admin/hits/hitbatch/{batch.pk}/launch/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="launch-preview"' in html
    assert "<td>2</td>" in html and "<td>6 (3 per HIT" in html and "$0.30" in html
    assert "none (built-in marketplace)" in html
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/admin/hits/hitbatch/{batch.pk}/launch/")
    assert done.status_code == 302
    batch.refresh_from_db()
    assert (
        batch.status == HitBatch.Status.OPEN and batch.hits.exclude(provider_hit_id="").count() == 2
    )


def test_over_budget_preview_refuses_and_offers_no_button(
    client, admin_user, make_dataset, make_batch
):
    batch = make_batch(
        make_dataset(n=40),
        provider="market",
        environment="market",
        items_per_hit=20,
        budget_cap=Decimal("0.10"),
    )
    client.force_login(admin_user)
    html = client.get(f"/admin/hits/hitbatch/{batch.pk}/launch/").content.decode()
    assert 'id="refusal"' in html and "budget cap" in html and 'value="Launch' not in html
    client.post(f"/admin/hits/hitbatch/{batch.pk}/launch/")
    assert not Hit.objects.exists()


def test_live_launch_needs_the_permission(client, staff, batches, settings):
    settings.SITE_URL = "https://annotate.example.org"
    live = batches["live"]
    client.force_login(staff)
    # The preview itself reaches MTurk for the balance; what matters here is the refusal.
    page = client.post(
        f"/admin/hits/hitbatch/{live.pk}/launch/", {"confirm_live": "yes"}, follow=True
    )
    assert "hits.launch_live permission" in page.content.decode()
    live.refresh_from_db()
    assert live.status == HitBatch.Status.DRAFT and not live.hits.exists()


def test_live_launch_needs_the_confirmation(client, admin_user, batches, settings):
    settings.SITE_URL = "https://annotate.example.org"
    live = batches["live"]
    client.force_login(admin_user)
    page = client.post(f"/admin/hits/hitbatch/{live.pk}/launch/", follow=True)
    assert "confirm it explicitly" in page.content.decode()
    assert not live.hits.exists()


def test_watch_panel_shows_progress_bars(client, admin_user, batches):
    local = batches["market"]
    hit = local.hits.order_by("number").first()
    a = market_accept(hit, "worker-1")
    assignment_submit(a, [{"item": e["item"], "answer": 0} for e in hit.items])
    client.force_login(admin_user)
    html = client.get(f"/admin/hits/hitbatch/{local.pk}/change/").content.decode()
    assert "HITs published: 2 / 2" in html
    assert "Votes collected: 10 / 60" in html
    assert "Assignments done: 1 / 6" in html
    assert "width:17%" in html  # 10 of 60 votes
    listing = client.get("/admin/hits/hitbatch/").content.decode()
    assert "10 / 60" in listing


def test_reject_action_with_a_templated_message(
    client, admin_user, batches, django_capture_on_commit_callbacks
):
    local = batches["market"]
    hit = local.hits.order_by("number").first()
    a = market_accept(hit, "worker-2")
    assignment_submit(a, [{"item": e["item"], "answer": 1} for e in hit.items])
    client.force_login(admin_user)
    form = client.post("/admin/hits/assignment/", {"action": "reject", "_selected_action": [a.pk]})
    assert form.status_code == 200 and "{batch}" in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/hits/assignment/",
            {
                "action": "reject",
                "_selected_action": [a.pk],
                "apply": "1",
                "message": "Not this time ({hit}).",
            },
        )
    a.refresh_from_db()
    assert a.status == Assignment.Status.REJECTED and a.feedback == "Not this time (1)."


def test_approve_all_submitted_action(
    client, admin_user, batches, django_capture_on_commit_callbacks
):
    local = batches["market"]
    for hit in local.hits.order_by("number"):
        a = market_accept(hit, "worker-3")
        assignment_submit(a, [{"item": e["item"], "answer": 0} for e in hit.items])
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/hits/hitbatch/",
            {"action": "approve_all_submitted", "_selected_action": [local.pk]},
        )
    assert set(Assignment.objects.values_list("status", flat=True)) == {"Approved"}


def test_the_worker_link_is_a_link_to_the_batch_on_this_sites_port(
    client, admin_user, batches, settings
):
    settings.SITE_URL = "http://127.0.0.1:8767"
    local = batches["market"]
    client.force_login(admin_user)
    html = client.get(f"/admin/hits/hitbatch/{local.pk}/change/").content.decode()
    url = f"http://127.0.0.1:8767/market/b/{local.uid}/"
    assert f'<a href="{url}" target="_blank" rel="noopener"><code>{url}</code></a>' in html
