import os

from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from django.conf import settings

        from . import celery, checks  # noqa: F401 - the Celery app; registers the deploy checks

        # The filesystem broker needs its folders before the first message is sent.
        if settings.EMBEDDED:
            os.makedirs(settings.STATIC_ROOT, exist_ok=True)
        opts = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            if key in opts:
                os.makedirs(opts[key], exist_ok=True)
