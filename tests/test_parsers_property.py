"""Generated input never gets past the parsers as anything but their documented refusal.

The API's JSON parser raises only ``ParseError`` (a 400), its serializers only report errors,
and the task-submit parser (``parse_answers``) raises only Django's ``ValidationError``, for
any JSON-ish value: deep nesting, unicode, huge integers, nan/inf, wrong types, raw bytes.
Over real HTTP the API answers such bodies with a 400 that carries a message.
"""

from __future__ import annotations

import io
import json
import math
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError

from annotation.api import DatasetUploadSerializer, ItemFilters, VoteFilters
from annotation.kinds.base import Answer, parse_answers
from annotation.parsers import MAX_DEPTH, JSONParser
from hits.api import (
    AssignmentFilters,
    BonusBody,
    ExtendBody,
    FeedbackBody,
    HitBatchSerializer,
    LaunchBody,
    NotifyBody,
    ReasonBody,
    RejectBody,
)

FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "\x00", "1", " 7 ", "-0", "1e999", "NaN", "١٢", "\ud7ff", "9" * 30])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def deep(draw, leaf=json_values):
    """A value nested (lists and objects mixed) up to a few thousand levels."""
    value = draw(leaf)
    depth = draw(st.integers(min_value=1, max_value=3000))
    pattern = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    for level in range(depth):
        value = [value] if pattern[level % len(pattern)] else {"k": value}
    return value


def dumps(value) -> str:
    """``json.dumps`` for any depth: json.dumps recurses, so chains of one-element lists and
    objects (what ``deep`` builds) are written iteratively."""
    opens, closes = [], []
    while isinstance(value, list | dict) and len(value) == 1:
        if isinstance(value, list):
            opens.append("[")
            closes.append("]")
            value = value[0]
        else:
            ((key, value),) = value.items()
            opens.append("{" + json.dumps(key) + ":")
            closes.append("}")
    if isinstance(value, dict):
        middle = "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        middle = "[" + ",".join(dumps(v) for v in value) + "]"
    else:
        middle = json.dumps(value)
    return "".join(opens) + middle + "".join(reversed(closes))


answer_rows = st.lists(
    st.fixed_dictionaries(
        {"item": json_values, "answer": json_values},
        optional={"duration_ms": json_values},
    ),
    max_size=5,
)
any_answers = st.one_of(
    json_values,
    answer_rows,
    deep(),
    st.binary(max_size=200),
    # As the task page's form field posts them: JSON text.
    json_values.map(dumps),
    answer_rows.map(dumps),
    deep().map(dumps),
)


@FAST
@given(raw=any_answers)
@example(raw="[" * 5000)
@example(raw=b'[{"item": 1, "answer": "\xff"}]')
def test_parse_answers_refuses_only_with_a_validation_error(raw):
    try:
        parsed = parse_answers(raw, max_duration_ms=3_600_000)
    except ValidationError as exc:
        assert exc.messages and all(len(m) < 400 for m in exc.messages)
        return
    assert parsed and all(isinstance(a, Answer) for a in parsed.values())
    for item, a in parsed.items():
        assert -(2**63) <= item < 2**63 and -(2**63) <= a.answer < 2**63
        assert a.duration_ms is None or 0 <= a.duration_ms <= 3_600_000


bodies = (
    json_values.map(lambda v: dumps(v).encode())
    | deep().map(lambda v: dumps(v).encode())
    | st.binary(max_size=300)
    | st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.sampled_from(
        [b"", b"[" * 100_000, b'{"a":' * 5000, b"1e999", b"-Infinity", b"\xef\xbb\xbf{}"]
    )
)
charsets = st.sampled_from(["utf-8", "utf-16", "latin-1", "ascii", "zlib_codec", "rot13", "nope"])


def _finite_and_shallow(value, depth: int = 1) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list | dict):
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        return depth <= MAX_DEPTH and all(_finite_and_shallow(c, depth + 1) for c in children)
    return True


@FAST
@given(body=bodies, charset=charsets)
@example(body=b"[" * 100_000, charset="utf-8")
@example(body=b'{"gold_rate": 1e999}', charset="utf-8")
@example(body='{"name": "caf\u00e9"}'.encode("latin-1"), charset="utf-8")
def test_api_json_parser_refuses_only_with_a_parse_error(body, charset):
    try:
        value = JSONParser().parse(io.BytesIO(body), parser_context={"encoding": charset})
    except ParseError as exc:
        assert str(exc.detail)
        return
    # What it lets through is JSON a serializer and a JSON column can take.
    assert _finite_and_shallow(value)


SERIALIZERS = [
    HitBatchSerializer,
    DatasetUploadSerializer,
    LaunchBody,
    FeedbackBody,
    ExtendBody,
    NotifyBody,
    RejectBody,
    BonusBody,
    ReasonBody,
    ItemFilters,
    VoteFilters,
    AssignmentFilters,
]
fields = st.sampled_from(
    ["name", "dataset", "kind", "items_per_hit", "gold_rate", "reward", "params", "amount",
     "seconds", "subject", "message", "reason", "batch", "status", "label", "confirm_live",
     "budget_cap", "items", "format", "feedback"]
)  # fmt: skip
parsed_bodies = json_values | st.dictionaries(fields, json_values, max_size=6)


@pytest.mark.django_db
@FAST
@given(data=parsed_bodies, index=st.integers(0, len(SERIALIZERS) - 1))
def test_api_serializers_report_errors_instead_of_raising(data, index):
    if not _finite_and_shallow(data):
        return  # the parser refuses these before any serializer sees them
    ser = SERIALIZERS[index](data=data)
    if ser.is_valid():
        for value in ser.validated_data.values():
            if isinstance(value, int):
                assert -(2**63) <= value < 2**63
            if isinstance(value, Decimal | float):
                assert math.isfinite(value)
    else:
        assert ser.errors


def _post(url: str, body: bytes, token: str, content_type: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Token {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw[:200].decode("latin-1")}


bad_counts = st.sampled_from([10**30, -1, 0.5, "abc", None, [], {}, "1e999", True])


@st.composite
def refused_batch_bodies(draw):
    """Bodies the batch endpoint must refuse: malformed bytes, non-objects, or an object whose
    ``items_per_hit`` is wrong, whatever else it holds."""
    value = draw(json_values | deep() | st.dictionaries(fields, json_values, max_size=6))
    if isinstance(value, dict):
        value = {**value, "items_per_hit": draw(bad_counts)}
    return draw(st.sampled_from([dumps(value).encode(), draw(st.binary(min_size=1, max_size=80))]))


@pytest.mark.django_db(transaction=True)
@FAST
@given(
    body=refused_batch_bodies(),
    charset=st.sampled_from(["", "; charset=utf-8", "; charset=latin-1", "; charset=zlib"]),
)
@example(body=b"[" * 100_000, charset="")
@example(body=b'{"name": "x", "items_per_hit": 1e999}', charset="")
@example(body=b'{"name": "\xff"}', charset="; charset=utf-8")
def test_api_over_http_answers_400_for_generated_bodies(
    live_server, django_user_model, body, charset
):
    from rest_framework.authtoken.models import Token

    from hits.models import HitBatch

    user, _ = django_user_model.objects.get_or_create(username="prop-staff", is_staff=True)
    token, _ = Token.objects.get_or_create(user=user)
    status, payload = _post(
        f"{live_server.url}/api/hits/batches/", body, token.key, "application/json" + charset
    )
    assert status == 400, (status, payload, body[:200])
    assert payload and all(payload.values())
    assert not HitBatch.objects.exists()
