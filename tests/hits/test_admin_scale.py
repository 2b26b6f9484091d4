"""The HIT batch admin stays small on a large dataset: the add and change pages list no items
up front, run a bounded number of queries and answer with a small page; items are still
chosen by id for an explicit selection."""

from decimal import Decimal

import pytest

from annotation.models import Dataset, Item
from hits.models import HitBatch
from hits.planning import hit_item_ids

pytestmark = pytest.mark.django_db

BIG = 50_000
MAX_PAGE_BYTES = 1_000_000


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@localhost", "pw-for-tests-1")


def _dataset(name: str, n: int) -> Dataset:
    """``n`` item rows with a dummy image path: no image file exists, so a page that tried
    to read one would fail."""
    ds = Dataset.objects.create(name=name, class_names=["cat", "dog"])
    Item.objects.bulk_create(
        (
            Item(
                dataset=ds,
                index=i,
                name=f"img{i}.png",
                image=f"datasets/missing/img{i}.png",
                width=8,
                height=8,
                given_label=i % 2,
                label=i % 2,
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    return ds


@pytest.fixture
def big_dataset():
    return _dataset("big", BIG)


def _batch(dataset, **fields) -> HitBatch:
    values = {
        "name": "big run",
        "kind": "verify",
        "provider": "market",
        "environment": "market",
        "reward": Decimal("0.05"),
        **fields,
    }
    return HitBatch.objects.create(dataset=dataset, **values)


def test_add_page_is_small_on_a_large_dataset(
    client, admin_user, big_dataset, django_assert_max_num_queries
):
    client.force_login(admin_user)
    with django_assert_max_num_queries(59):
        page = client.get("/admin/hits/hitbatch/add/")
    html = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < MAX_PAGE_BYTES
    assert "big#1234" not in html and "img1234.png" not in html


def test_change_page_is_small_on_a_large_dataset(
    client, admin_user, big_dataset, django_assert_max_num_queries
):
    batch = _batch(big_dataset, item_selection="explicit")
    chosen = list(Item.objects.filter(dataset=big_dataset).order_by("index")[:BIG:50])
    batch.items.set(chosen)
    client.force_login(admin_user)
    with django_assert_max_num_queries(59):
        page = client.get(f"/admin/hits/hitbatch/{batch.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < MAX_PAGE_BYTES
    # The chosen items are named by id in a text box, not as one option per item.
    assert f'name="items" value="{chosen[0].pk},{chosen[1].pk},' in html
    assert "big#1234" not in html


def test_launched_batch_page_is_small_and_names_its_items_by_id(
    client, admin_user, big_dataset, django_assert_max_num_queries
):
    batch = _batch(big_dataset, item_selection="explicit", status="open")
    chosen = list(Item.objects.filter(dataset=big_dataset).order_by("pk"))
    batch.items.set(chosen)
    client.force_login(admin_user)
    with django_assert_max_num_queries(59):
        page = client.get(f"/admin/hits/hitbatch/{batch.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < MAX_PAGE_BYTES
    assert f"{BIG} item(s), ids {chosen[0].pk}, {chosen[1].pk}," in html
    assert f"and {BIG - 20} more" in html and 'name="items"' not in html


def test_changelist_is_small_with_many_batches(
    client, admin_user, big_dataset, django_assert_max_num_queries
):
    for n in range(30):
        _batch(big_dataset, name=f"run {n}")
    client.force_login(admin_user)
    with django_assert_max_num_queries(59):
        page = client.get("/admin/hits/hitbatch/")
    assert page.status_code == 200 and "run 29" in page.content.decode()


def _form(dataset, **fields) -> dict:
    data = {
        "name": "picked",
        "dataset": dataset.pk,
        "kind": "verify",
        "params": "{}",
        "item_selection": "explicit",
        "items": "",
        "provider": "market",
        "environment": "market",
        "reward": "0.05",
        "assignments_per_item": "3",
        "items_per_hit": "10",
        "gold_rate": "0",
        "bonus_budget": "0",
        "lifetime_seconds": "3600",
        "assignment_duration_seconds": "600",
        "auto_approval_delay_seconds": "3600",
        "qualification_preset": "none",
        "qualification_params": "{}",
        "review_rules": "{}",
    }
    data.update(fields)
    return data


def test_explicit_items_are_chosen_by_id_and_launch(
    client, admin_user, django_capture_on_commit_callbacks
):
    ds = _dataset("small", 40)
    picked = list(Item.objects.filter(dataset=ds).order_by("index")[5:25])
    client.force_login(admin_user)
    ids = ",".join(str(i.pk) for i in picked)
    done = client.post("/admin/hits/hitbatch/add/", _form(ds, items=ids))
    assert done.status_code == 302, done.content.decode()[:2000]
    batch = HitBatch.objects.get(name="picked")
    assert set(batch.items.values_list("pk", flat=True)) == {i.pk for i in picked}
    preview = client.get(f"/admin/hits/hitbatch/{batch.pk}/launch/").content.decode()
    assert 'id="launch-preview"' in preview and "<td>2</td>" in preview
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/hits/hitbatch/{batch.pk}/launch/")
    batch.refresh_from_db()
    launched = {i for h in batch.hits.all() for i in hit_item_ids(batch.kind, h.items)}
    assert batch.status == HitBatch.Status.OPEN and launched == {i.pk for i in picked}


def test_explicit_items_of_another_dataset_are_refused(client, admin_user):
    ds, other = _dataset("small", 10), _dataset("other", 10)
    stranger = Item.objects.filter(dataset=other).first()
    mine = Item.objects.filter(dataset=ds).first()
    client.force_login(admin_user)
    page = client.post("/admin/hits/hitbatch/add/", _form(ds, items=f"{mine.pk},{stranger.pk}"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Items {stranger.pk} are not in dataset small" in html
    assert not HitBatch.objects.exists()


def test_unknown_item_ids_are_refused(client, admin_user):
    ds = _dataset("small", 10)
    client.force_login(admin_user)
    page = client.post("/admin/hits/hitbatch/add/", _form(ds, items="999999"))
    assert page.status_code == 200 and "999999" in page.content.decode()
    assert not HitBatch.objects.exists()
