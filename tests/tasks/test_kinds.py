"""The task-kind registry: how each kind builds HITs, draws candidates and reads answers."""

import random
from collections import Counter

import pytest
from django.core.exceptions import ValidationError

from annotation import kinds
from annotation.kinds.base import parse_answers
from annotation.kinds.complementary import candidates
from annotation.models import Item, TaskKind

pytestmark = pytest.mark.django_db


def split(items):
    gold = [i for i in items if i.gold_label is not None]
    return [i for i in items if i.gold_label is None], gold


def test_registry_covers_every_task_kind():
    assert sorted(kinds.names()) == sorted(TaskKind.values)
    defaults = {k: kinds.get(k).default_items_per_hit for k in kinds.names()}
    assert defaults == {"complementary": 10, "verify": 20, "select": 10, "review": 10, "label": 10}
    assert kinds.get("review").default_assignments_per_item == 5
    with pytest.raises(ValueError, match="unknown task kind 'nope'"):
        kinds.get("nope")


@pytest.mark.parametrize("kind", ["complementary", "verify", "review"])
def test_flat_hits_have_fixed_size_and_hidden_gold(shapes, kind):
    items = list(shapes.items.order_by("index"))
    regular, gold = split(items)
    params = {"suggested": {str(i.pk): 0 for i in regular}} if kind == "review" else {}
    spec = kinds.get(kind)
    hits = spec.build_hits(
        regular, items_per_hit=10, gold_items=gold, gold_rate=0.2, params=params, rng=3
    )
    seen = []
    for entries, gold_ids in hits:
        ids = spec.item_ids(entries)
        assert len(ids) == len(set(ids)) <= 10
        assert len(gold_ids) == 2 and set(gold_ids) <= set(ids)
        assert set(gold_ids) <= {g.pk for g in gold}
        seen += [i for i in ids if i not in gold_ids]
        if kind == "complementary":
            assert all(isinstance(e, int) for e in entries)
        else:
            assert all(isinstance(e, dict) and "item" in e for e in entries)
    assert sorted(seen) == sorted(i.pk for i in regular)  # every item once, none lost
    assert all(len(spec.item_ids(e)) == 10 for e, _ in hits[:-1])


def test_gold_positions_vary_and_no_gold_without_a_rate(shapes):
    regular, gold = split(list(shapes.items.all()))
    spec = kinds.get("complementary")
    hits = spec.build_hits(regular, items_per_hit=10, gold_items=gold, gold_rate=0.1, rng=5)
    positions = {e.index(g[0]) for e, g in hits}
    assert len(positions) > 3
    plain = spec.build_hits(regular, items_per_hit=10, gold_items=gold, gold_rate=0.0, rng=5)
    assert all(g == [] for _, g in plain)
    with pytest.raises(ValueError, match="gold_rate"):
        spec.build_hits(regular, items_per_hit=10, gold_rate=1.5)
    with pytest.raises(ValueError, match="items_per_hit"):
        spec.build_hits(regular, items_per_hit=0)


def test_verify_freezes_the_label_and_traps_some_gold(shapes):
    regular, gold = split(list(shapes.items.all()))
    hits = kinds.get("verify").build_hits(
        regular, items_per_hit=20, gold_items=gold, gold_rate=0.25, rng=random.Random(9)
    )
    by_id = {i.pk: i for i in shapes.items.all()}
    wrong = right = 0
    for entries, gold_ids in hits:
        for e in entries:
            item = by_id[e["item"]]
            if e["item"] in gold_ids:
                wrong += e["label"] != item.gold_label
                right += e["label"] == item.gold_label
            else:
                assert e["label"] == item.label
    assert wrong and right


def test_select_groups_share_a_label_and_cap_at_twenty(db, td):
    ds = td.make_dataset("many", n=300, k=3, gold_every=10)
    regular, gold = split(list(ds.items.all()))
    spec = kinds.get("select")
    hits = spec.build_hits(regular, items_per_hit=4, gold_items=gold, gold_rate=0.1, rng=1)
    by_id = {i.pk: i for i in ds.items.all()}
    all_ids = []
    for groups, gold_ids in hits:
        assert len(groups) <= 4
        ids = spec.item_ids(groups)
        assert len(ids) == len(set(ids))
        for g in groups:
            assert 0 < len(g["items"]) <= 20
            assert set(g) == {"label", "items"}
            for i in g["items"]:
                if i not in gold_ids:
                    assert by_id[i].label == g["label"]
        assert len(gold_ids) == 2 * len(groups)
        all_ids += [i for i in ids if i not in gold_ids]
    assert sorted(all_ids) == sorted(i.pk for i in regular)


def test_review_takes_suggestions_from_params_or_label_issues(shapes):
    from curation.models import CurationRun, LabelIssue

    items = list(shapes.items.filter(gold_label__isnull=True).order_by("index")[:6])
    spec = kinds.get("review")
    with pytest.raises(ValueError, match="no suggested label"):
        spec.build_hits(items, items_per_hit=5, params={})
    run = CurationRun.objects.create(dataset=shapes, detectors=["knn"])
    for it in items[:4]:
        LabelIssue.objects.create(
            run=run, item=it, current_label=it.label, suggested_label=9, score=0.9
        )
    params = {"suggested": {str(items[4].pk): 7, str(items[5].pk): 8}}
    (entries, _), (rest, _) = spec.build_hits(items, items_per_hit=5, params=params, rng=0)
    got = {e["item"]: (e["given"], e["suggested"]) for e in entries + rest}
    for it in items[:4]:
        assert got[it.pk] == (it.label, 9)
    assert got[items[4].pk] == (items[4].label, 7) and got[items[5].pk][1] == 8


def test_candidates_are_stable_distinct_and_uniform(settings):
    assert candidates("a1", 5, 10) == candidates("a1", 5, 10)
    assert candidates("a1", 5, 10) != candidates("a2", 5, 10) or candidates(
        "a1", 6, 10
    ) != candidates("a2", 6, 10)
    counts, first = Counter(), Counter()
    for a in range(500):
        c = candidates(f"a{a}", 1, 10)
        assert len(set(c)) == 4 and all(0 <= x < 10 for x in c)
        counts.update(c)
        first[c[0]] += 1
    # 2000 draws over 10 classes: each ~200; fixed secret, so this is deterministic.
    assert min(counts.values()) > 140 and max(counts.values()) < 260
    assert min(first.values()) > 25 and max(first.values()) < 80
    assert sorted(candidates("a1", 1, 3)) == [0, 1, 2]


def test_parse_answers_accepts_the_page_format_only():
    ok = parse_answers('[{"item": 3, "answer": "1", "duration_ms": 50}]', max_duration_ms=10)
    assert ok[3].answer == 1 and ok[3].duration_ms == 10
    for bad in ("{", "[]", [1], [{"item": True, "answer": 1}], [{"item": 1, "answer": 1.5}]):
        with pytest.raises(ValidationError):
            parse_answers(bad, max_duration_ms=10)


def test_build_hits_accepts_ids_and_numpy_rngs(shapes):
    import numpy as np

    ids = list(Item.objects.filter(dataset=shapes).values_list("pk", flat=True)[:12])
    hits = kinds.get("complementary").build_hits(ids, items_per_hit=5, rng=np.random.default_rng(0))
    assert sorted(i for e, _ in hits for i in e) == sorted(ids)
