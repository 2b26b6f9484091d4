"""The local MTurk endpoint speaks MTurk's protocol to real boto3 over HTTP, validates like MTurk
and runs HITs and assignments through MTurk's state machines."""

import gzip
import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import botocore
import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from hits.answers import external_question, parse_question_form_answers
from hits.localturk.api import OPERATIONS
from hits.localturk.models import Account, Assignment, CallLog, WorkerBlock
from hits.qualifications import MASTERS, NUMBER_HITS_APPROVED, PERCENT_ASSIGNMENTS_APPROVED

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION_URL = "https://example.org/task/1/"


def service_model() -> dict:
    path = Path(botocore.__file__).parent / "data/mturk/2017-01-17/service-2.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


def hit_type(client, **overrides) -> str:
    params = {
        "AutoApprovalDelayInSeconds": 3600,
        "AssignmentDurationInSeconds": 600,
        "Reward": "0.05",
        "Title": "Verify labels",
        "Description": "Is the label right?",
    }
    params.update(overrides)
    return client.create_hit_type(**params)["HITTypeId"]


def create_hit(client, type_id, url=QUESTION_URL, **overrides):
    params = {
        "HITTypeId": type_id,
        "MaxAssignments": 3,
        "LifetimeInSeconds": 3600,
        "Question": external_question(url),
    }
    params.update(overrides)
    return client.create_hit_with_hit_type(**params)["HIT"]


def error_of(excinfo) -> tuple[str, str]:
    resp = excinfo.value.response
    return resp["Error"]["Code"], resp.get("TurkErrorCode", "")


def test_every_operation_is_one_of_mturks():
    ops = set(service_model()["operations"])
    assert set(OPERATIONS) <= ops


def test_hit_round_trip_with_epoch_times_and_string_money(localturk):
    client = localturk.client()
    type_id = hit_type(client)
    assert hit_type(client) == type_id, "identical properties give the same HIT type"
    hit = create_hit(client, type_id, RequesterAnnotation="batch:1")
    assert hit["HITStatus"] == "Assignable" and hit["Reward"] == "0.05"
    assert hit["NumberOfAssignmentsAvailable"] == 3
    assert hit["Expiration"] - hit["CreationTime"] == timedelta(hours=1)
    got = client.get_hit(HITId=hit["HITId"])["HIT"]
    assert got["RequesterAnnotation"] == "batch:1"
    assert client.get_account_balance()["AvailableBalance"] == "10000.00"


def test_unique_request_token_gives_hit_already_exists_naming_the_hit(localturk):
    client = localturk.client()
    type_id = hit_type(client)
    first = create_hit(client, type_id, UniqueRequestToken="batch-7-1")
    with pytest.raises(ClientError) as exc:
        create_hit(client, type_id, UniqueRequestToken="batch-7-1")
    assert error_of(exc) == ("RequestError", "AWS.MechanicalTurk.HitAlreadyExists")
    assert first["HITId"] in exc.value.response["Error"]["Message"]
    assert len(client.list_hits()["HITs"]) == 1


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"Reward": "0.055"}, "AWS.MechanicalTurk.InvalidCurrencyAmount"),
        ({"Reward": "$1"}, "AWS.MechanicalTurk.InvalidCurrencyAmount"),
        ({"AssignmentDurationInSeconds": 10}, "AWS.ParameterOutOfRange"),
        ({"AutoApprovalDelayInSeconds": 40 * 24 * 3600}, "AWS.ParameterOutOfRange"),
        (
            {
                "QualificationRequirements": [
                    {"QualificationTypeId": "X", "Comparator": "Exists", "IntegerValues": [1]}
                ]
            },
            "AWS.ParameterOutOfRange",
        ),
    ],
)
def test_hit_type_validation(localturk, overrides, code):
    with pytest.raises(ClientError) as exc:
        hit_type(localturk.client(), **overrides)
    assert error_of(exc) == ("RequestError", code)


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"LifetimeInSeconds": 5}, "AWS.ParameterOutOfRange"),
        ({"MaxAssignments": 0}, "AWS.ParameterOutOfRange"),
        ({"Question": "<ExternalQuestion><ExternalURL>x"}, "AWS.MechanicalTurk.XMLParseError"),
        ({"Question": "<HTMLQuestion/>"}, "AWS.MechanicalTurk.XMLParseError"),
        (
            {"Question": external_question("http://example.org/task/")},
            "AWS.MechanicalTurk.InvalidURL",
        ),
    ],
)
def test_hit_validation(localturk, overrides, code):
    client = localturk.client()
    type_id = hit_type(client)
    with pytest.raises(ClientError) as exc:
        create_hit(client, type_id, **overrides)
    assert error_of(exc) == ("RequestError", code)
    assert client.list_hits()["HITs"] == []


def test_wire_protocol_errors(localturk):
    """The body and target of a signed call are checked like AWS checks them."""
    status, body = localturk.call("GetAccountBalance", b"{}")
    assert (status, body["AvailableBalance"]) == (200, "10000.00")
    status, body = localturk.call("NoSuchThing", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = localturk.call("GetHIT", b"not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = localturk.call("CreateHITType", {"Title": "x"})
    assert status == 400 and body["__type"] == "RequestError" and body["TurkErrorCode"]


def test_an_unsigned_call_is_refused_in_mturks_wire_format(localturk):
    req = urllib.request.Request(
        localturk.endpoint(),
        data=b"{}",
        headers={
            "X-Amz-Target": "MTurkRequesterServiceV20170117.GetAccountBalance",
            "Content-Type": "application/x-amz-json-1.1",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(exc.value.read())["__type"] == "MissingAuthenticationTokenException"


def test_pagination_of_assignments(localturk, settings):
    client = localturk.client()
    hit = create_hit(
        client,
        hit_type(client),
        MaxAssignments=5,
        Question=external_question(f"{localturk.base}/nowhere/"),
    )
    for n in range(5):
        browser = localturk.browser(f"A{n}PAGEWORKER")
        page = localturk.accept(browser, hit["HITId"])
        aid = page.url.rstrip("/").rsplit("/", 1)[1]
        browser.post(
            "/localturk/mturk/externalSubmit",
            {"assignmentId": aid, "answers": f"[{n}]"},
            csrf=False,
        )
    first = client.list_assignments_for_hit(HITId=hit["HITId"], MaxResults=2)
    assert first["NumResults"] == 2 and first["NextToken"]
    seen = [a["AssignmentId"] for a in first["Assignments"]]
    token = first["NextToken"]
    while token:
        page = client.list_assignments_for_hit(HITId=hit["HITId"], MaxResults=2, NextToken=token)
        seen += [a["AssignmentId"] for a in page["Assignments"]]
        token = page.get("NextToken")
    assert len(seen) == len(set(seen)) == 5
    answers = sorted(
        parse_question_form_answers(a["Answer"])["answers"]
        for a in client.list_assignments_for_hit(HITId=hit["HITId"], MaxResults=100)["Assignments"]
    )
    assert answers == [f"[{n}]" for n in range(5)]


def test_qualifications_block_and_one_assignment_per_worker(localturk):
    client = localturk.client()
    adc = [
        {"QualificationTypeId": MASTERS["sandbox"], "Comparator": "Exists"},
        {
            "QualificationTypeId": PERCENT_ASSIGNMENTS_APPROVED,
            "Comparator": "GreaterThan",
            "IntegerValues": [85],
        },
        {
            "QualificationTypeId": NUMBER_HITS_APPROVED,
            "Comparator": "GreaterThan",
            "IntegerValues": [500],
        },
        {
            "QualificationTypeId": "00000000000000000071",
            "Comparator": "In",
            "LocaleValues": [{"Country": "US"}, {"Country": "CA"}],
        },
    ]
    hit = create_hit(
        client,
        hit_type(client, QualificationRequirements=adc),
        Question=external_question(f"{localturk.base}/nowhere/"),
    )
    hid = hit["HITId"]
    localturk.worker("AMASTER1", masters=True, approval_rate=99, approved_count=5000)
    localturk.worker("ANOVICE1", masters=False, approval_rate=99, approved_count=5000)
    localturk.worker("ALOWRATE", masters=True, approval_rate=85, approved_count=5000)
    localturk.worker("AFEWHITS", masters=True, approval_rate=99, approved_count=500)
    localturk.worker(
        "AABROAD1", masters=True, approval_rate=99, approved_count=5000, locale_country="DE"
    )
    for wid in ("ANOVICE1", "ALOWRATE", "AFEWHITS", "AABROAD1"):
        page = localturk.accept(localturk.browser(wid), hid)
        assert page.status == 409 and "qualification" in page.text, wid
    master = localturk.browser("AMASTER1")
    assert localturk.accept(master, hid).status == 200
    again = localturk.accept(master, hid)
    assert again.status == 409 and "already" in again.text
    assert Assignment.objects.filter(hit__hit_id=hid).count() == 1

    client.create_worker_block(WorkerId="AMASTER1", Reason="spam")
    other = create_hit(
        client, hit_type(client), Question=external_question(f"{localturk.base}/nowhere/")
    )
    assert localturk.accept(master, other["HITId"]).status == 409
    assert WorkerBlock.objects.count() == 1


def test_assignment_states_review_bonus_and_deletion(localturk):
    client = localturk.client()
    type_id = hit_type(client, AutoApprovalDelayInSeconds=3600)
    hit = create_hit(
        client, type_id, MaxAssignments=2, Question=external_question(f"{localturk.base}/nowhere/")
    )
    hid = hit["HITId"]
    ids = []
    for wid in ("AWORKERONE", "AWORKERTWO"):
        b = localturk.browser(wid)
        aid = localturk.accept(b, hid).url.rstrip("/").rsplit("/", 1)[1]
        b.post(
            "/localturk/mturk/externalSubmit", {"assignmentId": aid, "answers": "[]"}, csrf=False
        )
        ids.append(aid)
    assert client.get_hit(HITId=hid)["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(ClientError) as exc:
        client.delete_hit(HITId=hid)
    assert error_of(exc)[1] == "AWS.MechanicalTurk.InvalidHITState"

    client.approve_assignment(AssignmentId=ids[0])
    with pytest.raises(ClientError) as exc:
        client.approve_assignment(AssignmentId=ids[0])
    assert error_of(exc)[1] == "AWS.MechanicalTurk.InvalidAssignmentState"
    client.reject_assignment(AssignmentId=ids[1], RequesterFeedback="Gold answers were wrong.")
    got = client.get_assignment(AssignmentId=ids[1])["Assignment"]
    assert (
        got["AssignmentStatus"] == "Rejected"
        and got["RequesterFeedback"] == "Gold answers were wrong."
    )

    # 0.05 reward + 0.01 fee (20%, at least a cent) paid on approval; 1.00 bonus + 0.20 fee.
    client.send_bonus(
        WorkerId="AWORKERONE",
        BonusAmount="1.00",
        AssignmentId=ids[0],
        Reason="thanks",
        UniqueRequestToken="b1",
    )
    with pytest.raises(ClientError):
        client.send_bonus(
            WorkerId="AWORKERONE",
            BonusAmount="1.00",
            AssignmentId=ids[0],
            Reason="thanks",
            UniqueRequestToken="b1",
        )
    assert client.get_account_balance()["AvailableBalance"] == "9998.74"
    client.delete_hit(HITId=hid)
    with pytest.raises(ClientError) as exc:
        client.get_hit(HITId=hid)
    assert error_of(exc)[1] == "AWS.MechanicalTurk.HITDoesNotExist"


def test_auto_approval_and_expiry(localturk):
    client = localturk.client()
    hit = create_hit(
        client,
        hit_type(client, AutoApprovalDelayInSeconds=0),
        MaxAssignments=2,
        Question=external_question(f"{localturk.base}/nowhere/"),
    )
    hid = hit["HITId"]
    b = localturk.browser("AWORKERAUTO")
    aid = localturk.accept(b, hid).url.rstrip("/").rsplit("/", 1)[1]
    b.post("/localturk/mturk/externalSubmit", {"assignmentId": aid, "answers": "[]"}, csrf=False)
    assert client.get_assignment(AssignmentId=aid)["Assignment"]["AssignmentStatus"] == "Approved"
    assert client.get_hit(HITId=hid)["HIT"]["HITStatus"] == "Assignable"
    client.update_expiration_for_hit(HITId=hid, ExpireAt=timezone.now() - timedelta(minutes=1))
    got = client.get_hit(HITId=hid)["HIT"]
    assert got["HITStatus"] == "Reviewable" and got["NumberOfAssignmentsAvailable"] == 0
    page = localturk.accept(localturk.browser("ALATECOMER"), hid)
    assert page.status == 409


def test_additional_assignments_follow_the_ten_assignment_rule(localturk):
    client = localturk.client()
    hit = create_hit(client, hit_type(client), MaxAssignments=3)
    client.create_additional_assignments_for_hit(
        HITId=hit["HITId"], NumberOfAdditionalAssignments=2, UniqueRequestToken="x1"
    )
    with pytest.raises(ClientError):
        client.create_additional_assignments_for_hit(
            HITId=hit["HITId"], NumberOfAdditionalAssignments=2, UniqueRequestToken="x1"
        )
    with pytest.raises(ClientError) as exc:
        client.create_additional_assignments_for_hit(
            HITId=hit["HITId"], NumberOfAdditionalAssignments=5
        )
    assert error_of(exc)[1] == "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    assert client.get_hit(HITId=hit["HITId"])["HIT"]["MaxAssignments"] == 5


def test_insufficient_funds(localturk):
    Account.objects.create(realm="default", balance="0.10")
    client = localturk.client()
    with pytest.raises(ClientError) as exc:
        create_hit(client, hit_type(client), MaxAssignments=3)
    assert error_of(exc)[1] == "AWS.MechanicalTurk.InsufficientFunds"


def test_injected_throttling_and_faults_reach_boto3_as_aws_errors(localturk):
    client = localturk.client()
    localturk.faults(throttle_rate=1.0, max_consecutive=1)
    with pytest.raises(ClientError) as exc:
        client.get_account_balance()
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"
    assert client.get_account_balance()["AvailableBalance"], "a run of faults is bounded"
    localturk.faults(throttle_rate=0.0, fault_rate=1.0, max_consecutive=1, consecutive=0)
    with pytest.raises(ClientError) as exc:
        client.get_account_balance()
    assert exc.value.response["Error"]["Code"] == "ServiceFault"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    codes = list(CallLog.objects.values_list("error_code", flat=True))
    assert codes == ["ThrottlingException", "", "ServiceFault"]


def test_realms_are_separate_marketplaces(localturk):
    create_hit(localturk.client("other"), hit_type(localturk.client("other")))
    assert localturk.client().list_hits()["HITs"] == []
    assert len(localturk.client("other").list_hits()["HITs"]) == 1


def _assignment_of(page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[1]


def test_returned_or_abandoned_hit_can_be_accepted_again_under_a_new_assignment_id(localturk):
    """As on MTurk: the worker who returned a HIT (or let it run out) may accept it again, and
    the new work has a new assignment id; the old one can no longer be worked on or submitted."""
    client = localturk.client()
    hit = create_hit(
        client,
        hit_type(client),
        MaxAssignments=1,
        Question=external_question(f"{localturk.base}/x/"),
    )
    hid = hit["HITId"]
    b = localturk.browser("ARETURNER")
    first = _assignment_of(localturk.accept(b, hid))
    assert hid not in localturk.available(b), "the one assignment is taken"
    back = b.post(f"/localturk/worker/assignments/{first}/return/", {})
    assert back.status == 200 and back.url.endswith("/localturk/worker/")
    assert hid in localturk.available(b), "a returned assignment frees its place"

    page = localturk.accept(b, hid)
    assert page.status == 200 and "/localturk/worker/assignments/" in page.url
    second = _assignment_of(page)
    assert second != first
    old = b.get(f"/localturk/worker/assignments/{first}/")
    assert old.status == 409 and "accept the HIT again" in old.text
    late = b.post("/localturk/mturk/externalSubmit", {"assignmentId": first}, csrf=False)
    assert late.status == 409 and "returned" in late.text

    # Abandoned (its time ran out): accepted again under a third id.
    Assignment.objects.filter(assignment_id=second).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )
    third = _assignment_of(localturk.accept(b, hid))
    assert third not in (first, second)
    done = b.post(
        "/localturk/mturk/externalSubmit", {"assignmentId": third, "answers": "[1]"}, csrf=False
    )
    assert done.status == 200 and third in done.text
    statuses = dict(
        Assignment.objects.filter(hit__hit_id=hid).values_list("assignment_id", "status")
    )
    assert statuses == {first: "Returned", second: "Abandoned", third: "Submitted"}
    listed = client.list_assignments_for_hit(HITId=hid)["Assignments"]
    assert [a["AssignmentId"] for a in listed] == [third]


def test_reject_through_the_requester_api_changes_only_the_stand_ins_own_records(
    localturk, make_dataset, make_batch
):
    """RejectAssignment called on "MTurk" rejects MTurk's assignment; our own assignment, its
    votes and its HIT stay exactly as they were until our side syncs or reviews."""
    from annotation.models import Vote
    from hits.models import Assignment as OurAssignment
    from hits.models import Hit as OurHit
    from hits.services import hit_batch_launch

    batch = make_batch(make_dataset(n=20), items_per_hit=20, assignments_per_item=1)
    hit_batch_launch(batch)
    hit = batch.hits.get()
    localturk.do_hit(localturk.browser("AREJECTME"), hit.provider_hit_id)
    ours = OurAssignment.objects.get()
    turk_id = Assignment.objects.get(hit__hit_id=hit.provider_hit_id).assignment_id

    def our_side() -> tuple:
        return (
            list(OurAssignment.objects.order_by("pk").values()),
            list(OurHit.objects.order_by("pk").values()),
            list(Vote.objects.order_by("pk").values()),
        )

    before = our_side()
    assert ours.status == "Submitted" and before[2], "the page submitted votes"
    localturk.client().reject_assignment(AssignmentId=turk_id, RequesterFeedback="Spot check.")
    turk = Assignment.objects.get(assignment_id=turk_id)
    assert (turk.status, turk.requester_feedback) == ("Rejected", "Spot check.")
    assert our_side() == before
