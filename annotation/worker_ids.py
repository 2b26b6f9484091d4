"""Keyed hashing of crowd worker ids: the raw id is hashed on arrival and never stored."""

import hashlib
import hmac

from django.conf import settings


def worker_id_hash(raw_worker_id: str) -> str:
    """HMAC-SHA256 of a provider's worker id with the site's hashing key (64 hex chars)."""
    if not raw_worker_id:
        raise ValueError("worker id is empty")
    key = settings.WORKER_ID_HASH_KEY.encode()
    return hmac.new(key, raw_worker_id.encode(), hashlib.sha256).hexdigest()


def worker_id_sha1(raw_worker_id: str) -> str:
    """Unsalted SHA-1, the form CLImage published; only computable while the raw id is at hand."""
    return hashlib.sha1(raw_worker_id.encode(), usedforsecurity=False).hexdigest()
