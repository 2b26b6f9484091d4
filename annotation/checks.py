"""Deploy checks for the core's own secrets (``manage.py check --deploy``).

Registered by the app's ``ready()``.
"""

from django.conf import settings
from django.core import checks

E001 = "annotation.E001"
WORKER_ID_HASH_KEY_MIN_LENGTH = 32
# The development default in settings.py: anyone who reads the source can recompute the hashes.
DEVELOPMENT_WORKER_ID_HASH_KEYS = frozenset({"dev-only-worker-hash-key"})


def _worker_id_hash_key_problem(key: str) -> str:
    if key in DEVELOPMENT_WORKER_ID_HASH_KEYS:
        return "is the development default published in the source"
    if key == settings.SECRET_KEY:
        return "equals SECRET_KEY (one leaked key would then expose both)"
    if len(key) < WORKER_ID_HASH_KEY_MIN_LENGTH:
        return f"is {len(key)} characters long, shorter than {WORKER_ID_HASH_KEY_MIN_LENGTH}"
    if len(set(key)) < 5:
        return "uses fewer than 5 different characters"
    return ""


@checks.register(checks.Tags.security, deploy=True)
def worker_id_hash_key_strong(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The key behind every stored worker-id hash must be long, secret and its own."""
    problem = _worker_id_hash_key_problem(str(getattr(settings, "WORKER_ID_HASH_KEY", "")))
    if not problem:
        return []
    return [
        checks.Error(
            f"WORKER_ID_HASH_KEY {problem}: with a guessable key the keyed hashes of crowd "
            "worker ids can be reversed by hashing candidate ids.",
            hint=(
                f"Set WORKER_ID_HASH_KEY to a random value of at least "
                f"{WORKER_ID_HASH_KEY_MIN_LENGTH} characters, different from SECRET_KEY, "
                "e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                ". Changing it changes every worker's hash: set it before collecting."
            ),
            id=E001,
        )
    ]
