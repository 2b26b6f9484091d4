"""Attacks on the offline MTurk stand-in (/localturk/) over real HTTP, where it is enabled: its
requester API without the key, the fault header outside tests, a forged worker cookie and an
off-site redirect. Each is refused with a message naming the problem and changes nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from hits.answers import external_question
from hits.exceptions import ProviderError
from hits.localturk.models import (
    Account,
    Assignment,
    Bonus,
    CallLog,
    Hit,
    HitType,
    SimWorker,
    WorkerBlock,
)
from hits.providers.mturk import MTurkProvider, _client
from tests.hits.conftest import Browser, LocalTurk

pytestmark = pytest.mark.django_db(transaction=True)
TARGET = "MTurkRequesterServiceV20170117."
COOKIE = "localturk_worker"


@pytest.fixture
def standin(live_server, settings, monkeypatch, tmp_path) -> LocalTurk:
    """The stand-in on a live server; boto3 (ours and the tests') signs with its key."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", settings.LOCALTURK_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", settings.LOCALTURK_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    _client.cache_clear()
    settings.SITE_URL = live_server.url
    settings.MTURK_ENDPOINTS = {
        "sandbox": f"{live_server.url}/localturk/",
        "live": f"{live_server.url}/localturk/realm/live/",
    }
    yield LocalTurk(live_server.url)
    _client.cache_clear()


def send(
    standin: LocalTurk,
    operation: str,
    body: dict,
    *,
    key: str,
    secret: str,
    sent_body: dict | None = None,
    headers: dict | None = None,
    amz_date: str | None = None,
) -> tuple[int, dict]:
    """POST one call signed over ``body``; ``sent_body`` is what actually goes on the wire."""
    data = json.dumps(body).encode()
    head = {
        "X-Amz-Target": TARGET + operation,
        "Content-Type": "application/x-amz-json-1.1",
        **(headers or {}),
    }
    if key:
        aws = AWSRequest(method="POST", url=standin.endpoint(), headers=head, data=data)
        signer = SigV4Auth(Credentials(key, secret), "mturk-requester", "us-east-1")
        if amz_date:
            # Signed correctly, but at another time (a captured request replayed later).
            aws.headers["X-Amz-Date"] = amz_date
            aws.context["timestamp"] = amz_date
            canonical = signer.canonical_request(aws)
            signature = signer.signature(signer.string_to_sign(aws, canonical), aws)
            signed = signer.signed_headers(signer.headers_to_sign(aws))
            aws.headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={signer.scope(aws)}, "
                f"SignedHeaders={signed}, Signature={signature}"
            )
        else:
            signer.add_auth(aws)
        head = dict(aws.headers.items())
    wire = data if sent_body is None else json.dumps(sent_body).encode()
    req = urllib.request.Request(standin.endpoint(), data=wire, headers=head, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def standin_state() -> tuple:
    """Everything the stand-in keeps that a requester call could change."""
    return (
        list(HitType.objects.order_by("pk").values()),
        list(Hit.objects.order_by("pk").values()),
        list(Assignment.objects.order_by("pk").values()),
        list(Account.objects.order_by("pk").values()),
        list(Bonus.objects.order_by("pk").values()),
        list(WorkerBlock.objects.order_by("pk").values()),
        CallLog.objects.count(),
    )


def submitted_assignment(standin: LocalTurk) -> str:
    """A HIT with one submitted assignment, made the legitimate way; its assignment id."""
    client = standin.client()
    type_id = client.create_hit_type(
        AssignmentDurationInSeconds=600,
        Reward="0.05",
        Title="Verify labels",
        Description="Is the label right?",
    )["HITTypeId"]
    hit = client.create_hit_with_hit_type(
        HITTypeId=type_id,
        MaxAssignments=1,
        LifetimeInSeconds=3600,
        Question=external_question(f"{standin.base}/nowhere/"),
    )["HIT"]
    b = standin.browser("AWORKERDONE")
    page = standin.accept(b, hit["HITId"])
    aid = page.url.rstrip("/").rsplit("/", 1)[1]
    b.post("/localturk/mturk/externalSubmit", {"assignmentId": aid, "answers": "[1]"}, csrf=False)
    assert Assignment.objects.get(assignment_id=aid).status == "Submitted"
    return aid


ATTACKS = {
    "unsigned": ({"key": "", "secret": ""}, 403, "MissingAuthenticationTokenException"),
    "unknown key id": (
        {"key": "AKIAATTACKER", "secret": "whatever"},
        400,
        "UnrecognizedClientException",
    ),
    "right key id, wrong secret": ({"key": None, "secret": "guessed"}, 403, "InvalidSignature"),
    "body changed after signing": ({"key": None, "secret": None}, 403, "InvalidSignature"),
    "signature from yesterday": (
        {"key": None, "secret": None, "amz_date": "stale"},
        403,
        "InvalidSignature",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_requester_calls_without_the_key_are_refused_and_change_nothing(standin, settings, attack):
    aid = submitted_assignment(standin)
    before = standin_state()
    auth, status, kind = ATTACKS[attack]
    auth = dict(auth)
    auth["key"] = settings.LOCALTURK_ACCESS_KEY_ID if auth["key"] is None else auth["key"]
    if auth["secret"] is None:
        auth["secret"] = settings.LOCALTURK_SECRET_ACCESS_KEY
    if auth.get("amz_date") == "stale":
        auth["amz_date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 86400))
    calls = [
        ("RejectAssignment", {"AssignmentId": aid, "RequesterFeedback": "bad"}),
        (
            "SendBonus",
            {"WorkerId": "AWORKERDONE", "AssignmentId": aid, "BonusAmount": "50.00", "Reason": "x"},
        ),
        ("CreateWorkerBlock", {"WorkerId": "AWORKERDONE", "Reason": "x"}),
        (
            "CreateHITType",
            {"Title": "t", "Description": "d", "Reward": "1.00", "AssignmentDurationInSeconds": 60},
        ),
    ]
    for operation, body in calls:
        extra = {}
        if attack == "body changed after signing":
            # Signed for a harmless read, sent with a write.
            extra["sent_body"] = body
            body = {"AssignmentId": aid}
        got_status, got = send(standin, operation, body, **auth, **extra)
        assert (got_status, got["__type"][: len(kind)]) == (status, kind), got
        assert got["Message"], "the refusal says what is wrong"
    assert standin_state() == before
    assert Assignment.objects.get(assignment_id=aid).status == "Submitted"
    assert Account.objects.get(realm="default").balance == Decimal("10000.00")


def test_our_provider_with_another_key_is_refused_by_name(standin, monkeypatch):
    """boto3 (through hits.providers.mturk too) holding some other key: refused by name."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERACCOUNT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-secret")
    _client.cache_clear()
    with pytest.raises(ProviderError) as exc:
        MTurkProvider("sandbox").balance()
    assert "UnrecognizedClientException" in str(exc.value)
    assert "AKIAOTHERACCOUNT" in str(exc.value) and "LOCALTURK_ACCESS_KEY_ID" in str(exc.value)
    with pytest.raises(ClientError) as exc2:
        standin.client().create_hit_type(
            AssignmentDurationInSeconds=600, Reward="0.05", Title="t", Description="d"
        )
    assert exc2.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert not HitType.objects.exists() and not CallLog.objects.exists()


def test_fault_header_is_honoured_only_under_test_settings(standin, settings):
    key, secret = settings.LOCALTURK_ACCESS_KEY_ID, settings.LOCALTURK_SECRET_ACCESS_KEY
    fault = {"X-LocalTurk-Fault": "throttle"}
    status, body = send(standin, "GetAccountBalance", {}, key=key, secret=secret, headers=fault)
    assert (status, body["__type"]) == (400, "ThrottlingException"), "tests can inject faults"

    settings.TESTING = False
    status, body = send(standin, "GetAccountBalance", {}, key=key, secret=secret, headers=fault)
    assert (status, body["AvailableBalance"]) == (200, "10000.00")
    type_body = {"Title": "t", "Description": "d", "Reward": "0.05"}
    type_body["AssignmentDurationInSeconds"] = 600
    status, body = send(
        standin,
        "CreateHITType",
        type_body,
        key=key,
        secret=secret,
        headers={"X-LocalTurk-Fault": "fault_after"},
    )
    assert status == 200 and HitType.objects.get().hit_type_id == body["HITTypeId"]
    started = time.monotonic()
    status, _ = send(
        standin,
        "GetAccountBalance",
        {},
        key=key,
        secret=secret,
        headers={"X-LocalTurk-Fault": "delay=20000"},
    )
    assert status == 200 and time.monotonic() - started < 10, "no caller can stall the server"
    assert list(CallLog.objects.values_list("error_code", flat=True)) == [
        "ThrottlingException",
        "",
        "",
        "",
    ]


def _set_cookie(browser: Browser, value: str) -> None:
    for cookie in browser.jar:
        if cookie.name == COOKIE:
            cookie.value = value
            return
    raise AssertionError("no worker cookie was set")


@pytest.mark.parametrize("forge", ["plain id", "another id, same signature", "signature edited"])
def test_forged_worker_cookie_counts_as_no_worker(standin, forge):
    aid = submitted_assignment(standin)  # a HIT of AWORKERDONE's
    victim = standin.browser("AVICTIM")
    client = standin.client()
    hit = Hit.objects.get()
    client.create_additional_assignments_for_hit(HITId=hit.hit_id, NumberOfAdditionalAssignments=1)
    victims = victim.post(f"/localturk/worker/hits/{hit.hit_id}/accept/", {})
    victim_aid = victims.url.rstrip("/").rsplit("/", 1)[1]
    honest = standin.browser("AHONEST")
    signed = honest.cookie(COOKIE)
    assert signed and signed.startswith("AHONEST:")
    forged = {
        "plain id": "AVICTIM",
        "another id, same signature": "AVICTIM:" + signed.split(":", 1)[1],
        "signature edited": signed[:-1] + ("A" if signed[-1] != "A" else "B"),
    }[forge]
    _set_cookie(honest, forged)
    before = standin_state()

    listing = honest.get("/localturk/worker/")
    assert listing.status == 200 and "worker AVICTIM" not in listing.text
    assert "worker AHONEST" not in listing.text, "a tampered cookie is no cookie"
    page = honest.get(f"/localturk/worker/assignments/{victim_aid}/")
    assert page.status == 400 and "another worker" in page.text
    accept = honest.post(f"/localturk/worker/hits/{hit.hit_id}/accept/", {})
    assert accept.status == 400 and "Say which worker you are" in accept.text
    gone = honest.post(f"/localturk/worker/assignments/{victim_aid}/return/", {})
    assert gone.status == 404
    assert standin_state() == before
    assert Assignment.objects.get(assignment_id=victim_aid).status == "Accepted"
    assert Assignment.objects.get(assignment_id=aid).status == "Submitted"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _login(standin: LocalTurk, worker_id: str, next_url: str) -> tuple[int, str, str, Browser]:
    """Post the worker form with ``next``; (status, Location, page text, browser), unfollowed."""
    b = Browser(standin.base)
    b.get("/localturk/worker/")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(b.jar), _NoRedirect())
    data = {"worker_id": worker_id, "next": next_url, "csrfmiddlewaretoken": b.cookie("csrftoken")}
    req = urllib.request.Request(
        standin.base + "/localturk/worker/login/",
        data=urllib.parse.urlencode(data).encode(),
        method="POST",
    )
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Location", ""), resp.read().decode(), b
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", ""), exc.read().decode(), b


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/phish",
        "https://evil.example/phish",
        "http://evil.example/localturk/worker/",
        "/\\evil.example/phish",
        "javascript:alert(1)",
    ],
)
def test_off_site_redirect_after_login_is_refused(standin, target):
    status, location, text, b = _login(standin, "ANEWWORKER", target)
    assert (status, location) == (400, "")
    assert "is not on this site" in text
    assert not SimWorker.objects.filter(worker_id="ANEWWORKER").exists()
    assert b.cookie(COOKIE) is None


def test_redirect_to_this_site_is_followed(standin):
    status, location, _, b = _login(standin, "ANEWWORKER", "/localturk/worker/?realm=live")
    assert (status, location) == (302, "/localturk/worker/?realm=live")
    assert b.cookie(COOKIE).startswith("ANEWWORKER:")
    status, location, _, _ = _login(standin, "ANEWWORKER", f"{standin.base}/localturk/worker/")
    assert (status, location) == (302, f"{standin.base}/localturk/worker/")
