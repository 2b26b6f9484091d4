"""Bonuses against the budget cap: MTurk's fee is per payment (20%, at least a cent each), and
a bonus that would take the batch past its cap is refused before anything is paid."""

from decimal import Decimal

import pytest

from hits.fees import bonus_fee
from hits.models import Bonus, HitBatch
from hits.selectors import hit_batch_spend, hit_batch_stats
from hits.services import assignment_bonus
from tests.hits.test_services import local_batch, submit  # noqa: F401 - fixture

D = Decimal


def test_ten_one_cent_bonuses_pay_ten_minimum_fees_not_a_fifth_of_their_sum():
    batch = HitBatch(provider="mturk", environment="sandbox", reward=D("0.05"))
    assert hit_batch_spend(batch, 0, [D("0.01")] * 10) == D("0.20")
    assert D("0.10") + bonus_fee(D("0.10")) == D("0.12"), "what the total alone would say"


@pytest.mark.django_db
def test_a_bonus_past_the_cap_is_refused_and_nothing_is_paid(local_batch):  # noqa: F811
    batch = local_batch(reward=D("0.10"), assignments_per_item=1)
    HitBatch.objects.filter(pk=batch.pk).update(budget_cap=D("1.00"))
    batch.refresh_from_db()
    hit = batch.hits.order_by("number").first()
    a = submit(hit, "bonus-w1", [{"item": i["item"], "answer": 0} for i in hit.items])
    projected = hit_batch_stats(batch).projected
    assert projected == D("0.20"), "two HITs, one place each, at $0.10"

    assignment_bonus(a, D("0.50"), "Careful work")
    assert hit_batch_stats(batch).projected == D("0.70")
    with pytest.raises(ValueError, match="would pass the budget cap \\$1.00"):
        assignment_bonus(a, D("0.31"), "More careful work")
    assert Bonus.objects.count() == 1
    assignment_bonus(a, D("0.30"), "Exactly what is left")
    assert hit_batch_stats(batch).projected == D("1.00")
