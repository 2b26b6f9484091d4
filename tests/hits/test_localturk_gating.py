"""The local MTurk endpoint is installed and routed only where LOCALTURK_ENABLED is on: by default
in development, demo and test, never in production."""

import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.apps import apps

from tests.test_settings import PROD_ENV, run

# Run in a fresh process (settings are read once, at start): whether the app is installed, which
# of its paths resolve, and, where it is off, what the site answers there over HTTP with DEBUG off
# (where it is on, its views would need the production database).
PATHS = ("/localturk/", "/localturk/worker/", "/localturk/realm/live/")
PROBE = f"""
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "annotation.settings"
import django
django.setup()
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

def routed(path):
    try:
        resolve(path)
    except Resolver404:
        return False
    return True

installed = apps.is_installed("hits.localturk")
seen = {{"installed": installed, "debug": settings.DEBUG, "routed": {{}}, "get": {{}}}}
client = Client(HTTP_HOST=settings.ALLOWED_HOSTS[0])
for path in {PATHS!r}:
    seen["routed"][path] = routed(path)
    if not installed:
        seen["get"][path] = client.get(path, secure=True).status_code
if not installed:
    seen["api"] = client.post(
        "/localturk/",
        "{{}}",
        content_type="application/x-amz-json-1.1",
        secure=True,
        HTTP_X_AMZ_TARGET="MTurkRequesterServiceV20170117.GetAccountBalance",
    ).status_code
print(json.dumps(seen))
"""


def probe(env: dict) -> dict:
    out = run("-c", PROBE, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_neither_installs_nor_routes_it():
    seen = probe(PROD_ENV)
    assert seen["installed"] is False
    assert seen["debug"] is False
    assert not any(seen["routed"].values())
    assert seen["get"] == dict.fromkeys(PATHS, 404)
    assert seen["api"] == 404


def test_switched_off_in_development_it_is_gone_too(tmp_path):
    seen = probe(
        {
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            "VAR_DIR": str(tmp_path),
            "LOCALTURK_ENABLED": "false",
        }
    )
    assert seen["installed"] is False
    assert seen["get"] == dict.fromkeys(PATHS, 404)
    assert seen["api"] == 404


def test_switched_on_in_production_it_is_installed_and_routed():
    seen = probe({**PROD_ENV, "LOCALTURK_ENABLED": "true"})
    assert seen["installed"] is True
    assert all(seen["routed"].values())


def signed(settings, target: str, body: bytes) -> dict[str, str]:
    """The headers boto3 would send for this call, signed with the endpoint's own key."""
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    aws = AWSRequest(method="POST", url="http://testserver/localturk/", headers=headers, data=body)
    creds = Credentials(settings.LOCALTURK_ACCESS_KEY_ID, settings.LOCALTURK_SECRET_ACCESS_KEY)
    SigV4Auth(creds, "mturk-requester", "us-east-1").add_auth(aws)
    return {k: v for k, v in aws.headers.items() if k != "Content-Type"}


@pytest.mark.django_db
def test_in_test_mode_it_is_installed_and_answers_signed_calls(client, settings):
    assert settings.LOCALTURK_ENABLED is True
    assert settings.LOCALTURK_ACCESS_KEY_ID and settings.LOCALTURK_SECRET_ACCESS_KEY
    assert apps.is_installed("hits.localturk")
    assert client.get("/localturk/worker/").status_code == 200
    target = "MTurkRequesterServiceV20170117.GetAccountBalance"
    resp = client.post(
        "/localturk/",
        "{}",
        content_type="application/x-amz-json-1.1",
        headers=signed(settings, target, b"{}"),
    )
    assert resp.status_code == 200, resp.content
    assert json.loads(resp.content)["AvailableBalance"] == "10000.00"
    unsigned = client.post(
        "/localturk/",
        "{}",
        content_type="application/x-amz-json-1.1",
        headers={"X-Amz-Target": target},
    )
    assert unsigned.status_code == 403
    assert json.loads(unsigned.content)["__type"] == "MissingAuthenticationTokenException"


def test_production_defaults_leave_no_key_so_every_call_is_refused():
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='annotation.settings';"
        "from django.conf import settings as s;"
        "print(repr(s.LOCALTURK_ACCESS_KEY_ID), repr(s.LOCALTURK_SECRET_ACCESS_KEY))"
    )
    out = run("-c", code, env={**PROD_ENV, "LOCALTURK_ENABLED": "true"})
    assert out.stdout.split() == ["''", "''"], out.stderr
