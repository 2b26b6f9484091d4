"""Signed per-assignment tokens for the task pages.

The pages run inside MTurk's third-party iframe, where cookies (and so Django's CSRF cookie) are
not reliable; the page carries this token instead and the submit endpoint trusts nothing else.
A token binds the assignment, its HIT and the worker's keyed hash, and expires when the
assignment's time (``HitBatch.assignment_duration_seconds`` from acceptance) runs out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core import signing

from .exceptions import TokenRefused

SALT = "annotation.task_tokens.v1"


@dataclass(frozen=True)
class TaskToken:
    assignment_id: int
    hit_id: int
    worker_hash: str
    expires_at: int  # Unix seconds


def token_expiry(assignment) -> int:
    """When the assignment's time runs out (Unix seconds)."""
    start = assignment.accepted_at.timestamp() if assignment.accepted_at else time.time()
    return int(start) + int(assignment.hit.batch.assignment_duration_seconds)


def token_issue(assignment) -> str:
    payload = {
        "a": assignment.pk,
        "h": assignment.hit_id,
        "w": assignment.worker.id_hash,
        "e": token_expiry(assignment),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def token_verify(token: str, *, hit_id: int, now: float | None = None) -> TaskToken:
    """The token's claims, or TokenRefused (code ``forged``, ``wrong_hit`` or ``expired``)."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise TokenRefused("missing or malformed task token", code="forged")
    try:
        data = signing.loads(token, salt=SALT)
        claims = TaskToken(int(data["a"]), int(data["h"]), str(data["w"]), int(data["e"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TokenRefused("the task token is not valid", code="forged") from None
    if claims.hit_id != hit_id:
        raise TokenRefused("the task token belongs to another HIT", code="wrong_hit")
    if (time.time() if now is None else now) > claims.expires_at:
        raise TokenRefused("the time for this assignment has run out", code="expired")
    return claims
