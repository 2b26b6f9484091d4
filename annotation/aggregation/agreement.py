"""Inter-annotator agreement of class votes: Fleiss' kappa and Krippendorff's alpha (nominal).

Both are computed from the (item, class) vote counts alone: a bincount when N x K is small next
to the V votes, else one sort of the votes, so the memory stays O(V) whatever K is. Items with
fewer than two votes carry no information about agreement and are left out of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import VoteTable, _check_votes


@dataclass(frozen=True)
class Agreement:
    """Chance-corrected agreement of a vote table.

    Attributes:
        fleiss_kappa: Fleiss' kappa (1971), generalised to a varying number of votes per item;
            NaN when no item has two votes or when every vote names the same class.
        krippendorff_alpha: Krippendorff's alpha for nominal data; NaN in the same cases.
        items: items with at least two votes (the ones both statistics use).
        votes: votes on those items.
    """

    fleiss_kappa: float
    krippendorff_alpha: float
    items: int
    votes: int

    def describe(self) -> str:
        """One line for reports: ``Fleiss' kappa 0.430, Krippendorff's alpha 0.431 (...)``."""
        return (
            f"Fleiss' kappa {_fmt(self.fleiss_kappa)}, Krippendorff's alpha "
            f"{_fmt(self.krippendorff_alpha)} ({self.items} items with 2+ votes, "
            f"{self.votes} votes)"
        )


def _fmt(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"


def agreement(votes: VoteTable, *, num_classes: int) -> Agreement:
    """Fleiss' kappa and Krippendorff's nominal alpha of class votes.

    Fleiss: P_i = sum_j n_ij (n_ij - 1) / (m_i (m_i - 1)) is the share of agreeing ordered pairs
    of votes on item i (m_i votes, n_ij of class j); kappa = (mean P_i - P_e) / (1 - P_e) with
    P_e = sum_j p_j^2 and p_j the share of class j among the votes. With the same number of
    votes on every item this is Fleiss (1971) exactly.

    Krippendorff (2011): the coincidence matrix counts each ordered pair of votes on an item with
    weight 1 / (m_i - 1); alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2), with n the
    pairable votes and n_c those of class c.

    Args:
        votes: item (V,), worker (V,), label (V,) int64; one row per vote (worker is unused:
            a worker's several votes on one item count as several votes).
        num_classes: K >= 2; labels must lie in 0..K-1.
    Returns:
        An :class:`Agreement`.
    Raises:
        ValueError: empty table, label outside 0..K-1, num_classes < 2.
    """
    k = _check_votes(votes, num_classes)
    per_item = np.bincount(votes.item, minlength=votes.num_items)
    pairable = per_item[votes.item] >= 2
    item, label = votes.item[pairable], votes.label[pairable]
    nan = float("nan")
    if item.size == 0:
        return Agreement(nan, nan, 0, 0)
    flat = item * k + label
    if votes.num_items * k <= 8 * flat.size:  # dense counts are cheaper than a sort
        dense = np.bincount(flat, minlength=votes.num_items * k)
        cells = np.flatnonzero(dense)
        n_ic = dense[cells]
    else:
        cells, n_ic = np.unique(flat, return_counts=True)  # (item, class) vote counts
    cell_item = cells // k
    n_ic = n_ic.astype(np.float64)
    m = per_item.astype(np.float64)[cell_item]  # votes on the cell's item
    n_c = np.bincount(label, minlength=k).astype(np.float64)
    n = float(item.size)
    same_pairs = n_ic * (n_ic - 1.0)
    items = cell_item[np.flatnonzero(np.diff(cell_item, prepend=-1))]  # cells come sorted
    p_i = np.bincount(cell_item, weights=same_pairs / (m * (m - 1.0)))[items]
    p_e = float(((n_c / n) ** 2).sum())
    kappa = nan if p_e >= 1.0 else (float(p_i.mean()) - p_e) / (1.0 - p_e)
    o_diag = float((same_pairs / (m - 1.0)).sum())
    denom = n * n - float((n_c**2).sum())
    alpha = nan if denom <= 0 else 1.0 - (n - 1.0) * (n - o_diag) / denom
    return Agreement(kappa, alpha, int(items.size), int(item.size))
