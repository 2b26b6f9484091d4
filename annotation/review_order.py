"""Position effect in review votes: how often workers pick the label shown first.

The review page shows the given and the suggested label in a per-assignment random order and
records it in ``Vote.candidates``; the answer is stored in canonical codes (0 given,
1 suggested), so aggregation needs no order. This module only reports whether the order itself
swayed the workers: among votes for one of the two labels whose order is known, the share that
chose the label shown first. Without anchoring it is near one half.
"""

from __future__ import annotations

from dataclasses import dataclass

from .aggregation import REVIEW_GIVEN, REVIEW_SUGGESTED
from .models import Dataset, TaskKind, Vote

_READ_CHUNK = 5000


@dataclass(frozen=True)
class PositionShare:
    """Votes for the label shown first / second, and how many showed the given label first."""

    first: int
    second: int
    given_first: int

    @property
    def total(self) -> int:
        return self.first + self.second

    @property
    def first_share(self) -> float:
        return self.first / self.total if self.total else 0.0


def _shown_first(candidates, given, suggested) -> str | None:
    """Which label (given or suggested) the page showed first; None when unknown."""
    if not isinstance(candidates, list) or len(candidates) != 2 or given == suggested:
        return None
    if candidates == [given, suggested]:
        return "given"
    if candidates == [suggested, given]:
        return "suggested"
    return None


def review_position_share(dataset: Dataset) -> PositionShare:
    """Count the dataset's counted review votes for the first- and second-shown label."""
    first = second = given_first = 0
    rows = (
        Vote.objects.counted()
        .filter(item__dataset=dataset, kind=TaskKind.REVIEW, candidates__isnull=False)
        .filter(answer__in=(REVIEW_GIVEN, REVIEW_SUGGESTED))
        .order_by()
        .values_list("answer", "candidates", "shown_label", "suggested_label")
        .iterator(chunk_size=_READ_CHUNK)
    )
    for answer, candidates, given, suggested in rows:
        shown_first = _shown_first(candidates, given, suggested)
        if shown_first is None:
            continue
        given_first += shown_first == "given"
        picked = "given" if answer == REVIEW_GIVEN else "suggested"
        if picked == shown_first:
            first += 1
        else:
            second += 1
    return PositionShare(first, second, given_first)


def review_position_note(dataset: Dataset) -> str | None:
    """A line for the aggregation outcome on the position effect; None without ordered votes."""
    share = review_position_share(dataset)
    if not share.total:
        return None
    return (
        f"review order: of {share.total} votes for the given or the suggested label with the "
        f"order recorded, {share.first} ({share.first_share:.1%}) chose the label shown first "
        f"and {share.second} ({1 - share.first_share:.1%}) the one shown second (the given "
        f"label was shown first in {share.given_first}); about 50% means no anchoring"
    )
