"""Fixtures of the curation tests."""

from __future__ import annotations

import pytest

from annotation.services import dataset_import_from_args
from curation.models import CurationRun, LabelIssue

R = LabelIssue.Resolution


@pytest.fixture
def run(make_climage):
    """A done run on 12 images with issues on items 2 and 5 (open), 7 (confirmed), 9 (kept)."""
    path, _ = make_climage("gal.pkl", n=12, k=4, size=8, per_item=0)
    ds = dataset_import_from_args(
        name="gal", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    run = CurationRun.objects.create(
        dataset=ds, detectors=["knn"], status="done", progress=1.0, num_items=12, device="cpu"
    )
    items = list(ds.items.order_by("index"))
    # index: (current, suggested, score, resolution)
    rows = {
        2: (0, 3, 0.40, R.OPEN),
        5: (3, 1, 0.95, R.OPEN),
        7: (1, 2, 0.70, R.CONFIRMED),
        9: (2, 0, 0.10, R.KEPT),
    }
    for index, (cur, sug, score, res) in rows.items():
        LabelIssue.objects.create(
            run=run,
            item=items[index],
            current_label=cur,
            suggested_label=sug,
            score=score,
            detectors=["knn"],
            resolution=res,
            resolved_label=sug if res == R.CONFIRMED else None,
        )
    return run
