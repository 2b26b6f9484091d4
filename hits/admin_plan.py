"""The batch form's plan: what the batch will ask of workers and cost, shown on its page as soon
as it is saved (the launch preview repeats it, with the account balance)."""

from __future__ import annotations

from django.utils.html import format_html

from .effort import hit_batch_effort
from .exceptions import HitsError
from .models import HitBatch
from .selectors import hit_batch_cost_preview


def plan_html(batch: HitBatch | None) -> str:
    if batch is None or batch.pk is None:
        return "Save the batch to see its plan: HITs, judgments, minutes, pay per hour and cost."
    try:
        effort = hit_batch_effort(batch)
        cost = hit_batch_cost_preview(batch, balance=None)
    except (HitsError, ValueError) as exc:
        return format_html('<span class="errornote">No plan yet: {}</span>', exc)
    unit = "tasks" if batch.kind == "select" else "items"
    warning = (
        format_html(
            ' <strong class="errornote" id="plan-warning">below the minimum of ${} an hour: '
            "${} a HIT pays it</strong>",
            effort.minimum_hourly,
            effort.reward_for_minimum,
        )
        if effort.below_minimum
        else ""
    )
    return format_html(
        '<div id="plan">{} HITs of {} {} · {} judgments ({} per HIT) · about {} minute{} per HIT'
        " · ${} an hour{}<br>rewards ${} + fees ${} = <strong>${}</strong>{}</div>",
        effort.hits,
        effort.problems_per_hit,
        unit,
        effort.judgments,
        f"{effort.judgments_per_hit:g}",
        effort.minutes_per_hit,
        "" if effort.minutes_per_hit == 1 else "s",
        effort.hourly,
        warning,
        cost.reward_total,
        cost.fee_total + cost.bonus_fee_total + cost.vat_total,
        cost.total,
        format_html(" (budget cap ${})", cost.budget_cap) if cost.budget_cap is not None else "",
    )
