"""Fixtures for the hits tests: the local MTurk endpoint on a live server, datasets, batches and
simulated workers who do over HTTP exactly what a worker's browser does."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from http.cookiejar import CookieJar

import pytest

from annotation import kinds
from annotation.services import dataset_import_from_args
from hits.localturk.models import FaultPlan, SimWorker
from hits.models import Hit, HitBatch
from hits.providers.mturk import _client


@pytest.fixture(autouse=True)
def no_real_mturk(settings):
    """No test can reach Amazon: unless a test points them at the local endpoint, both
    environments lead to a closed local port."""
    settings.MTURK_ENDPOINTS = {
        "sandbox": "http://127.0.0.1:9/no-sandbox/",
        "live": "http://127.0.0.1:9/no-live/",
    }


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials through boto3's default chain; no profile of the machine is read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    _client.cache_clear()


@dataclass
class Page:
    status: int
    url: str
    text: str

    def task_data(self) -> dict:
        m = re.search(
            r'<script id="task-data" type="application/json">(.*?)</script>', self.text, re.S
        )
        assert m, f"no task data on {self.url}: {self.text[:300]}"
        return json.loads(m.group(1))


class Browser:
    """A worker's browser: cookies, redirects, forms with Django's CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _url(self, url: str) -> str:
        return url if url.startswith("http") else self.base + url

    def _open(self, req) -> Page:
        try:
            with self.opener.open(req, timeout=60) as resp:
                return Page(resp.status, resp.url, resp.read().decode())
        except urllib.error.HTTPError as exc:
            return Page(exc.code, exc.url, exc.read().decode())

    def get(self, url: str) -> Page:
        return self._open(urllib.request.Request(self._url(url)))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def post(self, url: str, data: dict, *, csrf: bool = True) -> Page:
        data = dict(data)
        if csrf and self.cookie("csrftoken"):
            data["csrfmiddlewaretoken"] = self.cookie("csrftoken")
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self._url(url), data=body, method="POST"))

    def post_json(self, url: str, payload: dict) -> tuple[int, dict]:
        req = urllib.request.Request(
            self._url(url),
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        page = self._open(req)
        return page.status, json.loads(page.text)


def hit_answers(hit: Hit, answer: int = 0) -> list[dict]:
    """A valid answer to every problem on the HIT."""
    return [{"item": i, "answer": answer} for i in kinds.get(hit.batch.kind).item_ids(hit.items)]


def simulate_worker_submit(browser: Browser, task_src: str, answers: list[dict]) -> dict:
    """What the task page does for a worker: open it with MTurk's parameters (which opens our
    assignment), store the answers through its submit endpoint, then post the form to
    ``{turkSubmitTo}/mturk/externalSubmit``. Returns the page's data."""
    page = browser.get(task_src)
    assert page.status == 200, (page.status, page.text[:500])
    data = page.task_data()
    status, out = browser.post_json(data["submitUrl"], {"token": data["token"], "answers": answers})
    assert status == 200 and out["ok"], out
    fields = {"assignmentId": data["assignmentId"], "answers": json.dumps(out["answers"])}
    fields.update({f"item_{a['item']}": str(a["answer"]) for a in out["answers"]})
    done = browser.post(data["externalSubmit"], fields, csrf=False)
    assert done.status in (200, 302), (done.status, done.text[:500])
    data["done_page"] = done
    return data


class LocalTurk:
    """The local MTurk endpoint on the live server, and its simulated workers."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def endpoint(self, realm: str | None = None) -> str:
        return f"{self.base}/localturk/" + (f"realm/{realm}/" if realm else "")

    def client(self, realm: str | None = None, **config):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "mturk",
            region_name="us-east-1",
            endpoint_url=self.endpoint(realm),
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}, **config),
        )

    def call(
        self,
        operation: str,
        body: dict | bytes,
        *,
        key: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        realm: str | None = None,
    ) -> tuple[int, dict]:
        """One requester API call over plain HTTP, signed (SigV4, as boto3 signs) with ``key`` /
        ``secret`` (the endpoint's own by default; ``key=""`` sends it unsigned)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from django.conf import settings

        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = {
            "X-Amz-Target": f"MTurkRequesterServiceV20170117.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            **(headers or {}),
        }
        key = settings.LOCALTURK_ACCESS_KEY_ID if key is None else key
        if key:
            secret = settings.LOCALTURK_SECRET_ACCESS_KEY if secret is None else secret
            aws = AWSRequest(method="POST", url=self.endpoint(realm), headers=head, data=data)
            SigV4Auth(Credentials(key, secret), "mturk-requester", "us-east-1").add_auth(aws)
            head = dict(aws.headers.items())
        req = urllib.request.Request(self.endpoint(realm), data=data, headers=head, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def faults(self, realm: str = "default", **plan) -> FaultPlan:
        obj, _ = FaultPlan.objects.update_or_create(realm=realm, defaults=plan)
        return obj

    def worker(self, worker_id: str, **quals) -> SimWorker:
        obj, _ = SimWorker.objects.update_or_create(worker_id=worker_id, defaults=quals)
        return obj

    def browser(self, worker_id: str) -> Browser:
        """A browser logged in to the simulated MTurk worker site as ``worker_id``."""
        b = Browser(self.base)
        b.get("/localturk/worker/")
        page = b.post(
            "/localturk/worker/login/", {"worker_id": worker_id, "next": "/localturk/worker/"}
        )
        assert page.status == 200, page.text[:300]
        return b

    def available(self, browser: Browser, realm: str = "default") -> list[str]:
        page = browser.get(f"/localturk/worker/?realm={realm}")
        return re.findall(r'href="/localturk/worker/hits/([A-Z0-9]+)/"', page.text)

    def accept(self, browser: Browser, hit_id: str) -> Page:
        browser.get(f"/localturk/worker/hits/{hit_id}/")
        return browser.post(f"/localturk/worker/hits/{hit_id}/accept/", {})

    def do_hit(self, browser: Browser, hit_id: str, answer: int = 0) -> dict:
        """Accept a HIT on the worker site and do it in its frame, as the page would."""
        page = self.accept(browser, hit_id)
        assert page.status == 200 and "/localturk/worker/assignments/" in page.url, page.text[:300]
        src = re.search(r'<iframe class="task" title="HIT" src="([^"]+)"', page.text).group(1)
        src = src.replace("&amp;", "&")
        hit = Hit.objects.select_related("batch").get(provider_hit_id=hit_id)
        return simulate_worker_submit(browser, src, hit_answers(hit, answer))


@pytest.fixture
def localturk(live_server, settings, monkeypatch, aws_env):
    """boto3 reaches the endpoint at {live_server}/localturk/, signing with the endpoint's own
    key; the sandbox is its default realm and live another realm, so a test can tell which one a
    call reached."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", settings.LOCALTURK_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", settings.LOCALTURK_SECRET_ACCESS_KEY)
    _client.cache_clear()
    settings.SITE_URL = live_server.url
    settings.MTURK_ENDPOINTS = {
        "sandbox": f"{live_server.url}/localturk/",
        "live": f"{live_server.url}/localturk/realm/live/",
    }
    return LocalTurk(live_server.url)


@pytest.fixture
def make_dataset(make_climage):
    counter = iter(range(1000))

    def make(n: int = 60, k: int = 5, gold: int = 0):
        path, _ = make_climage(f"ds{next(counter)}.pkl", n=n, k=k, size=8, per_item=0)
        ds = dataset_import_from_args(
            name=f"ds-{path.stem}", fmt="climage", file=path, classes=path.with_suffix(".txt")
        )
        if gold:
            for item in ds.items.order_by("index")[:gold]:
                item.gold_label = item.label
                item.save(update_fields=["gold_label"])
        return ds

    return make


@pytest.fixture
def make_batch():
    def make(dataset, **fields) -> HitBatch:
        defaults = {
            "name": "verify run",
            "kind": "verify",
            "provider": "mturk",
            "environment": "sandbox",
            "reward": Decimal("0.05"),
            "assignments_per_item": 3,
            "items_per_hit": 20,
            "title": "Is the label right?",
            "description": "Look at each image and say whether its label is correct.",
            "auto_approval_delay_seconds": 3600,
        }
        defaults.update(fields)
        return HitBatch.objects.create(dataset=dataset, **defaults)

    return make


class Market:
    """The built-in marketplace's worker side on the live server."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def browser(self, worker_id: str) -> Browser:
        b = Browser(self.base)
        b.get("/market/me/")
        page = b.post("/market/me/", {"worker_id": worker_id, "next": "/market/"})
        assert page.status == 200, page.text[:300]
        return b

    def accept(self, browser: Browser, hit: Hit) -> Page:
        browser.get(f"/market/hits/{hit.pk}/")
        return browser.post(f"/market/hits/{hit.pk}/accept/", {})

    def do_hit(self, browser: Browser, hit: Hit, answer: int = 0) -> dict:
        page = self.accept(browser, hit)
        assert page.status == 200 and "/task/" in page.url, (page.status, page.text[:300])
        return simulate_worker_submit(browser, page.url, hit_answers(hit, answer))


@pytest.fixture
def market(live_server, settings):
    settings.SITE_URL = live_server.url
    return Market(live_server.url)


@pytest.fixture
def do_task_page():
    """Do a HIT on its task page (already opened at ``url``) with a valid answer everywhere."""

    def do(browser: Browser, url: str, hit: Hit, answer: int = 0) -> dict:
        return simulate_worker_submit(browser, url, hit_answers(hit, answer))

    return do
