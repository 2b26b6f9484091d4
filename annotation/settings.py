"""Settings, read from the environment.

``DJANGO_ENV`` picks the mode: ``production`` (the default: every secret must be given),
``development`` / ``demo`` (embedded defaults: SQLite, a filesystem Celery broker, the built-in
marketplace) or ``test`` (development defaults plus eager Celery and fast hashing).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
DJANGO_ENV = env.str("DJANGO_ENV", default="production")
if DJANGO_ENV not in {"production", "development", "demo", "test"}:
    raise environ.ImproperlyConfigured(
        f"DJANGO_ENV must be production, development, demo or test, not {DJANGO_ENV!r}"
    )
EMBEDDED = DJANGO_ENV != "production"
TESTING = DJANGO_ENV == "test"

# CLImage published unsalted SHA-1 worker ids; they can only be computed while the raw id is at
# hand, so a study that wants them must switch this on before collecting.
WORKER_ID_KEEP_SHA1 = env.bool("WORKER_ID_KEEP_SHA1", default=False)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

if EMBEDDED:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-do-not-deploy")
    WORKER_ID_HASH_KEY = env.str("WORKER_ID_HASH_KEY", default="dev-only-worker-hash-key")
    DEBUG = env.bool("DEBUG", default=not TESTING)
    ALLOWED_HOSTS = env.list(
        "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
    )
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
else:
    # Production secrets have no defaults: a missing one stops the process at start.
    SECRET_KEY = env.str("SECRET_KEY")
    WORKER_ID_HASH_KEY = env.str("WORKER_ID_HASH_KEY")
    DEBUG = env.bool("DEBUG", default=False)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    DATABASES = {"default": env.db("DATABASE_URL")}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")

DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
# Persistent connections, checked before reuse, wherever a server runs: opening one per request
# costs a submit more than its own queries. Tests keep Django's default (one per request).
DATABASES["default"].setdefault(
    "CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0 if TESTING else 60)
)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the task pages read while a submission commits, and IMMEDIATE transactions take
    # the write lock up front instead of failing with "database is locked" mid-transaction.
    _sqlite = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite.setdefault("timeout", 30)
    _sqlite.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_PREPARED_STATEMENTS", default=True
):
    # Django's cursors bind on the client and never prepare, whatever this says; it lets the
    # few statements of annotation.prepared (a task page's reads, a submit's) be prepared on
    # the server, so they are not planned again on every request. Behind a pooler in
    # transaction mode, which cannot keep them, set DB_PREPARED_STATEMENTS=false.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

INSTALLED_APPS = [
    "annotation.admin_site.ResearchAdminConfig",  # django.contrib.admin, grouped by task
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "hits",
    # "hits.localturk" goes here when LOCALTURK_ENABLED is on (see below).
    "curation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "annotation.urls"
WSGI_APPLICATION = "annotation.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = EMBEDDED
WHITENOISE_AUTOREFRESH = EMBEDDED
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if EMBEDDED
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploaded datasets can be large; the importer streams from disk past this size.
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Images over this many pixels are refused on import (decompression-bomb guard).
IMPORT_MAX_IMAGE_PIXELS = env.int("IMPORT_MAX_IMAGE_PIXELS", default=4096 * 4096)
# An import is refused past any of these (each refusal names the setting to raise): the bytes of
# the files read (an upload, a pickle, the images of a folder) and of the arrays a pickle or .npy
# decodes to, counting every reference to a shared array; the items created; and for a zip, its
# unpacked size and number of members.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=2 * 1024**3)
IMPORT_MAX_ITEMS = env.int("IMPORT_MAX_ITEMS", default=2_000_000)
IMPORT_MAX_ARCHIVE_BYTES = env.int("IMPORT_MAX_ARCHIVE_BYTES", default=4 * 1024**3)
IMPORT_MAX_ARCHIVE_MEMBERS = env.int("IMPORT_MAX_ARCHIVE_MEMBERS", default=2_100_000)
# Retrieval with open_clip: the model's config name and its local weights file (this project
# never downloads weights).
CLIP_MODEL = env.str("CLIP_MODEL", default="ViT-B-32")
CLIP_WEIGHTS = env.str("CLIP_WEIGHTS", default="")

# Celery: the broker comes from the environment; the embedded default is kombu's filesystem
# transport, which needs no server.
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's transport with atomic writes (a worker could read a message still being written).
    CELERY_BROKER_TRANSPORT = "annotation.broker:Transport"
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"curation.tasks.*": {"queue": "curation"}}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Malformed JSON (too deep, infinite numbers, bad bytes) is a 400 with a message, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "annotation.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # ?format= names an export format on our endpoints, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "TITLE": "Crowd annotation API",
    "DESCRIPTION": "Datasets, items, votes and exports.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
# /api/schema/ for anyone outside production; in production for staff only (session or token).
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=EMBEDDED)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"drop_query_strings": {"()": "annotation.log_filters.DropQueryStrings"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["drop_query_strings"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # runserver's request lines carry the query string (and so MTurk's workerId).
        "django.server": {"handlers": ["console"], "propagate": False},
    },
}

# Where the site itself is reached from outside (used in ExternalQuestion URLs and exports).
# On the embedded defaults it follows PORT, the port the demo's server listens on.
SITE_URL = env.str(
    "SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}" if EMBEDDED else None
)

# Every response (media and image renditions included) says "do not guess the type", in every mode.
SECURE_CONTENT_TYPE_NOSNIFF = True
if not EMBEDDED:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Task pages (the worker-facing HIT pages). They may be framed by MTurk's worker sites and by
# these extra origins (e.g. another marketplace that embeds our tasks); a page's final
# externalSubmit post may go to MTurk, to this site, or to one of these origins.
TASK_FRAME_ANCESTORS = env.list("TASK_FRAME_ANCESTORS", default=[])
# Workers get resized renditions of the images; switch on to send the original files instead.
TASK_SEND_ORIGINAL_IMAGES = env.bool("TASK_SEND_ORIGINAL_IMAGES", default=False)
# A HIT's page rendered once per process and served to each of its workers (hits.page_cache).
TASK_PAGE_CACHE = env.bool("TASK_PAGE_CACHE", default=True)

# --- hits: crowd providers ----------------------------------------------------------------------
# Each MTurk environment has its own endpoint; point them at the local endpoint
# (``{SITE_URL}/localturk/``) to work offline. Credentials come from boto3's default chain.
MTURK_ENDPOINTS = {
    "sandbox": env.str(
        "MTURK_SANDBOX_ENDPOINT", default="https://mturk-requester-sandbox.us-east-1.amazonaws.com"
    ),
    "live": env.str(
        "MTURK_LIVE_ENDPOINT", default="https://mturk-requester.us-east-1.amazonaws.com"
    ),
}
MTURK_REGION = "us-east-1"
# botocore's own retries (standard mode: throttling and 5xx, with its backoff of up to seconds);
# tests leave them to ours, whose backoff they shrink.
MTURK_BOTOCORE_MAX_ATTEMPTS = env.int("MTURK_BOTOCORE_MAX_ATTEMPTS", default=1 if TESTING else 4)
HITS_RETRY_ATTEMPTS = env.int("HITS_RETRY_ATTEMPTS", default=6)
# HITs one sync run of a batch asks the provider about (the longest unsynced first).
HITS_SYNC_MAX_PER_RUN = env.int("HITS_SYNC_MAX_PER_RUN", default=500)
HITS_RETRY_BASE_DELAY = env.float("HITS_RETRY_BASE_DELAY", default=0.001 if TESTING else 1.0)
HITS_RETRY_MAX_DELAY = env.float("HITS_RETRY_MAX_DELAY", default=0.01 if TESTING else 60.0)
HITS_LAUNCH_CHUNK = env.int("HITS_LAUNCH_CHUNK", default=50)
HITS_PAGE_SIZE = env.int("HITS_PAGE_SIZE", default=100)
# The built-in marketplace keeps a worker's id in a signed cookie on our own origin.
MARKET_WORKER_COOKIE = "market_worker"
# The local MTurk endpoint (hits.localturk, at /localturk/) is a key-guarded stand-in for
# MTurk's requester API and worker site, for development, demos and tests. Off in production
# unless switched on, and then `manage.py check --deploy` warns (localturk.W001).
LOCALTURK_ENABLED = env.bool("LOCALTURK_ENABLED", default=EMBEDDED)
if LOCALTURK_ENABLED:
    INSTALLED_APPS.insert(INSTALLED_APPS.index("hits") + 1, "hits.localturk")
# The local MTurk endpoint creates a simulated worker for any well-formed id typed in.
LOCALTURK_AUTO_CREATE_WORKERS = env.bool("LOCALTURK_AUTO_CREATE_WORKERS", default=EMBEDDED)
# Its requester API answers only calls signed (AWS SigV4, as boto3 signs) with this access key id,
# and, where a secret is set, whose signature verifies with it: point AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY at these. Empty in production: there it answers no call until one is set.
LOCALTURK_ACCESS_KEY_ID = env.str(
    "LOCALTURK_ACCESS_KEY_ID", default="localturk" if EMBEDDED else ""
)
LOCALTURK_SECRET_ACCESS_KEY = env.str(
    "LOCALTURK_SECRET_ACCESS_KEY", default="localturk-secret" if EMBEDDED else ""
)
# --- hits: Prolific -----------------------------------------------------------------------------
# The API the Prolific provider talks to: Prolific's own, or the offline stand-in at
# ``{SITE_URL}/prolific-standin/api/v1/`` (served where LOCALTURK_ENABLED is on).
PROLIFIC_API_URL = env.str("PROLIFIC_API_URL", default="https://api.prolific.com/api/v1/")
PROLIFIC_API_TOKEN = env.str("PROLIFIC_API_TOKEN", default="")
PROLIFIC_TIMEOUT = env.float("PROLIFIC_TIMEOUT", default=30.0)
# Where a participant goes after their last submit (``?cc=<completion code>`` is added).
PROLIFIC_COMPLETION_URL = env.str(
    "PROLIFIC_COMPLETION_URL", default="https://app.prolific.com/submissions/complete"
)
# Prolific's platform fee on rewards and bonuses, and VAT on that fee. prolific.com/pricing
# (September 2026) gives 33.3% for academic and non-profit workspaces and 42.8% for corporate
# ones: set 0.428 for a corporate workspace. VAT (UK standard rate, 20%) applies to the fee for
# UK and some EU workspaces; set 0 where it does not (e.g. a US workspace).
PROLIFIC_SERVICE_FEE_RATE = env.float("PROLIFIC_SERVICE_FEE_RATE", default=0.333)
PROLIFIC_VAT_RATE = env.float("PROLIFIC_VAT_RATE", default=0.20)
# Prolific's minimum pay per hour, in the batch's currency (USD): "we enforce a minimum hourly
# reward of £6.00 / $8.00" (researcher-help.prolific.com, "Prolific's payment principles").
PROLIFIC_MIN_HOURLY_REWARD = env.float("PROLIFIC_MIN_HOURLY_REWARD", default=8.00)
# The launch preview warns when a batch's estimated pay per hour is below this (US dollars; by
# default the US federal minimum wage).
MIN_HOURLY_PAY = env.float("MIN_HOURLY_PAY", default=7.25)
# The offline stand-in answers only this token (``Authorization: Token <token>``); empty in
# production, where it answers no call until one is set.
PROLIFIC_STANDIN_TOKEN = env.str(
    "PROLIFIC_STANDIN_TOKEN", default="prolific-standin" if EMBEDDED else ""
)
CELERY_BEAT_SCHEDULE = {
    "hits-sync-open-batches": {"task": "hits.tasks.hit_batches_sync_task", "schedule": 60.0},
    "curation-resolve-reviews": {
        "task": "curation.tasks.curation_runs_resolve_task",
        "schedule": 300.0,
    },
}
