"""The provider contract: one suite, run against MTurk (through boto3 and the local endpoint) and
the built-in marketplace. Workers do the HITs on each provider's own worker side, over HTTP."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from hits.exceptions import HitsError, ProviderError
from hits.localturk.models import Bonus as TurkBonus
from hits.localturk.models import Hit as TurkHit
from hits.models import Assignment, Hit, HitBatch
from hits.providers import provider_for
from hits.services import (
    assignment_block_worker,
    hit_add_assignments,
    hit_batch_plan,
    hit_batch_worker_lists,
    hit_delete,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Harness:
    def __init__(self, kind, batch, side):
        self.kind = kind
        self.batch = batch
        self.side = side
        self.provider = provider_for(batch)

    def publish(self) -> list[Hit]:
        hit_batch_plan(self.batch)
        self.batch.hit_type_id = self.provider.ensure_hit_type(self.batch)
        for hit in self.batch.hits.order_by("number"):
            hit.hit_type_id = self.batch.hit_type_id
            rec = self.provider.create_hit(self.batch, hit)
            hit.provider_hit_id, hit.status, hit.expires_at = rec.hit_id, rec.status, rec.expires_at
            hit.save()
        self.batch.status = HitBatch.Status.OPEN
        self.batch.save()
        return list(self.batch.hits.order_by("number"))

    def work(self, hit: Hit, worker_id: str, answer: int = 0) -> Assignment:
        browser = self.side.browser(worker_id)
        if self.kind == "mturk":
            data = self.side.do_hit(browser, hit.provider_hit_id, answer)
        else:
            data = self.side.do_hit(browser, hit, answer)
        return Assignment.objects.get(hit=hit, provider_assignment_id=data["assignmentId"])

    def can_accept(self, hit: Hit, worker_id: str) -> bool:
        browser = self.side.browser(worker_id)
        if self.kind == "mturk":
            page = self.side.accept(browser, hit.provider_hit_id)
            return page.status == 200 and "/worker/assignments/" in page.url
        page = self.side.accept(browser, hit)
        return page.status == 200 and "/task/" in page.url


@pytest.fixture(params=["mturk", "market"])
def harness(request, localturk, market, make_dataset, make_batch, settings):
    settings.HITS_PAGE_SIZE = 2  # every listing below spans several pages
    env = "sandbox" if request.param == "mturk" else "market"
    batch = make_batch(
        make_dataset(n=6),
        provider=request.param,
        environment=env,
        items_per_hit=3,
        assignments_per_item=3,
    )
    return Harness(request.param, batch, localturk if request.param == "mturk" else market)


def test_create_hit_twice_gives_one_hit(harness):
    hits = harness.publish()
    again = harness.provider.create_hit(harness.batch, hits[0])
    assert again.hit_id == hits[0].provider_hit_id
    listed = [
        h
        for h in harness.provider.list_hits()
        if h.annotation.split(":")[1] == harness.batch.uid.hex
    ]
    assert sorted(h.hit_id for h in listed) == sorted(h.provider_hit_id for h in hits)
    if harness.kind == "mturk":
        assert TurkHit.objects.count() == 2


def test_get_hit_reports_state_and_counts(harness):
    hit = harness.publish()[0]
    rec = harness.provider.get_hit(hit)
    assert (rec.status, rec.max_assignments, rec.available) == ("Assignable", 3, 3)
    assert rec.expires_at > timezone.now()
    harness.work(hit, "AWORKERA")
    rec = harness.provider.get_hit(hit)
    assert (rec.available, rec.completed) == (2, 1)


def test_list_assignments_returns_every_page_with_the_answers(harness):
    hit = harness.publish()[0]
    answers = {}
    for n, wid in enumerate(["AWORKERA", "AWORKERB", "AWORKERC"]):
        a = harness.work(hit, wid, answer=n)
        answers[a.provider_assignment_id] = n
    records = harness.provider.list_assignments(hit)
    assert sorted(r.assignment_id for r in records) == sorted(answers)
    for r in records:
        assert r.status == "Submitted" and r.submitted_at is not None
        posted = json.loads(r.answer_fields["answers"])
        assert {a["answer"] for a in posted} == {answers[r.assignment_id]}
        assert len(posted) == 3
    assert harness.provider.get_hit(hit).status == "Reviewable"


def test_review_approve_reject_and_their_idempotence(harness):
    hit = harness.publish()[0]
    good, bad = harness.work(hit, "AWORKERA"), harness.work(hit, "AWORKERB")
    harness.provider.approve(good, "Thanks")
    good.status = "Approved"
    good.save()
    harness.provider.approve(good)  # a retry finds it done
    with pytest.raises(ProviderError):
        harness.provider.reject(bad, "   ")
    harness.provider.reject(bad, "Most known answers were wrong.")
    bad.status = "Rejected"
    bad.save()
    harness.provider.reject(bad, "again")
    with pytest.raises(ProviderError):
        harness.provider.approve(bad)
    statuses = {r.assignment_id: r.status for r in harness.provider.list_assignments(hit)}
    if harness.kind == "mturk":
        assert statuses == {
            good.provider_assignment_id: "Approved",
            bad.provider_assignment_id: "Rejected",
        }


def test_bonus_is_paid_once_per_token(harness):
    hit = harness.publish()[0]
    a = harness.work(hit, "AWORKERA")
    harness.provider.send_bonus(a, Decimal("0.25"), "Careful work", "tok-1")
    harness.provider.send_bonus(a, Decimal("0.25"), "Careful work", "tok-1")
    with pytest.raises(ProviderError):
        harness.provider.send_bonus(a, Decimal("-1"), "no", "tok-2")
    if harness.kind == "mturk":
        assert TurkBonus.objects.count() == 1


def test_blocked_worker_cannot_take_more_work(harness):
    first, second = harness.publish()
    a = harness.work(first, "AWORKERA")
    # Through the service a researcher's block goes through: the provider call, then our record.
    assignment_block_worker(a, reason="Copied answers")
    assert not harness.can_accept(second, "AWORKERA")
    assert harness.can_accept(second, "AWORKERB")


def test_expire_then_extend(harness):
    hit = harness.publish()[0]
    now = timezone.now()
    harness.provider.set_expiration(hit, now)
    hit.expires_at = now
    hit.save()
    rec = harness.provider.get_hit(hit)
    assert rec.available == 0 and rec.status != "Assignable"
    assert not harness.can_accept(hit, "AWORKERA")
    later = now + timedelta(hours=1)
    harness.provider.set_expiration(hit, later)
    hit.expires_at = later
    hit.save()
    assert harness.provider.get_hit(hit).status == "Assignable"
    assert harness.can_accept(hit, "AWORKERA")


def test_additional_assignments(harness):
    hit = harness.publish()[0]
    hit_add_assignments(hit, 2)
    assert harness.provider.get_hit(hit).max_assignments == 5
    assert Hit.objects.get(pk=hit.pk).max_assignments == 5


def test_delete_only_once_reviewed(harness):
    hit = harness.publish()[0]
    a = harness.work(hit, "AWORKERA")
    now = timezone.now()
    harness.provider.set_expiration(hit, now)
    hit.expires_at = now
    hit.save()
    with pytest.raises(ProviderError):
        hit_delete(hit)
    harness.provider.approve(a)
    a.status = "Approved"
    a.save()
    hit_delete(hit)
    assert Hit.objects.get(pk=hit.pk).status == "Disposed"
    assert hit.provider_hit_id not in {
        h.hit_id for h in harness.provider.list_hits() if h.status != "Disposed"
    }


def test_failures_raise_provider_error(harness):
    hit = harness.publish()[0]
    ghost = Hit(batch=harness.batch, number=99, items=[], max_assignments=1)
    with pytest.raises(ProviderError):
        harness.provider.get_hit(ghost)
    with pytest.raises(ProviderError):
        harness.provider.add_assignments(ghost, 1, "t")
    assert harness.provider.get_hit(hit).hit_id == hit.provider_hit_id


def test_balance(harness):
    balance = harness.provider.balance()
    if harness.kind == "mturk":
        assert balance == Decimal("10000.00")
    else:
        assert balance is None


def test_allow_and_block_lists(harness):
    counts = hit_batch_worker_lists(
        harness.batch, allow=["AINVITED", "ABANNED", ""], block=["ABANNED"]
    )
    assert counts == {"allow": 2, "block": 1}
    assert "AINVITED" not in json.dumps(harness.batch.qualification_params)
    hit = harness.publish()[0]
    assert harness.can_accept(hit, "AINVITED")
    assert not harness.can_accept(hit, "ABANNED")
    assert not harness.can_accept(hit, "ASTRANGER")
    with pytest.raises(HitsError):
        hit_batch_worker_lists(harness.batch, allow=["ALATE"])
