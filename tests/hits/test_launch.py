"""Launch checks: the cost preview against hand-computed figures, budget and balance refusals
that create nothing, live launches that need confirmation and permission, and environments that
each reach only their own endpoint."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from hits.exceptions import LaunchRefused, ProviderError
from hits.fees import assignment_fee, bonus_fee, cost_preview
from hits.localturk.models import Account, CallLog
from hits.localturk.models import Hit as TurkHit
from hits.models import Hit, HitBatch
from hits.providers import provider_get
from hits.qualifications import MASTERS, qualification_requirements, requires_masters
from hits.services import hit_batch_launch, hit_batch_preview

D = Decimal


def test_fees_by_hand():
    # 20% of $0.05 is exactly one cent.
    assert assignment_fee(D("0.05"), max_assignments=3, masters=False) == D("0.01")
    # 20% of $0.02 is 0.4 cent: MTurk's minimum of a cent applies.
    assert assignment_fee(D("0.02"), max_assignments=3, masters=False) == D("0.01")
    # 10 or more assignments: 20% + 20% = 40% of $0.15 = $0.06.
    assert assignment_fee(D("0.15"), max_assignments=10, masters=False) == D("0.06")
    assert assignment_fee(D("0.15"), max_assignments=9, masters=False) == D("0.03")
    # Masters: another 5%: 25% of $0.20 = $0.05; with 10+ assignments 45% = $0.09.
    assert assignment_fee(D("0.20"), max_assignments=3, masters=True) == D("0.05")
    assert assignment_fee(D("0.20"), max_assignments=10, masters=True) == D("0.09")
    # Bonuses: 20%, at least a cent.
    assert bonus_fee(D("1.00")) == D("0.20")
    assert bonus_fee(D("0.01")) == D("0.01")


def test_cost_preview_by_hand():
    # 2 HITs x 10 assignments at $0.20 with Masters: rewards $4.00, fees 20 x $0.09 = $1.80;
    # a $1.00 bonus budget costs $0.20 more; $7.00 in all.
    p = cost_preview(
        [10, 10],
        reward=D("0.20"),
        masters=True,
        bonus_total=D("1.00"),
        balance=D("100"),
        budget_cap=D("7.00"),
    )
    assert (p.hits, p.assignments) == (2, 20)
    assert (p.reward_total, p.fee_total, p.bonus_total, p.bonus_fee_total, p.total) == (
        D("4.00"),
        D("1.80"),
        D("1.00"),
        D("0.20"),
        D("7.00"),
    )
    assert p.fee_rate == D("0.45") and p.allowed
    over = cost_preview(
        [10, 10], reward=D("0.20"), masters=True, bonus_total=D("1.00"), budget_cap=D("6.99")
    )
    assert over.over_budget and not over.allowed and "budget cap" in over.refusal()
    local = cost_preview([3, 3], reward=D("0.05"), masters=False, charges_fees=False)
    assert (local.fee_total, local.total) == (D("0.00"), D("0.30"))


def test_adc_preset_uses_each_environments_masters_id():
    for env in ("sandbox", "live"):
        reqs = qualification_requirements("adc", {"locales": ["us"]}, env)
        ids = {r["QualificationTypeId"]: r for r in reqs}
        assert ids[MASTERS[env]]["Comparator"] == "Exists"
        assert ids["000000000000000000L0"] == {
            "QualificationTypeId": "000000000000000000L0",
            "Comparator": "GreaterThan",
            "IntegerValues": [85],
        }
        assert ids["00000000000000000040"]["IntegerValues"] == [500]
        assert ids["00000000000000000071"]["LocaleValues"] == [{"Country": "US"}]
        assert requires_masters(reqs)
    assert MASTERS == {
        "sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
        "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
    }


@pytest.mark.django_db(transaction=True)
def test_preview_of_a_batch_matches_the_hand_computed_figures(localturk, make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=40),
        items_per_hit=20,
        assignments_per_item=10,
        reward=D("0.20"),
        qualification_preset="adc",
        bonus_budget=D("1.00"),
        budget_cap=D("7.00"),
    )
    p = hit_batch_preview(batch)
    assert (p.hits, p.assignments, p.fee_total, p.total, p.balance) == (
        2,
        20,
        D("1.80"),
        D("7.00"),
        D("10000.00"),
    )
    assert not Hit.objects.exists(), "a preview plans nothing"


@pytest.mark.django_db(transaction=True)
def test_over_budget_launch_is_refused_and_creates_nothing(localturk, make_dataset, make_batch):
    batch = make_batch(
        make_dataset(n=40),
        items_per_hit=20,
        assignments_per_item=10,
        reward=D("0.20"),
        qualification_preset="adc",
        bonus_budget=D("1.00"),
        budget_cap=D("6.99"),
    )
    with pytest.raises(LaunchRefused, match="budget cap"):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.DRAFT
    assert not Hit.objects.exists() and not TurkHit.objects.exists()
    assert not CallLog.objects.filter(operation__startswith="Create").exists()


@pytest.mark.django_db(transaction=True)
def test_over_balance_launch_is_refused_and_creates_nothing(localturk, make_dataset, make_batch):
    Account.objects.create(realm="default", balance=D("0.30"))  # needs $0.36
    batch = make_batch(make_dataset(n=40), items_per_hit=20, assignments_per_item=3)
    with pytest.raises(LaunchRefused, match="balance"):
        hit_batch_launch(batch)
    assert not Hit.objects.exists() and not TurkHit.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_each_environment_reaches_only_its_own_endpoint(
    localturk, make_dataset, make_batch, settings, django_user_model
):
    settings.MTURK_ENDPOINTS = {
        "sandbox": localturk.endpoint("sbx"),
        "live": localturk.endpoint("prod"),
    }
    settings.SITE_URL = "https://annotate.example.org"
    ds = make_dataset(n=20)

    sandbox = make_batch(ds, name="sandbox batch", environment="sandbox")
    hit_batch_launch(sandbox)
    assert set(CallLog.objects.values_list("realm", flat=True)) == {"sbx"}
    assert set(TurkHit.objects.values_list("realm", flat=True)) == {"sbx"}

    live = make_batch(ds, name="live batch", environment="live")
    researcher = django_user_model.objects.create_user("researcher", password="pw-for-tests-1")
    with pytest.raises(LaunchRefused, match="confirm"):
        hit_batch_launch(live, user=researcher)
    with pytest.raises(LaunchRefused, match="permission"):
        hit_batch_launch(live, user=researcher, confirm_live=True)
    assert not CallLog.objects.filter(realm="prod").exists()
    researcher.user_permissions.add(Permission.objects.get(codename="launch_live"))
    researcher = django_user_model.objects.get(pk=researcher.pk)
    hit_batch_launch(live, user=researcher, confirm_live=True)

    assert TurkHit.objects.filter(realm="prod").count() == 1
    assert TurkHit.objects.filter(realm="sbx").count() == 1
    live_calls = CallLog.objects.filter(realm="prod").count()
    sandbox_calls = CallLog.objects.filter(realm="sbx").count()
    # Working the sandbox batch afterwards touches only the sandbox endpoint.
    from hits.services import hit_batch_sync

    hit_batch_sync(sandbox)
    assert CallLog.objects.filter(realm="prod").count() == live_calls
    assert CallLog.objects.filter(realm="sbx").count() > sandbox_calls


@pytest.mark.parametrize(
    "env, endpoint",
    [
        ("sandbox", "https://mturk-requester.us-east-1.amazonaws.com"),
        ("live", "https://mturk-requester-sandbox.us-east-1.amazonaws.com/"),
    ],
)
def test_an_environment_pointed_at_the_other_hosts_endpoint_is_refused(settings, env, endpoint):
    settings.MTURK_ENDPOINTS = {**settings.MTURK_ENDPOINTS, env: endpoint}
    with pytest.raises(ProviderError, match="MTurk host"):
        provider_get("mturk", env)


def test_default_endpoints_are_amazons():
    from annotation import settings as configured

    assert configured.MTURK_ENDPOINTS == {
        "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
        "live": "https://mturk-requester.us-east-1.amazonaws.com",
    }


@pytest.mark.django_db
def test_live_needs_https_site_url(make_dataset, make_batch, settings, django_user_model):
    settings.SITE_URL = "http://annotate.example.org"
    admin = django_user_model.objects.create_superuser("root", "r@x", "pw-for-tests-1")
    batch = make_batch(make_dataset(n=20), environment="live")
    with pytest.raises(LaunchRefused, match="HTTPS"):
        hit_batch_launch(batch, user=admin, confirm_live=True)


@pytest.mark.django_db(transaction=True)
def test_botocore_retries_throttling_too(localturk, settings):
    settings.MTURK_BOTOCORE_MAX_ATTEMPTS = 2
    settings.HITS_RETRY_ATTEMPTS = 1
    localturk.faults(throttle_rate=1.0, max_consecutive=1)
    assert provider_get("mturk", "sandbox").balance() == D("10000.00")
    assert list(CallLog.objects.values_list("error_code", flat=True)) == ["ThrottlingException", ""]


@pytest.mark.django_db(transaction=True)
def test_errors_other_than_throttling_are_raised_not_retried(localturk, settings):
    provider = provider_get("mturk", "sandbox")
    ghost = Hit(provider_hit_id="3NOSUCHHIT0000000000000000000", max_assignments=1)
    with pytest.raises(ProviderError) as exc:
        provider.get_hit(ghost)
    assert exc.value.code == "AWS.MechanicalTurk.HITDoesNotExist" and not exc.value.retryable
    assert CallLog.objects.count() == 1
    localturk.faults(fault_rate=1.0, max_consecutive=100)
    with pytest.raises(ProviderError) as exc:
        provider.balance()
    assert exc.value.retryable and CallLog.objects.count() == 1 + settings.HITS_RETRY_ATTEMPTS


@pytest.mark.django_db
def test_mturk_calls_inside_a_transaction_are_refused(settings):
    # The db fixture wraps this test in a transaction, as a view in ATOMIC_REQUESTS would be.
    with pytest.raises(ProviderError, match="transaction"):
        provider_get("mturk", "sandbox").balance()
