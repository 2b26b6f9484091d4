"""Crowd providers: one interface (base.CrowdProvider), three marketplaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hits.exceptions import ProviderError

if TYPE_CHECKING:
    from hits.models import HitBatch

    from .base import CrowdProvider


def provider_get(provider: str, environment: str) -> CrowdProvider:
    """The provider for a (provider, environment) pair; boto3 is imported only for MTurk."""
    if provider == "market":
        if environment != "market":
            raise ProviderError(f"the built-in marketplace has no environment {environment!r}")
        from .market import MarketProvider

        return MarketProvider()
    if provider == "mturk":
        from .mturk import MTurkProvider

        return MTurkProvider(environment)
    if provider == "prolific":
        if environment != "prolific":
            raise ProviderError(f"Prolific has no environment {environment!r}")
        from .prolific import ProlificProvider

        return ProlificProvider()
    raise ProviderError(f"unknown provider {provider!r}")


def provider_for(batch: HitBatch) -> CrowdProvider:
    return provider_get(batch.provider, batch.environment)
