"""Who may call the requester API: requests signed with AWS Signature Version 4 (as boto3 signs
every call) under ``LOCALTURK_ACCESS_KEY_ID``, and, where ``LOCALTURK_SECRET_ACCESS_KEY`` is set,
whose signature botocore's own signer reproduces with that secret.

Refusals are answered as AWS answers them (``MissingAuthenticationTokenException``,
``IncompleteSignatureException``, ``UnrecognizedClientException``, ``InvalidSignatureException``).
botocore is imported here only to check signatures the way MTurk's clients make them; this module
is part of the stand-in, never of the MTurk provider.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings
from django.http import HttpRequest

from .state import ApiError

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
AMZ_DATE = "%Y%m%dT%H%M%SZ"
# AWS refuses a signature made more than 15 minutes before or after its own clock.
MAX_SKEW = timedelta(minutes=15)


def _missing() -> ApiError:
    return ApiError(
        "Missing Authentication Token: sign the request with AWS Signature Version 4 (boto3 "
        "does) under the access key id this endpoint expects (LOCALTURK_ACCESS_KEY_ID).",
        kind="MissingAuthenticationTokenException",
        status=403,
    )


def _incomplete(why: str) -> ApiError:
    return ApiError(
        f"The Authorization header is not an AWS Signature Version 4: {why}.",
        kind="IncompleteSignatureException",
        status=400,
    )


def _unrecognized(message: str) -> ApiError:
    return ApiError(message, kind="UnrecognizedClientException", status=400)


def _bad_signature(message: str) -> ApiError:
    return ApiError(message, kind="InvalidSignatureException", status=403)


def _signed_at(request: HttpRequest, scope_date: str) -> datetime | ApiError:
    raw = request.headers.get("X-Amz-Date", "")
    try:
        at = datetime.strptime(raw, AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        return _incomplete("X-Amz-Date is missing or not of the form 20170117T120000Z")
    if raw[:8] != scope_date:
        return _bad_signature(
            f"The credential scope's date {scope_date} is not the day of X-Amz-Date {raw}."
        )
    if abs(datetime.now(UTC) - at) > MAX_SKEW:
        return _bad_signature(
            f"Signature expired: {raw} is more than 15 minutes away from this endpoint's clock."
        )
    return at


def _expected_signature(request: HttpRequest, parts: dict[str, str], secret: str) -> str | ApiError:
    """The signature botocore's SigV4 signer gives this request's signed parts with ``secret``."""
    names = parts["signed"].split(";")
    if "host" not in names:
        return _incomplete("SignedHeaders must include host")
    headers = {}
    for name in names:
        # A request without a Host header (HTTP/1.0) reached this server by its own name.
        value = request.get_host() if name == "host" else request.headers.get(name)
        if value is None:
            return _bad_signature(f"The signed header {name!r} is not in the request.")
        headers[name] = value
    body = request.body
    declared = request.headers.get("X-Amz-Content-SHA256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        return _bad_signature("The body does not match its X-Amz-Content-SHA256.")
    query = request.META.get("QUERY_STRING", "")
    url = f"{request.scheme}://{headers['host']}{request.path}" + (f"?{query}" if query else "")
    aws = AWSRequest(method=request.method, url=url, headers=headers, data=body)
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    aws.context["payload_signing_enabled"] = True
    signer = SigV4Auth(Credentials(parts["key"], secret), parts["service"], parts["region"])
    canonical = signer.canonical_request(aws)
    return signer.signature(signer.string_to_sign(aws, canonical), aws)


def request_refusal(request: HttpRequest) -> ApiError | None:
    """Why this requester API call is refused (as AWS would answer it), or None to let it in."""
    expected_key = settings.LOCALTURK_ACCESS_KEY_ID
    if not expected_key:
        return _unrecognized(
            "This local MTurk endpoint has no LOCALTURK_ACCESS_KEY_ID set, so it answers no "
            "requester call."
        )
    header = request.headers.get("Authorization", "")
    if not header:
        return _missing()
    match = AUTH_RE.match(header.strip())
    if match is None:
        return _incomplete(
            "expected 'AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/"
            "aws4_request, SignedHeaders=..., Signature=...'"
        )
    parts = match.groupdict()
    if not hmac.compare_digest(parts["key"].encode(), expected_key.encode()):
        return _unrecognized(
            f"The access key id {parts['key']!r} is not recognized by this local MTurk endpoint: "
            "sign with the one set in LOCALTURK_ACCESS_KEY_ID."
        )
    secret = settings.LOCALTURK_SECRET_ACCESS_KEY
    if not secret:
        return None  # no secret configured: the access key id alone admits the call
    signed_at = _signed_at(request, parts["date"])
    if isinstance(signed_at, ApiError):
        return signed_at
    expected = _expected_signature(request, parts, secret)
    if isinstance(expected, ApiError):
        return expected
    if not hmac.compare_digest(expected, parts["signature"]):
        return _bad_signature(
            "The request signature we calculated does not match the signature you provided: "
            "check the secret access key (LOCALTURK_SECRET_ACCESS_KEY) and that nothing changed "
            "the request after signing."
        )
    return None
