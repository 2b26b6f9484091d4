"""The core and lowest layer, and the Django project package.

Owns datasets, items, workers (keyed-hash ids only), votes and aggregated labels; the task-kind
registry (``kinds/``: each kind renders its items and validates its answers); import and export
of the published formats; aggregation (``aggregation/``, numpy only); researcher dashboards and
the DRF API. ``services.votes_record`` is the one writer of votes.

It imports neither ``hits`` nor ``curation``: higher apps call its services and register hooks
(e.g. the review kind's suggestion source). Only the project shell here (settings, urls, celery,
wsgi, asgi) and the demo bootstrap command name every app.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
