"""The core and lowest layer, and the Django project package.

Owns datasets, items, workers (keyed-hash ids only), votes and aggregated labels; the task-kind
registry (``kinds/``: each kind renders its items and validates its answers); import and export
of the published formats; aggregation (``aggregation/``, numpy only); researcher dashboards and
the DRF API. ``services.votes_record`` is the one writer of votes.

It imports neither ``hits`` nor ``curation``: higher apps call its services and register hooks
(e.g. the review kind's suggestion source). Only the project shell here (settings, urls, celery,
wsgi, asgi) and the demo bootstrap command name every app.

The Celery application is made when Django sets the apps up (``AnnotationConfig.ready``), or
when ``celery -A annotation`` finds ``annotation.celery``; it is not made on import, so a
command that needs neither Django nor Celery (``aggregate_votes`` in file mode) starts without
them.
"""


def __getattr__(name: str) -> object:
    if name == "celery_app":
        from .celery import app

        return app
    raise AttributeError(f"module 'annotation' has no attribute {name!r}")
