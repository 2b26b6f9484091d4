"""What the marketplaces charge: MTurk's commission, Prolific's service fee and VAT on it.
Plain functions, no Django."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
BASE_RATE = Decimal("0.20")
# HITs with 10 or more assignments pay another 20%; Masters requirements another 5%.
MANY_ASSIGNMENTS_RATE = Decimal("0.20")
MANY_ASSIGNMENTS_FROM = 10
MASTERS_RATE = Decimal("0.05")


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def commission_rate(*, max_assignments: int, masters: bool) -> Decimal:
    """The fraction of each reward MTurk adds as its fee."""
    rate = BASE_RATE
    if max_assignments >= MANY_ASSIGNMENTS_FROM:
        rate += MANY_ASSIGNMENTS_RATE
    if masters:
        rate += MASTERS_RATE
    return rate


def assignment_fee(reward: Decimal, *, max_assignments: int, masters: bool) -> Decimal:
    """MTurk's fee on one approved assignment (at least $0.01), rounded half-up to the cent."""
    rate = commission_rate(max_assignments=max_assignments, masters=masters)
    return max(CENT, _cents(Decimal(reward) * rate))


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee on one bonus payment: 20%, at least $0.01."""
    if Decimal(amount) <= 0:
        return Decimal("0.00")
    return max(CENT, _cents(Decimal(amount) * BASE_RATE))


@dataclass(frozen=True)
class CostPreview:
    """The money side of a launch: what it will cost, and whether it may go ahead."""

    hits: int
    assignments: int
    reward: Decimal
    reward_total: Decimal
    fee_rate: Decimal
    fee_total: Decimal
    bonus_total: Decimal
    bonus_fee_total: Decimal
    total: Decimal
    balance: Decimal | None
    budget_cap: Decimal | None
    charges_fees: bool
    vat_total: Decimal = Decimal("0.00")
    """VAT on the provider's fees (Prolific)."""
    balance_error: str = ""
    """Why the provider could not tell the balance (the preview shows the costs anyway)."""

    @property
    def over_budget(self) -> bool:
        return self.budget_cap is not None and self.total > self.budget_cap

    @property
    def over_balance(self) -> bool:
        return self.balance is not None and self.total > self.balance

    @property
    def allowed(self) -> bool:
        return not (self.over_budget or self.over_balance)

    def refusal(self) -> str:
        """Why a launch is refused, or '' when it is not."""
        reasons = []
        if self.over_budget:
            reasons.append(f"total ${self.total} is over the budget cap ${self.budget_cap}")
        if self.over_balance:
            reasons.append(f"total ${self.total} is over the account balance ${self.balance}")
        return "; ".join(reasons)


def cost_preview(
    max_assignments_per_hit: list[int],
    *,
    reward: Decimal,
    masters: bool,
    bonus_total: Decimal = Decimal("0"),
    balance: Decimal | None = None,
    budget_cap: Decimal | None = None,
    charges_fees: bool = True,
    service_fee_rate: Decimal | None = None,
    vat_rate: Decimal = Decimal("0"),
) -> CostPreview:
    """Cost of HITs with the given assignment counts at one reward per assignment.

    Fees are per assignment (each rounded to the cent), so the total is exactly what MTurk
    would charge once every assignment is approved. ``charges_fees`` is False for the built-in
    marketplace, which charges none. ``service_fee_rate`` replaces MTurk's commission with a flat
    fee on rewards and on bonuses (Prolific), each rounded to the cent, with ``vat_rate`` on
    the fees.
    """
    if service_fee_rate is not None:
        return _flat_fee_preview(
            max_assignments_per_hit,
            reward=Decimal(reward),
            rate=Decimal(service_fee_rate),
            vat_rate=Decimal(vat_rate),
            bonus_total=Decimal(bonus_total),
            balance=balance,
            budget_cap=budget_cap,
        )
    reward = Decimal(reward)
    assignments = sum(max_assignments_per_hit)
    reward_total = reward * assignments
    fee_total = Decimal("0.00")
    if charges_fees:
        for n in max_assignments_per_hit:
            fee_total += assignment_fee(reward, max_assignments=n, masters=masters) * n
    bonus_total = Decimal(bonus_total)
    bonus_fees = bonus_fee(bonus_total) if charges_fees else Decimal("0.00")
    rate = (
        commission_rate(max_assignments=max(max_assignments_per_hit, default=0), masters=masters)
        if charges_fees
        else Decimal("0")
    )
    return CostPreview(
        hits=len(max_assignments_per_hit),
        assignments=assignments,
        reward=reward,
        reward_total=_cents(reward_total),
        fee_rate=rate,
        fee_total=_cents(fee_total),
        bonus_total=_cents(bonus_total),
        bonus_fee_total=bonus_fees,
        total=_cents(reward_total + fee_total + bonus_total + bonus_fees),
        balance=balance,
        budget_cap=budget_cap,
        charges_fees=charges_fees,
    )


def _flat_fee_preview(
    max_assignments_per_hit: list[int],
    *,
    reward: Decimal,
    rate: Decimal,
    vat_rate: Decimal,
    bonus_total: Decimal,
    balance: Decimal | None,
    budget_cap: Decimal | None,
) -> CostPreview:
    assignments = sum(max_assignments_per_hit)
    reward_total = _cents(reward * assignments)
    fee_total = _cents(reward_total * rate)
    bonus_total = _cents(bonus_total)
    bonus_fees = _cents(bonus_total * rate)
    vat_total = _cents((fee_total + bonus_fees) * vat_rate)
    return CostPreview(
        hits=len(max_assignments_per_hit),
        assignments=assignments,
        reward=reward,
        reward_total=reward_total,
        fee_rate=rate,
        fee_total=fee_total,
        bonus_total=bonus_total,
        bonus_fee_total=bonus_fees,
        total=reward_total + fee_total + bonus_total + bonus_fees + vat_total,
        balance=balance,
        budget_cap=budget_cap,
        charges_fees=True,
        vat_total=vat_total,
    )
