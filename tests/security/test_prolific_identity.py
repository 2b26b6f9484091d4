"""Who a Prolific participant is, over real HTTP: the PROLIFIC_PID of the study URL is bound to
the browser on first arrival; a later link naming another participant, a session that belongs to
someone else, and a session id we never handed out are refused, and nothing refused writes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from annotation.models import Vote, Worker
from annotation.worker_ids import worker_id_hash
from hits.models import Assignment, HitBatch
from hits.services import hit_batch_launch
from tests.hits import conftest as hits_fixtures
from tests.hits import test_prolific as prolific_fixtures
from tests.hits.conftest import Browser

pytestmark = pytest.mark.django_db(transaction=True)
prolific = prolific_fixtures.prolific
make_dataset = hits_fixtures.make_dataset
make_batch = hits_fixtures.make_batch

FIRST = "5f1e2d3c4b5a69788796a5b4"
OTHER = "60aa11bb22cc33dd44ee55ff"
SESSION = "a1b2c3d4e5f6a7b8c9d0e1f2"


def state() -> list[tuple]:
    """Every row a participant's visit could write."""
    return [
        *Assignment.objects.order_by("pk").values_list(
            "pk", "provider_assignment_id", "worker_id", "status", "hit_id"
        ),
        *Worker.objects.order_by("pk").values_list("pk", "provider", "id_hash"),
        (Vote.objects.count(),),
    ]


@pytest.fixture
def study(prolific, make_dataset, make_batch) -> HitBatch:
    """A launched Prolific study of two HITs, three places each."""
    batch = prolific_fixtures.prolific_batch(make_dataset, make_batch, items_per_hit=10)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    assert batch.status == HitBatch.Status.OPEN, batch.error
    return batch


def study_url(batch: HitBatch, pid: str, session: str) -> str:
    query = urlencode({"PROLIFIC_PID": pid, "STUDY_ID": batch.hit_type_id, "SESSION_ID": session})
    return f"/prolific/b/{batch.uid}/?{query}"


def arrive(base: str, batch: HitBatch) -> Browser:
    """FIRST opens the study URL and lands on their task page."""
    browser = Browser(base)
    page = browser.get(study_url(batch, FIRST, SESSION))
    assert page.status == 200 and "/task/" in page.url, (page.status, page.text[:300])
    return browser


def test_prolific_participant_is_bound_and_another_pid_later_is_refused(prolific, study):
    browser = arrive(prolific, study)
    mine = Assignment.objects.get()
    assert mine.provider_assignment_id == SESSION
    assert mine.worker.id_hash == worker_id_hash(FIRST)
    cookie = browser.cookie("market_worker")
    assert cookie  # signed: the browser keeps its own id, the database only its hash
    before = state()

    # The same browser follows a link naming another participant, with a fresh session.
    page = browser.get(study_url(study, OTHER, "f" * 24))
    assert page.status == 403
    assert "already takes part as another participant" in page.text
    assert "/task/" not in page.url
    assert state() == before
    assert browser.cookie("market_worker") == cookie
    assert not Worker.objects.filter(id_hash=worker_id_hash(OTHER)).exists()

    # Another browser claims FIRST's session as OTHER: the session is not theirs.
    thief = Browser(prolific)
    page = thief.get(study_url(study, OTHER, SESSION))
    assert page.status == 403 and "This session belongs to another participant" in page.text
    assert thief.cookie("market_worker") is None
    assert state() == before


def test_prolific_forged_session_on_the_task_page_is_refused(prolific, study):
    browser = arrive(prolific, study)
    mine = Assignment.objects.select_related("hit").get()
    before = state()
    base = {
        "hitId": mine.hit.provider_hit_id,
        "workerId": FIRST,
        "turkSubmitTo": f"{prolific}/prolific",
    }

    # A session id we never handed out, even from the participant's own browser.
    forged = browser.get(f"/task/{mine.hit_id}/?{urlencode({**base, 'assignmentId': 'X' * 24})}")
    assert forged.status == 403 and "Not your assignment" in forged.text
    assert 'id="task-data"' not in forged.text
    assert state() == before

    # FIRST's real session id opened by a browser bound to someone else.
    other = Browser(prolific)
    page = other.get(study_url(study, OTHER, "e" * 24))
    assert page.status == 200 and "/task/" in page.url
    after_other = state()
    own = f"/task/{mine.hit_id}/?{urlencode({**base, 'assignmentId': SESSION})}"
    stolen = other.get(own)
    assert stolen.status == 403 and "belongs to another worker" in stolen.text
    assert 'id="task-data"' not in stolen.text
    assert state() == after_other
    # FIRST's own assignment is untouched: still theirs, still open.
    assert set(before[:-1]) <= set(after_other)
    mine.refresh_from_db()
    assert mine.status == "Accepted" and mine.worker.id_hash == worker_id_hash(FIRST)
