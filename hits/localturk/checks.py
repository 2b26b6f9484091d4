"""Deploy check: the local MTurk endpoint has no place in production.

Registered by the app's ``ready()``, so it runs exactly when the endpoint is installed.
"""

from django.conf import settings
from django.core import checks

W001 = "localturk.W001"


@checks.register(checks.Tags.security, deploy=True)
def localturk_off_in_production(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if getattr(settings, "DJANGO_ENV", "production") != "production":
        return []
    return [
        checks.Warning(
            "LOCALTURK_ENABLED is on in production: /localturk/ serves an unauthenticated "
            "MTurk-protocol stand-in (a worker site where anyone can act as any worker, and a "
            "requester API guarded only by LOCALTURK_ACCESS_KEY_ID and its secret).",
            hint="Set LOCALTURK_ENABLED=false (or leave it unset) in the production environment.",
            id=W001,
        )
    ]
