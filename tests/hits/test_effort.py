"""The launch preview tells the researcher what a HIT asks of a worker: the judgments the batch
collects (a select task counts its images), minutes per HIT from the kind's measured pace, pay per
hour, and a warning under the minimum hourly pay; costs show even when MTurk cannot be asked."""

from decimal import Decimal

import pytest

from annotation.models import Vote, Worker
from hits.effort import hit_batch_effort

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "r@x", "pw-for-tests-1")
    client.force_login(user)
    return client


def cell(html: str, cell_id: str) -> str:
    return html.split(f'id="{cell_id}">', 1)[1].split("</td>", 1)[0]


def test_a_select_batch_counts_every_image_and_warns_under_minimum_pay(
    admin_client_logged, make_dataset, make_batch, settings
):
    settings.MIN_HOURLY_PAY = 7.25
    # 60 items of 5 classes; 2 tasks per HIT, each shows up to 20 images of one class.
    batch = make_batch(
        make_dataset(n=60, k=5),
        kind="select",
        provider="market",
        environment="market",
        items_per_hit=2,
        assignments_per_item=3,
        reward=Decimal("0.05"),
    )
    effort = hit_batch_effort(batch)
    assert effort.judgments == 60 * 3, "every image of every task, once per place"
    # 2 tasks x 25 s + 30 s of instructions = 80 s -> 2 minutes; $0.05 in 2 minutes = $1.50/h.
    assert effort.minutes_per_hit == 2 and effort.hourly == Decimal("1.50")
    assert effort.below_minimum and effort.reward_for_minimum == Decimal("0.25")

    html = admin_client_logged.get(f"/admin/hits/hitbatch/{batch.pk}/launch/").content.decode()
    assert cell(html, "effort-judgments").startswith("180 (")
    assert "about 2 minutes" in cell(html, "effort-minutes")
    assert "typical for this kind" in cell(html, "effort-minutes")
    hourly = cell(html, "effort-hourly")
    assert hourly.startswith("$1.50 at $0.05 a HIT")
    assert "below the minimum of $7.25 an hour: a reward of $0.25 a HIT pays it" in hourly


def test_minutes_follow_what_workers_took(make_dataset, make_batch):
    ds = make_dataset(n=40, k=4)
    batch = make_batch(ds, kind="verify", items_per_hit=20, reward=Decimal("0.50"))
    assert hit_batch_effort(batch).per_problem.measured_from == 0
    worker = Worker.objects.create(id_hash="w" * 64, provider="market")
    Vote.objects.bulk_create(
        Vote(item=item, worker=worker, kind="verify", answer=0, duration_ms=6000)
        for item in ds.items.all()
    )
    effort = hit_batch_effort(batch)
    assert effort.per_problem.measured_from == 40 and effort.per_problem.seconds == 6.0
    # 20 x 6 s + 30 s = 150 s -> 3 minutes; $0.50 in 3 minutes = $10.00 an hour.
    assert effort.minutes_per_hit == 3 and effort.hourly == Decimal("10.00")
    assert not effort.below_minimum


@pytest.mark.django_db(transaction=True)
def test_the_preview_shows_costs_when_mturk_cannot_tell_the_balance(
    admin_client_logged, make_dataset, make_batch, settings
):
    # The sandbox endpoint is a closed local port here: the balance call fails.
    batch = make_batch(make_dataset(n=20), environment="sandbox", reward=Decimal("0.10"))
    html = admin_client_logged.get(f"/admin/hits/hitbatch/{batch.pk}/launch/").content.decode()
    assert 'id="launch-preview"' in html, "the costs are shown"
    assert "<strong>$" in html
    assert cell(html, "balance").startswith("unknown: ")


def test_a_saved_draft_shows_its_plan_on_its_page(admin_client_logged, make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=40, k=4),
        kind="verify",
        provider="market",
        environment="market",
        items_per_hit=20,
        assignments_per_item=3,
        reward=Decimal("0.50"),
    )
    html = admin_client_logged.get(f"/admin/hits/hitbatch/{batch.pk}/change/").content.decode()
    plan = html.split('<div id="plan">', 1)[1].split("</div>", 1)[0]
    # 2 HITs x 3 places; 20 x 3 s + 30 s = 90 s -> 2 minutes; $0.50 in 2 minutes = $15.00/h.
    assert plan.startswith("2 HITs of 20 items · 120 judgments (20 per HIT) · about 2 minutes")
    assert "$15.00 an hour" in plan and "plan-warning" not in plan
    assert "rewards $3.00 + fees $0.00 = <strong>$3.00</strong>" in plan
    add = admin_client_logged.get("/admin/hits/hitbatch/add/").content.decode()
    assert "Save the batch to see its plan" in add


def test_the_form_asks_a_select_batch_for_its_task_size_and_no_other_kind(
    make_dataset, rf, admin_user
):
    from django.contrib import admin

    from hits.admin import HitBatchAdmin
    from hits.models import HitBatch

    model_admin = HitBatchAdmin(HitBatch, admin.site)
    request = rf.get("/admin/hits/hitbatch/add/")
    request.user = admin_user
    form_class = model_admin.get_form(request, None)
    ds = make_dataset(n=20)
    base = {
        "name": "b", "dataset": ds.pk, "provider": "market", "environment": "market",
        "reward": "0.05", "assignments_per_item": 3, "items_per_hit": 2, "gold_rate": 0,
        "item_selection": "all", "lifetime_seconds": 3600, "assignment_duration_seconds": 600,
        "auto_approval_delay_seconds": 3600, "qualification_preset": "none",
        "bonus_budget": "0", "params": "{}", "qualification_params": "{}",
        "review_rules": "{}", "loop_curation": "{}",
    }  # fmt: skip
    form = form_class(data={**base, "kind": "select", "images_per_task": 12})
    assert form.fields["assignments_per_item"].label == "Votes per item"
    assert form.is_valid(), form.errors
    assert form.save().params == {"group_size": 12}
    wrong = form_class(data={**base, "name": "c", "kind": "verify", "images_per_task": 12})
    assert not wrong.is_valid()
    assert wrong.errors["images_per_task"] == ["Only select batches show tasks of several images."]
