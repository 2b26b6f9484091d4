"""Fleiss' kappa and Krippendorff's alpha against published worked examples."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation import aggregation as agg
from annotation.models import Dataset, Item, Vote, Worker

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (1..5); kappa = 0.430
# (0.4302445 as computed by R's irr::kappam.fleiss on the same table).
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units,
# values 1..5, None = missing; nominal alpha = 0.743.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def votes_from_grid(rows_by_item: list[list[int | None]]) -> agg.VoteTable:
    """(items x raters) grid of 1-based classes (None = no vote) -> vote table."""
    item, worker, label = [], [], []
    for i, row in enumerate(rows_by_item):
        for w, value in enumerate(row):
            if value is not None:
                item.append(i)
                worker.append(w)
                label.append(value - 1)
    return agg.VoteTable.from_arrays(np.array(item), np.array(worker), np.array(label))


def test_fleiss_kappa_on_fleiss_1971_table():
    result = agg.agreement(votes_from_grid(FLEISS_1971), num_classes=5)
    assert result.fleiss_kappa == pytest.approx(0.4302445, abs=1e-7)
    assert (result.items, result.votes) == (30, 180)


def test_krippendorff_alpha_on_the_canonical_example_with_missing_values():
    by_unit = [list(col) for col in zip(*KRIPPENDORFF_2011, strict=True)]
    result = agg.agreement(votes_from_grid(by_unit), num_classes=5)
    assert round(result.krippendorff_alpha, 3) == 0.743
    # unit 12 has a single value: it is not pairable and is left out
    assert (result.items, result.votes) == (11, 40)


def test_wikipedia_count_table_kappa():
    # Fleiss' kappa article: 10 subjects, 14 raters, 5 categories; kappa = 0.210
    counts = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    grid = [[c + 1 for c, n in enumerate(row) for _ in range(n)] for row in counts]
    result = agg.agreement(votes_from_grid(grid), num_classes=5)
    assert round(result.fleiss_kappa, 3) == 0.210


def test_perfect_and_chance_agreement():
    perfect = agg.agreement(votes_from_grid([[1, 1, 1], [2, 2, 2], [3, 3, 3]]), num_classes=3)
    assert perfect.fleiss_kappa == pytest.approx(1.0)
    assert perfect.krippendorff_alpha == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = agg.agreement(votes_from_grid(rng.integers(1, 4, (3000, 3)).tolist()), num_classes=3)
    assert abs(noise.fleiss_kappa) < 0.03
    assert abs(noise.krippendorff_alpha) < 0.03


def test_undefined_cases_read_as_not_available():
    single = agg.agreement(votes_from_grid([[1], [2, None], [3]]), num_classes=3)
    assert math.isnan(single.fleiss_kappa) and math.isnan(single.krippendorff_alpha)
    assert single.describe().startswith("Fleiss' kappa n/a, Krippendorff's alpha n/a (0 items")
    same = agg.agreement(votes_from_grid([[2, 2], [2, 2]]), num_classes=3)
    assert math.isnan(same.fleiss_kappa)
    assert "kappa n/a" in same.describe()


@pytest.fixture
def label_crowd(db):
    """3 items x 3 label votes; by hand: Fleiss' kappa 0.135, Krippendorff's alpha 0.231."""
    ds = Dataset.objects.create(name="agree", class_names=["a", "b", "c"])
    items = Item.objects.bulk_create(
        Item(dataset=ds, index=i, name=f"{i}.png", image=f"x/{i}.png", width=8, height=8,
             given_label=0, label=0)
        for i in range(3)
    )  # fmt: skip
    ws = [Worker.objects.create(provider="mturk", id_hash=f"{j:064x}") for j in range(3)]
    picks = {0: [0, 0, 1], 1: [2, 2, 2], 2: [1, 2, 0]}
    Vote.objects.bulk_create(
        Vote(item=items[i], worker=w, kind="label", answer=a, source="imported")
        for i, answers in picks.items()
        for w, a in zip(ws, answers, strict=True)
    )
    return ds


def test_dashboard_shows_kappa_and_alpha_of_the_kind(admin_client, label_crowd):
    url = reverse("admin:annotation_dataset_dashboard", args=[label_crowd.pk])
    html = admin_client.get(url + "?kind=label").content.decode()
    agreement_line = re.search(r'<p id="agreement">(.*?)</p>', html).group(1)
    assert "kappa 0.135" in agreement_line and "alpha 0.231" in agreement_line
    assert "3 items with 2+ votes, 9 votes" in agreement_line


def test_dashboard_without_votes_shows_no_agreement(admin_client, db):
    ds = Dataset.objects.create(name="empty", class_names=["a", "b"])
    html = admin_client.get(reverse("admin:annotation_dataset_dashboard", args=[ds.pk]))
    assert 'id="agreement"' not in html.content.decode()


def test_aggregate_votes_reports_agreement_in_both_modes(label_crowd, tmp_path):
    out = io.StringIO()
    call_command("aggregate_votes", "--dataset", "agree", "--kind", "label", stdout=out)
    assert "agreement: Fleiss' kappa 0.135, Krippendorff's alpha 0.231" in out.getvalue()
    src = tmp_path / "votes.csv"
    src.write_text("task,worker,label\n" + "".join(
        f"{i},w{j},{a}\n" for i, answers in enumerate([[0, 0, 1], [2, 2, 2], [1, 2, 0]])
        for j, a in enumerate(answers)
    ))  # fmt: skip
    out = io.StringIO()
    call_command("aggregate_votes", "--input", src, "--num-classes", "3", "--output",
                 tmp_path / "o.csv", stdout=out)  # fmt: skip
    assert "agreement: Fleiss' kappa 0.135, Krippendorff's alpha 0.231" in out.getvalue()
