"""How the marketplace's pages show money and time to a worker: a currency, and minutes."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def reward(amount: Decimal | float | int | None) -> str:
    """``0.05`` -> ``US$0.05`` (rewards are in US dollars on every provider)."""
    if amount is None:
        return ""
    return f"US${Decimal(amount):.2f}"


@register.filter
def duration(seconds: int | None) -> str:
    """``3600`` -> ``60 minutes``; under a minute reads ``1 minute``, whole hours past two
    read in hours (``7200`` -> ``2 hours``)."""
    if seconds is None:
        return ""
    minutes = max(1, round(int(seconds) / 60))
    if minutes >= 120 and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
