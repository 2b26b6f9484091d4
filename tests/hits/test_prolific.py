"""Prolific through its offline stand-in, over real HTTP: a study launched from a batch,
participants who arrive by its URL, the sync that matches their submissions, review, bonus,
a returned place re-filled, a crashed launch re-run, throttling and server errors, costs."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest

from annotation.models import Vote, Worker
from annotation.worker_ids import worker_id_hash
from hits.exceptions import LaunchRefused
from hits.models import Assignment, Bonus, Hit, HitBatch
from hits.prolific_standin import views as standin
from hits.providers.prolific import ProlificProvider, completion_code, screened_out_code
from hits.services import (
    assignment_approve,
    assignment_bonus,
    assignment_reject,
    hit_batch_launch,
    hit_batch_preview,
    hit_batch_publish,
    hit_batch_sync,
    prolific_study_action,
)

from .conftest import Browser, hit_answers, simulate_worker_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prolific(live_server, settings):
    """The provider talks to the stand-in on the live server; completion goes there too."""
    standin.standin_reset()
    settings.SITE_URL = live_server.url
    settings.PROLIFIC_API_URL = f"{live_server.url}/prolific-standin/api/v1/"
    settings.PROLIFIC_API_TOKEN = settings.PROLIFIC_STANDIN_TOKEN = "standin-token-for-tests"
    settings.PROLIFIC_COMPLETION_URL = f"{live_server.url}/prolific-standin/submissions/complete"
    settings.PROLIFIC_STANDIN_FAULTS = []
    yield live_server.url
    standin.standin_reset()


def prolific_batch(make_dataset, make_batch, **fields) -> HitBatch:
    values = {
        "provider": "prolific",
        "environment": "prolific",
        "items_per_hit": 20,
        "assignments_per_item": 3,
        "reward": Decimal("0.50"),
        "params": {"estimated_minutes": 2},
    }
    values.update(fields)
    return make_batch(make_dataset(n=20), **values)


def take_part(base: str, batch: HitBatch, pid: str) -> tuple[Browser, object]:
    """A participant opens the study on Prolific and follows it to our task page."""
    browser = Browser(base)
    page = browser.get(
        f"/prolific-standin/studies/{batch.hit_type_id}/take-part/?participant={pid}"
    )
    return browser, page


def studies_named(batch: HitBatch) -> list[dict]:
    return [s for s in standin.STATE["studies"].values() if s["internal_name"] == batch.uid.hex]


def test_a_study_end_to_end_through_the_standin(prolific, make_dataset, make_batch):
    batch = prolific_batch(make_dataset, make_batch)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN, batch.error
    [study] = studies_named(batch)
    assert study["id"] == batch.hit_type_id and study["status"] == "ACTIVE"
    assert study["total_available_places"] == 3 and study["reward"] == 50
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in study["external_study_url"]
    hit = batch.hits.get()

    done = {}
    for pid in ["5f0a1b2c3d4e5f6a7b8c9d01", "5f0a1b2c3d4e5f6a7b8c9d02"]:
        browser, page = take_part(prolific, batch, pid)
        assert page.status == 200 and "/task/" in page.url, page.text[:300]
        data = simulate_worker_submit(browser, page.url, hit_answers(hit))
        assert data["done_page"].url.endswith(f"?cc={completion_code(batch)}")
        assert "AWAITING REVIEW" in data["done_page"].text
        done[pid] = data["assignmentId"]

    # The third participant starts, then returns the study at Prolific: the place re-fills.
    quitter, page = take_part(prolific, batch, "5f0a1b2c3d4e5f6a7b8c9d03")
    assert "/task/" in page.url
    session = re.search(r"assignmentId=([0-9a-f]+)", page.url).group(1)
    assert quitter.post(f"/prolific-standin/submissions/{session}/return/", {}).status == 200
    # Until a sync frees it, our HIT holds the place: the next one is sent back screened out.
    late, page = take_part(prolific, batch, "5f0a1b2c3d4e5f6a7b8c9d04")
    assert page.url.endswith(f"?cc={screened_out_code(batch)}") and "SCREENED OUT" in page.text
    hit_batch_sync(batch)
    assert Assignment.objects.get(provider_assignment_id=session).status == "Returned"
    late, page = take_part(prolific, batch, "5f0a1b2c3d4e5f6a7b8c9d05")
    assert "/task/" in page.url, page.text[:300]
    data = simulate_worker_submit(late, page.url, hit_answers(hit))
    assert data["done_page"].url.endswith(f"?cc={completion_code(batch)}")

    result = hit_batch_sync(batch)
    assert result.new_assignments == 0
    batch.refresh_from_db()
    assert batch.progress["prolific_only_at_prolific"] == []
    assert batch.progress["prolific_only_here"] == []
    submitted = Assignment.objects.filter(hit__batch=batch, status="Submitted")
    assert submitted.count() == 3

    first, second = (Assignment.objects.get(provider_assignment_id=done[p]) for p in done)
    assignment_approve(first)
    assignment_bonus(first, Decimal("0.75"), "Thorough work")
    assignment_reject(second, message="LOW_EFFORT: every answer was the same.")
    subs = standin.STATE["submissions"]
    assert subs[first.provider_assignment_id]["status"] == "APPROVED"
    assert subs[second.provider_assignment_id]["status"] == "REJECTED"
    assert subs[second.provider_assignment_id]["rejection_category"] == "LOW_EFFORT"
    assert standin.STATE["paid"] == [
        {"participant_id": "5f0a1b2c3d4e5f6a7b8c9d01", "amount": "0.75"}
    ]
    assert Bonus.objects.get().paid_at is not None

    hit_batch_sync(batch)  # a second sync changes nothing and stores no vote twice
    votes = Vote.objects.filter(assignment__hit__batch=batch)
    per_assignment = Counter(votes.values_list("assignment_id", flat=True))
    assert sorted(per_assignment.values()) == [20, 20, 20]
    triples = list(votes.values_list("assignment_id", "item_id"))
    assert len(triples) == len(set(triples))
    workers = Worker.objects.filter(provider="prolific")
    assert workers.count() == 4
    for pid in ["5f0a1b2c3d4e5f6a7b8c9d01", "5f0a1b2c3d4e5f6a7b8c9d05"]:
        assert workers.filter(id_hash=worker_id_hash(pid)).exists()
    stored = " ".join(f"{w.id_hash} {w.id_sha1}" for w in workers)
    stored += " ".join(a.raw_answer + a.provider_assignment_id for a in Assignment.objects.all())
    assert "5f0a1b2c3d4e5f6a7b8c9d0" not in stored


def test_a_submission_prolific_has_but_we_do_not_is_shown(prolific, make_dataset, make_batch):
    batch = prolific_batch(make_dataset, make_batch)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    # A participant who started at Prolific but never reached our page.
    browser = Browser(prolific)
    browser.opener.addheaders = []
    sub = {
        "id": "ab" * 12,
        "study_id": batch.hit_type_id,
        "participant_id": "5f0a1b2c3d4e5f6a7b8c9d09",
        "status": "AWAITING REVIEW",
        "started_at": None,
        "completed_at": None,
    }
    standin.STATE["submissions"][sub["id"]] = sub
    hit_batch_sync(batch)
    batch.refresh_from_db()
    assert batch.progress["prolific_only_at_prolific"] == [sub["id"]]
    assert Assignment.objects.count() == 0 and Worker.objects.count() == 0


def test_a_crash_after_the_study_is_created_leaves_one_study(
    prolific, make_dataset, make_batch, monkeypatch
):
    batch = prolific_batch(make_dataset, make_batch)
    real = ProlificProvider.ensure_hit_type

    def crash(self, b):
        real(self, b)
        raise SystemExit("worker killed")

    monkeypatch.setattr(ProlificProvider, "ensure_hit_type", crash)
    with pytest.raises(SystemExit):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.LAUNCHING and not batch.hit_type_id
    assert len(studies_named(batch)) == 1
    monkeypatch.setattr(ProlificProvider, "ensure_hit_type", real)
    hit_batch_publish(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN
    [study] = studies_named(batch)
    assert study["id"] == batch.hit_type_id and study["status"] == "ACTIVE"
    assert len(standin.STATE["studies"]) == 1


def test_throttling_and_server_errors_are_retried_and_lose_nothing(
    prolific, settings, make_dataset, make_batch
):
    settings.PROLIFIC_STANDIN_FAULTS = [429, 500, 503, 429]
    batch = prolific_batch(make_dataset, make_batch)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN, batch.error
    assert standin.STATE["faults_used"] == 4
    assert len(studies_named(batch)) == 1
    browser, page = take_part(prolific, batch, "5f0a1b2c3d4e5f6a7b8c9d01")
    data = simulate_worker_submit(browser, page.url, hit_answers(batch.hits.get()))
    settings.PROLIFIC_STANDIN_FAULTS = [*settings.PROLIFIC_STANDIN_FAULTS, 500, 429, 500]
    a = Assignment.objects.get(provider_assignment_id=data["assignmentId"])
    assignment_approve(a)
    assert standin.STATE["faults_used"] == 7
    assert standin.STATE["submissions"][a.provider_assignment_id]["status"] == "APPROVED"
    prolific_study_action(batch, "pause")
    assert standin.STATE["studies"][batch.hit_type_id]["status"] == "PAUSED"


def test_a_reward_under_the_minimum_hourly_rate_is_refused(prolific, make_dataset, make_batch):
    batch = prolific_batch(
        make_dataset, make_batch, reward=Decimal("0.10"), params={"estimated_minutes": 5}
    )
    with pytest.raises(LaunchRefused, match=r"at least \$8.* pays \$1.20 an hour"):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.DRAFT and not Hit.objects.exists()
    assert standin.STATE["studies"] == {}


def test_cost_preview_matches_a_hand_computation(prolific, settings, make_dataset, make_batch):
    settings.PROLIFIC_SERVICE_FEE_RATE = 0.333
    settings.PROLIFIC_VAT_RATE = 0.20
    batch = prolific_batch(
        make_dataset, make_batch, assignments_per_item=3, bonus_budget=Decimal("1.00")
    )
    preview = hit_batch_preview(batch)
    # 1 HIT x 3 places at $0.50 = $1.50; fee 33.3% = $0.4995 -> $0.50; bonus $1.00, its fee
    # $0.333 -> $0.33; VAT 20% of ($0.50 + $0.33) = $0.166 -> $0.17.
    assert preview.assignments == 3
    assert (preview.reward_total, preview.fee_total) == (Decimal("1.50"), Decimal("0.50"))
    assert (preview.bonus_fee_total, preview.vat_total) == (Decimal("0.33"), Decimal("0.17"))
    assert preview.total == Decimal("1.50") + Decimal("0.50") + Decimal("1.00") + Decimal(
        "0.33"
    ) + Decimal("0.17")
    assert preview.total == Decimal("3.50")
