"""What a marketplace worker reads and can do on the pages: a Return button on the task page
that asks first, rewards with their currency and time in minutes."""

import re
from html import unescape

import pytest
from django.test import Client

from hits.models import Assignment
from tests.hits.test_market import open_batch, task_params  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def test_return_from_the_task_page_asks_first_and_frees_the_place(client, open_batch):  # noqa: F811
    batch = open_batch(n=10, assignments_per_item=1)
    hit = batch.hits.get()
    client.post("/market/me/", {"worker_id": "changed-my-mind"})
    _, params = task_params(client.post(f"/market/hits/{hit.pk}/accept/"))
    page = client.get(f"/task/{hit.pk}/", params).content.decode()
    link = re.search(r'<a class="btn js-return" href="([^"]+)">Return this HIT</a>', page)
    assert link, "the working page offers Return"

    # Asking is not returning: the confirmation links back to the same task page.
    confirm = client.get(link.group(1))
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "Return this task?" in text
    back = unescape(re.search(r'<a href="([^"]+)">No, go back to it</a>', text).group(1))
    assert client.get(back).status_code == 200
    assert Assignment.objects.get().status == "Accepted"

    # Another worker can neither see nor return it; a full HIT refuses them.
    other = Client()
    other.post("/market/me/", {"worker_id": "someone-else"})
    assert other.post(link.group(1)).status_code == 404
    assert other.post(f"/market/hits/{hit.pk}/accept/").status_code == 409

    done = client.post(link.group(1))
    assert done.status_code == 302 and done["Location"] == f"/market/b/{batch.uid}/"
    assert Assignment.objects.get().status == "Returned"
    assert client.get(link.group(1)).status_code == 410, "returned once, not twice"
    # The place is open again at once, not when the hour runs out.
    task_params(other.post(f"/market/hits/{hit.pk}/accept/"))


def test_a_preview_and_other_providers_pages_have_no_return_button(client, open_batch):  # noqa: F811
    batch = open_batch(n=10)
    hit = batch.hits.get()
    preview = client.get(f"/task/{hit.pk}/", {"hitId": hit.provider_hit_id})
    assert preview.status_code == 200 and b"js-return" not in preview.content


def test_rewards_show_a_currency_and_time_in_minutes(client, open_batch):  # noqa: F811
    batch = open_batch(n=10, reward="0.05", assignment_duration_seconds=3600)
    client.post("/market/me/", {"worker_id": "reader-1"})
    for url in ("/market/", f"/market/b/{batch.uid}/"):
        text = client.get(url).content.decode()
        assert "US$0.05 per task · 60 minutes allowed for each" in text, url
        assert " s allowed" not in text
