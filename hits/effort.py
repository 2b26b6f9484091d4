"""What a HIT asks of a worker, before launch: judgments, minutes and pay per hour.

One estimate for every place that needs it (the launch preview, Prolific's completion time and
its minimum-pay check). Minutes come from the batch's ``estimated_minutes`` param when the
researcher gives one, else from what workers took on this kind of task (the median time on a
problem in the kind's recorded votes), else from the kind's typical time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from annotation import kinds
from annotation.models import Vote

from .models import HitBatch, Provider
from .planning import hit_item_ids, hit_plan

# The votes a measured time needs (fewer: the kind's typical time), and how many recent ones
# it reads at most.
MEASURED_MIN_VOTES = 30
MEASURED_MAX_VOTES = 5000
# Reading the instructions and submitting, once per HIT.
HIT_OVERHEAD_SECONDS = 30
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SecondsPerProblem:
    seconds: float
    measured_from: int
    """How many recorded votes gave ``seconds``; 0 when it is the kind's typical time."""


@dataclass(frozen=True)
class EffortPreview:
    hits: int
    problems_per_hit: int
    """What the page shows one at a time (select: tasks of up to 20 images)."""
    judgments: int
    """Answers the batch collects: items on every HIT (gold included) x places per HIT."""
    judgments_per_hit: float
    per_problem: SecondsPerProblem
    minutes_per_hit: int
    given_minutes: bool
    reward: Decimal
    hourly: Decimal
    minimum_hourly: Decimal

    @property
    def below_minimum(self) -> bool:
        return self.hourly < self.minimum_hourly

    @property
    def reward_for_minimum(self) -> Decimal:
        """The least reward per HIT that pays the minimum hourly rate."""
        return (self.minimum_hourly * self.minutes_per_hit / 60).quantize(CENT, rounding="ROUND_UP")


def seconds_per_problem(kind_name: str) -> SecondsPerProblem:
    """The median time workers took on one problem of this kind (their votes' recorded
    durations), or the kind's typical time while fewer than MEASURED_MIN_VOTES are recorded."""
    durations = list(
        Vote.objects.filter(kind=kind_name, duration_ms__isnull=False)
        .order_by("-pk")
        .values_list("duration_ms", flat=True)[:MEASURED_MAX_VOTES]
    )
    if len(durations) < MEASURED_MIN_VOTES:
        return SecondsPerProblem(kinds.get(kind_name).typical_seconds_per_problem, 0)
    durations.sort()
    middle = len(durations) // 2
    median = (
        durations[middle] if len(durations) % 2 else (durations[middle - 1] + durations[middle]) / 2
    )
    return SecondsPerProblem(median / 1000, len(durations))


def estimated_minutes(batch: HitBatch, per_problem: SecondsPerProblem | None = None) -> int:
    """Minutes one HIT (one place of a study) takes: the batch's ``estimated_minutes`` param,
    else its problems per HIT at the measured or typical pace, plus the instructions."""
    given = (batch.params or {}).get("estimated_minutes")
    if given:
        return max(1, int(given))
    pace = per_problem or seconds_per_problem(batch.kind)
    return max(1, math.ceil((batch.items_per_hit * pace.seconds + HIT_OVERHEAD_SECONDS) / 60))


def hourly_reward(batch: HitBatch, minutes: int | None = None) -> Decimal:
    """What the batch's reward pays per hour at ``minutes`` per HIT (default: the estimate)."""
    minutes = minutes or estimated_minutes(batch)
    return (Decimal(batch.reward) * 60 / minutes).quantize(CENT)


def minimum_hourly(batch: HitBatch) -> Decimal:
    """The least pay per hour the batch should offer: the researcher's MIN_HOURLY_PAY (the US
    federal minimum wage by default), and on Prolific at least Prolific's own minimum."""
    floor = Decimal(str(settings.MIN_HOURLY_PAY))
    if batch.provider == Provider.PROLIFIC:
        floor = max(floor, Decimal(str(settings.PROLIFIC_MIN_HOURLY_REWARD)))
    return floor


def hit_batch_effort(batch: HitBatch) -> EffortPreview:
    """The effort side of the launch preview, from the HITs the batch will publish."""
    if batch.pk and batch.hits.exists():
        shapes = [(h.max_assignments, h.items) for h in batch.hits.only("max_assignments", "items")]
    else:
        shapes = [(p.max_assignments, p.items) for p in hit_plan(batch)]
    sizes = [len(hit_item_ids(batch.kind, items)) for _, items in shapes]
    judgments = sum(size * places for size, (places, _) in zip(sizes, shapes, strict=True))
    pace = seconds_per_problem(batch.kind)
    minutes = estimated_minutes(batch, pace)
    return EffortPreview(
        hits=len(shapes),
        problems_per_hit=batch.items_per_hit,
        judgments=judgments,
        judgments_per_hit=sum(sizes) / len(sizes) if sizes else 0.0,
        per_problem=pace,
        minutes_per_hit=minutes,
        given_minutes=bool((batch.params or {}).get("estimated_minutes")),
        reward=Decimal(batch.reward),
        hourly=hourly_reward(batch, minutes),
        minimum_hourly=minimum_hourly(batch),
    )
