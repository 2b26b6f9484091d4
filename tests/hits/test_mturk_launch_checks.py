"""MTurk refusals a researcher meets before launch rather than halfway through it: the sandbox
needs HTTPS as live does, CreateHITType's text limits, and excluded workers whose exclusion
could not be applied."""

import pytest

from annotation.models import Worker
from hits.exceptions import LaunchRefused
from hits.localturk.models import CallLog
from hits.localturk.models import Hit as TurkHit
from hits.models import Hit, HitBatch, WorkerExclusion
from hits.providers.mturk import REAL_HOSTS
from hits.services import hit_batch_launch

SANDBOX = f"https://{REAL_HOSTS['sandbox']}"


def refused_and_nothing_created(batch: HitBatch, match: str) -> None:
    with pytest.raises(LaunchRefused, match=match):
        hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.DRAFT
    assert not Hit.objects.exists() and not TurkHit.objects.exists()
    assert not CallLog.objects.filter(operation__startswith="Create").exists()


@pytest.mark.django_db
def test_amazons_sandbox_needs_an_https_site_url(make_dataset, make_batch, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    # Amazon's own sandbox host (the refusal comes before any call reaches it).
    settings.MTURK_ENDPOINTS = {**settings.MTURK_ENDPOINTS, "sandbox": SANDBOX}
    batch = make_batch(make_dataset(n=20), environment="sandbox")
    with pytest.raises(LaunchRefused, match="sandbox needs an HTTPS SITE_URL"):
        hit_batch_launch(batch)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "fields, message",
    [
        ({"title": "", "name": "n" * 129}, "title of at most 128 characters; this batch's has 129"),
        (
            {"description": "d" * 2001},
            "description of at most 2,000 characters; this batch's has 2,001",
        ),
    ],
)
def test_texts_over_mturks_limits_are_refused_before_any_call(
    localturk, make_dataset, make_batch, fields, message
):
    batch = make_batch(make_dataset(n=20), **fields)
    refused_and_nothing_created(batch, message)


@pytest.mark.django_db(transaction=True)
def test_an_exclusion_mturk_cannot_apply_stops_the_launch(localturk, make_dataset, make_batch):
    worker = Worker.objects.create(id_hash="h" * 64, provider="mturk")
    WorkerExclusion.objects.create(worker=worker, reason="spam", qualification_type_id="3QT")
    batch = make_batch(make_dataset(n=20))
    refused_and_nothing_created(batch, "1 worker is excluded, but MTurk sandbox has no")
