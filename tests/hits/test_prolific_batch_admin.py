"""A Prolific batch in the admin: spend with Prolific's fees, pause / resume / stop of its study,
the submissions only one side has after a sync, and the demo's study on the stand-in."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from annotation.models import Worker
from annotation.worker_ids import worker_id_hash
from hits.models import Assignment, Bonus, Hit, HitBatch
from hits.prolific_standin import views as standin
from hits.selectors import hit_batch_stats
from hits.services import hit_batch_launch, hit_batch_sync

from . import test_prolific
from .test_prolific import prolific_batch, studies_named

pytestmark = pytest.mark.django_db(transaction=True)
prolific = test_prolific.prolific


def paid_places(batch: HitBatch, approved: int, bonus: Decimal | None = None) -> None:
    """One HIT of three places, ``approved`` of them approved, an optional paid bonus."""
    hit = Hit.objects.create(
        batch=batch, number=1, items=[], max_assignments=3, status=Hit.Status.ASSIGNABLE
    )
    for n in range(approved):
        worker = Worker.objects.create(provider=batch.provider, id_hash=f"w{n}")
        a = Assignment.objects.create(
            hit=hit, provider_assignment_id=f"a{n}", worker=worker, status="Approved"
        )
        if bonus and n == 0:
            Bonus.objects.create(
                assignment=a, amount=bonus, reason="thanks", token="t0", paid_at=timezone.now()
            )


def test_prolific_batch_stats_spend_includes_service_fee_and_vat(
    settings, make_dataset, make_batch
):
    settings.PROLIFIC_SERVICE_FEE_RATE = 0.333
    settings.PROLIFIC_VAT_RATE = 0.20
    batch = prolific_batch(make_dataset, make_batch, assignments_per_item=3)
    paid_places(batch, approved=2, bonus=Decimal("0.75"))
    stats = hit_batch_stats(batch)
    # Spent: rewards 2 x $0.50 = $1.00, fee 33.3% = $0.333 -> $0.33; bonus $0.75, its fee
    # $0.24975 -> $0.25; VAT 20% of ($0.33 + $0.25) = $0.116 -> $0.12. Total $2.45.
    assert stats.spent == Decimal("2.45")
    # Projected: 3 places = $1.50, fee $0.4995 -> $0.50; the same bonus and fee ($1.00);
    # VAT 20% of ($0.50 + $0.25) = $0.15. Total $3.15.
    assert stats.projected == Decimal("3.15")


def test_prolific_fees_are_not_charged_on_a_market_batch(make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=20), provider="market", environment="market", reward=Decimal("0.50")
    )
    paid_places(batch, approved=2, bonus=Decimal("0.75"))
    stats = hit_batch_stats(batch)
    assert stats.spent == Decimal("1.75")  # 2 x $0.50 + $0.75, no fee, no VAT
    assert stats.projected == Decimal("2.25")


@pytest.fixture
def admin_client(db) -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw")
    client = Client()
    client.force_login(user)
    return client


def run_action(client: Client, action: str, *batches: HitBatch):
    return client.post(
        "/admin/hits/hitbatch/",
        {"action": action, "_selected_action": [b.pk for b in batches]},
        follow=True,
    )


def test_prolific_study_pause_resume_stop_from_the_admin(
    prolific, admin_client, make_dataset, make_batch
):
    batch = prolific_batch(make_dataset, make_batch)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    study = standin.STATE["studies"][batch.hit_type_id]
    assert study["status"] == "ACTIVE"

    page = run_action(admin_client, "prolific_pause", batch)
    assert page.status_code == 200
    assert "study paused at Prolific" in page.content.decode()
    assert study["status"] == "PAUSED"
    run_action(admin_client, "prolific_resume", batch)
    assert study["status"] == "ACTIVE"
    page = run_action(admin_client, "prolific_stop", batch)
    assert "study stopped at Prolific" in page.content.decode()
    assert study["status"] == "COMPLETED"


def test_prolific_study_actions_refuse_other_providers(
    prolific, admin_client, make_dataset, make_batch
):
    market = make_batch(make_dataset(n=20), provider="market", environment="market")
    hit_batch_launch(market)
    market.refresh_from_db()
    draft = prolific_batch(make_dataset, make_batch)  # no study at Prolific yet
    before = list(HitBatch.objects.order_by("pk").values())
    page = run_action(admin_client, "prolific_pause", market, draft)
    text = page.content.decode()
    assert page.status_code == 200
    assert "not paused: only a Prolific batch has a study to pause" in text
    assert "not paused: batch" in text and "has no study at Prolific yet" in text
    assert list(HitBatch.objects.order_by("pk").values()) == before
    assert standin.STATE["studies"] == {}


def test_prolific_batch_page_lists_submissions_only_one_side_has(
    prolific, admin_client, make_dataset, make_batch
):
    batch = prolific_batch(make_dataset, make_batch)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    page = admin_client.get(f"/admin/hits/hitbatch/{batch.pk}/change/")
    assert "Not synced yet." in page.content.decode()
    # Prolific has a finished submission that never reached us ...
    theirs = "ab" * 12
    standin.STATE["submissions"][theirs] = {
        "id": theirs,
        "study_id": batch.hit_type_id,
        "participant_id": "5f0a1b2c3d4e5f6a7b8c9d09",
        "status": "AWAITING REVIEW",
        "started_at": None,
        "completed_at": None,
    }
    # ... and we have submitted work Prolific does not list.
    worker = Worker.objects.create(
        provider="prolific", id_hash=worker_id_hash("5f0a1b2c3d4e5f6a7b8c9d08")
    )
    ours = Assignment.objects.create(
        hit=batch.hits.get(), provider_assignment_id="cd" * 12, worker=worker, status="Submitted"
    )
    hit_batch_sync(batch)
    ours.refresh_from_db()
    assert ours.provider_missing
    text = admin_client.get(f"/admin/hits/hitbatch/{batch.pk}/change/").content.decode()
    section = re.search(r"only one side has.*?</div>\s*</div>", text, re.S | re.I)
    assert section, text[:2000]
    assert "Submissions at Prolific we do not have (1)" in text
    assert f"<code>{theirs}</code>" in text
    assert "Our assignments missing at Prolific (1)" in text
    assert f"<code>{ours.provider_assignment_id}</code>" in text


def test_bootstrap_demo_prolific_launches_a_study_on_the_standin(prolific):
    out = io.StringIO()
    call_command("bootstrap_demo", prolific=True, stdout=out)
    batch = HitBatch.objects.get(provider="prolific")
    [study] = studies_named(batch)
    assert study["status"] == "ACTIVE"
    # 60 items, 20 per HIT, 3 participants per item: 3 HITs x 3 places.
    assert study["total_available_places"] == 9
    url = f"{prolific}/prolific-standin/studies/{batch.hit_type_id}/take-part/"
    assert f"Prolific study URL: {url}?participant=" in out.getvalue()
    # The default demo is unchanged: its four marketplace batches are still there.
    assert HitBatch.objects.filter(provider="market").count() == 4


def test_bootstrap_demo_prolific_needs_the_standin(settings):
    settings.LOCALTURK_ENABLED = False
    with pytest.raises(CommandError, match="LOCALTURK_ENABLED"):
        call_command("bootstrap_demo", prolific=True, stdout=io.StringIO())
    assert not HitBatch.objects.exists()
