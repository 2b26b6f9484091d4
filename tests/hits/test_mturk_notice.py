"""An MTurk batch's pages say that Amazon closed MTurk, and its launch preview says when
submitted work is approved and paid by itself; a marketplace batch's pages say neither."""

import pytest

from hits.templatetags.hits_admin import days

pytestmark = pytest.mark.django_db


def test_mturk_pages_carry_the_notice_and_the_auto_approval(admin_client, make_dataset, make_batch):
    ds = make_dataset(n=20)
    mturk = make_batch(ds, environment="sandbox", auto_approval_delay_seconds=3 * 24 * 3600)
    market = make_batch(ds, provider="market", environment="market")
    for url in (
        f"/admin/hits/hitbatch/{mturk.pk}/launch/",
        f"/admin/hits/hitbatch/{mturk.pk}/change/",
    ):
        html = admin_client.get(url).content.decode()
        assert 'id="mturk-notice"' in html, url
        assert "closed Mechanical Turk to new customers on 2026-07-30" in html
    launch = admin_client.get(f"/admin/hits/hitbatch/{mturk.pk}/launch/").content.decode()
    assert "approved and paid automatically 3 days after it is submitted" in launch
    for url in (
        f"/admin/hits/hitbatch/{market.pk}/launch/",
        f"/admin/hits/hitbatch/{market.pk}/change/",
    ):
        html = admin_client.get(url).content.decode()
        assert 'id="mturk-notice"' not in html and 'id="auto-approval"' not in html


def test_days_reads_as_a_person_would_say_it():
    assert days(3 * 86400) == "3 days"
    assert days(86400) == "1 day"
    assert days(36 * 3600) == "1.5 days"
    assert days(3600) == "1 hour" and days(7200) == "2 hours"
