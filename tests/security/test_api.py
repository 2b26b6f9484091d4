"""Malformed bodies over real HTTP: the API and the task-submit endpoint answer 400 with a
message (never a 500), and nothing in the database or the media folder changes."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from annotation.models import Dataset, Item, Vote
from hits.models import Assignment, Hit, HitBatch
from hits.services import market_accept
from hits.task_tokens import token_issue
from tests.tasks.conftest import taskdata

pytestmark = pytest.mark.django_db(transaction=True)

DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


@dataclass
class Reply:
    status: int
    body: dict

    def message(self) -> str:
        return json.dumps(self.body)


def http(url: str, body: bytes | None = None, *, method: str = "POST", headers=None) -> Reply:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return Reply(status, json.loads(raw))
    except ValueError:
        return Reply(status, {"not_json": raw[:300].decode("latin-1")})


@pytest.fixture
def site(live_server, django_user_model, media_root):
    """A staff token, a dataset, an open marketplace batch with one HIT, and one assignment
    handed out by the marketplace (with its task token)."""
    from rest_framework.authtoken.models import Token

    td = taskdata
    staff = django_user_model.objects.create_user("staff", password="pw-for-tests-1", is_staff=True)
    dataset = td.make_dataset("sec-shapes", n=20, k=4, gold_every=5)
    hit = td.make_hit(dataset, "verify", items_per_hit=8, gold_rate=0.0)
    assignment = market_accept(hit, "SECWORKER1")

    class Site:
        url = live_server.url
        token = Token.objects.create(user=staff).key

    Site.dataset, Site.hit, Site.batch, Site.assignment = dataset, hit, hit.batch, assignment
    Site.task_token = token_issue(assignment)
    Site.answers = td.valid_answers(hit, assignment)
    return Site


@pytest.fixture
def unchanged(media_root):
    """Everything a refused request must leave as it was."""

    def snapshot() -> tuple:
        root = Path(media_root)
        files = sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []
        return (
            list(Dataset.objects.values_list("id", "name", "description").order_by("id")),
            Item.objects.count(),
            Vote.objects.count(),
            list(HitBatch.objects.values_list("id", "status", "name", "items_per_hit")),
            list(Hit.objects.values_list("id", "status", "expires_at")),
            list(Assignment.objects.values_list("id", "status", "raw_answer", "submitted_at")),
            files,
        )

    return snapshot


def api(site, path: str, body: bytes, *, method="POST", content_type="application/json"):
    headers = {"Authorization": f"Token {site.token}", "Content-Type": content_type}
    return http(site.url + path, body, method=method, headers=headers)


def api_targets(site) -> list[tuple[str, str]]:
    a = site.assignment.pk
    return [
        ("POST", "/api/datasets/"),
        ("POST", "/api/hits/batches/"),
        ("PATCH", f"/api/hits/batches/{site.batch.pk}/"),
        ("POST", f"/api/hits/batches/{site.batch.pk}/launch/"),
        ("POST", f"/api/hits/batches/{site.batch.pk}/extend/"),
        ("POST", f"/api/hits/assignments/{a}/bonus/"),
        ("POST", f"/api/hits/assignments/{a}/reject/"),
    ]


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deep_json_to_the_api_is_a_400_that_says_so(site, unchanged, body):
    before = unchanged()
    for method, path in api_targets(site):
        reply = api(site, path, body, method=method)
        assert reply.status == 400, (path, reply)
        assert "nested deeper than 64 levels" in reply.body["detail"], (path, reply)
    assert unchanged() == before


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"name": "\xff\xfe"}', "application/json", "not valid utf-8 text"),
        ('{"name": "donn\u00e9es"}'.encode("latin-1"), "application/json", "not valid utf-8"),
        (b'{"name": "x"}', "application/json; charset=utf-16", "not valid utf-16"),
        (zlib.compress(b'{"name": "x"}'), "application/json; charset=zlib_codec", "charset"),
        (b'{"name": "x"}', "application/json; charset=rot13", "unsupported charset"),
        (b'{"gold_rate": 1e999}', "application/json", "out of range"),
        (b'{"gold_rate": NaN}', "application/json", "is not a JSON number"),
        (b'{"name": "a\\u0000b"}', "application/json", "NUL"),
    ],
    ids=["invalid-utf8", "latin1-as-utf8", "utf16-charset", "zlib", "rot13", "inf", "nan", "nul"],
)
def test_undecodable_bodies_to_the_api_are_a_400(site, unchanged, body, content_type, says):
    before = unchanged()
    for method, path in api_targets(site):
        reply = api(site, path, body, method=method, content_type=content_type)
        assert reply.status == 400, (path, reply)
        assert says in reply.body["detail"], (path, reply)
    assert unchanged() == before


def test_non_ascii_and_wrong_types_to_the_api_name_the_field(site, unchanged):
    before = unchanged()
    b, a = site.batch.pk, site.assignment.pk
    cases = [
        ("/api/datasets/", {"name": "donn\u00e9es-\u6570\u636e", "format": "climage"}, "name"),
        (
            "/api/hits/batches/",
            {"name": "x", "kind": "verify", "items_per_hit": 10**30},
            "items_per_hit",
        ),
        ("/api/hits/batches/", {"name": "x", "dataset": 10**30, "kind": "verify"}, "dataset"),
        ("/api/hits/batches/", [1, 2], "non_field_errors"),
        (f"/api/hits/batches/{b}/launch/", ["confirm_live"], "non_field_errors"),
        (f"/api/hits/batches/{b}/launch/", {"confirm_live": {"yes": 1}}, "confirm_live"),
        (f"/api/hits/batches/{b}/extend/", {"seconds": "a day"}, "seconds"),
        (f"/api/hits/batches/{b}/extend/", {"seconds": 10**30}, "seconds"),
        (f"/api/hits/batches/{b}/notify/", {}, "subject"),
        (f"/api/hits/batches/{b}/notify/", {"subject": ["x"], "message": "m"}, "subject"),
        (f"/api/hits/batches/{b}/approve-submitted/", "thanks", "non_field_errors"),
        (f"/api/hits/assignments/{a}/bonus/", {"amount": "NaN", "reason": "r"}, "amount"),
        (f"/api/hits/assignments/{a}/bonus/", {"amount": "1e999", "reason": "r"}, "amount"),
        (f"/api/hits/assignments/{a}/bonus/", {"amount": "0.50"}, "reason"),
        (f"/api/hits/assignments/{a}/reject/", {"message": "  "}, "message"),
        (f"/api/hits/assignments/{a}/block/", {"reason": {"x": 1}}, "reason"),
    ]
    for path, payload, field in cases:
        reply = api(site, path, json.dumps(payload).encode())
        assert reply.status == 400, (path, payload, reply)
        assert reply.body.get(field), (path, payload, reply)
    queries = [
        ("/api/votes/?dataset=abc", "dataset"),
        (f"/api/votes/?dataset={10**30}", "dataset"),
        ("/api/votes/?kind=%00", "kind"),
        (f"/api/items/?dataset={site.dataset.pk}&label={10**30}", "label"),
        ("/api/items/?dataset=999999", "dataset"),
        ("/api/hits/assignments/?batch=abc", "batch"),
        (f"/api/hits/assignments/?batch={10**30}", "batch"),
        ("/api/hits/assignments/?status=%00", "status"),
    ]
    for query, field in queries:
        reply = http(
            site.url + query, method="GET", headers={"Authorization": f"Token {site.token}"}
        )
        assert reply.status == 400, (query, reply)
        assert reply.body.get(field), (query, reply)
    assert unchanged() == before


def submit_form(site, fields: dict | bytes) -> Reply:
    body = fields if isinstance(fields, bytes) else urllib.parse.urlencode(fields).encode()
    return http(
        f"{site.url}/task/{site.hit.pk}/submit/",
        body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def submit_json(site, body: bytes) -> Reply:
    return http(
        f"{site.url}/task/{site.hit.pk}/submit/",
        body,
        headers={"Content-Type": "application/json"},
    )


def test_deep_and_undecodable_answers_to_task_submit_are_a_400(site, unchanged):
    before = unchanged()
    token = site.task_token
    item = site.answers[0]["item"]
    refusals = [
        submit_form(site, {"token": token, "answers": "[" * 5_000 + "]" * 5_000}),
        submit_form(site, {"token": token, "answers": '{"a":' * 5_000 + "1" + "}" * 5_000}),
        submit_form(site, f"token={token}&answers=%FF%FE%5B".encode()),
        submit_form(
            site, {"token": token, "answers": json.dumps([{"item": item, "answer": 1e300}])}
        ),
        submit_json(site, json.dumps({"token": token, "answers": "[" * 5_000}).encode()),
        submit_json(site, b'{"token": "' + token.encode() + b'", "answers": "\xff\xfe"}'),
        submit_json(site, '{"token": "t", "answers": "donn\u00e9es"}'.encode("latin-1")),
        submit_json(
            site,
            json.dumps({"token": token, "answers": [{"item": 10**30, "answer": 10**30}]}).encode(),
        ),
        submit_json(site, json.dumps({"token": token, "answers": [[[[{"item": item}]]]]}).encode()),
        http(
            f"{site.url}/task/{site.hit.pk}/submit/",
            b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\nx\r\n--b--\r\n',
            headers={"Content-Type": "multipart/form-data; boundary=b; charset=zlib_codec"},
        ),
    ]
    for reply in refusals:
        assert reply.status == 400, reply
        assert reply.body["ok"] is False and reply.body["error"], reply
    assert unchanged() == before
    # The refusals cost the worker nothing: the same assignment still submits.
    ok = submit_json(site, json.dumps({"token": token, "answers": site.answers}).encode())
    assert ok.status == 200 and ok.body["ok"], ok
    assert Vote.objects.filter(assignment_id=site.assignment.pk).count() == len(site.answers)


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deep_json_body_to_task_submit_is_a_400(site, unchanged, body):
    before = unchanged()
    reply = submit_json(site, body)
    assert reply.status == 400, reply
    assert reply.body["ok"] is False and reply.body["error"], reply
    assert unchanged() == before
